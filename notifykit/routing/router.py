"""The router: one send, across the providers of its route, under the failover policy.

Order of one send:

1. the idempotency key, if any, is claimed (a repeat answers from the store, see
   :mod:`notifykit.routing.guard`);
2. the route is chosen (:mod:`notifykit.routing.rules`) and each instance on it is tried:
   declined or breaker-open instances are ``skipped`` attempts; a tried one is retried only
   per :mod:`notifykit.routing.retry`; its failure stops the send or moves on per
   :mod:`notifykit.routing.policy`; before each vendor call the record gets a ``started``
   attempt (the instance and the time: what a crash leaves as evidence, see
   :mod:`notifykit.recovery`), replaced by the try's outcome after it (skipped attempts,
   which make no request, are written with the next update);
3. the first vendor call's ``started`` attempt is written by the send's first write,
   :meth:`Store.start_send`: the message is recorded (``pending``, with a lease: the
   deadline plus the store timeout) and the recipient guard checked in that one write
   (``RecipientRateLimited`` locally, without a request; with ``[shared_state]`` the
   record is stored first, then the guard checked there, and the started attempt written
   on its own, as for every later call). A send that ends before any call (every instance
   declined or skipped, a cancellation) is recorded then, the guard deciding first. A
   plain send is two store writes: this one and its outcome.

Deadline (``routing.deadline``, from the start of ``send``): no try starts and no backoff
ends after it. A vendor call still running at the deadline is abandoned and recorded as
:class:`UnknownOutcome` (its request may have reached the vendor), which then stops or fails
over like any UnknownOutcome. When the deadline has passed before the next provider is
tried, the send stops and raises the last error (the one that sent it onwards), or
``ProviderUnavailable("deadline exceeded ...")`` when no provider was tried at all.

Once a provider has accepted, ``send`` returns the :class:`SendResult` whatever the store
does: a failed (or cancelled) write of the acceptance is logged and retried in the
background (:meth:`Router.drain` waits for it), never raised, since an error would invite a
second send (docs/routing.md, "When the store fails after a vendor accepted").

Final status: ``accepted`` (or what the provider reported) when one accepted; ``unknown``
when the send stopped on :class:`UnknownOutcome`; ``failed`` otherwise. The idempotency key
is given back on failure unless an attempt may have reached a vendor.
"""

from __future__ import annotations

import asyncio
import functools
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from notifykit.config import Config
from notifykit.errors import (
    AllProvidersFailed,
    ConfigError,
    InvalidMessage,
    NotifyKitError,
    ProviderError,
    ProviderUnavailable,
    RecipientRateLimited,
    StoreError,
    UnknownOutcome,
)
from notifykit.http import take_pool_wait_interrupted
from notifykit.log import get_logger
from notifykit.models import (
    Attempt,
    DeliveryStatus,
    MessageRecord,
    SendReceipt,
    SendResult,
    SmsMessage,
    StatusChange,
    utcnow,
)
from notifykit.provider import SmsProvider
from notifykit.routing.breaker import Admission, Breaker, CircuitBreaker, Clock
from notifykit.routing.deadline import DeadlineWatch
from notifykit.routing.guard import Idempotency, RecipientGuard, fingerprint_key
from notifykit.routing.policy import Decision, FailoverPolicy, breaker_effect
from notifykit.routing.retry import RetryPolicy
from notifykit.routing.rules import RouteTable
from notifykit.routing.run import SendRun
from notifykit.routing.shared_state import SharedState
from notifykit.store.base import Store

__all__ = ["Router", "new_message_id"]

log = get_logger("notifykit.routing")

LEASE_MARGIN = 5.0
"""Seconds added to a record's lease beyond the deadline and the store timeout."""

RECORD_RETRY_DELAYS = (0.1, 0.5, 2.0, 5.0)
"""Seconds before each background retry of a failed write recording an accepted send."""


def new_message_id() -> str:
    """A message id: a random UUID (version 4) as 32 lowercase hex digits.

    The standard library's, not a hand-rolled one: the bit-twiddled version saved about
    1 us a send (0.5 %), not worth a second definition of UUID4 (ledger: docs/benchmarks.md,
    "Issue 17")."""
    return uuid.uuid4().hex


