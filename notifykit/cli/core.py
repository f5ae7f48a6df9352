"""CLI commands: ``send``, ``balance``, ``providers``, ``reconcile`` and ``config check``.

Human output masks phone numbers; ``--json`` prints ``model_dump(mode="json")`` of the
result on stdout, and keeps stdout for that document alone (a provider that prints, such
as ``console``, is sent to stderr meanwhile).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from decimal import Decimal
from typing import Any, TypeVar

import click
from pydantic import BaseModel

from notifykit.cli.common import (
    EXIT_FAILED,
    EXIT_USAGE,
    HelpGroup,
    columns,
    config_option,
    describe_error,
    echo_json,
    echo_row,
    exit_code_for,
    fail,
    load,
    redact,
    remember_secrets,
    secrets_of,
)
from notifykit.config import Config, parse_duration
from notifykit.config_check import describe_routes, instance_warnings, route_warnings
from notifykit.errors import InvalidMessage, NotifyKitError, NotSupported
from notifykit.models import Attempt, SendResult
from notifykit.notifier import AsyncNotifier
from notifykit.phone import mask_phone, parse_phone
from notifykit.reconcile import ReconcileReport

__all__ = ["BalanceRow", "ConfigReport", "ProvidersReport", "SendFailure", "register"]

T = TypeVar("T")


# -- JSON documents -------------------------------------------------------------------------


class SendFailure(BaseModel):
    """``send --json`` when the send failed."""

    error_type: str
    error: str
    attempts: list[Attempt]


class BalanceRow(BaseModel):
    """One instance in ``balance --json`` without a PROVIDER argument."""

    provider: str
    remaining: Decimal | None = None
    unit: str | None = None
    error_type: str | None = None
    error: str | None = None


class ProviderTypeInfo(BaseModel):
    name: str
    distribution: str
    cls: str


class InstanceInfo(BaseModel):
    name: str
    type: str
    health: dict[str, Any]
    details: dict[str, Any]


class ProvidersReport(BaseModel):
    """``providers --json``."""

    config: str | None
    types: list[ProviderTypeInfo]
    instances: list[InstanceInfo]


class ConfigReport(BaseModel):
    """What ``config check`` found (printed as text)."""

    source: str | None
    instances: dict[str, str]
    route: list[str]
    routes: list[str]
    """The routing in words: each rule in order, then the default route."""
    route_warnings: list[str]
    """Rules no message can reach (:func:`notifykit.config_check.route_warnings`)."""
    warnings: dict[str, list[str]]


# -- plumbing ---------------------------------------------------------------------------------


def _run(fn: Callable[[AsyncNotifier], Awaitable[T]], config: Config, *, open_store: bool) -> T:
    """Build a notifier, run ``fn`` with it on a fresh event loop, close it."""

    async def main() -> T:
        async with _notifier(config, open_store=open_store) as notifier:
            return await fn(notifier)

    return asyncio.run(main())


@contextlib.asynccontextmanager
async def _notifier(config: Config, *, open_store: bool) -> AsyncIterator[AsyncNotifier]:
    notifier = AsyncNotifier(config)
    remember_secrets(secrets_of(config, (p.options for p in notifier.providers.values())))
    try:
        if open_store:
            await notifier.open()
        yield notifier
    finally:
        await notifier.close()


@contextlib.contextmanager
def _stdout_to_stderr(active: bool) -> Iterator[None]:
    if not active:
        yield
        return
    with contextlib.redirect_stdout(sys.stderr):
        yield


def _parse_params(
    _ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
) -> dict[str, str]:
    params: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}")
        if key in params:
            raise click.BadParameter(f"parameter {key!r} given twice")
        params[key] = value
    return params


def _exit_with(exc: NotifyKitError, attempts: list[Attempt]) -> None:
    said = describe_error(exc)
    click.echo(f"Error: {redact(said)}", err=True)
    if isinstance(exc, InvalidMessage) and all(a.outcome == "skipped" for a in attempts):
        # "no provider can take this message: a: ...; b: ..." already gave each reason.
        attempts = []
    for attempt in attempts:
        if attempt.error_type and f"{attempt.error_type}: {attempt.error_message}" == said:
            # The error routing stopped on is the line above: said once, not twice.
            line = f"{attempt.provider}: {attempt.outcome} (the error above)"
            click.echo(f"  {line} in {attempt.duration_ms:.0f} ms", err=True)
            continue
        click.echo(f"  {redact(attempt.summary())}", err=True)
    sys.exit(exit_code_for(exc))


# -- commands ---------------------------------------------------------------------------------


@click.command()
@click.argument("phone")
@click.option("-t", "--template", required=True, help="Logical template name.")
@click.option(
    "-p",
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    callback=_parse_params,
    help="A template parameter; repeat for more.",
)
@click.option("--tag", "tags", multiple=True, help="A tag for routing rules; repeat for more.")
@click.option("--idempotency-key", default=None, help="Send at most once for this key.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@config_option
def send(
    phone: str,
    template: str,
    params: dict[str, str],
    tags: tuple[str, ...],
    idempotency_key: str | None,
    as_json: bool,
    config_path: str | None,
) -> None:
    """Send TEMPLATE with its parameters to PHONE (E.164, e.g. +8615612341090)."""
    config = load(config_path)

    async def go(notifier: AsyncNotifier) -> SendResult:
        return await notifier.send(
            phone, template=template, params=params, idempotency_key=idempotency_key, tags=tags
        )

    try:
        with _stdout_to_stderr(as_json):
            result = _run(go, config, open_store=True)
    except KeyboardInterrupt:
        # Ctrl-C: the send was cancelled, and its record says how far it got (an attempt
        # that had started is `unknown`: the vendor may have the message). Never retried.
        fail(
            "interrupted: the message may already have reached a provider, so do not send it "
            "again blindly; `notifykit log --status unknown` lists what needs checking",
            EXIT_FAILED,
        )
    except NotifyKitError as exc:
        if as_json:
            failure = SendFailure(
                error_type=type(exc).__name__, error=exc.message, attempts=exc.attempts
            )
            echo_json(failure.model_dump(mode="json"))
        _exit_with(exc, exc.attempts)
        return
    if as_json:
        echo_json(result.model_dump(mode="json"))
        return
    if result.replayed:
        # The key was used before: say so, or a repeat would read as a second SMS.
        click.echo(
            f"Already sent to {mask_phone(parse_phone(phone))} via {result.provider} "
            "(this idempotency key was used before: nothing sent now)"
        )
    else:
        click.echo(f"Sent to {mask_phone(parse_phone(phone))} via {result.provider}")
    click.echo(f"  message id:          {result.message_id}")
    click.echo(f"  provider message id: {result.provider_message_id or '-'}")
    if result.remaining_credits is not None:
        click.echo(f"  remaining credits:   {result.remaining_credits}")
    click.echo("  attempts:")
    for attempt in result.attempts:
        click.echo(f"    {attempt.summary()}")


@click.command()
@click.argument("provider", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@config_option
def balance(provider: str | None, as_json: bool, config_path: str | None) -> None:
    """What is left on PROVIDER's account (default: every configured instance)."""
    config = load(config_path)
    if provider is not None:
        one = _run(lambda n: n.balance(provider), config, open_store=False)
        if as_json:
            echo_json(one.model_dump(mode="json"))
        else:
            click.echo(f"{one.provider}: {one.remaining} {one.unit}")
        return

    async def every(notifier: AsyncNotifier) -> list[BalanceRow]:
        rows = []
        for name in notifier.providers:
            try:
                found = await notifier.balance(name)
            except NotifyKitError as exc:
                rows.append(
                    BalanceRow(provider=name, error_type=type(exc).__name__, error=exc.message)
                )
            else:
                rows.append(BalanceRow(provider=name, remaining=found.remaining, unit=found.unit))
        return rows

    rows = _run(every, config, open_store=False)
    if as_json:
        echo_json([row.model_dump(mode="json") for row in rows])
    else:
        width = max((len(row.provider) for row in rows), default=0)
        for row in rows:
            if row.remaining is not None:
                text = f"{row.remaining} {row.unit}"
            elif row.error_type == NotSupported.__name__:
                text = "n/a (no balance query)"
            else:
                text = f"failed: {row.error_type}: {row.error}"
            click.echo(redact(f"{row.provider:<{width}}  {text}"))
    # An instance without a balance query is not a failure; one whose query failed is.
    if any(row.error_type not in (None, NotSupported.__name__) for row in rows):
        sys.exit(EXIT_FAILED)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the listing as JSON.")
