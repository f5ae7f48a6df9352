"""What every command shares: the top-level group, configuration loading, error exits.

Every error leaves the CLI as one line on stderr (``Error: ...``) and an exit status: 0 on
success, 1 when a send or query failed (or anything unexpected happened), 2 for usage or
configuration errors. No traceback is ever printed, and the secrets of the loaded
configuration are blanked out of every error line as a last line of defence.
"""

from __future__ import annotations

import functools
import json
import logging
import shutil
import sys
import warnings
from collections.abc import Callable, Iterable
from typing import IO, Any, NoReturn, TypeVar
from urllib.parse import parse_qsl, urlsplit

import click
from pydantic import BaseModel, SecretStr

from notifykit.config import Config, ConsoleFallbackWarning, fallback_notice, load_config
from notifykit.errors import ConfigError, InvalidMessage, NotifyKitError
from notifykit.log import configure_cli_logging

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "HelpGroup",
    "NotifyKitGroup",
    "cli",
    "columns",
    "config_option",
    "describe_error",
    "echo_json",
    "echo_row",
    "exit_code_for",
    "fail",
    "handle_errors",
    "load",
    "redact",
    "remember_secrets",
    "secrets_of",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

F = TypeVar("F", bound=Callable[..., Any])

# Secret values of the configuration this run loaded; never printed (see ``redact``).
_SECRETS: set[str] = set()
_MIN_SECRET_LENGTH = 4  # shorter values would blank out ordinary words


def remember_secrets(values: Iterable[str]) -> None:
    """Add values that must never reach the terminal."""
    _SECRETS.update(v for v in values if len(v) >= _MIN_SECRET_LENGTH)


def secrets_of(config: Config, options: Iterable[BaseModel] = ()) -> list[str]:
    """Every SecretStr value in ``config`` and in the given provider options."""
    found: list[str] = []
    if config.callbacks.token is not None:
        found.append(config.callbacks.token.get_secret_value())
    if config.verify.secret is not None:
        found.append(config.verify.secret.get_secret_value())
    for url in (config.store.url, config.shared_state.url):
        if not url:
            continue
        parts = urlsplit(url)
        if parts.password:
            found.append(parts.password)
        # libpq and redis-py read a password from the query too (mask_url_password).
        found.extend(v for k, v in parse_qsl(parts.query) if "password" in k.lower() and v)
    for model in options:
        for name in type(model).model_fields:
            value = getattr(model, name, None)
            if isinstance(value, SecretStr):
                found.append(value.get_secret_value())
    return found


def redact(text: str) -> str:
    """``text`` with every remembered secret replaced by ``**********``."""
    for secret in sorted(_SECRETS, key=len, reverse=True):
        text = text.replace(secret, "**********")
    return text


def columns(rows: Iterable[Iterable[str]], indent: str = "  ") -> list[str]:
    """Rows of cells as lines whose columns line up (two spaces between columns)."""
    table = [list(row) for row in rows]
    widths = [
        max(len(row[i]) for row in table if i < len(row))
        for i in range(max(map(len, table), default=0))
    ]
    return [
        indent + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip()
        for row in table
    ]


def one_line(text: str) -> str:
    return "; ".join(part.strip() for part in text.splitlines() if part.strip())


def exit_code_for(exc: BaseException) -> int:
    """The documented exit status for an error."""
    if isinstance(exc, ConfigError | InvalidMessage):
        return EXIT_USAGE
    return EXIT_FAILED


def describe_error(exc: BaseException) -> str:
    """One line for an error: configuration and input errors speak for themselves, the
    rest are prefixed with their class name."""
    if isinstance(exc, NotifyKitError):
        message = exc.message or type(exc).__name__
        if isinstance(exc, ConfigError | InvalidMessage):
            return one_line(message)
        return one_line(f"{type(exc).__name__}: {message}")
    if isinstance(exc, OSError) and exc.strerror:
        # A condition the user can cause and fix (a path that cannot be written, a full
        # disk), not a bug: said as the system says it, with the path.
        where = f": {exc.filename}" if exc.filename else ""
        return one_line(f"{exc.strerror}{where}")
    return one_line(f"unexpected error: {type(exc).__name__}: {exc}")


class _Failure(click.ClickException):
    """An error already worded for the user, with its exit status."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # click declares it per class

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"Error: {redact(self.format_message())}", err=True)


def _usage_failure(exc: click.UsageError) -> _Failure:
    hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
    return _Failure(one_line(exc.format_message()) + hint, EXIT_USAGE)


def summary(command: click.Command) -> str:
    """A command's summary for a listing: its help's whole first paragraph, never cut."""
    if command.short_help:
        return command.short_help
    return " ".join((command.help or "").split("\n\n", 1)[0].split())


class HelpGroup(click.Group):
    """A click group that prints its help (exit 0) when given no subcommand, and lists its
    commands with whole summaries, wrapped rather than cut at click's 45 characters."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("no_args_is_help", True)
        super().__init__(*args, **kwargs)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args and self.no_args_is_help and not ctx.resilient_parsing:
            click.echo(ctx.get_help(), color=ctx.color)
            ctx.exit(EXIT_OK)
        return super().parse_args(ctx, args)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, summary(command)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


