"""The layers are enforced: `lint-imports` (in `make lint`) passes on the tree and fails on an upward import."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.skipif(
    not LINT_IMPORTS.exists(), reason="lint-imports is not installed: make install"
)


def lint(tree: Path) -> subprocess.CompletedProcess[str]:
    """Run the project's contracts over the package in `tree`."""
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", "pyproject.toml"],
        cwd=tree,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def copy_of_the_package(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "bot", tmp_path / "bot", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_tree_keeps_every_contract(tmp_path: Path) -> None:
    done = lint(copy_of_the_package(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "BROKEN" not in done.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        ("bot/domain/balances.py", "import sqlalchemy", "The domain is pure"),
        ("bot/domain/runway.py", "from bot.adapters import db", "Layers"),
        ("bot/services/caches.py", "from bot.slack import app", "Layers"),
        ("bot/adapters/breeze.py", "from bot.services import watching", "Layers"),
        ("bot/config.py", "from bot.adapters import crypto", "Layers"),
        ("bot/slack/blocks/notices.py", "from bot.slack import poster", "Block Kit builders"),
    ],
)
def test_an_import_that_breaks_a_layer_fails_lint(
    tmp_path: Path, module: str, line: str, broken: str
) -> None:
    tree = copy_of_the_package(tmp_path)
    target = tree / module
    text = target.read_text()
    head, _, rest = text.partition("from __future__ import annotations\n")
    target.write_text(f"{head}from __future__ import annotations\n\n{line}  # noqa\n{rest}")
    done = lint(tree)
    assert done.returncode == 1, done.stdout + done.stderr
    assert any(broken in row and "BROKEN" in row for row in done.stdout.splitlines()), done.stdout
