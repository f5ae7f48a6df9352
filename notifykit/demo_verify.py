"""The verification part of ``notifykit demo``: a code sent, a wrong guess, the right code,
a replay refused, a second start refused (docs/verify.md).

Kept apart from :mod:`notifykit.demo` so that the demo's sending part and this one can
change independently; the demo calls :func:`add_settings` on the configuration it writes and
:func:`show_verification` once its sends are done.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from notifykit.config import load_config
from notifykit.errors import NotifyKitError, VerificationRateLimited
from notifykit.notifier import AsyncNotifier
from notifykit.phone import mask_phone
from notifykit.verify import CodeKeys

__all__ = ["VerifyDemo", "add_settings", "demo_number", "show_verification"]


def demo_number() -> str:
    """A number for one run's verification: one the sending part never uses (the sandboxes
    allow one SMS a minute per number), and a fresh one each run, so that ``demo --keep DIR``
    run again into the same store is not refused by the first run's resend interval."""
    return f"+86156999{secrets.randbelow(10**5):05d}"


PURPOSE = "login"


@dataclass
class VerifyDemo:
    """What the demo's verification saw: each step and its answer."""

    phone: str = ""
    """The number the code went to (:func:`demo_number`)."""
    provider: str | None = None
    answers: dict[str, str] = field(default_factory=dict)
    error: str | None = None

    @property
    def as_expected(self) -> bool:
        return self.answers == {
            "wrong guess": "incorrect",
            "right code": "approved",
            "replay": "not_found",
            "start again": "VerificationRateLimited",
        }


def add_settings(config_path: Path) -> None:
    """Append a ``[verify]`` section with a fresh random secret to the demo's configuration."""
    secret = secrets.token_urlsafe(24)
    with config_path.open("a", encoding="utf-8") as out:
        out.write(f'\n[verify]\nsecret = "${{NOTIFYKIT_DEMO_VERIFY_SECRET:-{secret}}}"\n')


async def show_verification(config_path: Path, echo: Callable[[str], None]) -> VerifyDemo:
    """Run the verification steps through the demo's healthy backup and narrate them.

    The demo stands in for the user's phone: it reads the code the SMS carried from the
    stored seed, with the secret of the configuration (whoever holds the secret can do
    this, which is why it is kept like a credential). It never prints the code.
    """
    config = load_config(config_path)
    # Only the backup: by now the primary is out of credit and hanging (its breaker open).
    routing = config.routing.model_copy(update={"providers": ["backup"], "rules": []})
    config = config.model_copy(update={"routing": routing})
    seen = VerifyDemo(phone=demo_number())
    phone = seen.phone
    echo("")
    echo("Verification codes (notifier.verify):")
    async with AsyncNotifier(config) as notifier:
        try:
            started = await notifier.verify.start(phone, purpose=PURPOSE)
        except NotifyKitError as exc:
            seen.error = f"{type(exc).__name__}: {exc.message}"
            echo(f"  start failed: {seen.error}")
            return seen
        seen.provider = started.send.provider
        echo(
            f"  code sent to {mask_phone(phone)} for {PURPOSE!r} via {seen.provider}; "
            f"expires {started.expires_at:%H:%M:%S} UTC"
        )
        record = await notifier.store.get_verification(started.verification_id)
        assert record is not None and config.verify.secret is not None
        keys = CodeKeys(config.verify.secret.get_secret_value(), config.verify.code_length)
        code = keys.code(bytes.fromhex(record.seed))  # what the user's phone shows
        wrong = "".join(str((int(d) + 1) % 10) for d in code)
        for step, guess in (("wrong guess", wrong), ("right code", code), ("replay", code)):
            answer = await notifier.verify.check(phone, guess, purpose=PURPOSE)
            seen.answers[step] = answer.status.value
            left = f", {answer.attempts_left} attempts left" if answer.attempts_left else ""
            note = {"replay": " (a code approves once)"}.get(step, "")
            echo(f"  {step + ':':<13} {answer.status.value}{left}{note}")
        try:
            await notifier.verify.start(phone, purpose=PURPOSE)
            seen.answers["start again"] = "sent"
        except VerificationRateLimited as exc:
            seen.answers["start again"] = type(exc).__name__
            echo(
                f"  {'start again:':<13} refused, no SMS sent (VerificationRateLimited, "
                f"retry in {exc.retry_after:.0f} s)"
            )
    return seen
