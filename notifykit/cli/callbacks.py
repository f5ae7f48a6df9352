"""CLI commands: ``serve`` (the callback receiver), ``log`` (messages) and ``events``
(``--pending``: those no subscriber has seen yet).

``log`` and ``events`` read the configured store directly (``[store] url``); with the
per-process ``memory://`` store there is nothing to read, and they say so on stderr.
Human output masks phone numbers; ``--json`` prints one JSON array on stdout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
import uvicorn

from notifykit.cli.common import (
    EXIT_USAGE,
    config_option,
    describe_error,
    echo_json,
    echo_row,
    exit_code_for,
    fail,
    handle_errors,
    load,
)
from notifykit.config import Config, mask_url_password
from notifykit.errors import InvalidMessage
from notifykit.events import InboundMessage
from notifykit.inbox import receives_callbacks
from notifykit.models import DeliveryStatus, MessageRecord
from notifykit.phone import mask_phone, parse_phone
from notifykit.server import listening_socket
from notifykit.slow_clients import ACCEPT_BACKLOG, limited_protocol
from notifykit.store import QuarantineEntry, Store, open_store
from notifykit.store.base import AnyEvent

if TYPE_CHECKING:
    from starlette.applications import Starlette

__all__ = ["event_json", "message_json", "quarantine_json", "register"]

T = TypeVar("T")

_LONG_NUMBER = re.compile(r"\+?\d{7,}")


def register(cli: click.Group) -> None:
    """Add ``serve``, ``log`` and ``events`` to ``cli``."""
    cli.add_command(serve)
    cli.add_command(log_command)
    cli.add_command(events)


# -- serve ----------------------------------------------------------------------------------


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on (0: any free port, printed at start).",
)
@config_option
@handle_errors
def serve(host: str, port: int, config_path: str | None) -> None:
    """Run the callback receiver (POST /callbacks/<provider>, GET /healthz) with uvicorn."""
    # Imported here, not at the top: only this command needs Starlette.
    from notifykit.asgi import create_app

    config = load(config_path, fallback_warning=False)
    if config.source == Config.default().source:
        fail(
            "serve needs a configuration file naming the vendor instances whose receipts it "
            "receives and a store they are kept in: none found (no --config FILE; "
            f"$NOTIFYKIT_CONFIG is not set; no notifykit.toml in {Path.cwd()})",
            EXIT_USAGE,
        )
    if config.store.url == "memory://":
        click.echo(
            "Warning: [store] url is memory:// (the default): receipts and replies are kept "
            "only in this process and lost when it stops, and `notifykit log` / `events` "
            "elsewhere see none of them; set [store] url (docs/store.md)",
            err=True,
        )
    app = create_app(config)
    try:
        # IPPROTO_TCP, so that asyncio turns Nagle off on each connection (no 40 ms stall).
        sock = listening_socket(host, port)
        # Listening before the banner is printed: a client (or a script) that connects as
        # soon as it reads the banner is queued until uvicorn accepts, never refused.
        sock.listen(ACCEPT_BACKLOG)
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror}", EXIT_USAGE)
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if sock.family == socket.AF_INET6 else host

    def announce() -> None:
        route = "/callbacks/<provider>" + ("/<token>" if config.callbacks.token is not None else "")
        click.echo(f"notifykit receiver on http://{shown}:{bound}  (POST {route}, GET /healthz)")
        # Where to point each vendor (through the HTTPS proxy in front, docs/callbacks.md).
        secret = "/<token>" if config.callbacks.token is not None else ""
        for name, provider in app.state.notifier.providers.items():
            if receives_callbacks(provider):
                click.echo(
                    f"  push URL of {name} ({provider.name}): "
                    f"http://{shown}:{bound}/callbacks/{name}{secret}"
                )

    startup = _Startup(app, announce)
    # No access log: a request line holds the token.
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            lifespan="on",
            access_log=False,
            log_level="warning",
            # Slow clients: header and body timeouts, a connection cap (slow_clients.py).
            backlog=ACCEPT_BACKLOG,
            ws="none",  # the receiver never switches protocols (slow_clients.py counts HTTP)
            http=limited_protocol(
                header_timeout=config.callbacks.header_timeout,
                body_timeout=config.callbacks.body_timeout,
                max_connections=config.callbacks.max_connections,
            ),
        )
    )
    uvicorn_log = logging.getLogger("uvicorn.error")
    uvicorn_log.addFilter(startup.quiet_after_failure)  # after uvicorn.Config set its logging
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        # uvicorn stopped gracefully, then re-raised the signal: stopping is not a failure.
        click.echo("notifykit receiver stopped", err=True)
    except SystemExit:
        # uvicorn exits (status 3) when the app's startup failed: said as one line here.
        if startup.failure is None:
            raise
    finally:
        uvicorn_log.removeFilter(startup.quiet_after_failure)
        sock.close()
    if startup.failure is not None:
        fail(_startup_error(config, startup.failure), exit_code_for(startup.failure))


class _Startup:
    """The receiver's start as ``serve`` runs it: ``announce`` (the banner) is called only
    once the app's lifespan has opened the notifier (the store reached, its schema checked
    or migrated), so that nothing claims the receiver serves before it can store a push.

    When the start fails, the error is kept in ``failure`` for ``serve`` to say in one
    line, and uvicorn's own account of it (a traceback, then "Application startup failed")
    is left out of its log by :meth:`quiet_after_failure`.
    """

    def __init__(self, app: Starlette, announce: Callable[[], None]) -> None:
        self.failure: Exception | None = None
        self._announce = announce
        self._inner = app.router.lifespan_context
        app.router.lifespan_context = self._lifespan

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[Any]:
        started = False
        try:
            async with self._inner(app) as state:
                started = True
                self._announce()
                yield state
        except Exception as exc:
            if not started:
                self.failure = exc
            raise

    def quiet_after_failure(self, record: logging.LogRecord) -> bool:
        """A filter for the ``uvicorn.error`` logger: drops its error records once the start
        has failed (what they say is said once, by ``serve``)."""
        return self.failure is None or record.levelno < logging.ERROR


def _startup_error(config: Config, exc: Exception) -> str:
    """The one line for a failed start: what failed, naming the store (password masked)."""
    store = mask_url_password(config.store.url)
    said = describe_error(exc)
    where = "" if store in said else f" ([store] {store})"
    return f"the receiver cannot start{where}: {said}"


# -- log ------------------------------------------------------------------------------------


@click.command("log")
@click.option("--json", "as_json", is_flag=True, help="One JSON array on stdout.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Newest N messages.")
@click.option("--phone", default=None, help="Only messages to this number (any usual form).")
@click.option(
    "--status",
    type=click.Choice([s.value for s in DeliveryStatus]),
    default=None,
    help="Only messages in this status.",
)
@config_option
@handle_errors
def log_command(
    as_json: bool, limit: int | None, phone: str | None, status: str | None, config_path: str | None
) -> None:
    """Sent messages, newest first, with their status history and replies."""
    config = load(config_path, reading=True)
    number = _phone(phone) if phone is not None else None
    wanted = DeliveryStatus(status) if status is not None else None

    async def read(store: Store) -> list[tuple[MessageRecord, list[InboundMessage]]]:
        found = []
        for record in await store.list_messages(limit=limit, phone=number, status=wanted):
            replies = [
                e
                for e in await store.list_events(message_id=record.message_id)
                if isinstance(e, InboundMessage)
            ]
            found.append((record, sorted(replies, key=lambda e: e.occurred_at)))
        return found

    messages = _with_store(config, read)
    if as_json:
        echo_json([message_json(record, replies) for record, replies in messages])
        return
    if not messages:
        click.echo("No messages.")
    for record, replies in messages:
        via = f"{record.provider} {record.provider_message_id or ''}".strip()
        echo_row(
            f"{_when(record.created_at)}  {record.message_id}  {mask_phone(record.to)}  "
            f"{record.template}  {record.status.value}"
            + (f"  via {via}" if record.provider else "")
        )
        for line in _history_lines(record):
            click.echo(line)
        for reply in replies:
            echo_row(f"    {_when(reply.occurred_at)}  reply        {reply.text}", " " * 6)


def _history_lines(record: MessageRecord) -> list[str]:
    """A message's status changes (in stored order) and, for a ``pending`` or ``unknown``
    one, the vendor calls that may have reached a vendor (what a human needs to decide:
    where and when), each after the status changes made by the time it started (never
    before the first, the ``pending`` its send stored before calling; one without a start
    time last)."""
    lines = [f"{_when(c.at)}  {c.status.value:<11}  {c.source}" for c in record.history]
    if record.status in (DeliveryStatus.UNKNOWN, DeliveryStatus.PENDING):
        latest = datetime.max.replace(tzinfo=UTC)
        placed: list[tuple[int, datetime, str]] = []
        for attempt in record.attempts:
            if attempt.outcome == "started":
                said = "started, no outcome recorded: it may have reached the vendor"
            elif attempt.error_type == "UnknownOutcome":
                said = "outcome unknown (UnknownOutcome): the vendor may have accepted it"
            else:
                continue
            at = attempt.started_at
            after = (
                len(lines) if at is None else max(1, sum(1 for c in record.history if c.at <= at))
            )
            when = _when(at) if at is not None else "?"
            text = f"{when}  attempt      {attempt.provider} {said}"
            placed.append((after, latest if at is None else at, text))
        # Inserted from the last place back, so that earlier places stay where they were
        # (and calls at one place come in the order they started).
        for after, _, text in sorted(placed, key=lambda p: (p[0], p[1]), reverse=True):
            lines.insert(after, text)
    return [f"    {text}" for text in lines]


def message_json(record: MessageRecord, replies: list[InboundMessage]) -> dict[str, Any]:
    """A message for ``log --json``: the stored record plus its replies."""
    return {**record.model_dump(mode="json"), "replies": [event_json(e) for e in replies]}


def _phone(value: str) -> str:
    """The number as ``send`` reads it (:func:`parse_phone`), with the same errors."""
    try:
        return parse_phone(value)
    except InvalidMessage as exc:
        fail(f"--phone: {exc.message.removeprefix('to: ')}", EXIT_USAGE)


# -- events ---------------------------------------------------------------------------------


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON array on stdout.")
@click.option("--quarantine", is_flag=True, help="The requests the plugins could not parse.")
@click.option(
    "--pending",
    is_flag=True,
    help="Only events no subscriber has seen yet (oldest first), with who holds each.",
)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Newest N only.")
@config_option
@handle_errors
def events(
    as_json: bool, quarantine: bool, pending: bool, limit: int | None, config_path: str | None
) -> None:
    """Stored callback events, newest first (or the quarantined requests, or the pending)."""
    config = load(config_path, reading=True)
    if quarantine and pending:
        fail("--quarantine and --pending cannot be used together", EXIT_USAGE)
    if pending:
        _show_pending(config, as_json=as_json, limit=limit)
        return
    if quarantine:
        entries = _with_store(config, lambda store: store.list_quarantine(limit=limit))
        if as_json:
            echo_json([quarantine_json(entry) for entry in entries])
            return
        if not entries:
            click.echo("No quarantined requests.")
        for entry in entries:
            body = _LONG_NUMBER.sub(
                lambda m: mask_phone(m.group()), entry.body.decode("utf-8", errors="replace")
            )
            echo_row(f"{_when(entry.received_at)}  {entry.provider}  {entry.reason}")
            echo_row(f"    {len(entry.body)} bytes: {body[:200]!r}", " " * 6)
        return
    found = _with_store(config, lambda store: store.list_events(limit=limit))
    if as_json:
        echo_json([event_json(event) for event in found])
        return
    if not found:
        click.echo("No events.")
    for event in found:
        what = event.text if isinstance(event, InboundMessage) else event.status.value
        echo_row(
            f"{_when(event.received_at)}  {event.kind:<7}  {event.provider}  "
            f"{event.provider_message_id or '-'}  {mask_phone(event.phone)}  {what}  "
            f"message {event.message_id or '(not yet tied)'}"
        )


def _show_pending(config: Config, *, as_json: bool, limit: int | None) -> None:
    """``events --pending``: the events not dispatched yet, oldest first, each unclaimed
    (no process with observers has taken it), held (a dispatcher's lease runs), or free
    again (its dispatcher's lease ran out)."""
    found = _with_store(config, lambda store: store.list_undispatched(limit=limit))
    if as_json:
        echo_json(
            [
                {
                    **event_json(p.event),
                    "claimed_by": p.claimed_by,
                    "claimed_until": p.claimed_until.isoformat() if p.claimed_until else None,
                }
                for p in found
            ]
        )
        return
    if not found:
        click.echo("No pending events.")
    now = datetime.now(UTC)
    for p in found:
        if p.claimed_by is None or p.claimed_until is None:
            held = "unclaimed"
        elif p.claimed_until > now:
            held = f"claimed by {p.claimed_by} until {_when(p.claimed_until)}"
        else:
            held = f"free again (claim by {p.claimed_by} ran out {_when(p.claimed_until)})"
        event = p.event
        echo_row(
            f"{_when(event.received_at)}  {event.kind:<7}  {event.provider}  "
            f"{event.provider_message_id or '-'}  {mask_phone(event.phone)}  {held}"
        )


def event_json(event: AnyEvent) -> dict[str, Any]:
    """An event for ``events --json``: every field of the stored event."""
    return event.model_dump(mode="json")


def quarantine_json(entry: QuarantineEntry) -> dict[str, Any]:
    """A quarantined request for ``events --quarantine --json``; the raw body decoded as
    UTF-8, undecodable bytes replaced."""
    return {
        "received_at": entry.received_at.isoformat(),
        "provider": entry.provider,
        "reason": entry.reason,
        "method": entry.method,
        "path": entry.path,
        "headers": entry.headers,
        "body": entry.body.decode("utf-8", errors="replace"),
    }


# -- shared ---------------------------------------------------------------------------------


def _with_store(config: Config, read: Callable[[Store], Awaitable[T]]) -> T:
    if config.store.url == "memory://":
        click.echo(
            "note: [store] url is memory:// (kept per process): nothing is stored to show",
            err=True,
        )

    async def run() -> T:
        store = open_store(config.store)
        await store.open()
        try:
            return await read(store)
        finally:
            await store.close()

    return asyncio.run(run())


def _when(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
