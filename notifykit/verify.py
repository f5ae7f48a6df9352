"""Verification codes: ``notifier.verify.start``, ``check`` and ``cancel`` (docs/verify.md).

A code is derived with HMAC-SHA256 from ``[verify] secret`` and a random seed made by
:mod:`secrets` for the verification, uniform over every ``code_length``-digit string
(rejection sampling, :func:`uniform_below`). The store keeps the seed (so that a resend
repeats the code) and a keyed hash of the code (to check against): neither reveals or tests
a code without the secret. The code is never stored, logged, put in an exception or a repr;
it leaves the process only in the SMS.

Every step is one atomic store operation (:class:`~notifykit.store.base.Store`'s
verification methods), so the rules hold across processes sharing the store: attempts are
counted once, a code approves once, one SMS per ``resend_interval``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pydantic import BaseModel

from notifykit.config import VerifyConfig
from notifykit.errors import (
    ConfigError,
    InvalidMessage,
    NotifyKitError,
    ProviderError,
    StoreError,
    UnknownOutcome,
    VerificationRateLimited,
)
from notifykit.log import get_logger
from notifykit.models import (
    SendResult,
    VerificationCheckStatus,
    VerificationRecord,
    VerificationStatus,
    masked_repr,
)
from notifykit.phone import mask_phone, parse_phone, region_of
from notifykit.store.base import Store, VerificationClaim

if TYPE_CHECKING:
    from notifykit.notifier import AsyncNotifier, Notifier

__all__ = [
    "CodeKeys",
    "SyncVerifier",
    "Verification",
    "VerificationCheck",
    "VerificationCheckStatus",
    "VerificationStatus",
    "Verifier",
    "derive_code",
    "uniform_below",
]

log = get_logger("notifykit.verify")

Clock = Callable[[], float]
"""Seconds since the epoch (``time.time``)."""

SEED_BYTES = 16
"""Random bytes per verification: 128 bits, from :func:`secrets.token_bytes`."""
TAG = "verify"
"""Every verification SMS carries this tag and ``verify:<purpose>`` (routing rules can pick
vendors for codes with ``tags = ["verify"]``; the testing kit finds codes by it)."""

_PURPOSE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_CODE_KEY_LABEL = b"notifykit/verify/code-key/v1"
_CHECK_KEY_LABEL = b"notifykit/verify/check-key/v1"
_BLOCK_BITS = 64


def uniform_below(values: Iterator[int], n: int, bits: int) -> int:
    """A value uniform on ``[0, n)`` from ``values``, each uniform on ``[0, 2**bits)``.

    Rejection sampling: values at or above the largest multiple of ``n`` that fits in
    ``bits`` are skipped, so every residue has exactly the same number of preimages (no
    modulo bias). For ``n <= 10**8`` and 64-bit values a skip happens with probability under
    ``10**-11``. Raises ValueError when ``values`` runs out first.
    """
    span = 1 << bits
    if not 0 < n <= span:
        raise ValueError(f"n must be in 1..2**{bits}")
    limit = span - span % n
    for value in values:
        if value < limit:
            return value % n
    raise ValueError("ran out of random values")


def _blocks(key: bytes, seed: bytes) -> Iterator[int]:
    """64-bit integers from HMAC-SHA256(key, seed || counter), counter = 0, 1, ..."""
    counter = 0
    while True:
        digest = hmac.digest(key, seed + counter.to_bytes(4, "big"), hashlib.sha256)
        for i in range(0, len(digest), _BLOCK_BITS // 8):
            yield int.from_bytes(digest[i : i + _BLOCK_BITS // 8], "big")
        counter += 1


def derive_code(key: bytes, seed: bytes, length: int) -> str:
    """The ``length``-digit code (leading zeros kept) of ``seed`` under ``key``."""
    return f"{uniform_below(_blocks(key, seed), 10**length, _BLOCK_BITS):0{length}d}"


class CodeKeys:
    """The two keys derived from ``[verify] secret`` (HMAC-SHA256 of a fixed label each):
    one derives codes from seeds, one hashes a code to check it. The repr shows neither."""

    __slots__ = ("_check_key", "_code_key", "length")

    def __init__(self, secret: str, length: int) -> None:
        raw = secret.encode()
        self._code_key = hmac.digest(raw, _CODE_KEY_LABEL, hashlib.sha256)
        self._check_key = hmac.digest(raw, _CHECK_KEY_LABEL, hashlib.sha256)
        self.length = length

    def __repr__(self) -> str:
        return f"<CodeKeys length={self.length}>"

    def code(self, seed: bytes) -> str:
        return derive_code(self._code_key, seed, self.length)

    def code_hash(self, to: str, purpose: str, code: str) -> str:
        """HMAC-SHA256 over the number, purpose and code (hex): what the store keeps and
        compares. Bound to the number and purpose, keyed by the secret."""
        text = "\x00".join((to, purpose, code)).encode()
        return hmac.new(self._check_key, text, hashlib.sha256).hexdigest()


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class Verification(BaseModel):
    """One verification after ``start``.

    ``to`` is E.164; ``expires_at`` when its code stops being accepted; ``resend_after`` the
    earliest moment another ``start`` may send an SMS (UTC datetimes); ``sends`` the SMS
    this verification has cost, this one included; ``send`` the :class:`SendResult` of this
    SMS. Never holds the code.
    """

    verification_id: str
    to: str
    purpose: str
    status: VerificationStatus
    expires_at: datetime
    resend_after: datetime
    sends: int
    send: SendResult

    def __repr__(self) -> str:
        return masked_repr(self)

    __str__ = __repr__


class VerificationCheck(BaseModel):
    """The answer to ``check``: ``status``; ``attempts_left`` (``max_attempts`` minus the
    wrong guesses so far, 0 once none are left or nothing was found); ``verification_id``
    of the verification checked (None for ``not_found``)."""

    status: VerificationCheckStatus
    attempts_left: int
    verification_id: str | None = None

    @property
    def approved(self) -> bool:
        return self.status is VerificationCheckStatus.APPROVED


def _may_have_arrived(exc: BaseException) -> bool:
    """Whether a failed send may still have put the code in the user's hands: an
    UnknownOutcome anywhere on the route, an accepted attempt, a cancellation or an error we
    cannot read (counted as sent: never reset the interval on a code that may be out)."""
    if isinstance(exc, UnknownOutcome):
        return True
    if not isinstance(exc, NotifyKitError):
        return True
    return any(
        a.outcome == "accepted" or a.error_type == UnknownOutcome.__name__ for a in exc.attempts
    )


def _scrub(exc: BaseException, code: str) -> None:
    """Blank ``code`` out of ``exc`` and its chain (a vendor may echo a parameter)."""
    pattern = re.compile(rf"(?<![0-9]){code}(?![0-9])")

    def clean(text: str) -> str:
        return pattern.sub("*" * len(code), text)

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        current.args = tuple(clean(a) if isinstance(a, str) else a for a in current.args)
        if isinstance(current, NotifyKitError):
            current.message = clean(current.message)
            current.attempts = [
                a.model_copy(update={"error_message": clean(a.error_message)})
                if a.error_message
                else a
                for a in current.attempts
            ]
        if isinstance(current, ProviderError):
            if current.vendor_message:
                current.vendor_message = clean(current.vendor_message)
            if current.vendor_code:
                current.vendor_code = clean(current.vendor_code)
        current = current.__cause__ or current.__context__


class Verifier:
    """``AsyncNotifier.verify``: start, check and cancel verifications (docs/verify.md).

    ``clock`` gives seconds since the epoch (default ``time.time``); tests move it. Every
    method raises :class:`ConfigError` when ``[verify] secret`` is not set, and
    :class:`InvalidMessage` for bad input, before touching the store or any vendor.
    """

    def __init__(self, notifier: AsyncNotifier, *, clock: Clock = time.time) -> None:
        self._notifier = notifier
        self.clock = clock
        self._keys: CodeKeys | None = None

    def __repr__(self) -> str:
        return f"<Verifier code_length={self.settings.code_length}>"

    @property
    def settings(self) -> VerifyConfig:
        return self._notifier.config.verify

    @property
    def store(self) -> Store:
        return self._notifier.store

    def _ready(self) -> CodeKeys:
        if self._keys is None:
            secret = self.settings.secret
            if secret is None:
                raise ConfigError(
                    "verify.secret: required to use verification (see docs/verify.md)"
                )
            self._keys = CodeKeys(secret.get_secret_value(), self.settings.code_length)
        return self._keys

    def _target(self, to: str, purpose: str) -> tuple[str, str]:
        e164 = parse_phone(to)
        if not isinstance(purpose, str) or not _PURPOSE.fullmatch(purpose):
            raise InvalidMessage(
                "purpose: expected 1 to 64 letters, digits or . _ : - (e.g. 'login')"
            )
        return e164, purpose

    async def start(
        self, to: str, *, purpose: str = "default", template: str | None = None
    ) -> Verification:
        """Send a code to ``to`` for ``purpose`` (or send the pending one's code again).

        ``template`` replaces ``[verify] template`` for this SMS; the code goes in the
        parameter ``[verify] code_param``. The SMS goes through the router (routing,
        failover, deadline and breakers apply). Returns the :class:`Verification`.

        Raises, before any vendor request: :class:`InvalidMessage` for a bad number or
        purpose, or a number outside ``[verify] allowed_countries``;
        :class:`VerificationRateLimited` (``retry_after`` seconds) inside
        ``resend_interval`` of the last SMS to this number for this purpose, or once
        ``max_sends`` SMS went out for the pending verification. A send that fails raises
        its error (``AllProvidersFailed``, ``UnknownOutcome``...): the first SMS of a
        verification that no vendor accepted leaves it ``failed`` and charges no interval;
        a resend that no vendor accepted leaves the verification as it was; after an
        ``UnknownOutcome`` the code may have arrived and counts as sent.
        """
        keys = self._ready()
        settings = self.settings
        e164, purpose = self._target(to, purpose)
        template = settings.template if template is None else template
        if not isinstance(template, str) or not template.strip():
            raise InvalidMessage("template: a logical template name is required")
        allowed = settings.allowed_countries
        if allowed is not None and region_of(e164) not in allowed:
            raise InvalidMessage(
                f"to: {mask_phone(e164)} is outside verify.allowed_countries "
                f"({', '.join(allowed)}); no code was sent"
            )
        notifier = self._notifier
        notifier._check_open()
        await notifier.open()
        now = self.clock()
        seed = secrets.token_bytes(SEED_BYTES)
        new = VerificationRecord(
            verification_id=uuid.uuid4().hex,
            to=e164,
            purpose=purpose,
            code_hash=keys.code_hash(e164, purpose, keys.code(seed)),
            seed=seed.hex(),
            created_at=now,
            expires_at=now + settings.ttl,
            updated_at=now,
        )
        claim = await self.store.claim_verification_send(
            new, now=now, resend_interval=settings.resend_interval, max_sends=settings.max_sends
        )
        if claim.outcome == "limited" or claim.record is None or claim.claim_id is None:
            wait = max(0.0, claim.retry_after or 0.0)
            log.info("verification_rate_limited", to=e164, purpose=purpose, retry_after=wait)
            raise VerificationRateLimited(
                f"no code sent to {mask_phone(e164)} for {purpose!r}: resend rules "
                f"(verify.resend_interval, verify.max_sends); try again in {wait:.1f} s",
                retry_after=wait,
            )
        record = claim.record
        code = keys.code(bytes.fromhex(record.seed))
        try:
            result = await notifier.send(
                e164,
                template=template,
                params={settings.code_param: code},
                tags=(TAG, f"{TAG}:{purpose}"),
            )
        except BaseException as exc:
            _scrub(exc, code)
            sent = _may_have_arrived(exc)
            await self._finish(claim, record, sent=sent, now=now)
            log.warning(
                "verification_send_failed",
                verification_id=record.verification_id,
                to=e164,
                purpose=purpose,
                error_type=type(exc).__name__,
                counted_as_sent=sent,
            )
            raise
        del code
        stored = await self._finish(claim, record, sent=True, now=now)
        sends = stored.sends if stored is not None else record.sends + 1
        expires_at = stored.expires_at if stored is not None else now + settings.ttl
        resend_after = now + settings.resend_interval
        if sends >= settings.max_sends:
            resend_after = max(resend_after, expires_at)
        log.info(
            "verification_sent",
            verification_id=record.verification_id,
            to=e164,
            purpose=purpose,
            resend=claim.outcome == "resend",
            sends=sends,
        )
        return Verification(
            verification_id=record.verification_id,
            to=e164,
            purpose=purpose,
            status=stored.status if stored is not None else VerificationStatus.PENDING,
            expires_at=_utc(expires_at),
            resend_after=_utc(resend_after),
            sends=sends,
            send=result,
        )

    async def _finish(
        self,
        claim: VerificationClaim,
        record: VerificationRecord,
        *,
        sent: bool,
        now: float,
    ) -> VerificationRecord | None:
        """Record the send's end; shielded, so that a cancelled caller still records it.

        A store failure here is logged, not raised: after a vendor took the code the caller
        must not see a failure (it would start again and pay twice), and after a failed
        send the send's own error is the one to raise. The verification then stays as the
        claim left it (pending, interval charged): its code checks, and the next ``start``
        after the interval resends it."""
        assert claim.claim_id is not None
        finish = self.store.finish_verification_send(
            record.verification_id,
            claim.claim_id,
            sent=sent,
            now=self.clock(),
            expires_at=now + self.settings.ttl,
        )
        try:
            return await asyncio.shield(finish)
        except StoreError as exc:
            log.error(
                "verification_store_update_failed",
                verification_id=record.verification_id,
                error_type=type(exc).__name__,
            )
            return None

    async def check(self, to: str, code: str, *, purpose: str = "default") -> VerificationCheck:
        """Check ``code`` for ``to`` and ``purpose``: a :class:`VerificationCheck`.

        ``approved`` consumes the verification; each wrong code uses one attempt
        (``incorrect``), the one that uses the last answers ``max_attempts`` and locks it;
        ``expired`` past ``expires_at`` (checked first); ``not_found`` when nothing is
        pending. Raises :class:`InvalidMessage`, using no attempt, when ``code`` is not
        ``[verify] code_length`` ASCII digits (surrounding spaces are ignored).
        """
        keys = self._ready()
        e164, purpose = self._target(to, purpose)
        length = self.settings.code_length
        if not isinstance(code, str):
            raise InvalidMessage(f"code: expected a string of {length} digits")
        code = code.strip()
        if len(code) != length or not (code.isascii() and code.isdigit()):
            raise InvalidMessage(f"code: expected {length} digits (verify.code_length)")
        self._notifier._check_open()
        await self._notifier.open()
        max_attempts = self.settings.max_attempts
        step = await self.store.check_verification(
            e164,
            purpose,
            keys.code_hash(e164, purpose, code),
            now=self.clock(),
            max_attempts=max_attempts,
        )
        record = step.record
        status = step.status
        if status is VerificationCheckStatus.NOT_FOUND or record is None:
            answer = VerificationCheck(status=status, attempts_left=0)
        else:
            left = (
                0
                if status is VerificationCheckStatus.MAX_ATTEMPTS
                else max_attempts - record.attempts
            )
            answer = VerificationCheck(
                status=status,
                attempts_left=max(0, left),
                verification_id=record.verification_id,
            )
        log.info(
            "verification_checked",
            verification_id=answer.verification_id,
            to=e164,
            purpose=purpose,
            status=status.value,
            attempts_left=answer.attempts_left,
        )
        return answer

    async def cancel(self, to: str, *, purpose: str = "default") -> bool:
        """Cancel the pending verification of ``to`` for ``purpose``: True when one was
        pending (its code then gets ``not_found``), False when none was. The resend interval
        still counts from its last SMS."""
        self._ready()
        e164, purpose = self._target(to, purpose)
        self._notifier._check_open()
        await self._notifier.open()
        canceled = await self.store.cancel_verification(e164, purpose, now=self.clock())
        if canceled is not None:
            log.info(
                "verification_canceled",
                verification_id=canceled.verification_id,
                to=e164,
                purpose=purpose,
            )
        return canceled is not None


class SyncVerifier:
    """``Notifier.verify``: the synchronous twin of :class:`Verifier` (same arguments,
    results and errors)."""

    def __init__(self, notifier: Notifier) -> None:
        self._notifier = notifier

    def __repr__(self) -> str:
        return f"<SyncVerifier {self._notifier.async_notifier.verify!r}>"

    @property
    def clock(self) -> Clock:
        return self._notifier.async_notifier.verify.clock

    @clock.setter
    def clock(self, value: Clock) -> None:
        self._notifier.async_notifier.verify.clock = value

    def start(
        self, to: str, *, purpose: str = "default", template: str | None = None
    ) -> Verification:
        """See :meth:`Verifier.start`."""
        verify = self._notifier.async_notifier.verify
        return self._notifier._call(verify.start(to, purpose=purpose, template=template))

    def check(self, to: str, code: str, *, purpose: str = "default") -> VerificationCheck:
        """See :meth:`Verifier.check`."""
        verify = self._notifier.async_notifier.verify
        return self._notifier._call(verify.check(to, code, purpose=purpose))

    def cancel(self, to: str, *, purpose: str = "default") -> bool:
        """See :meth:`Verifier.cancel`."""
        verify = self._notifier.async_notifier.verify
        return self._notifier._call(verify.cancel(to, purpose=purpose))
