"""``notifykit verify start`` and ``notifykit verify check``: verification codes from the shell.

Neither ever prints the code: ``start`` prints the verification, ``check`` the answer.
``check`` exits 0 only when the code was approved. Both need a store the two processes
share (``[store] url = "sqlite:///..."``): a ``memory://`` store ends with each command.
"""

from __future__ import annotations

import sys

import click
from pydantic import BaseModel

from notifykit.cli.common import (
    EXIT_FAILED,
    HelpGroup,
    config_option,
    describe_error,
    echo_json,
    exit_code_for,
    load,
    redact,
)
from notifykit.cli.core import _run, _stdout_to_stderr
from notifykit.errors import NotifyKitError, VerificationRateLimited
from notifykit.models import Attempt, VerificationCheckStatus
from notifykit.notifier import AsyncNotifier
from notifykit.phone import mask_phone
from notifykit.verify import Verification, VerificationCheck

__all__ = ["VerifyFailure", "register"]


class VerifyFailure(BaseModel):
    """``verify start --json`` / ``verify check --json`` when the command failed."""

    error_type: str
    error: str
    retry_after: float | None = None
    """Seconds to wait, for ``VerificationRateLimited``."""
    attempts: list[Attempt] = []


def _fail(exc: NotifyKitError, as_json: bool) -> None:
    if as_json:
        failure = VerifyFailure(
            error_type=type(exc).__name__,
            error=exc.message,
            retry_after=exc.retry_after if isinstance(exc, VerificationRateLimited) else None,
            attempts=exc.attempts,
        )
        echo_json(failure.model_dump(mode="json"))
    click.echo(f"Error: {redact(describe_error(exc))}", err=True)
    for attempt in exc.attempts:
        click.echo(f"  {redact(attempt.summary())}", err=True)
    sys.exit(exit_code_for(exc))


_purpose_option = click.option(
    "--purpose",
    default="default",
    show_default=True,
    help="What the code is for (login, reset...): each purpose has its own code and limits.",
)
_json_option = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")


@click.group("verify", cls=HelpGroup)
def verify_group() -> None:
    """Verification codes: send one, check one (docs/verify.md)."""


@verify_group.command("start")
@click.argument("phone")
@_purpose_option
@_json_option
@config_option
def start(phone: str, purpose: str, as_json: bool, config_path: str | None) -> None:
    """Send a verification code to PHONE (or the pending one's code again)."""
    config = load(config_path)

    async def go(notifier: AsyncNotifier) -> Verification:
        return await notifier.verify.start(phone, purpose=purpose)

    try:
        # A printing provider (console) shows the SMS, code included: never on our stdout.
        with _stdout_to_stderr(True):
            started = _run(go, config, open_store=True)
    except NotifyKitError as exc:
        _fail(exc, as_json)
        return
    if config.store.url == "memory://":
        # The verification ends with this command: a later `verify check` cannot find it.
        click.echo(
            "note: [store] url is memory:// (kept per process): `notifykit verify check` "
            "will not find this verification; use sqlite:///... (docs/verify.md)",
            err=True,
        )
    if as_json:
        echo_json(started.model_dump(mode="json"))
        return
    click.echo(
        f"Code sent to {mask_phone(started.to)} for {started.purpose!r} via {started.send.provider}"
    )
    click.echo(f"  verification id: {started.verification_id}")
    click.echo(f"  status:          {started.status.value}")
    click.echo(f"  sends:           {started.sends}")
    click.echo(f"  expires at:      {started.expires_at.isoformat()}")
    click.echo(f"  resend after:    {started.resend_after.isoformat()}")


@verify_group.command("check")
@click.argument("phone")
@click.argument("code")
@_purpose_option
@_json_option
@config_option
def check(phone: str, code: str, purpose: str, as_json: bool, config_path: str | None) -> None:
    """Check CODE for PHONE: exit 0 when approved, 1 otherwise."""
    config = load(config_path)

    async def go(notifier: AsyncNotifier) -> VerificationCheck:
        return await notifier.verify.check(phone, code, purpose=purpose)

    try:
        answer = _run(go, config, open_store=True)
    except NotifyKitError as exc:
        _fail(exc, as_json)
        return
    if as_json:
        echo_json(answer.model_dump(mode="json"))
    else:
        click.echo(f"{answer.status.value} (attempts left: {answer.attempts_left})")
    if answer.status is not VerificationCheckStatus.APPROVED:
        sys.exit(EXIT_FAILED)


def register(cli: click.Group) -> None:
    """Add ``verify`` to ``cli``."""
    cli.add_command(verify_group)
