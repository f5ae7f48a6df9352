"""The router: one send, across the providers of its route, under the failover policy."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

from notifykit.config import Config
from notifykit.errors import (
    AllProvidersFailed,
    InvalidMessage,
    InvalidRecipient,
    NotifyKitError,
    ProviderError,
    RecipientRateLimited,
    UnknownOutcome,
)
from notifykit.log import get_logger
from notifykit.models import Attempt, DeliveryStatus, MessageRecord, SendResult, SmsMessage
from notifykit.provider import SmsProvider
from notifykit.store.base import Store

__all__ = ["Router"]

log = get_logger("notifykit.routing")


class Router:
    """Sends one message through the providers its route names, recording every attempt."""

    def __init__(
        self, config: Config, providers: Mapping[str, SmsProvider[Any]], store: Store
    ) -> None:
        self.config = config
        self.providers = providers
        self.store = store

    def route(self, message: SmsMessage) -> list[str]:
        return self.config.default_route()

    def health(self) -> dict[str, dict[str, Any]]:
        return {name: {"state": "closed"} for name in self.providers}

    async def send(self, message: SmsMessage) -> SendResult:
        message_id = uuid.uuid4().hex
        await self.store.create_message(
            MessageRecord(
                message_id=message_id,
                to=message.to,
                template=message.template,
                tags=message.tags,
                idempotency_key=message.idempotency_key,
            )
        )
        attempts: list[Attempt] = []
        declined: list[str] = []
        for name in self.route(message):
            provider = self.providers[name]
            reason = provider.decline(message)
            if reason is not None:
                attempts.append(Attempt(provider=name, outcome="skipped", error_message=reason))
                declined.append(f"{name}: {reason}")
                continue
            started = time.perf_counter()
            try:
                receipt = await provider.send(message)
            except ProviderError as exc:
                attempts.append(self._failed(name, exc, started))
                self._log(message_id, attempts[-1])
                await self.store.update_message(message_id, attempts=attempts)
                if isinstance(exc, InvalidRecipient | RecipientRateLimited | UnknownOutcome):
                    await self._finish_failed(message_id, attempts, exc)
                    exc.attempts = list(attempts)
                    raise
                continue
            attempts.append(Attempt(provider=name, outcome="accepted", duration_ms=_ms(started)))
            self._log(message_id, attempts[-1])
            await self.store.update_message(
                message_id,
                attempts=attempts,
                status=receipt.status,
                provider=name,
                provider_message_id=receipt.provider_message_id,
                remaining_credits=receipt.remaining_credits,
            )
            return SendResult(
                message_id=message_id,
                provider=name,
                provider_message_id=receipt.provider_message_id,
                remaining_credits=receipt.remaining_credits,
                attempts=attempts,
            )
        if declined and len(declined) == len(attempts):
            error: NotifyKitError = InvalidMessage(
                "no provider can take this message: " + "; ".join(declined)
            )
        else:
            error = AllProvidersFailed("every provider failed")
        await self._finish_failed(message_id, attempts, error)
        error.attempts = list(attempts)
        raise error

    async def _finish_failed(
        self, message_id: str, attempts: list[Attempt], exc: NotifyKitError
    ) -> None:
        status = (
            DeliveryStatus.UNKNOWN if isinstance(exc, UnknownOutcome) else DeliveryStatus.FAILED
        )
        await self.store.update_message(message_id, attempts=attempts, status=status)

    @staticmethod
    def _failed(name: str, exc: NotifyKitError, started: float) -> Attempt:
        return Attempt(
            provider=name,
            outcome="failed",
            error_type=type(exc).__name__,
            error_message=exc.message,
            duration_ms=_ms(started),
        )

    @staticmethod
    def _log(message_id: str, attempt: Attempt) -> None:
        log.info(
            "attempt",
            message_id=message_id,
            provider=attempt.provider,
            outcome=attempt.outcome,
            error_type=attempt.error_type,
            duration_ms=round(attempt.duration_ms, 2),
        )


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
