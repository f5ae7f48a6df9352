"""``notifykit demo``: the main job on the embedded default, with no account and no setup.

Starts a Veesing sandbox as the primary (it runs out of balance after a few sends and then
stops answering — its one request in flight then ends ``unknown`` and is never sent twice),
an Alibaba Cloud sandbox as the Chinese backup (another Veesing sandbox when the Alibaba
plugin is not installed), a Twilio sandbox for non-Chinese numbers when the Twilio plugin is
installed, and the callback receiver, all on free loopback ports; writes a configuration
with a SQLite store; sends verification codes through the router; waits for the pushed
receipts and replies, and fetches one receipt by polling (``reconcile``) for a message the
Alibaba sandbox was told not to push; prints what happened to each message.
"""

from __future__ import annotations

import asyncio
import secrets
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import httpx

from notifykit import demo_verify
from notifykit.config import load_config
from notifykit.demo_render import TABLE_WIDTH, Progress, table, wrap
from notifykit.demo_verify import VerifyDemo
from notifykit.errors import ConfigError, NotifyKitError, UnknownOutcome
from notifykit.events import InboundMessage
from notifykit.models import DeliveryStatus, MessageRecord
from notifykit.notifier import AsyncNotifier
from notifykit.phone import mask_phone
from notifykit.plugins import Registered, get_plugin_manager, provider_types, sandbox_types
from notifykit.server import ServerThread

__all__ = ["DemoOutcome", "DemoSettings", "run_demo"]

CN_COUNT = 20
INTL_NUMBERS = ("+14155550100", "+4915123456789", "+33612345678")
PRIMARY_BALANCE = 5
PRIMARY_DOWN_AFTER = 9
PACE = 0.15
"""Seconds between sends: login traffic, slow enough to see the cooldowns expire."""


@dataclass
class DemoSettings:
    count: int = CN_COUNT
    keep: Path | None = None
    receipt_timeout: float = 10.0
    echo: Callable[[str], None] = click.echo
    progress: bool = True
    pace: float = PACE


@dataclass
class Row:
    index: int
    phone: str
    message_id: str | None = None
    provider: str | None = None
    attempts: str = ""
    status: str = "failed"
    latency_ms: float = 0.0
    reply: str | None = None
    error: str | None = None
    reply_by_number: bool = False
    """The reply names no message (Alibaba's SmsUp): shown beside the message to its number."""
    route: list[str] = field(default_factory=list)
    """Each attempt in a few words, for the table: ``primary InsufficientBalance``,
    ``backup ok``."""
    accounted: bool = False
    """Its end is known: refused or failed before a vendor took it, never answered (an
    ``UnknownOutcome``, shown as such), or a final status from a receipt or by polling."""


@dataclass
class DemoOutcome:
    rows: list[Row] = field(default_factory=list)
    polled: int | None = None
    """The row whose receipt came by polling (``reconcile``), if any."""
    failovers: int = 0
    breaker_opened: list[str] = field(default_factory=list)
    receipts: int = 0
    replies: int = 0
    elapsed: float = 0.0
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    """When the run started (UTC): events received before it belong to earlier runs."""
    config_path: Path | None = None
    verification: VerifyDemo | None = None
    """The verification part (notifykit.demo_verify)."""

    @property
    def accounted(self) -> bool:
        """Every message's end is known (the exit status of ``notifykit demo``)."""
        return all(row.accounted for row in self.rows)


class _Deferred:
    """An ASGI app whose target is set after its socket is bound (ports come first)."""

    def __init__(self) -> None:
        self.app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


def _cn_numbers(count: int) -> list[str]:
    return [f"+86156{1000_0000 + 37 * i:08d}" for i in range(count)]


def _require(types: dict[str, Registered], name: str, what: str) -> Registered:
    if name not in types:
        raise ConfigError(
            f"notifykit demo needs the {name} plugin's {what}: pip install notifykit-{name} "
            f"(see the README's Quick start)"
        )
    return types[name]


