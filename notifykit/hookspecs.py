"""The hook specifications of notifykit, and the two markers plugins use.

Plugins import ``hookimpl`` from ``notifykit`` and implement any of these.
"""

from __future__ import annotations

from collections.abc import Callable
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
def on_event(event: DeliveryReceipt | InboundMessage) -> None:
    """Observe every unified callback event, after it is stored.

    :param event: a :class:`DeliveryReceipt` or :class:`InboundMessage`, with
        ``message_id`` set once it is tied to its message. Called once per new event (a
        repeated push is not dispatched again). An exception is logged and does not lose
        the event.
    :returns: nothing; every implementation is called (not firstresult).
    """
