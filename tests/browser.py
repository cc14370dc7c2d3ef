"""A real headless browser for the page tests: Debian's Chromium, driven by Playwright.

Playwright's own browser downloads are not used; the system Chromium is (`apt-get install chromium`).
"""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def chromium_path() -> str | None:
    """The system Chromium, if installed."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    default = Path("/usr/bin/chromium")
    return str(default) if default.exists() else None


def skip_reason() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "browser tests skipped: playwright is not importable (pip install playwright)"
    if chromium_path() is None:
        return "browser tests skipped: no Chromium: apt-get install chromium"
    return None


def png_size(path: Path) -> tuple[int, int]:
    """Width and height of a PNG file; fails if the file is not a PNG."""
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)
