"""``notifykit demo`` on a real terminal (a pseudo-terminal of 80 and 160 columns): the
progress bar and the event lines never overwrite each other, nothing is written past the
last column (so the terminal never wraps a line under a redraw), and the table and summary
fit 80 columns."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from notifykit.demo_render import Progress, display_width, table, wrap

RunInPty = Callable[..., tuple[int, str]]
"""The ``run_in_pty`` fixture (tests/conftest.py)."""

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pty")


class Screen:
    """Just enough of a terminal: printable text, ``\\r``, ``\\n`` and erase-line
    (``ESC [ 2 K``); a character written past the last column is counted as an overflow
    (a real terminal would wrap it onto the next line)."""

    def __init__(self, columns: int) -> None:
        self.columns = columns
        self.lines: list[str] = []
        self.cells: list[str] = []
        self.col = 0
        self.overflows: list[str] = []

    def feed(self, text: str) -> None:
        i = 0
        while i < len(text):
            ch = text[i]
            if text.startswith("\x1b[2K", i):
                self.cells = []
                i += 4
                continue
            if ch == "\x1b":  # any other sequence: skip to its final byte
                i += 2
                while i < len(text) and not text[i].isalpha():
                    i += 1
                i += 1
                continue
            if ch == "\r":
                self.col = 0
            elif ch == "\n":
                self.lines.append("".join(self.cells).rstrip())
                self.cells, self.col = [], 0
            else:
                width = display_width(ch)
                if self.col + width > self.columns:
                    self.overflows.append("".join(self.cells))
                while len(self.cells) < self.col:
                    self.cells.append(" ")
                if self.col < len(self.cells):
                    self.cells[self.col] = ch
                else:
                    self.cells.append(ch)
                self.col += width
            i += 1


@pytest.mark.parametrize("columns", [80, 160])
def test_demo_on_a_terminal(columns: int, tmp_path: Path, run_in_pty: RunInPty) -> None:
    env = {**os.environ, "NOTIFYKIT_CONFIG": str(tmp_path / "absent.toml"), "TERM": "xterm"}
    env.pop("NOTIFYKIT_LOAD_PLUGINS", None)
    code, raw = run_in_pty(["demo", "--count", "12"], columns, cwd=tmp_path, env=env)
    assert code == 0, raw
    assert "Sending  [" in raw  # the bar was drawn: this is the terminal path
    screen = Screen(columns)
    screen.feed(raw)
    assert screen.overflows == [], screen.overflows
    lines = screen.lines
    # No event line carries what is left of a bar, and every event made it to the screen.
    assert not [line for line in lines if "Sending  [" in line], lines
    events = [line for line in lines if line.startswith("#")]
    assert any("breaker of primary: closed -> open" in line for line in events), lines
    assert any("took the request and never" in line for line in events), lines
    table_at = next(i for i, line in enumerate(lines) if line.startswith("  #  destination"))
    below = lines[table_at:]
    assert all(display_width(line) <= 80 for line in below), below
    rows = [line for line in below if re.match(r"^ {0,2}\d+  \+", line)]
    assert len(rows) == 12 + 3  # the Chinese numbers and the Twilio ones


def test_progress_erases_the_bar_before_an_event_line_and_draws_it_again() -> None:
    class Tty:
        def __init__(self) -> None:
            self.text = ""

        def write(self, text: str) -> int:
            self.text += text
            return len(text)

        def flush(self) -> None:
            pass

        def isatty(self) -> bool:
            return True

    tty = Tty()
    with Progress(4, echo=lambda line: tty.write(line + "\n"), stream=tty) as bar:
        bar.advance()
        bar.note("an event " * 20)
        bar.advance()
    screen = Screen(80)
    screen.feed(tty.text)
    assert screen.overflows == []
    assert screen.lines[0].startswith("an event") and screen.lines[-1].startswith("    ")
    assert tty.text.endswith("\r\x1b[2K")  # the bar is gone once it is done


def test_piped_progress_writes_only_the_event_lines() -> None:
    seen: list[str] = []

    class Pipe:
        def write(self, text: str) -> int:
            raise AssertionError(f"wrote {text!r} to a pipe")

        def flush(self) -> None:
            pass

        def isatty(self) -> bool:
            return False

    with Progress(2, echo=seen.append, stream=Pipe()) as bar:  # type: ignore[arg-type]
        bar.advance()
        bar.note("x " * 100)
    assert seen == ["x " * 100]  # one plain line, not wrapped


def test_wrap_and_table_count_wide_characters_as_two_columns() -> None:
    assert display_width("已收到验证码 OK") == 15
    assert all(display_width(line) <= 20 for line in wrap("回复 " * 20, 20))
    lines = table(
        [("#", 3, ">"), ("destination", 14, "<"), ("last", 0, "<")],
        [(["1", "+86156****0000"], ["primary ok", "reply: " + "已收到验证码" * 8])],
    )
    assert all(display_width(line) <= 80 for line in lines), lines
