"""The recipient guard and idempotency keys, both kept in the configured store.

Because both live in the store, they hold across processes that share one SQLite file;
``memory://`` keeps them private to one Notifier.

Idempotency: the first send with a key claims it (atomically, in the store) for
``routing.idempotency_ttl`` seconds. A repeat inside the TTL sends nothing and

* returns the first :class:`SendResult`, rebuilt from the stored record, when a provider
  accepted the first (whatever its delivery status is now);
* waits while the first is still in flight (its record ``pending`` or not yet written),
  polling the store, at most until the repeat's own deadline, then raises
  :class:`UnknownOutcome`;
* raises :class:`UnknownOutcome` when the first may have reached a vendor without a usable
  answer, so that nobody ever receives a second code;
* sends anew when the first failed without reaching any vendor (the first gives its key
  back when it fails; a key left behind by a process that died is taken back here);
* raises :class:`InvalidMessage` when the key was first used for a different message in
  any respect: number, template, parameters or tags.

A key is claimed with the message's fingerprint: an HMAC-SHA256 of its number, template,
parameters and tags, never the message itself (parameters may hold a verification code).
Its key is derived from ``[verify] secret`` when set, else from the provider instances'
secret options (every process of one deployment derives the same key), else it is drawn
per process. Each fingerprint names its key (a short id), and two fingerprints under
different keys are not compared: the number and template are still checked.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
from collections.abc import Iterable

from pydantic import BaseModel, SecretStr

from notifykit.compare import constant_time_equal
from notifykit.errors import InvalidMessage, RecipientRateLimited, UnknownOutcome
from notifykit.models import DeliveryStatus, MessageRecord, SendResult, SmsMessage
from notifykit.phone import mask_phone
from notifykit.routing.shared_state import SharedState
from notifykit.store.base import IdempotencyHolder, Store

__all__ = ["Idempotency", "RecipientGuard", "fingerprint_key"]

_POLL_FIRST = 0.005
_POLL_MAX = 0.1
_MAX_RECLAIMS = 5


class RecipientGuard:
    """``routing.recipient_min_interval``: one send per number per interval, across processes.

    The number is claimed (for the send's message id) before the first attempt and stays
    claimed for the interval even when the send then fails: holding it errs on the side of
    never sending one number two codes inside the interval. The one exception is a send
    whose process died before any vendor call: the recovery sweep gives its claim back.
    """

    def __init__(
        self, store: Store, interval: float | None, *, shared: SharedState | None = None
    ) -> None:
        self.store = store
        self.interval = interval
        self.shared = shared
        """With ``[shared_state]``: the claims live there (the store's guard is its fallback)."""

    @property
    def store_interval(self) -> float | None:
        """The interval to hand to :meth:`Store.start_send` (the claim made in the same
        write as the record), or None when there is no guard or it lives in shared state."""
        return self.interval if self.shared is None and self.interval else None

    async def check(self, phone: str, message_id: str | None = None) -> None:
        """Claim ``phone`` now (for ``message_id``), or raise :class:`RecipientRateLimited`
        without any request."""
        if not self.interval:
            return
        keeper = self.store if self.shared is None else self.shared
        wait = await keeper.check_recipient(phone, self.interval, message_id=message_id)
        if wait is not None:
            raise self.refusal(phone, wait)

    def refusal(self, phone: str, wait: float) -> RecipientRateLimited:
        """The error for a number claimed ``wait`` seconds too recently."""
        return RecipientRateLimited(
            f"recipient {mask_phone(phone)} was sent a message less than "
            f"{self.interval or 0:g} s ago (routing.recipient_min_interval); "
            f"try again in {wait:.1f} s"
        )


def fingerprint_key(verify_secret: SecretStr | None, options: Iterable[BaseModel]) -> bytes:
    """The key of idempotency fingerprints (32 bytes): from ``[verify] secret`` when set,
    else from the secret options (``SecretStr`` values) of ``options`` (the provider
    instances', in route-independent order), else random for this process."""
    label = b"notifykit idempotency fingerprint v1"
    if verify_secret is not None:
        return hmac.new(verify_secret.get_secret_value().encode(), label, hashlib.sha256).digest()
    material = [
        value.get_secret_value().encode()
        for model in options
        for name in sorted(type(model).model_fields)
        if isinstance(value := getattr(model, name, None), SecretStr)
    ]
    if material:
        return hmac.new(b"\0".join(material), label, hashlib.sha256).digest()
    return secrets.token_bytes(32)


class Idempotency:
    """Claims and releases idempotency keys, and answers repeats (see the module docstring)."""

    def __init__(self, store: Store, ttl: float, key: bytes | None = None) -> None:
        self.store = store
        self.ttl = ttl
        self._key = key if key is not None else secrets.token_bytes(32)
        self._key_id = hmac.new(self._key, b"key id", hashlib.sha256).hexdigest()[:8]

    def fingerprint(self, message: SmsMessage) -> str:
        """``<key id>:<HMAC-SHA256 hex>`` of the message's number, template, parameters and
        tags (tags as a set): equal for the same message, never revealing it."""
        canonical = json.dumps(
            [message.to, message.template, sorted(message.params.items()), sorted(message.tags)],
            ensure_ascii=False,
            separators=(",", ":"),
        )
        digest = hmac.new(self._key, canonical.encode(), hashlib.sha256).hexdigest()
        return f"{self._key_id}:{digest}"

    def _differs(self, held: IdempotencyHolder, fingerprint: str) -> bool:
        """True when the holder's message is provably not this one (same key, other hash)."""
        if held.fingerprint is None:
            return False
        theirs_id, _, theirs = held.fingerprint.partition(":")
        ours_id, _, ours = fingerprint.partition(":")
        return theirs_id == ours_id and not constant_time_equal(theirs, ours)

    async def claim(
        self, message: SmsMessage, message_id: str, deadline: float
    ) -> SendResult | None:
        """Claim the message's key for ``message_id``: None when this send owns it now, or
        the first send's result. ``deadline`` is on the event loop's clock. Raises
        InvalidMessage when the key holds a different message."""
        key = message.idempotency_key
        if key is None:
            return None
        fingerprint = self.fingerprint(message)
        for _ in range(_MAX_RECLAIMS):
            held = await self.store.claim_idempotency_key(
                key, message_id, self.ttl, fingerprint=fingerprint
            )
            if held is None or held.message_id == message_id:
                return None
            holder = held.message_id
            if self._differs(held, fingerprint):
                raise InvalidMessage(
                    f"idempotency key already used for a different message ({holder}): "
                    "its number, template, parameters or tags differ; "
                    "use a new key for a new message"
                )
            record = await self._settled(holder, deadline)
            if record is None or record.status is DeliveryStatus.PENDING:
                raise UnknownOutcome(
                    f"a send with this idempotency key (message {holder}) is still in "
                    "progress; its outcome is not known yet"
                )
            if record.to != message.to or record.template != message.template:
                raise InvalidMessage(
                    f"idempotency key already used for another message ({holder}); "
                    "use a new key for a new message"
                )
            if record.provider is not None:
                return SendResult(
                    message_id=record.message_id,
                    provider=record.provider,
                    provider_message_id=record.provider_message_id,
                    remaining_credits=record.remaining_credits,
                    attempts=list(record.attempts),
                    replayed=True,
                )
            if record.status is DeliveryStatus.UNKNOWN or any(
                a.error_type == UnknownOutcome.__name__ for a in record.attempts
            ):
                raise UnknownOutcome(
                    f"the first send with this idempotency key (message {holder}) may have "
                    "reached a vendor; not sending again",
                    attempts=record.attempts,
                )
            # The first failed before any vendor could have accepted it: take the key back
            # (a no-op when it already gave it up) and claim it for this send.
            await self.store.release_idempotency_key(key, holder)
        raise UnknownOutcome("idempotency key is contended by other sends; not sending")

    async def release(self, key: str, message_id: str) -> None:
        await self.store.release_idempotency_key(key, message_id)

    async def _settled(self, message_id: str, deadline: float) -> MessageRecord | None:
        """The holder's record once it has left ``pending``, or as it is at the deadline."""
        loop = asyncio.get_running_loop()
        delay = _POLL_FIRST
        while True:
            record = await self.store.get_message(message_id)
            if record is not None and record.status is not DeliveryStatus.PENDING:
                return record
            left = deadline - loop.time()
            if left <= 0:
                return record
            await asyncio.sleep(min(delay, left))
            delay = min(delay * 2, _POLL_MAX)
