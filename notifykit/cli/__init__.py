"""The ``notifykit`` command-line tool.

Exit status: 0 on success, 1 when a send or query failed, 2 for usage or configuration
errors. An error prints one line, never a traceback.
"""

from __future__ import annotations

import click

from notifykit.cli import callbacks, core, demo, sandbox, store, verify
from notifykit.cli.common import cli

__all__ = ["cli", "main"]

for _module in (core, callbacks, sandbox, demo, store, verify):
    _module.register(cli)


def main() -> None:
    """Entry point of the ``notifykit`` script."""
    cli(prog_name="notifykit")


if __name__ == "__main__":  # pragma: no cover
    main()

_ = click  # re-exported for plugins' type hints