@config_option
def providers(as_json: bool, config_path: str | None) -> None:
    """The installed provider types and the configured instances with their health."""
    config = load(config_path)

    async def survey(notifier: AsyncNotifier) -> ProvidersReport:
        health = await notifier.health()
        return ProvidersReport(
            config=config.source,
            types=[
                ProviderTypeInfo(
                    name=name,
                    distribution=reg.distribution,
                    cls=f"{reg.cls.__module__}.{reg.cls.__qualname__}",
                )
                for name, reg in notifier.provider_types.items()
            ],
            instances=[
                InstanceInfo(
                    name=name,
                    type=provider.name,
                    health=health.get(name, {}),
                    details=provider.describe(),
                )
                for name, provider in notifier.providers.items()
            ],
        )

    report = _run(survey, config, open_store=False)
    if as_json:
        echo_json(report.model_dump(mode="json"))
        return
    click.echo("Provider types:")
    for line in columns((t.name, t.distribution, f"({t.cls})") for t in report.types):
        echo_row(line, " " * 4)
    click.echo(f"Instances ({report.config or 'built-in default'}):")
    rows = []
    for inst in report.instances:
        state = inst.health.get("state", "unknown")
        extra = f" ({inst.health['reason']})" if inst.health.get("reason") else ""
        rows.append((inst.name, f"type={inst.type}", f"breaker={state}{extra}"))
    for line in columns(rows):
        echo_row(redact(line), " " * 4)


