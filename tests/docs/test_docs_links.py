"""The documents link to each other: every relative link in docs/*.md resolves to a file,
and its #anchor to a heading of that file; the index links every document; the index's
API table names every public name of ``notifykit``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import notifykit

DOCS = Path(__file__).resolve().parents[2] / "docs"
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```$", re.S | re.M)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = heading.strip().lower().replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    return {slug(m) for m in re.findall(r"^#{1,6} +(.+?) *$", text, re.M)}


def links(path: Path) -> list[str]:
    return LINK.findall(FENCE.sub("", path.read_text(encoding="utf-8")))


DOC_FILES = sorted(p.name for p in DOCS.glob("*.md"))


@pytest.mark.parametrize("name", DOC_FILES)
def test_relative_links_resolve(name: str) -> None:
    for target in links(DOCS / name):
        if re.match(r"^[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        path = DOCS / name if not file else (DOCS / file)
        if file == "benchmarks.md" and not path.exists():
            continue  # written by the benchmark run (issue 8)
        assert path.is_file(), f"{name}: link to missing {target}"
        if anchor:
            assert anchor in anchors(path), f"{name}: no heading for #{anchor} in {path.name}"


def test_the_index_links_every_document() -> None:
    linked = {t.partition("#")[0] for t in links(DOCS / "index.md")}
    missing = set(DOC_FILES) - linked - {"index.md"}
    assert not missing, missing


def test_the_index_lists_the_public_api() -> None:
    text = (DOCS / "index.md").read_text(encoding="utf-8")
    missing = [name for name in notifykit.__all__ if f"`{name}`" not in text]
    assert not missing, missing
