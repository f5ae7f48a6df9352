"""How ``notifykit demo`` draws on a terminal: a progress bar that stays below the event
lines printed while it runs, and a table and summary that fit 80 columns.

On a terminal the bar is one line, redrawn in place (``\\r`` and erase-line) and kept
shorter than the terminal, so a redraw never lands on a wrapped line; an event line first
erases the bar, prints itself (wrapped to the terminal's width) and draws the bar again
below it. Piped, there is no bar and no escape sequence: one plain line per event.

Widths are display columns: a Chinese character takes two (``unicodedata.east_asian_width``).
"""

from __future__ import annotations

import shutil
import sys
import unicodedata
from collections.abc import Callable, Iterable
from typing import IO, Any

import click

__all__ = ["TABLE_WIDTH", "Progress", "display_width", "table", "wrap"]

TABLE_WIDTH = 80
"""The table and the summary fit this many columns, whatever the terminal."""

_ERASE_LINE = "\r\x1b[2K"


def display_width(text: str) -> int:
    """Columns ``text`` takes on a terminal: 2 for wide (CJK) characters, 0 for combining
    marks, 1 for the rest."""
    width = 0
    for ch in text:
        if unicodedata.combining(ch):
            continue
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width


def wrap(text: str, width: int, indent: str = "    ") -> list[str]:
    """``text`` as lines of at most ``width`` columns, broken at spaces; continuation lines
    start with ``indent``. A word longer than a line is broken inside."""
    width = max(width, display_width(indent) + 10)
    lines: list[str] = []
    body = text.lstrip(" ")
    line = text[: len(text) - len(body)]  # a leading indent is kept
    for word in body.split(" "):
        candidate = f"{line} {word}" if line.strip() else f"{line}{word}"
        if display_width(candidate) <= width:
            line = candidate
            continue
        if line.strip():
            lines.append(line)
            line = indent + word
        else:
            line = candidate
        while display_width(line) > width:
            cut = _cut(line, width)
            lines.append(line[:cut])
            line = indent + line[cut:]
    if line.strip() or not lines:
        lines.append(line)
    return [line.rstrip() for line in lines]


def _cut(text: str, width: int) -> int:
    """How many characters of ``text`` fit ``width`` columns."""
    used = 0
    for i, ch in enumerate(text):
        used += display_width(ch)
        if used > width:
            return max(i, 1)
    return len(text)


class Progress:
    """A progress bar with event lines printed above it.

    ``live`` (drawn in place) only when ``enabled`` and the output is a terminal; otherwise
    :meth:`note` prints plain lines through ``echo`` and nothing else is written.
    """

    def __init__(
        self,
        total: int,
        *,
        label: str = "Sending",
        enabled: bool = True,
        echo: Callable[[str], None] = click.echo,
        stream: IO[Any] | None = None,
    ) -> None:
        self.total = total
        self.done = 0
        self.label = label
        self.echo = echo
        self.stream = stream if stream is not None else sys.stdout
        self.live = enabled and _is_terminal(self.stream)
        self._drawn = False
        self._open = False

    @property
    def width(self) -> int:
        """The terminal's width in columns (``$COLUMNS`` first, then the terminal)."""
        return shutil.get_terminal_size((TABLE_WIDTH, 24)).columns

    def __enter__(self) -> Progress:
        self._open = True
        self._draw()
        return self

    def __exit__(self, *exc: object) -> None:
        self._open = False
        if self._drawn:
            self._write(_ERASE_LINE)
            self._drawn = False

    def note(self, text: str) -> None:
        """Print an event line above the bar (wrapped to the terminal on a terminal); also
        after the bar is gone, for the events that follow the sends."""
        if not self.live:
            self.echo(text)
            return
        if self._drawn:
            self._write(_ERASE_LINE)
            self._drawn = False
        for line in wrap(text, self.width - 1):
            self.echo(line)
        self._draw()

    def advance(self, steps: int = 1) -> None:
        self.done = min(self.total, self.done + steps)
        self._draw()

    def bar(self) -> str:
        """The bar's text, shorter than the terminal: ``Sending  [####----]  9/23``."""
        count = f"{self.done}/{self.total}"
        room = self.width - 1 - len(self.label) - len(count) - 6
        size = max(0, min(40, room))
        filled = size * self.done // self.total if self.total else size
        inner = "#" * filled + "-" * (size - filled)
        return f"{self.label}  [{inner}]  {count}" if size else f"{self.label} {count}"

    def _draw(self) -> None:
        if not (self.live and self._open):
            return
        self._write(_ERASE_LINE + self.bar())
        self._drawn = True

    def _write(self, text: str) -> None:
        click.echo(text, file=self.stream, nl=False)
        self.stream.flush()


def _is_terminal(stream: IO[Any]) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # a closed or unusual stream
        return False


def table(
    header: Iterable[tuple[str, int, str]],
    rows: Iterable[tuple[list[str], list[str]]],
    width: int = TABLE_WIDTH,
) -> list[str]:
    """Fixed columns, then a last column whose parts (``rows``' second item) are packed into
    the remaining width and continued on lines aligned under it.

    ``header``: (title, width, align ``<`` or ``>``) for each fixed column, then the last
    column's title with width 0.
    """
    spec = list(header)
    fixed = spec[:-1]

    def cells(values: list[str]) -> str:
        out = []
        for (_, size, align), value in zip(fixed, values, strict=True):
            pad = " " * max(0, size - display_width(value))
            out.append(pad + value if align == ">" else value + pad)
        return "  ".join(out) + "  "

    lead = display_width(cells(["" for _ in fixed]))
    room = max(10, width - lead)
    lines = [cells([title for title, _, _ in fixed]) + spec[-1][0]]
    lines.append("-" * min(width, max(display_width(lines[0]), lead + 10)))
    for values, parts in rows:
        current = cells(values)
        used = 0
        # A part wider than the column on its own is broken at its spaces.
        tokens = []
        for part in parts:
            for token in part.split(" ") if display_width(part) > room else [part]:
                while display_width(token) > room:  # one word wider than the column
                    cut = _cut(token, room)
                    tokens.append(token[:cut])
                    token = token[cut:]
                tokens.append(token)
        for part in tokens:
            size = display_width(part)
            if used and used + 1 + size > room:
                lines.append(current.rstrip())
                current, used = " " * lead, 0
            if used:
                current += " "
                used += 1
            current += part
            used += size
        lines.append(current.rstrip())
    return lines
