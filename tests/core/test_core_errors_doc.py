"""docs/errors.md draws the same tree as notifykit/errors.py and explains every class."""

from __future__ import annotations

import inspect
from pathlib import Path

from notifykit import errors

DOC = Path(__file__).resolve().parents[2] / "docs" / "errors.md"


def _tree(text: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "NotifyKitError")
    end = next(i for i in range(start, len(lines)) if "AllProvidersFailed" in lines[i])
    return [line.strip() for line in lines[start : end + 1]]


def test_the_doc_and_the_docstring_draw_the_same_tree() -> None:
    assert _tree(DOC.read_text(encoding="utf-8")) == _tree(errors.__doc__ or "")


def test_the_tree_matches_the_classes() -> None:
    lines = (errors.__doc__ or "").splitlines()
    first = next(i for i, line in enumerate(lines) if line.strip() == "NotifyKitError")
    drawn: list[tuple[int, str]] = []  # (column of the name, name)
    for line in lines[first:]:
        if not line.strip():
            break
        name = line.lstrip(" │├└─").split(" ")[0]
        drawn.append((line.index(name), name))
    assert sorted(name for _, name in drawn) == sorted(errors.__all__)
    for i, (column, name) in enumerate(drawn[1:], start=1):
        parent = next(n for c, n in reversed(drawn[:i]) if c < column)
        assert getattr(errors, name).__mro__[1] is getattr(errors, parent), name


def test_every_error_is_explained_in_the_doc() -> None:
    text = DOC.read_text(encoding="utf-8")
    for name in errors.__all__:
        assert f"| `{name}` |" in text, name
        assert inspect.getdoc(getattr(errors, name)), name
