"""What ``notifykit config check`` reports beyond validation: the routes in words, and the
problems that only show once each instance is built.

The checks read each provider type's declared metadata (``requires_templates``,
``signs_callbacks``, whether it implements ``parse_callback``), never its name, so a new
plugin gets them by declaring what it needs; what only a plugin can know comes from its own
:meth:`~notifykit.provider.SmsProvider.config_warnings`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from notifykit.config import Config, RouteRule
from notifykit.provider import SmsProvider

__all__ = ["describe_routes", "instance_warnings", "route_warnings"]


def _rule_conditions(rule: RouteRule) -> str:
    parts = []
    if rule.country:
        parts.append("country " + ", ".join(rule.country))
    if rule.template:
        parts.append("template " + ", ".join(rule.template))
    if rule.tags:
        parts.append("tags " + ", ".join(rule.tags))
    return " and ".join(parts) or "every message"


def _route(providers: list[str], strategy: str, weights: Mapping[str, float]) -> str:
    if strategy == "weighted":
        return ", ".join(f"{name} ({weights.get(name, 0):g})" for name in providers) + (
            " (weighted)"
        )
    return " -> ".join(providers)


def describe_routes(config: Config) -> list[str]:
    """The routing in words, one line per rule in order, then the default route:
    ``rule 1: country CN -> primary -> backup``, ``otherwise: primary -> backup``."""
    routing = config.routing
    lines = []
    for i, rule in enumerate(routing.rules, 1):
        strategy = rule.strategy or routing.strategy
        weights = routing.weights if rule.weights is None else rule.weights
        lines.append(
            f"rule {i}: {_rule_conditions(rule)} -> {_route(rule.providers, strategy, weights)}"
        )
    default = _route(config.default_route(), routing.strategy, routing.weights)
    lines.append(f"{'otherwise' if routing.rules else 'every message'}: {default}")
    return lines


def route_warnings(config: Config) -> list[str]:
    """Rules no message can reach: a rule without conditions matches every message, so
    the rules after it (``rule N`` as :func:`describe_routes` numbers them) and the
    default route are never used for routing."""
    rules = config.routing.rules
    for i, rule in enumerate(rules, 1):
        # As RouteTable matches: a condition not set (None) holds for every message.
        if rule.country is None and rule.template is None and rule.tags is None:
            n = len(rules)
            later = "" if i == n else f"rule {n}" if i + 1 == n else f"rules {i + 1}-{n}"
            unused = f"{later} and the default route are" if later else "the default route is"
            return [
                f"rule {i} sets no country, template or tags: it matches every message, "
                f"so {unused} never used"
            ]
    return []


def _receives_callbacks(provider: SmsProvider[Any]) -> bool:
    return type(provider).parse_callback is not SmsProvider.parse_callback


def instance_warnings(
    config: Config, providers: Mapping[str, SmsProvider[Any]]
) -> dict[str, list[str]]:
    """Per instance: what the core sees from the provider type's metadata, then the
    plugin's own :meth:`~notifykit.provider.SmsProvider.config_warnings`.

    - ``requires_templates``: a logical template (a ``[templates.<name>]`` table) with no
      entry for this instance is declined here, so failover skips the instance for it; an
      instance with no entry at all declines every message.
    - receives callbacks and not ``signs_callbacks``: without a ``[callbacks] token`` in the
      receiver URL, anyone who learns the URL can post receipts.
    """
    found: dict[str, list[str]] = {}
    names = sorted(config.templates)
    for instance, provider in providers.items():
        warnings: list[str] = []
        kind = type(provider)
        if kind.requires_templates:
            missing = [name for name in names if instance not in config.templates[name]]
            if not names or len(missing) == len(names):
                warnings.append(
                    f"providers.{instance}: no [templates.<name>.{instance}] entry: "
                    f"{kind.name} needs one per template, so every message is declined here"
                )
            else:
                for name in missing:
                    warnings.append(
                        f"providers.{instance}: no [templates.{name}.{instance}] entry: "
                        f"{kind.name} needs one, so template {name!r} is declined here"
                    )
        if (
            _receives_callbacks(provider)
            and not kind.signs_callbacks
            and config.callbacks.token is None
        ):
            warnings.append(
                f"providers.{instance}: no [callbacks] token: {kind.name} signs nothing it "
                "pushes, so anyone who learns the receiver URL can post receipts; set one "
                "(docs/callbacks.md)"
            )
        warnings.extend(provider.config_warnings())
        found[instance] = warnings
    return found