@click.group("config", cls=HelpGroup)
def config_group() -> None:
    """Inspect the configuration."""


@config_group.command("check")
@config_option
def config_check(config_path: str | None) -> None:
    """Validate the configuration and build every provider instance (exit 2 on error)."""
    config = load(config_path)

    async def inspect(notifier: AsyncNotifier) -> ConfigReport:
        return ConfigReport(
            source=config.source,
            instances={name: p.name for name, p in notifier.providers.items()},
            route=config.default_route(),
            routes=describe_routes(config),
            route_warnings=route_warnings(config),
            warnings=instance_warnings(config, notifier.providers),
        )

    report = _run(inspect, config, open_store=False)
    if not report.instances:
        fail(f"{report.source}: no [providers.<name>] section", EXIT_USAGE)
    click.echo(f"Configuration OK: {report.source or 'built-in default'}")
    click.echo("Routes:")
    for line in report.routes:
        click.echo(f"  {line}")
    for warning in report.route_warnings:
        echo_row(f"  warning: {warning}", " " * 4)
    click.echo("Instances:")
    for name, type_name in report.instances.items():
        click.echo(f"  {name} ({type_name})")
        for warning in report.warnings[name]:
            echo_row(redact(f"    warning: {warning}"), " " * 6)


class Duration(click.ParamType[float]):
    """A duration as the configuration reads one (``notifykit.config.parse_duration``):
    seconds, or a number with ``ms``, ``s``, ``m``, ``h`` or ``d``."""

    name = "DURATION"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        try:
            return parse_duration(value)
        except ValueError:
            self.fail(f"{value!r} is not a duration (e.g. 90s, 5m, 2h, 1d)", param, ctx)


@click.command()
@click.option(
    "--older-than",
    type=Duration(),
    default="5m",
    show_default=True,
    help="Only messages sent at least this long ago (90s, 5m, 2h, 1d).",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Ask about at most this many messages, oldest first.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@config_option
def reconcile(older_than: float, limit: int, as_json: bool, config_path: str | None) -> None:
    """Ask vendors about sent messages that still have no final status (exit 1 when a
    query failed)."""
    config = load(config_path)
    report: ReconcileReport = _run(
        lambda n: n.reconcile(older_than, limit=limit), config, open_store=True
    )
    if as_json:
        echo_json(report.model_dump(mode="json"))
    else:
        click.echo(
            f"Reconciled: {report.checked} asked, {report.events} new events, "
            f"{report.failed} failed (messages older than {report.older_than:g} s)"
        )
        for name, row in report.providers.items():
            text = f"  {name}: {row.checked} asked, {row.events} new events"
            if row.failed:
                text += f", {row.failed} failed"
            if row.skipped:
                text += f", {row.skipped} skipped"
            if row.reason:
                text += f" ({row.reason})"
            click.echo(redact(text))
    if report.failed:
        sys.exit(EXIT_FAILED)


def register(cli: click.Group) -> None:
    """Add this module's commands to ``cli``."""
    cli.add_command(send)
    cli.add_command(reconcile)
    cli.add_command(balance)
    cli.add_command(providers)
    cli.add_command(config_group)
