"""The hook specifications of notifykit, and the two markers plugins use.

Plugins import ``hookimpl`` from ``notifykit`` and implement any of these. notifykit calls
each implementation on its own, in pluggy's order (:func:`notifykit.plugins.call_each`), so
hook wrappers are refused; only ``on_event`` may be ``async def``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

    from notifykit.events import DeliveryReceipt, InboundMessage
    from notifykit.provider import SmsProvider
    from notifykit.sandbox import Sandbox

__all__ = ["hookimpl", "hookspec"]

hookspec = pluggy.HookspecMarker("notifykit")
hookimpl = pluggy.HookimplMarker("notifykit")


@hookspec
def register_providers(register: Callable[[type[SmsProvider[Any]]], None]) -> None:
    """Contribute provider types: the SmsProvider hook.

    :param register: call ``register(ProviderClass)`` once for each :class:`SmsProvider`
        subclass this plugin contributes. The core validates the class, records which
        distribution registered it, and refuses a type name registered twice.
    :returns: nothing; every implementation is called (not firstresult).
    """


@hookspec
def register_sandboxes(register: Callable[[type[Sandbox]], None]) -> None:
    """Contribute local stand-ins for vendors, run by ``notifykit sandbox <name>``.

    :param register: call ``register(SandboxClass)`` once for each :class:`Sandbox`
        subclass; its ``name`` becomes the CLI subcommand.
    :returns: nothing; every implementation is called (not firstresult).
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add commands to the ``notifykit`` command-line tool.

    :param cli: the top-level click group; call ``cli.command()`` or ``cli.add_command()``.
    :returns: nothing; every implementation is called (not firstresult).
    """


@hookspec
def on_event(event: DeliveryReceipt | InboundMessage) -> Awaitable[None] | None:
    """Observe every unified callback event, after it is stored.

    May be a coroutine function (``async def on_event(event)``): it is awaited on the
    notifier's event loop before the next implementation is called, so a slow observer
    delays the ones after it (hand long work to a task or queue of your own). The other
    hooks are called from synchronous code and must be plain functions.

    :param event: a :class:`DeliveryReceipt` or :class:`InboundMessage`, with
        ``message_id`` set once it is tied to its message. Called once per new event (a
        repeated push is not dispatched again). An exception is logged as
        ``plugin_hook_failed`` with its class only (never its message), and neither loses
        the event nor keeps it from the other implementations.
    :returns: nothing (or an awaitable of nothing); every implementation is called (not
        firstresult).
    """
