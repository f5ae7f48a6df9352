"""What every command shares: the top-level group, configuration loading, error exits."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import click

from notifykit.config import Config, load_config
from notifykit.errors import ConfigError, InvalidMessage, NotifyKitError
from notifykit.log import configure_cli_logging

__all__ = ["EXIT_FAILED", "EXIT_USAGE", "cli", "config_option", "fail", "handle_errors", "load"]

EXIT_FAILED = 1
EXIT_USAGE = 2

F = TypeVar("F", bound=Callable[..., Any])


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output on stderr (-v info, -vv debug).")
@click.version_option(package_name="notifykit")
def cli(verbose: int) -> None:
    """notifykit: send SMS through any number of vendors behind one interface."""
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    configure_cli_logging(level)


def config_option(fn: F) -> F:
    """The ``--config FILE`` option (else $NOTIFYKIT_CONFIG, ./notifykit.toml, built-in)."""
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False),
        default=None,
        help="Configuration file (default: $NOTIFYKIT_CONFIG, else ./notifykit.toml, else built-in).",
    )(fn)


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    """Print one error line on stderr and exit."""
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


def load(config_path: str | None) -> Config:
    try:
        return load_config(config_path)
    except ConfigError as exc:
        fail(exc.message, EXIT_USAGE)


def handle_errors(fn: F) -> F:
    """Turn notifykit errors into one line and the documented exit status."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ConfigError as exc:
            fail(exc.message, EXIT_USAGE)
        except InvalidMessage as exc:
            fail(exc.message, EXIT_USAGE)
        except NotifyKitError as exc:
            fail(f"{type(exc).__name__}: {exc.message}", EXIT_FAILED)

    return wrapper  # type: ignore[return-value]
