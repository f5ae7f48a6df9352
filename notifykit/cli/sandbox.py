"""``notifykit sandbox <name>``: run a vendor's local stand-in, as contributed by plugins."""

from __future__ import annotations

import asyncio
import inspect
import re
import socket
import types
import typing
from typing import Any

import click
import uvicorn
from pydantic import ValidationError
from pydantic.fields import FieldInfo

from notifykit.cli.common import EXIT_USAGE, HelpGroup, fail
from notifykit.config import format_validation_error
from notifykit.errors import ConfigError
from notifykit.plugins import Registered, get_plugin_manager, sandbox_types
from notifykit.sandbox import Sandbox, SandboxSettings
from notifykit.server import listening_socket

__all__ = ["register", "settings_options"]


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """(inner type, is_list) for ``X``, ``X | None``, ``list[X]``, ``list[X] | None``."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        annotation = args[0] if len(args) == 1 else str
    if typing.get_origin(annotation) is list:
        return (typing.get_args(annotation) or (str,))[0], True
    return annotation, False


def _option(name: str, field: FieldInfo) -> click.Option:
    inner, is_list = _unwrap(field.annotation)
    flag = "--" + name.replace("_", "-")
    help_text = field.description or ""
    if inner is bool and not is_list:
        return click.Option(
            [f"{flag}/--no-{name.replace('_', '-')}", name], default=None, help=help_text
        )
    if is_list:
        help_text += " (comma-separated)"
        kind: Any = click.STRING
    else:
        kind = {int: click.INT, float: click.FLOAT}.get(inner, click.STRING)
    default = field.get_default(call_default_factory=True)
    if isinstance(default, list):
        default = ",".join(map(str, default))
    if default not in (None, ""):
        help_text += f"  [default: {default}]"
    return click.Option([flag, name], type=kind, default=None, help=help_text)


def settings_options(settings: type[SandboxSettings]) -> list[click.Option]:
    """One ``--kebab-case`` option per settings field."""
    return [_option(name, field) for name, field in settings.model_fields.items()]


def _settings_from(registered: Registered, values: dict[str, Any]) -> SandboxSettings:
    cls: type[Sandbox] = registered.cls
    given: dict[str, Any] = {}
    for name, value in values.items():
        if value is None:
            continue
        _, is_list = _unwrap(cls.Settings.model_fields[name].annotation)
        given[name] = (
            [part.strip() for part in value.split(",") if part.strip()] if is_list else value
        )
    try:
        return cls.Settings.model_validate(given)
    except ValidationError as exc:
        raise ConfigError(
            format_validation_error(exc, prefix=f"sandbox {registered.name}")
        ) from None


def _serve(registered: Registered, settings: SandboxSettings) -> None:
    try:
        sock = listening_socket(settings.host, settings.port)
    except OSError as exc:
        fail(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror}", EXIT_USAGE)
    sandbox: Sandbox = registered.cls(settings)
    server = uvicorn.Server(
        uvicorn.Config(sandbox.app(), log_level="warning", access_log=False, lifespan="auto")
    )

    async def run() -> None:
        try:
            await server.serve(sockets=[sock])
        finally:
            await sandbox.aclose()

    port = sock.getsockname()[1]
    shown = f"[{settings.host}]" if sock.family == socket.AF_INET6 else settings.host
    click.echo(f"{registered.name} sandbox on http://{shown}:{port} (Ctrl+C to stop)", err=True)
    _print_provider_config(sandbox, f"http://{_reachable(shown, sock.family)}:{port}")
    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        # uvicorn stopped gracefully, then re-raised the signal: stopping is not a failure.
        click.echo(f"{registered.name} sandbox stopped", err=True)
    finally:
        sock.close()


def _reachable(shown: str, family: socket.AddressFamily) -> str:
    """The host a client on this machine uses: a wildcard address is not one."""
    if shown in ("0.0.0.0", ""):
        return "127.0.0.1"
    if shown == "[::]":
        return "[::1]"
    return shown


_RECEIVER_INSTANCE = re.compile(r"/callbacks/([A-Za-z0-9_-]+)(?:[/?#]|$)")


def _instance_of(sandbox: Sandbox) -> str | None:
    """The provider instance a ``--callback-url`` of the receiver's form
    (``.../callbacks/<instance>[/<token>]``) pushes to: the snippet must name that one, or
    ``serve`` answers its pushes 404 (no such instance)."""
    url = getattr(sandbox.settings, "callback_url", None)
    found = _RECEIVER_INSTANCE.search(url) if isinstance(url, str) else None
    return found.group(1) if found else None


def _print_provider_config(sandbox: Sandbox, base_url: str) -> None:
    """How to point a provider at the sandbox: the plugin's ``notifykit.toml`` snippet, for
    the instance its pushes go to."""
    snippet = sandbox.provider_config(base_url, _instance_of(sandbox))
    if not snippet:
        return
    click.echo("Point a provider at it (in notifykit.toml):", err=True)
    for line in snippet.splitlines():
        click.echo(f"    {line}".rstrip(), err=True)


class SandboxGroup(HelpGroup):
    """Subcommands come from the ``register_sandboxes`` hook, loaded only when used."""

    def _types(self) -> dict[str, Registered]:
        try:
            return sandbox_types(get_plugin_manager())
        except ConfigError as exc:
            fail(exc.message, EXIT_USAGE)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self._types())

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        registered = self._types().get(cmd_name)
        if registered is None:
            return None

        def callback(**values: Any) -> None:
            try:
                settings = _settings_from(registered, values)
            except ConfigError as exc:
                fail(exc.message, EXIT_USAGE)
            _serve(registered, settings)

        first = " ".join(inspect.cleandoc(registered.cls.__doc__ or "").split("\n\n", 1)[0].split())
        return click.Command(
            cmd_name,
            params=list(settings_options(registered.cls.Settings)),
            callback=callback,
            help=f"{first or 'Run the sandbox.'} (from {registered.distribution})",
        )


def register(cli: click.Group) -> None:
    """Add ``sandbox`` to ``cli``."""
    cli.add_command(SandboxGroup("sandbox", help="Run a local stand-in for a vendor's API."))
