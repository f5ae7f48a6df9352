"""The Veesing sandbox's settings, account state and the vendor's rules, without any I/O.

The rules are checked in this order, the first that fails decides the answer: credentials
(then a locked account, then the caller's IP), missing parameters, the template, the phone
format, the code's format, once a minute per number, a daily cap per number, the account's
daily cap, the balance. An accepted message costs one credit; a refused one costs nothing.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator

from notifykit.compare import constant_time_equal
from notifykit.sandbox import SandboxSettings, unique_number
from notifykit_veesing import messages as m

__all__ = [
    "FAULT_FIELDS",
    "Accepted",
    "SandboxState",
    "VeesingSandboxSettings",
    "balance_answer",
    "check_send",
    "failure",
]

VENDOR_ZONE = ZoneInfo("Asia/Shanghai")
"""The zone the vendor's days (daily caps) and push times are in."""

FAULT_FIELDS = ("latency", "error_rate", "hang_rate", "garbage_rate", "balance_after")

_PHONE = re.compile(r"1[3-9][0-9]{9}", re.ASCII)
_VARIABLES = re.compile(r"[0-9]{2,8}", re.ASCII)
_TEMPLATE_ID = re.compile(r"[0-9]{1,18}", re.ASCII)


class VeesingSandboxSettings(SandboxSettings):
    """Options of ``notifykit sandbox veesing``; each is also a field of the admin endpoint."""

    port: int = Field(default=8555, ge=0, le=65535, description="Port to listen on (0: any free).")
    app_id: str = Field(default="sandbox-app", min_length=1, description="The accepted appId.")
    app_key: str = Field(default="sandbox-key", min_length=1, description="The accepted appKey.")
    templates: list[str] = Field(
        default_factory=lambda: ["540", "611"], description="Approved template ids."
    )
    balance: int = Field(
        default=1000, ge=0, description="Credits at start; one per accepted message."
    )
    callback_url: str | None = Field(
        default=None, description="Where receipts and replies are POSTed (none: no pushes)."
    )
    receipt_delay: float = Field(
        default=0.2, ge=0.0, le=3600.0, description="Seconds from an accepted send to its receipt."
    )
    undelivered_rate: float = Field(
        default=0.0, ge=0.0, le=1.0, description="Share of receipts with status 0 (undelivered)."
    )
    reply_rate: float = Field(
        default=0.0, ge=0.0, le=1.0, description="Share of accepted messages that get a reply."
    )
    per_number_daily_cap: int = Field(
        default=5, ge=1, description="Accepted messages per number per day (Asia/Shanghai)."
    )
    account_daily_cap: int = Field(
        default=10000, ge=1, description="Accepted messages per day for the account."
    )
    per_number_interval: float = Field(
        default=60.0,
        ge=0.0,
        description="Seconds between two messages to one number (0: no limit).",
    )
    locked: bool = Field(default=False, description="Answer every request as a locked account.")
    allowed_ips: list[str] | None = Field(
        default=None, description="Caller addresses allowed (none: any); others get IP受限."
    )
    seed: int | None = Field(default=None, description="Random seed, for repeatable runs.")
    latency: float = Field(
        default=0.0, ge=0.0, le=60.0, description="Fault: seconds added before every answer."
    )
    error_rate: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="Fault: share of requests answered HTTP 500 (HTML).",
    )
    hang_rate: float = Field(
        default=0.0, ge=0.0, le=1.0, description="Fault: share of requests never answered."
    )
    garbage_rate: float = Field(
        default=0.0, ge=0.0, le=1.0, description="Fault: share answered 200 with a non-JSON body."
    )
    balance_after: int | None = Field(
        default=None,
        ge=0,
        description="Fault: the balance runs out after this many more accepted messages.",
    )

    @field_validator("templates", "allowed_ips", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("callback_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("callback_url must be an http:// or https:// URL")
        return value.strip()


@dataclass(frozen=True)
class Accepted:
    """A message the sandbox accepted."""

    task_id: str
    phone: str
    template_id: str
    variables: str
    at: datetime


@dataclass
class SandboxState:
    """What the sandbox remembers. Mutated under the sandbox's lock."""

    balance: int
    accepted: int = 0
    refused: int = 0
    requests: int = 0
    faults_injected: dict[str, int] = field(
        default_factory=lambda: {"error": 0, "hang": 0, "garbage": 0}
    )
    pushes_sent: int = 0
    pushes_failed: int = 0
    sent: list[Accepted] = field(default_factory=list)
    pushes: list[dict[str, str]] = field(default_factory=list)
    last_sent: dict[str, datetime] = field(default_factory=dict)
    per_number_day: dict[tuple[str, date], int] = field(default_factory=dict)
    per_day: dict[date, int] = field(default_factory=dict)

    @classmethod
    def start(cls, settings: VeesingSandboxSettings, rng: random.Random) -> SandboxState:
        state = cls(balance=settings.balance)
        if settings.balance_after is not None:
            state.balance = min(state.balance, settings.balance_after)
        return state


def failure(message: str) -> dict[str, Any]:
    """The document's failure shape."""
    return {
        "returnStatus": "0",
        "message": message,
        "remainPoint": None,
        "taskId": None,
        "successCounts": None,
    }


def _account_refusal(
    settings: VeesingSandboxSettings, params: dict[str, str], client_ip: str | None
) -> str | None:
    app_key_ok = constant_time_equal(params.get("appKey", ""), settings.app_key)
    if params.get("appId") != settings.app_id or not app_key_ok:
        return m.BAD_CREDENTIALS
    if settings.locked:
        return m.ACCOUNT_LOCKED
    if settings.allowed_ips is not None and client_ip not in settings.allowed_ips:
        return m.IP_RESTRICTED
    return None


def balance_answer(
    settings: VeesingSandboxSettings,
    state: SandboxState,
    params: dict[str, str],
    client_ip: str | None,
) -> dict[str, Any]:
    """The answer to ``/smsApi/verifyCode/getBalance``."""
    refusal = _account_refusal(settings, params, client_ip)
    if refusal is not None:
        return failure(refusal)
    return {
        "returnStatus": "1",
        "message": m.SUCCESS,
        "remainPoint": str(state.balance),
        "taskId": None,
        "successCounts": None,
    }


def _refusal(
    settings: VeesingSandboxSettings,
    state: SandboxState,
    params: dict[str, str],
    now: datetime,
    client_ip: str | None,
) -> str | None:
    """The first rule ``params`` breaks, as the vendor's message; None when it passes."""
    refusal = _account_refusal(settings, params, client_ip)
    if refusal is not None:
        return refusal
    phone = params.get("phone", "")
    template_id = params.get("templateId", "")
    variables = params.get("variables", "")
    if not (phone.strip() and template_id.strip() and variables.strip()):
        return m.MISSING_PARAMETER
    if not _TEMPLATE_ID.fullmatch(template_id):
        return m.BAD_TEMPLATE_ID
    if template_id not in settings.templates:
        return m.TEMPLATE_UNKNOWN
    if not _PHONE.fullmatch(phone):
        return m.BAD_PHONE
    if not _VARIABLES.fullmatch(variables):
        return m.BAD_PARAMETER
    last = state.last_sent.get(phone)
    if (
        last is not None
        and settings.per_number_interval > 0
        and (now - last).total_seconds() < settings.per_number_interval
    ):
        return m.NUMBER_PER_MINUTE
    today = now.astimezone(VENDOR_ZONE).date()
    if state.per_number_day.get((phone, today), 0) >= settings.per_number_daily_cap:
        return m.NUMBER_DAILY_CAP
    if state.per_day.get(today, 0) >= settings.account_daily_cap:
        return m.ACCOUNT_DAILY_CAP
    if state.balance <= 0:
        return m.INSUFFICIENT_BALANCE
    return None


def check_send(
    settings: VeesingSandboxSettings,
    state: SandboxState,
    params: dict[str, str],
    now: datetime,
    client_ip: str | None = None,
) -> tuple[dict[str, Any], Accepted | None]:
    """Apply the rules to one send; charge and record it when accepted.

    Returns the JSON answer, and what was accepted (None for a refusal).
    """
    refusal = _refusal(settings, state, params, now, client_ip)
    if refusal is not None:
        state.refused += 1
        return failure(refusal), None
    phone = params["phone"]
    today = now.astimezone(VENDOR_ZONE).date()
    state.balance -= 1
    state.accepted += 1
    state.last_sent[phone] = now
    state.per_number_day[(phone, today)] = state.per_number_day.get((phone, today), 0) + 1
    state.per_day[today] = state.per_day.get(today, 0) + 1
    task_id = str(unique_number())  # never one of an earlier run's, whatever the seed
    accepted = Accepted(
        task_id=task_id,
        phone=phone,
        template_id=params["templateId"],
        variables=params["variables"],
        at=now,
    )
    state.sent.append(accepted)
    answer = {
        "returnStatus": "1",
        "message": m.SUCCESS,
        "remainPoint": str(state.balance),
        "taskId": task_id,
        "successCounts": "1",
    }
    return answer, accepted
