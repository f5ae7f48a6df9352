"""``notifykit store status`` and ``notifykit store migrate``: the store's schema by hand."""

from __future__ import annotations

import asyncio
from typing import Any

import click

from notifykit.cli.common import (
    EXIT_FAILED,
    HelpGroup,
    config_option,
    echo_json,
    fail,
    handle_errors,
    load,
)
from notifykit.config import Config, mask_url_password
from notifykit.store import open_store

__all__ = ["register"]


@click.group("store", cls=HelpGroup)
def store_group() -> None:
    """The store's schema: its version, and migrating it by hand."""


async def _status(config: Config) -> dict[str, Any]:
    store = open_store(config.store)
    status_of = getattr(store, "schema_status", None)
    if status_of is None:
        # memory:// has no schema; SQLite migrates itself when a process opens it.
        return {
            "store": mask_url_password(config.store.url),
            "kind": type(store).__name__,
            "versioned": False,
        }
    status = await status_of()
    return {
        "store": mask_url_password(config.store.url),
        "kind": type(store).__name__,
        "versioned": True,
        "schema": status.schema,
        "current": status.current,
        "latest": status.latest,
        "pending": status.pending,
        "applied": [{"version": v, "name": n} for v, n in status.applied],
    }


@store_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
@config_option
@handle_errors
def store_status(as_json: bool, config_path: str | None) -> None:
    """The schema version of the store and the one this notifykit needs.

    Exit status 1 when the schema is behind (migrations pending) or ahead of this
    notifykit."""
    config = load(config_path, reading=True)
    report = asyncio.run(_status(config))
    if as_json:
        echo_json(report)
    elif not report["versioned"]:
        click.echo(
            f"{report['kind']}: no versioned schema to manage "
            "(memory:// keeps nothing; SQLite migrates itself when opened)"
        )
    else:
        click.echo(
            f"{report['store']} schema {report['schema']!r}: version {report['current']}, "
            f"this notifykit needs {report['latest']}"
        )
        for applied in report["applied"]:
            click.echo(f"    {applied['version']:04d}  {applied['name']}")
    if report["versioned"] and report["current"] < report["latest"]:
        fail(f"{report['pending']} migration(s) pending: run `notifykit store migrate`")
    if report["versioned"] and report["current"] > report["latest"]:
        fail("the schema is newer than this notifykit: upgrade notifykit", EXIT_FAILED)


@store_group.command("migrate")
@config_option
@handle_errors
def store_migrate(config_path: str | None) -> None:
    """Apply the schema migrations this notifykit needs (safe to run from several hosts at
    once: one applies them, the others find nothing to do)."""
    config = load(config_path, reading=True)

    async def run() -> list[int] | None:
        store = open_store(config.store)
        migrate = getattr(store, "migrate_schema", None)
        if migrate is None:
            return None
        versions: list[int] = await migrate()
        return versions

    applied = asyncio.run(run())
    if applied is None:
        click.echo(
            "nothing to migrate: memory:// keeps nothing; SQLite migrates itself when opened"
        )
    elif applied:
        click.echo(f"applied migration(s) {', '.join(f'{v:04d}' for v in applied)}")
    else:
        click.echo("the schema is up to date")


def register(cli: click.Group) -> None:
    """Add this module's commands to ``cli``."""
    cli.add_command(store_group)
