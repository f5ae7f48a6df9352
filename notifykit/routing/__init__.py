"""Routing and failover: which providers take a message, in what order, and when to stop.

Modules: :mod:`~notifykit.routing.rules` (route selection and strategies),
:mod:`~notifykit.routing.policy` (which errors fail over), :mod:`~notifykit.routing.retry`
(retrying one provider), :mod:`~notifykit.routing.breaker` (circuit breakers),
:mod:`~notifykit.routing.guard` (recipient guard and idempotency) and
:mod:`~notifykit.routing.router` (the :class:`Router` that ties them together).
"""

from __future__ import annotations

from notifykit.routing.breaker import Admission, Breaker, BreakerState, CircuitBreaker, Clock
from notifykit.routing.policy import BreakerEffect, Decision, FailoverPolicy
from notifykit.routing.retry import RetryPolicy
from notifykit.routing.router import Router
from notifykit.routing.rules import Route, RouteTable

__all__ = [
    "Admission",
    "Breaker",
    "BreakerEffect",
    "BreakerState",
    "CircuitBreaker",
    "Clock",
    "Decision",
    "FailoverPolicy",
    "RetryPolicy",
    "Route",
    "RouteTable",
    "Router",
]
