"""`import httpx` gives httpx2 (and `import httpcore` httpcore2) in every process that imports this.

`benchmarks/run.py` copies this file into its scratch directory and puts that directory first
on PYTHONPATH for the "app, httpx2" server only, so Python imports it at start-up, before the
app imports anything; `bot/` is not touched. With BENCH_HTTPX2_RECORDS set, each process writes
what it really ran to `$BENCH_HTTPX2_RECORDS/<pid>.json` when it stops. Never import it otherwise.
"""

import atexit
import json
import os
import signal
import sys

import httpx2

if hasattr(httpx2, "alias_httpx"):
    httpx2.alias_httpx()  # httpx -> httpx2 and httpcore -> httpcore2, submodules included
else:
    sys.modules["httpx"] = httpx2
    for _name, _module in list(sys.modules.items()):
        if _name.startswith("httpx2."):
            sys.modules["httpx" + _name[len("httpx2") :]] = _module


_recorded: list[bool] = []


def _record() -> None:
    """What this process ran, written when it stops, for the benchmark to check."""
    if _recorded:
        return
    _recorded.append(True)
    httpx = sys.modules.get("httpx")
    httpcore = sys.modules.get("httpcore")
    files = {getattr(module, "__file__", None) or "" for module in list(sys.modules.values())}
    originals = sorted(
        f for f in files if any(f"{os.sep}{name}{os.sep}" in f for name in ("httpx", "httpcore"))
    )
    record = {
        "httpx": getattr(httpx, "__name__", None),
        "httpcore": getattr(httpcore, "__name__", None),
        "version": getattr(httpx, "__version__", None),
        "originals": originals,
    }
    with open(os.path.join(os.environ["BENCH_HTTPX2_RECORDS"], f"{os.getpid()}.json"), "w") as out:
        json.dump(record, out)


def _record_and_die(signum: int, frame: object) -> None:
    # uvicorn puts this handler back after its graceful shutdown and raises SIGTERM again, so
    # the process would die without running atexit: record, then die of the signal as before.
    _record()
    signal.signal(signum, signal.SIG_DFL)
    signal.raise_signal(signum)


if os.environ.get("BENCH_HTTPX2_RECORDS"):
    atexit.register(_record)
    signal.signal(signal.SIGTERM, _record_and_die)