class Router:
    """Sends one message through the providers its route names, recording every attempt.

    ``clock`` drives the circuit breakers (default ``time.monotonic``); ``rng`` draws the
    weighted order (default a fresh ``random.Random()``). Breaker state belongs to this
    router, unless ``[shared_state] url`` is set: then every instance shares it (and the
    recipient guard) through :mod:`notifykit.shared`, this router's own breakers being the
    fallback while that server is unreachable. Raises :class:`ConfigError` when the routing section names an instance that is
    not in ``providers`` or its weights are unusable.
    """

    def __init__(
        self,
        config: Config,
        providers: Mapping[str, SmsProvider[Any]],
        store: Store,
        *,
        clock: Clock = time.monotonic,
        rng: random.Random | None = None,
        shared_state: Callable[[Mapping[str, Breaker]], SharedState | None] | None = None,
    ) -> None:
        self.config = config
        self.providers = providers
        self.store = store
        routing = config.routing
        self.table = RouteTable(config, known=providers.keys())
        self.policy = FailoverPolicy.from_config(routing)
        self.retry = RetryPolicy.from_config(routing.retry)
        self.deadline = routing.deadline
        self.lease = timedelta(seconds=routing.deadline + config.store.timeout + LEASE_MARGIN)
        self.breakers: dict[str, Breaker] = {
            name: CircuitBreaker.from_config(routing.breaker, clock) for name in providers
        }
        self.shared: SharedState | None = None
        if config.shared_state.url is not None:
            if shared_state is None:
                raise ConfigError(
                    "shared_state.url is set: the router needs shared_state= (a callable "
                    "taking its breakers, such as notifykit.shared.open_shared_state bound "
                    "to the config and store; AsyncNotifier passes it)"
                )
            self.shared = shared_state(self.breakers)
        self.guard = RecipientGuard(store, routing.recipient_min_interval, shared=self.shared)
        self.idempotency = Idempotency(
            store,
            routing.idempotency_ttl,
            fingerprint_key(
                config.verify.secret, [providers[name].options for name in sorted(providers)]
            ),
        )
        self.rng = rng if rng is not None else random.Random()
        self.record_retry_delays: tuple[float, ...] = RECORD_RETRY_DELAYS
        """Seconds to wait before each retry of a failed write recording an acceptance."""
        self._recording: set[asyncio.Task[None]] = set()
        self._watch: DeadlineWatch | None = None

    def route(self, message: SmsMessage) -> list[str]:
        """The instances this message would be tried on, first to last (drawn anew per call
        for the weighted strategy)."""
        return self.table.select(message).order(self.rng)

    def health(self) -> dict[str, dict[str, Any]]:
        """Each instance's breaker: state, consecutive failures, reason, seconds until retry
        (and, with shared state, ``shared_state``: ``"redis"`` or why it is local now)."""
        shared = self.shared
        if shared is not None:
            return {name: shared.snapshot(name) for name in self.breakers}
        return {name: breaker.snapshot() for name, breaker in self.breakers.items()}

    async def close(self) -> None:
        """Release the shared state's connections."""
        if self.shared is not None:
            await self.shared.close()

    async def send(self, message: SmsMessage) -> SendResult:
        """Send ``message``; raise the error routing stopped on, or AllProvidersFailed.

        Every error raised carries ``.attempts``.
        """
        loop = asyncio.get_running_loop()
        # The provider sees the message with its id (a vendor reference field may carry it).
        # AsyncNotifier.send builds each message with a fresh id; a copy is made only for a
        # message handed to the router without one.
        if message.message_id is None:
            message = message.model_copy(update={"message_id": new_message_id()})
        assert message.message_id is not None
        run = SendRun(message, message.message_id, loop.time() + self.deadline)
        key = message.idempotency_key
        if key is not None:
            earlier = await self.idempotency.claim(message, run.message_id, run.deadline)
            if earlier is not None:
                return earlier
        try:
            return await self._deliver(run, loop)
        except BaseException:
            if key is not None and not run.maybe_accepted:
                await self.idempotency.release(key, run.message_id)
            raise

    async def _deliver(self, run: SendRun, loop: asyncio.AbstractEventLoop) -> SendResult:
        watch = self._watch
        if watch is None or watch.loop is not loop:
            # One per loop: a watch left on another loop keeps serving its own sends.
            watch = self._watch = DeadlineWatch(loop)
        watch.add(run)
        try:
            if self.guard.shared is not None and self.guard.interval:
                # The claim lives in shared state: the record is stored first, so that the
                # recovery sweep finds (and gives back) the claim of a send that dies here.
                await self._open(run, None, guard=False)
                await self.guard.check(run.message.to, run.message_id)
            order = self.route(run.message)
            if not order:
                raise ConfigError("routing: no provider instance is configured")
            for name in order:
                if loop.time() >= run.deadline:
                    raise run.last_error or ProviderUnavailable(
                        "deadline exceeded (routing.deadline) before any provider was tried"
                    )
                receipt = await self._visit(run, name)
                if receipt is not None:
                    return await self._accepted(run, name, receipt)
            if run.all_declined:
                raise InvalidMessage(
                    "no provider can take this message: " + "; ".join(run.declined)
                )
            raise AllProvidersFailed("every provider on the route failed or was skipped")
        except NotifyKitError as exc:
            if not run.stored:
                if isinstance(exc, StoreError):
                    raise  # the record could not be stored; no vendor call was made
                # No vendor call was made: the record is stored now, the store's recipient
                # guard deciding first (as it did before any routing).
                limited = await self._open(run, None)
                if limited is not None:
                    limited.attempts = []
                    await self._finish(run, limited)
                    raise limited from None
            exc.attempts = list(run.attempts)
            await self._finish(run, exc)
            raise
        except asyncio.CancelledError:
            if not run.stored:
                await self._open(run, None, guard=False)
            await self._finish(run, None)
            raise
        finally:
            if run.watch is not None:
                run.watch.discard(run)

    async def _open(
        self, run: SendRun, started: Attempt | None, *, guard: bool = True
    ) -> RecipientRateLimited | None:
        """The send's first write (:meth:`Store.start_send`): the record, ``pending``, with
        the attempts so far and ``started`` (the call about to be made), and the store's
        recipient guard when ``guard``. Returns the refusal when the guard refused (the
        record is then stored without attempts, and the run's attempts are dropped)."""
        now = utcnow()
        message = run.message
        attempts = list(run.attempts)
        if started is not None:
            attempts.append(started)
        record = MessageRecord(
            message_id=run.message_id,
            to=message.to,
            template=message.template,
            tags=message.tags,
            idempotency_key=message.idempotency_key,
            history=[StatusChange(status=DeliveryStatus.PENDING, at=now)],
            attempts=attempts,
            created_at=now,
            updated_at=now,
            lease_until=now + self.lease,
        )
        interval = self.guard.store_interval if guard else None
        wait = await self.store.start_send(record, recipient_interval=interval)
        run.stored = True
        if wait is None:
            return None
        run.attempts.clear()
        run.declined.clear()
        return self.guard.refusal(message.to, wait)

    async def _visit(self, run: SendRun, name: str) -> SendReceipt | None:
        """Try one instance; its receipt, None to go on, or raise to stop the send."""
        provider = self.providers[name]
        try:
            reason = provider.decline(run.message)
        except Exception as exc:  # a plugin bug must not escape as a foreign exception
            reason = f"decline() failed ({type(exc).__name__})"
        if reason is not None:
            run.skipped(name, reason, declined=True)
            return None
        breaker = self.breakers[name]
        shared = self.shared
        admission = breaker.admit() if shared is None else await shared.admit(name)
        if isinstance(admission, str):
            run.skipped(name, admission)
            return None
        opened_at = None
        if not run.stored:
            # The send's first call: its started attempt goes into the write that stores
            # the record (one write, not two).
            opened_at = utcnow()
            try:
                limited = await self._open(
                    run, Attempt(provider=name, outcome="started", started_at=opened_at)
                )
            except BaseException:
                self._release(name, breaker, admission)
                raise
            if limited is not None:
                self._release(name, breaker, admission)
                raise limited
        try:
            try:
                # The first try bare; the retry policy's closures only after a failure.
                return await self._try(run, name, provider, breaker, admission, opened_at)
            except Exception as first:
                loop = asyncio.get_running_loop()

                def may_retry() -> bool:
                    closed = breaker.is_closed() if shared is None else shared.is_closed(name)
                    return closed and loop.time() + self.retry.longest_wait < run.deadline

                return await self.retry.after_first(
                    first,
                    lambda: self._try(run, name, provider, breaker, admission),
                    may_retry=may_retry,
                )
        except StoreError:
            raise
        except NotifyKitError as exc:
            if self.policy.decide(exc) is Decision.STOP:
                raise
            return None

    async def _try(
        self,
        run: SendRun,
        name: str,
        provider: SmsProvider[Any],
        breaker: Breaker,
        admission: Admission,
        started_at: datetime | None = None,
    ) -> SendReceipt:
        """One request to one provider, recorded and reported to its breaker.

        ``started_at``: the started attempt is already stored (by the send's first write),
        with this time."""
        if started_at is None:
            started_at = utcnow()
            try:
                # Evidence before the call: a process killed during it leaves this attempt.
                await self.store.update_message(
                    run.message_id,
                    attempts=[
                        *run.attempts,
                        Attempt(provider=name, outcome="started", started_at=started_at),
                    ],
                )
            except BaseException:
                self._release(name, breaker, admission)
                raise
        started = time.perf_counter()
        timeout = None
        if run.watch is None or run.watch.loop.time() >= run.deadline:
            # Not watched (any more), or already late: asyncio's own timer, due at once.
            timeout = asyncio.timeout_at(run.deadline)
        try:
            if timeout is None:
                run.enter_call()
                try:
                    receipt = await provider.send(run.message)
                except BaseException as exc:
                    if run.leave_call(isinstance(exc, asyncio.CancelledError)):
                        raise TimeoutError from exc
                    raise
                run.leave_call(False)
            else:
                async with timeout:
                    receipt = await provider.send(run.message)
        except asyncio.CancelledError:
            self._release(name, breaker, admission)
            cancelled: ProviderError = UnknownOutcome(
                f"{name}: the send was cancelled while waiting for the vendor; "
                "it may have accepted the message",
                provider=name,
            )
            if take_pool_wait_interrupted():
                cancelled = ProviderUnavailable(
                    f"{name}: the send was cancelled while waiting for a free connection; "
                    "the request was never sent",
                    provider=name,
                )
            run.failed(name, cancelled, started, started_at)
            raise
        except Exception as exc:
            expired = run.call_expired if timeout is None else timeout.expired()
            if expired and take_pool_wait_interrupted():
                # Every pooled connection was busy until the deadline: nothing was sent,
                # and nothing about the vendor's health is known.
                self._release(name, breaker, admission)
                queued = ProviderUnavailable(
                    f"{name}: deadline exceeded (routing.deadline) while waiting for a free "
                    "connection (every pooled connection was busy); the request was never sent",
                    provider=name,
                )
                run.failed(name, queued, started, started_at)
                await self.store.update_message(run.message_id, attempts=run.attempts)
                raise queued from exc
            # Vendor text masked (secrets, numbers) before it is recorded, logged or raised.
            error = provider.redactor.error(
                self._translate(name, exc, expired=expired), content=run.message.params.values()
            )
            if self.shared is None:
                breaker.record(admission, breaker_effect(error), type(error).__name__)
            else:
                await self.shared.record(
                    name, admission, breaker_effect(error), type(error).__name__
                )
            run.failed(name, error, started, started_at)
            await self.store.update_message(run.message_id, attempts=run.attempts)
            if error is exc:
                raise
            raise error from exc
        if self.shared is None:
            breaker.record(admission, breaker_effect(None), "accepted")
        else:
            await self.shared.record(name, admission, breaker_effect(None), "accepted")
        run.accepted(name, started, started_at)
        # The receipt's ``raw`` is not redacted here: nothing of it is kept, logged or
        # returned (the record and the SendResult take its id, credits and status only).
        return receipt

    def _release(self, name: str, breaker: Breaker, admission: Admission) -> None:
        if self.shared is None:
            breaker.release(admission)
        else:
            self.shared.release(name, admission)

    @staticmethod
    def _translate(name: str, exc: Exception, *, expired: bool) -> NotifyKitError:
        if expired:
            return UnknownOutcome(
                f"{name}: deadline exceeded (routing.deadline) while waiting for the vendor; "
                "it may have accepted the message",
                provider=name,
            )
        if isinstance(exc, NotifyKitError):
            return exc
        return ProviderError(
            f"{name}: the provider failed unexpectedly ({type(exc).__name__})", provider=name
        )

    async def _accepted(self, run: SendRun, name: str, receipt: SendReceipt) -> SendResult:
        """Record the acceptance and return the result. A store that fails this write (or
        a cancellation during it) never turns the send into an error: the vendor has the
        message, and an error would invite a second send. The write is retried in the
        background instead (:attr:`record_retry_delays`; :meth:`drain` waits for it)."""
        attempts = list(run.attempts)  # the result's own copy is made by its model
        result = SendResult(
            message_id=run.message_id,
            provider=name,
            provider_message_id=receipt.provider_message_id,
            remaining_credits=receipt.remaining_credits,
            attempts=attempts,
        )
        write = functools.partial(
            self.store.update_message,
            run.message_id,
            attempts=attempts,
            status=receipt.status,
            provider=name,
            provider_message_id=receipt.provider_message_id,
            remaining_credits=receipt.remaining_credits,
        )
        try:
            await write()
        except asyncio.CancelledError:
            self._record_later(result, write, "CancelledError")
            raise
        except Exception as exc:  # a StoreError, or a store's bug: the answer stands
            self._record_later(result, write, type(exc).__name__)
        return result

    def _record_later(
        self, result: SendResult, write: Callable[[], Awaitable[object]], error_type: str
    ) -> None:
        log.error(
            "store_update_failed",
            message_id=result.message_id,
            provider=result.provider,
            error_type=error_type,
            retries=len(self.record_retry_delays),
        )
        task = asyncio.get_running_loop().create_task(self._retry_record(result, write))
        self._recording.add(task)
        task.add_done_callback(self._recording.discard)

    async def _retry_record(
        self, result: SendResult, write: Callable[[], Awaitable[object]]
    ) -> None:
        error_type = "none"
        for delay in self.record_retry_delays:
            await asyncio.sleep(delay)
            try:
                await write()
            except Exception as exc:
                error_type = type(exc).__name__
                continue
            log.info("store_update_recovered", message_id=result.message_id)
            return
        # Left for a human: the record stays as the store last had it (pending, or unknown
        # once swept), while the vendor has the message under this id.
        log.error(
            "store_update_lost",
            message_id=result.message_id,
            provider=result.provider,
            provider_message_id=result.provider_message_id,
            error_type=error_type,
        )

    async def drain(self) -> None:
        """Wait until every background retry of an accepted send's record has ended."""
        while self._recording:
            await asyncio.gather(*list(self._recording), return_exceptions=True)

    async def _finish(self, run: SendRun, exc: NotifyKitError | None) -> None:
        """Write the final status of a send that did not succeed (``exc`` None: cancelled).

        ``unknown`` whenever any attempt may have reached a vendor that took the message
        (an UnknownOutcome, even one followed by failover and other failures): ``failed``
        would claim that nothing went out."""
        stopped_unknown = isinstance(exc, UnknownOutcome) or run.maybe_accepted
        status = DeliveryStatus.UNKNOWN if stopped_unknown else DeliveryStatus.FAILED
        try:
            await self.store.update_message(run.message_id, attempts=run.attempts, status=status)
        except StoreError:
            if exc is None:
                raise
            log.error("store_update_failed", message_id=run.message_id, error_type="StoreError")
