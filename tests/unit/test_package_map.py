"""The README's map of the package matches the tree, and no module has grown past 400 lines."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "bot"
MAX_LINES = 400


def map_rows() -> set[str]:
    """The first column of the README's package map: `bot/slack/blocks/`, `bot/config.py`, ..."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Map of the package", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `(bot/[^`]*)` \|", section, flags=re.M))


def folders() -> set[str]:
    found = {
        f"bot/{p.relative_to(PACKAGE)}/" for p in PACKAGE.rglob("*") if p.is_dir() and p.name != "__pycache__"
    }
    return found | {"bot/"}


def test_every_folder_of_the_package_is_on_the_map() -> None:
    rows = map_rows()
    assert rows, "README.md has no 'Map of the package' table"
    missing = sorted(folders() - rows)
    assert not missing, f"folders missing from the README's map: {missing}"


def test_the_map_names_nothing_that_is_not_there() -> None:
    gone = sorted(row for row in map_rows() if not (ROOT / row).exists())
    assert not gone, f"the README's map names what the tree does not have: {gone}"


def test_no_module_is_over_400_lines() -> None:
    long = {
        str(path.relative_to(ROOT)): n
        for path in PACKAGE.rglob("*.py")
        if "migrations" not in path.parts and (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"split these along their seams: {long}"
