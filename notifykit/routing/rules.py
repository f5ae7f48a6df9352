"""Route selection: which provider instances take a message, and in what order.

``[[routing.rules]]`` are tried in file order and the first whose conditions all match
chooses the route; the default route (``routing.providers``) comes last. A rule matches when
each condition it sets matches: ``country`` (the destination's ISO 3166 region, from the
number), ``template`` (the logical template name) and ``tags`` (the message carries at
least one of them). A rule that sets no condition matches every message.

Strategies: ``priority`` keeps the listed order; ``weighted`` draws the order at random so
that each instance comes first with probability ``weight / sum(weights)``, and the rest
follow in a weighted order of their own, so failover still reaches every instance. An
instance on the route without a positive weight is a fallback only: it comes after every
weighted one, in listed order. A rule without ``strategy`` or ``weights`` inherits those
of ``[routing]``.

Everything is checked once, when the table is built; selecting a route does no validation.
"""

from __future__ import annotations

import math
import random
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from notifykit.config import Config, RouteRule, Strategy
from notifykit.errors import ConfigError
from notifykit.models import SmsMessage
from notifykit.phone import region_of

__all__ = ["Route", "RouteTable"]


@dataclass(frozen=True, slots=True)
class Route:
    """An ordered set of provider instances with the strategy that orders them per send."""

    name: str
    providers: tuple[str, ...]
    strategy: Strategy = "priority"
    weights: Mapping[str, float] = field(default_factory=dict)

    def order(self, rng: random.Random) -> list[str]:
        """The instances to try for one send, first to last."""
        if self.strategy == "priority":
            return list(self.providers)
        # Exponential race: the smallest Exp(rate=w) key wins with probability w / sum(w),
        # and sorting by key gives weighted sampling without replacement.
        keyed = [
            (rng.expovariate(w) if (w := self.weights.get(name, 0.0)) > 0 else math.inf, i, name)
            for i, name in enumerate(self.providers)
        ]
        keyed.sort()
        return [name for _, _, name in keyed]


@dataclass(frozen=True, slots=True)
class _Rule:
    countries: frozenset[str] | None
    templates: frozenset[str] | None
    tags: frozenset[str] | None
    route: Route

    def matches(self, message: SmsMessage, region: str | None) -> bool:
        if self.countries is not None and region not in self.countries:
            return False
        if self.templates is not None and message.template not in self.templates:
            return False
        return self.tags is None or not self.tags.isdisjoint(message.tags)


class RouteTable:
    """The compiled ``[routing]`` section: rules in order, then the default route."""

    def __init__(self, config: Config, known: Collection[str]) -> None:
        routing = config.routing
        self.default = _route(
            "routing", config.default_route(), routing.strategy, routing.weights, known
        )
        self.rules = tuple(
            _compile(f"routing.rules[{i}]", rule, routing.strategy, routing.weights, known)
            for i, rule in enumerate(routing.rules)
        )
        self._needs_region = any(rule.countries is not None for rule in self.rules)

    def select(self, message: SmsMessage) -> Route:
        """The route of the first matching rule, else the default route."""
        region = region_of(message.to) if self._needs_region else None
        for rule in self.rules:
            if rule.matches(message, region):
                return rule.route
        return self.default

    def routes(self) -> list[Route]:
        return [rule.route for rule in self.rules] + [self.default]


def _compile(
    where: str,
    rule: RouteRule,
    strategy: Strategy,
    weights: Mapping[str, float],
    known: Collection[str],
) -> _Rule:
    return _Rule(
        countries=None if rule.country is None else frozenset(rule.country),
        templates=None if rule.template is None else frozenset(rule.template),
        tags=None if rule.tags is None else frozenset(rule.tags),
        route=_route(
            where,
            rule.providers,
            rule.strategy or strategy,
            weights if rule.weights is None else rule.weights,
            known,
        ),
    )


def _route(
    where: str,
    providers: list[str],
    strategy: Strategy,
    weights: Mapping[str, float],
    known: Collection[str],
) -> Route:
    for name in providers:
        if name not in known:
            raise ConfigError(f"{where}.providers: unknown provider {name!r}")
    if len(set(providers)) != len(providers):
        raise ConfigError(f"{where}.providers: an instance is listed twice")
    for name, weight in weights.items():
        if not math.isfinite(weight) or weight < 0:
            raise ConfigError(f"{where}.weights.{name}: a weight must be a finite number >= 0")
    on_route = {name: float(weights[name]) for name in providers if name in weights}
    if strategy == "weighted" and providers and not any(w > 0 for w in on_route.values()):
        raise ConfigError(
            f"{where}.weights: the weighted strategy needs a positive weight for at least "
            "one provider on the route"
        )
    return Route(name=where, providers=tuple(providers), strategy=strategy, weights=on_route)