class NotifyKitGroup(HelpGroup):
    """A click group whose every error, click's usage errors included, is one line.

    Commands that plugins add through the ``register_commands`` hook are loaded the first
    time a name is not a built-in one (or the commands are listed), never at import.
    """

    _plugin_commands: dict[str, click.Command] | None = None

    def _plugins(self) -> dict[str, click.Command]:
        if self._plugin_commands is None:
            from notifykit.plugins import call_each, get_plugin_manager

            collector = click.Group(self.name)
            # A broken plugin must not take the built-in commands, or another plugin's, down.
            try:
                failures = call_each(get_plugin_manager(), "register_commands", cli=collector)
            except Exception as exc:
                click.echo(f"Warning: plugin commands not loaded: {describe_error(exc)}", err=True)
            else:
                for failure in failures:
                    click.echo(f"Warning: plugin commands not loaded: {failure}", err=True)
            self._plugin_commands = {}
            for name, command in collector.commands.items():
                if name in self.commands:
                    click.echo(
                        f"Warning: a plugin's command {name!r} clashes with a built-in one; ignored",
                        err=True,
                    )
                    continue
                self._plugin_commands[name] = command
        return self._plugin_commands

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._plugins()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, cmd_name) or self._plugins().get(cmd_name)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            raise _usage_failure(exc) from exc

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.Abort, EOFError, _Failure, BrokenPipeError):
            # A closed stdout (``notifykit log | head -1``): click ends quietly with 1.
            raise
        except click.UsageError as exc:
            raise _usage_failure(exc) from exc
        except click.ClickException as exc:
            raise _Failure(one_line(exc.format_message()), exc.exit_code) from exc
        except Exception as exc:
            raise _Failure(describe_error(exc), exit_code_for(exc)) from exc


@click.group(
    cls=NotifyKitGroup,
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.option("-v", "--verbose", count=True, help="More log output on stderr (-v info, -vv debug).")
@click.version_option(package_name="notifykit")
@click.pass_context
def cli(ctx: click.Context, verbose: int) -> None:
    """notifykit: send SMS through any number of vendors behind one interface."""
    _SECRETS.clear()
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    ctx.call_on_close(configure_cli_logging(level))


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
    click.echo(f"Error: {redact(one_line(message))}", err=True)
    sys.exit(code)


_READING_FALLBACK = "the built-in default's store is memory://, which keeps nothing to read"


def load(
    config_path: str | None, *, fallback_warning: bool = True, reading: bool = False
) -> Config:
    """The configuration, or exit 2 with the problem on one line. ``fallback_warning=False``
    leaves out the console fallback's warning, for a command that refuses the fallback with
    its own error (its "messages are only printed" would contradict the refusal);
    ``reading=True`` words it for a command that only reads the store (``log``, ``events``,
    ``store``): what the fallback means there is an empty ``memory://`` store."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConsoleFallbackWarning)
            config = load_config(config_path)
    except ConfigError as exc:
        fail(exc.message, EXIT_USAGE)
    for warning in caught:
        if issubclass(warning.category, ConsoleFallbackWarning):
            if fallback_warning:
                said = fallback_notice(_READING_FALLBACK) if reading else warning.message
                click.echo(f"Warning: {said}", err=True)
        else:
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )
    remember_secrets(secrets_of(config))
    return config


def echo_row(text: str, indent: str = "  ") -> None:
    """One record's line on stdout: as it is when piped (one line per record, for grep); on
    a terminal, wrapped at spaces to the terminal's width with continuation lines starting
    with ``indent`` (2 columns: between a record, at 0, and its details, at 4; a detail line
    passes a deeper one), so that a long row never runs over into the next one."""
    stream = sys.stdout
    try:
        live = stream.isatty()
    except (AttributeError, ValueError):
        live = False
    if not live:
        click.echo(text)
        return
    from notifykit.demo_render import wrap

    for line in wrap(text, shutil.get_terminal_size((80, 24)).columns - 1, indent=indent):
        click.echo(line)


def echo_json(data: Any) -> None:
    """Print ``data`` (already ``model_dump(mode="json")``-ed) as JSON on stdout."""
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


def handle_errors(fn: F) -> F:
    """Turn notifykit errors into one line and the documented exit status.

    The group does the same for every command; this keeps a command correct when it is
    called on its own (``command.main()``).
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except NotifyKitError as exc:
            fail(describe_error(exc), exit_code_for(exc))

    return wrapper  # type: ignore[return-value]
