"""docs/testing.md: every ```python block is a file, and each section's files pass pytest.

A block's first line names its file (``# test_x.py`` or ``# conftest.py``); the files of
one ``## `` section run together in a fresh directory through ``pytester``, with the kit
loaded the way users get it: through the ``pytest11`` entry point.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

DOC = Path(__file__).resolve().parents[2] / "docs" / "testing.md"
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.S | re.M)
FILENAME = re.compile(r"\A# ((?:test_\w+|conftest)\.py)\n")


def sections() -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    for chunk in re.split(r"^## ", DOC.read_text(encoding="utf-8"), flags=re.M)[1:]:
        title = chunk.splitlines()[0].strip()
        files: dict[str, str] = {}
        for block in BLOCK.findall(chunk):
            match = FILENAME.match(block)
            assert match, f"{title}: a python block must start with '# test_<name>.py'"
            assert match.group(1) not in files, f"{title}: {match.group(1)} twice"
            files[match.group(1)] = block
        if files:
            found[title] = files
    return found


SECTIONS = sections()


def test_the_document_has_runnable_examples_in_each_part() -> None:
    assert len(SECTIONS) >= 5
    names = [name for files in SECTIONS.values() for name in files]
    # Test files are collected by module name in one run each, but keep them unique anyway.
    tests = [n for n in names if n != "conftest.py"]
    assert len(tests) == len(set(tests))


@pytest.mark.parametrize("title", list(SECTIONS))
def test_examples_of_section_pass(title: str, pytester: pytest.Pytester) -> None:
    files = SECTIONS[title]
    for name, source in files.items():
        pytester.path.joinpath(name).write_text(source, encoding="utf-8")
    expected = sum(
        len(re.findall(r"^(?:async )?def test_", source, re.M)) for source in files.values()
    )
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "-W", "error::pytest.PytestUnraisableExceptionWarning"
    )
    result.assert_outcomes(passed=expected)
