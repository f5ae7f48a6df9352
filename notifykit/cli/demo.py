"""``notifykit demo``: the main job, runnable on any machine with no account."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import click

from notifykit.cli.common import EXIT_FAILED, EXIT_USAGE, fail
from notifykit.errors import ConfigError, NotifyKitError

__all__ = ["register"]

KEPT_STORE = "notifykit.sqlite3"
"""The store file the demo keeps in ``--keep DIR`` (as notifykit.demo names it)."""


@click.command()
@click.option(
    "--keep",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep the store and configuration in DIR (then: notifykit log --config DIR/notifykit.toml).",
)
@click.option(
    "--count",
    type=click.IntRange(1, 200),
    default=20,
    show_default=True,
    help="How many Chinese numbers to send codes to.",
)
def demo(keep: Path | None, count: int) -> None:
    """Send verification codes through local vendor sandboxes: failover, receipts, no account."""
    from notifykit.demo import DemoSettings, render, run_demo

    # The demo narrates what happens itself; per-attempt warnings would repeat it (-v shows them).
    notifykit_logger = logging.getLogger("notifykit")
    if notifykit_logger.level == logging.WARNING:
        notifykit_logger.setLevel(logging.ERROR)

    if keep is not None:
        try:
            keep.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            fail(f"--keep {keep}: cannot create the folder: {exc.strerror}", EXIT_USAGE)
        if not os.access(keep, os.W_OK | os.X_OK):
            fail(f"--keep {keep}: the folder cannot be written", EXIT_USAGE)
        _check_kept_store(keep)
    try:
        outcome = run_demo(DemoSettings(count=count, keep=keep))
    except KeyboardInterrupt:
        # Every sandbox and server was stopped on the way out: stopping is not a failure.
        click.echo("demo stopped (Ctrl+C); nothing is left running", err=True)
        return
    except ConfigError as exc:
        fail(exc.message, EXIT_USAGE)
    except NotifyKitError as exc:
        fail(f"{type(exc).__name__}: {exc.message}", EXIT_FAILED)
    render(outcome)
    if keep is not None:
        click.echo(f"Kept {keep}: notifykit log --config {keep / 'notifykit.toml'}")
    if not outcome.accounted:
        missing = [row for row in outcome.rows if not row.accounted]
        fail(
            f"{len(missing)} of {len(outcome.rows)} messages are not accounted for (no final "
            "status within the wait for receipts): "
            + ", ".join(f"#{row.index} ({row.status})" for row in missing),
            EXIT_FAILED,
        )
    if outcome.verification is not None and not outcome.verification.as_expected:
        fail("the verification part did not go as the rules say", EXIT_FAILED)


def _check_kept_store(keep: Path) -> None:
    """Exit 2 with one line when the store the demo keeps in ``keep`` cannot be opened (a
    folder, or a file that is no database, in its place): found here, before any server
    starts, rather than as the receiver's failed start."""
    from notifykit.config import StoreConfig
    from notifykit.store import open_store

    store = keep / KEPT_STORE

    async def probe() -> None:
        opened = open_store(StoreConfig(url=f"sqlite:///{store}"))
        await opened.open()
        await opened.close()

    try:
        asyncio.run(probe())
    except NotifyKitError as exc:
        fail(f"--keep {keep}: the store {store} cannot be opened: {exc.message}", EXIT_USAGE)


def register(cli: click.Group) -> None:
    """Add ``demo`` to ``cli``."""
    cli.add_command(demo)