def _write_config(
    path: Path,
    *,
    primary: str,
    backup: str,
    twilio: str | None,
    receiver: str,
    token: str,
    store: str,
    aliyun: bool = False,
) -> None:
    lines = [
        "# Written by `notifykit demo`: a Veesing primary and a Chinese backup, with failover.",
        "[providers.primary]",
        'type = "veesing"',
        'app_id = "demo-primary"',
        'app_key = "${NOTIFYKIT_DEMO_KEY:-demo-primary-key}"',
        f'base_url = "{primary}"',
        "timeout = 1.0",
        "",
    ]
    lines += (
        [
            "[providers.backup]",
            'type = "aliyun"',
            'access_key_id = "demo-aliyun-ak"',
            'access_key_secret = "${NOTIFYKIT_DEMO_ALIYUN_SECRET:-demo-aliyun-secret}"',
            'sign_name = "notifykit演示"',
            f'endpoint = "{backup}"',
            f'balance_endpoint = "{backup}"',
            "timeout = 1.0",
            "",
        ]
        if aliyun
        else [
            "[providers.backup]",
            'type = "veesing"',
            'app_id = "demo-backup"',
            'app_key = "${NOTIFYKIT_DEMO_KEY:-demo-backup-key}"',
            f'base_url = "{backup}"',
            "timeout = 1.0",
            "",
        ]
    )
    if twilio:
        lines += [
            "[providers.intl]",
            'type = "twilio"',
            'account_sid = "AC00000000000000000000000000000de0"',
            'auth_token = "${NOTIFYKIT_DEMO_TWILIO_TOKEN:-demo-twilio-token}"',
            'from_number = "+15005550006"',
            f'base_url = "{twilio}"',
            f'public_url = "{receiver}"',
            "timeout = 1.0",
            "",
        ]
    lines += [
        "[templates.verify_code.primary]",
        'template_id = "540"',
        "[templates.verify_code.backup]",
        'template_code = "SMS_15305001"' if aliyun else 'template_id = "611"',
        "",
    ]
    if twilio:
        lines += ["[templates.verify_code.intl]", 'body = "Your notifykit demo code is {code}"', ""]
    lines += [
        "[routing]",
        'providers = ["primary", "backup"]',
        "deadline = 10.0",
        "",
        "[routing.retry]",
        "attempts = 2",
        "",
        "[routing.breaker]",
        "failure_threshold = 2",
        "cooldown = 60.0",
        "account_cooldown = 1.0",
        "",
    ]
    if twilio:
        lines += [
            "[[routing.rules]]",
            'country = ["CN"]',
            'providers = ["primary", "backup"]',
            "",
            "[[routing.rules]]",
            'providers = ["intl"]',
            "",
        ]
    lines += [
        "[store]",
        # Relative to this file's folder (docs/configuration.md), so the kept folder can be
        # moved and `notifykit log --config DIR/notifykit.toml` works from anywhere.
        f'url = "sqlite:///{store}"',
        "",
        "[callbacks]",
        f'token = "{token}"',
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")
    path.chmod(0o600)  # it holds the callback token


@contextmanager
def _workdir(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    with tempfile.TemporaryDirectory(prefix="notifykit-demo-") as tmp:
        yield Path(tmp)


def run_demo(settings: DemoSettings) -> DemoOutcome:
    """Run the whole demo; returns what happened. Leaves nothing running."""
    # Imported here, not at the top: only this command needs Starlette.
    from notifykit.asgi import create_app

    echo = settings.echo
    pm = get_plugin_manager()
    sandboxes = sandbox_types(pm)
    providers = provider_types(pm)
    veesing = _require(sandboxes, "veesing", "sandbox")
    _require(providers, "veesing", "provider")
    twilio_sandbox = sandboxes.get("twilio") if "twilio" in providers else None
    aliyun_sandbox = sandboxes.get("aliyun") if "aliyun" in providers else None
    started = time.perf_counter()
    outcome = DemoOutcome()
    token = secrets.token_urlsafe(16)

    with _workdir(settings.keep) as workdir, ExitStack() as stack:
        receiver_app = _Deferred()
        receiver = ServerThread(receiver_app, lifespan="on")
        stack.callback(receiver.stop)
        base = receiver.url

        def veesing_box(
            instance: str, app_id: str, app_key: str, template: str, **extra: Any
        ) -> Any:
            box_settings = veesing.cls.Settings(
                app_id=app_id,
                app_key=app_key,
                templates=[template],
                callback_url=f"{base}/callbacks/{instance}/{token}",
                receipt_delay=0.1,
                undelivered_rate=0.1,
                reply_rate=0.2,
                seed=7,
                **extra,
            )
            return veesing.cls(box_settings)

        primary_box = veesing_box(
            "primary", "demo-primary", "demo-primary-key", "540", balance=PRIMARY_BALANCE
        )
        if aliyun_sandbox is not None:
            backup_box = aliyun_sandbox.cls(
                aliyun_sandbox.cls.Settings(
                    access_key_id="demo-aliyun-ak",
                    access_key_secret="demo-aliyun-secret",
                    sign_name=["notifykit演示"],
                    template_code=["SMS_15305001:code"],
                    callback_url=f"{base}/callbacks/backup/{token}",
                    receipt_delay=0.1,
                    undelivered_rate=0.1,
                    reply_rate=0.2,
                    push_retry_delays=[0.2, 0.5],
                    seed=7,
                )
            )
        else:
            backup_box = veesing_box("backup", "demo-backup", "demo-backup-key", "611")
        primary = ServerThread(primary_box.app(), lifespan="on")
        backup = ServerThread(backup_box.app(), lifespan="on")
        stack.callback(backup.stop)
        stack.callback(primary.stop)
        stack.callback(primary_box.release_hangs)  # runs first: nothing waits on a hang
        if aliyun_sandbox is not None:
            stack.callback(_close_sandbox, backup_box)  # before its server stops
        twilio_url = None
        if twilio_sandbox is not None:
            twilio_box = twilio_sandbox.cls(
                twilio_sandbox.cls.Settings(
                    account_sid="AC00000000000000000000000000000de0",
                    auth_token="demo-twilio-token",
                    status_delay=0.1,
                    seed=7,
                )
            )
            twilio_server = ServerThread(twilio_box.app(), lifespan="on")
            stack.callback(twilio_server.stop)
            twilio_url = twilio_server.url

        config_path = workdir / "notifykit.toml"
        _write_config(
            config_path,
            primary=primary.url,
            backup=backup.url,
            twilio=twilio_url,
            receiver=base,
            token=token,
            store="notifykit.sqlite3",
            aliyun=aliyun_sandbox is not None,
        )
        outcome.config_path = config_path
        demo_verify.add_settings(config_path)
        config = load_config(config_path)
        receiver_app.app = create_app(config)
        for server in (receiver, primary, backup):
            server.start()
        if twilio_url is not None:
            twilio_server.start()
        backup_kind = "aliyun" if aliyun_sandbox is not None else "veesing"
        boxes = [
            ("primary (veesing)", f"{primary.url}  balance {PRIMARY_BALANCE}"),
            (f"backup ({backup_kind})", backup.url),
        ] + ([("intl (twilio)", twilio_url)] if twilio_url else [])
        for n, (name, where) in enumerate(boxes):
            echo(f"{'Sandboxes:' if n == 0 else '':<11}{name:<19}{where}")
        echo(f"Receiver:  {base}/callbacks/<provider>/*** (token hidden)")
        echo(f"Config:    {config_path}")
        echo("")
        numbers = _cn_numbers(settings.count) + (list(INTL_NUMBERS) if twilio_url else [])
        poll = (
            _PollOne(backup.url, settings.count)
            if aliyun_sandbox is not None and settings.count > 1
            else None
        )
        asyncio.run(_send_all(config_path, numbers, primary, settings, outcome, poll))
        outcome.verification = asyncio.run(demo_verify.show_verification(config_path, echo))
        outcome.elapsed = time.perf_counter() - started
    return outcome


def _close_sandbox(sandbox: Any) -> None:
    # Pending pushes are cancelled on the sandbox's own loop (its server thread).
    asyncio.run(sandbox.aclose())


@dataclass
class _PollOne:
    """One message to the Alibaba backup whose receipt comes by polling: the sandbox is
    told to stop pushing just before it is sent, and ``reconcile`` fetches the receipt."""

    backup_url: str
    index: int

    async def before_send(self) -> None:
        async with httpx.AsyncClient() as admin:
            # Let the receipts of earlier messages go out first, then stop pushing.
            for _ in range(50):
                state = (await admin.get(f"{self.backup_url}/_sandbox/admin")).json()
                if state["accepted"] == state["reports_pushed"]:
                    break
                await asyncio.sleep(0.05)
            await admin.post(f"{self.backup_url}/_sandbox/admin", json={"callback_url": None})

    async def fetch(
        self, notifier: AsyncNotifier, row: Row, echo: Callable[[str], None], timeout: float
    ) -> bool:
        """Reconcile until the row's message is final; True when polling delivered it."""
        assert row.message_id is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            await asyncio.sleep(0.15)  # the sandbox's receipt delay
            await notifier.reconcile(0)
            record = await notifier.get_message(row.message_id)
            if record is not None and record.status.is_final:
                echo(
                    f"#{row.index} {mask_phone(row.phone)}: no push for this one (the backup "
                    "was told not to push); `notifykit reconcile` asked QuerySendDetails: "
                    f"{record.status.value}"
                )
                return True
        return False


async def _send_all(
    config_path: Path,
    numbers: list[str],
    primary: ServerThread,
    settings: DemoSettings,
    outcome: DemoOutcome,
    poll: _PollOne | None = None,
) -> None:
    echo = settings.echo
    async with AsyncNotifier(config_path) as notifier:
        last_state: dict[str, tuple[Any, Any]] = {}
        _breaker_changes(notifier, last_state, DemoOutcome())
        with Progress(len(numbers), enabled=settings.progress, echo=echo) as bar:
            for i, phone in enumerate(numbers, 1):
                if i == PRIMARY_DOWN_AFTER:
                    # Through the sandbox's admin endpoint, as a test would break a vendor.
                    async with httpx.AsyncClient() as admin:
                        await admin.post(f"{primary.url}/_sandbox/admin", json={"hang_rate": 1.0})
                    bar.note(f"#{i}: the primary sandbox stops answering from now on")
                if poll is not None and i == poll.index:
                    await poll.before_send()
                row = Row(index=i, phone=phone)
                t0 = time.perf_counter()
                try:
                    result = await notifier.send(
                        phone,
                        template="verify_code",
                        params={"code": f"{secrets.randbelow(10**6):06d}"},
                    )
                except UnknownOutcome as exc:
                    row.error = f"{type(exc).__name__}: {exc.message}"
                    row.attempts, row.route = _attempts(exc.attempts), _route(exc.attempts)
                    bar.note(
                        f"#{i} {mask_phone(phone)} {exc.provider} took the request and never "
                        "answered: it may have sent the code, so no second one goes out "
                        '(routing.on_unknown_outcome = "stop")',
                    )
                except NotifyKitError as exc:
                    row.error = f"{type(exc).__name__}: {exc.message}"
                    row.attempts, row.route = _attempts(exc.attempts), _route(exc.attempts)
                    bar.note(f"#{i} {mask_phone(phone)} failed: {row.error}")
                else:
                    row.message_id, row.provider = result.message_id, result.provider
                    row.attempts, row.route = _attempts(result.attempts), _route(result.attempts)
                    if len(result.attempts) > 1:
                        outcome.failovers += 1
                        bar.note(f"#{i} {mask_phone(phone)} failover: {row.attempts}")
                row.latency_ms = (time.perf_counter() - t0) * 1000
                outcome.rows.append(row)
                for text in _breaker_changes(notifier, last_state, outcome):
                    bar.note(f"#{i}: {text}")
                bar.advance()
                if i < len(numbers):
                    await asyncio.sleep(settings.pace)
        if poll is not None:
            row = outcome.rows[poll.index - 1]
            if row.provider == "backup" and await poll.fetch(notifier, row, bar.note, 5.0):
                outcome.polled = row.index
        await _wait_for_receipts(notifier, outcome, settings.receipt_timeout)


def _breaker_changes(
    notifier: AsyncNotifier, last: dict[str, tuple[Any, Any]], outcome: DemoOutcome
) -> list[str]:
    """What changed in each instance's breaker (state or reason) since the last call."""
    changes = []
    for name, health in notifier.router.health().items():
        now = (health.get("state"), health.get("reason"))
        before = last.get(name, (now[0], None) if name not in last else (None, None))
        if name in last and now != before:
            if now[0] == "open":
                outcome.breaker_opened.append(name)
            reason = f" ({now[1]})" if now[1] else ""
            if before[0] == now[0] == "open":
                changes.append(f"breaker of {name}: its probe failed, open again{reason}")
            else:
                changes.append(f"breaker of {name}: {before[0]} -> {now[0]}{reason}")
        last[name] = now
    return changes


def _attempts(attempts: list[Any]) -> str:
    marks = {"accepted": "ok", "failed": "failed", "skipped": "skipped"}
    return " -> ".join(
        f"{a.provider} {marks[a.outcome]}" + (f" ({a.error_type})" if a.error_type else "")
        for a in attempts
    )


def _route(attempts: list[Any]) -> list[str]:
    return [
        f"{a.provider} {a.error_type or 'failed'}"
        if a.outcome == "failed"
        else f"{a.provider} {'ok' if a.outcome == 'accepted' else a.outcome}"
        for a in attempts
    ]


async def _wait_for_receipts(notifier: AsyncNotifier, outcome: DemoOutcome, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    records: dict[str, MessageRecord] = {}
    while True:
        for row in outcome.rows:
            if row.message_id is None:
                continue
            record = await notifier.get_message(row.message_id)
            if record is not None:
                records[row.message_id] = record
        pending = [r for r in records.values() if not r.status.is_final]
        if not pending or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    # This run's events only: a kept folder's store also holds the earlier runs'. A reply
    # that names no message (Alibaba's SmsUp carries no BizId) is this run's when it came
    # from one of its numbers after it started.
    run_ids = {row.message_id for row in outcome.rows if row.message_id}
    phones = {row.phone for row in outcome.rows}
    events = [
        e
        for e in await notifier.store.list_events()
        if e.message_id in run_ids
        or (e.message_id is None and e.phone in phones and e.received_at >= outcome.started_at)
    ]
    replies = {e.message_id: e for e in events if isinstance(e, InboundMessage) and e.message_id}
    by_number = {
        e.phone: e for e in events if isinstance(e, InboundMessage) and e.message_id is None
    }
    outcome.replies = len([e for e in events if isinstance(e, InboundMessage)])
    outcome.receipts = len(events) - outcome.replies
    for row in outcome.rows:
        if row.message_id is None:
            row.status = (
                "failed" if row.error is None or "UnknownOutcome" not in row.error else "unknown"
            )
            row.accounted = True
            continue
        record = records.get(row.message_id)
        row.status = record.status.value if record is not None else DeliveryStatus.UNKNOWN.value
        row.accounted = record is not None and record.status.is_final
        reply = replies.get(row.message_id)
        if reply is not None:
            row.reply = reply.text
        elif row.phone in by_number and row.provider is not None:
            # Not tied by the vendor: shown beside the message to that number, and said so.
            row.reply = by_number[row.phone].text
            row.reply_by_number = True


def render(outcome: DemoOutcome, echo: Callable[[str], None] = click.echo) -> None:
    """The table and the summary, every line within :data:`TABLE_WIDTH` columns (a row's
    attempts and reply continue on lines aligned under their column)."""
    header = [
        ("#", 3, ">"),
        ("destination", 14, "<"),
        ("via", 7, "<"),
        ("status", 11, "<"),
        ("latency", 7, ">"),
        ("attempts", 0, "<"),
    ]
    rows = []
    for row in outcome.rows:
        values = [
            str(row.index),
            mask_phone(row.phone),
            row.provider or "-",
            row.status,
            f"{row.latency_ms:.0f} ms",
        ]
        parts = [part if n == 0 else f"-> {part}" for n, part in enumerate(row.route)]
        if row.reply:
            parts.append(f"reply{'*' if row.reply_by_number else ''}: {row.reply}")
        rows.append((values, parts))
    echo("")
    for line in table(header, rows):
        echo(line)
    counts: dict[str, int] = {}
    for row in outcome.rows:
        counts[row.status] = counts.get(row.status, 0) + 1
    by_provider: dict[str, int] = {}
    for row in outcome.rows:
        if row.provider:
            by_provider[row.provider] = by_provider.get(row.provider, 0) + 1
    polled = f"; #{outcome.polled}'s receipt by polling" if outcome.polled else ""

    lines = [
        f"{len(outcome.rows)} messages: "
        + ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        + f"; {outcome.elapsed:.1f} s",
        "  sent via:  "
        + (", ".join(f"{name} {n}" for name, n in sorted(by_provider.items())) or "-"),
        f"  failover:  {outcome.failovers} routed past a failing provider; "
        f"breaker opened {len(outcome.breaker_opened)}x",
        f"  callbacks: {outcome.receipts} receipts, {outcome.replies} replies{polled}",
    ]
    if any(row.reply_by_number for row in outcome.rows):
        lines.append("  reply*:    the vendor's reply names no message: shown by its number")
    echo("")
    for text in lines:
        for line in wrap(text, TABLE_WIDTH, indent="             "):
            echo(line)
