"""Helpers shared by the documentation tests: reading docs/*.md as headed sections."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"

_HEADING = re.compile(r"^(#{1,6}) +(.+?) *#*$")
_FENCE = re.compile(r"^(```|~~~)")


@dataclass
class Section:
    """The text under one Markdown heading, up to the next heading of any level."""

    title: str
    """The heading with its backticks removed, e.g. ``[routing.retry]``."""
    level: int
    lines: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def table_rows(self) -> list[list[str]]:
        """The cells of every table row in the section (header and rule rows left out)."""
        rows = []
        for line in self.lines:
            stripped = line.strip()
            if not stripped.startswith("|"):
                continue
            cells = [c.strip() for c in stripped.strip("|").split("|")]
            if all(re.fullmatch(r":?-{3,}:?", c) for c in cells):
                continue
            rows.append(cells)
        # The first row of each table is its header: drop rows whose first cell is "key".
        return [r for r in rows if r and r[0].lower() not in ("key", "option", "command")]


def read_sections(name: str) -> list[Section]:
    """docs/<name> split at its headings; headings inside code fences are not headings."""
    sections = [Section(title="", level=0)]
    in_fence = False
    for line in (DOCS / name).read_text(encoding="utf-8").splitlines():
        if _FENCE.match(line):
            in_fence = not in_fence
        match = None if in_fence else _HEADING.match(line)
        if match:
            sections.append(
                Section(title=match.group(2).replace("`", "").strip(), level=len(match.group(1)))
            )
        else:
            sections[-1].lines.append(line)
    return sections


def section_map(name: str) -> dict[str, Section]:
    """Sections by title; a title used twice is a test failure (lookups must be exact)."""
    found: dict[str, Section] = {}
    for section in read_sections(name):
        assert section.title not in found or not section.title, (
            f"docs/{name}: heading {section.title!r} appears twice"
        )
        found[section.title] = section
    return found


@pytest.fixture
def sections() -> Callable[[str], dict[str, Section]]:
    """``sections("cli.md")``: that document's sections by heading title."""
    return section_map
