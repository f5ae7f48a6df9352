"""Route selection: rules by country, template and tag; priority and weighted strategies."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from notifykit.config import Config
from notifykit.errors import ConfigError
from notifykit.models import SmsMessage
from notifykit.routing import Route, RouteTable

pytestmark = pytest.mark.anyio

CN = "+8615612341090"
US = "+12025550143"
NAMES = ["veesing", "twilio", "spare"]


def table(routing: dict) -> RouteTable:  # type: ignore[type-arg]
    config = Config.from_dict(
        {"providers": {n: {"type": "memory"} for n in NAMES}, "routing": routing}
    )
    return RouteTable(config, known=NAMES)


def msg(to: str = US, template: str = "verify_code", tags: tuple[str, ...] = ()) -> SmsMessage:
    return SmsMessage(to=to, template=template, params={"code": "1"}, tags=tags)


RULES = {
    "providers": ["twilio", "veesing"],
    "rules": [
        {"country": ["cn"], "providers": ["veesing", "twilio"]},
        {"template": ["marketing"], "providers": ["spare"]},
        {"tags": ["vip", "urgent"], "providers": ["twilio"]},
        {"country": ["US"], "template": ["login"], "providers": ["spare", "twilio"]},
    ],
}


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (msg(CN), ["veesing", "twilio"]),  # country (lower-case in the file)
        (msg(US), ["twilio", "veesing"]),  # the default route, last
        (msg(US, "marketing"), ["spare"]),  # template
        (msg(CN, "marketing"), ["veesing", "twilio"]),  # the first match wins
        (msg(US, tags=("urgent",)), ["twilio"]),  # any one of the rule's tags
        (msg(US, tags=("newsletter",)), ["twilio", "veesing"]),
        (msg(US, "login"), ["spare", "twilio"]),  # every condition of a rule must hold
        (msg(CN, "login"), ["veesing", "twilio"]),
        (msg("+442071838750", "login"), ["twilio", "veesing"]),
    ],
)
def test_first_matching_rule_chooses_the_route(message, expected) -> None:
    assert table(RULES).select(message).order(random.Random(0)) == expected


def test_default_route_is_every_instance_when_unset() -> None:
    assert table({}).select(msg()).providers == tuple(NAMES)


def test_rule_without_conditions_matches_everything() -> None:
    t = table({"rules": [{"providers": ["spare"]}]})
    assert t.select(msg(CN, "x", ("a",))).providers == ("spare",)


def chi_square(observed: Counter[str], weights: dict[str, float], n: int) -> float:
    total = sum(weights.values())
    return sum((observed[k] - n * w / total) ** 2 / (n * w / total) for k, w in weights.items())


# Critical values of chi-square at p = 0.001: df=1 -> 10.83, df=2 -> 13.82.
@pytest.mark.parametrize(
    ("weights", "critical"),
    [({"veesing": 3, "twilio": 1}, 10.83), ({"veesing": 5, "twilio": 3, "spare": 2}, 13.82)],
)
def test_weighted_split_holds(weights, critical) -> None:
    route = table({"providers": list(weights), "strategy": "weighted", "weights": weights})
    rng = random.Random(20240601)
    n = 6000
    firsts = Counter(route.select(msg()).order(rng)[0] for _ in range(n))
    assert chi_square(firsts, weights, n) < critical
    # The same samples are far from an even split: the test can tell the difference.
    assert chi_square(firsts, dict.fromkeys(weights, 1.0), n) > 10 * critical


def test_weighted_order_keeps_every_instance_and_fallbacks_last() -> None:
    route = Route(
        name="r",
        providers=("spare", "veesing", "twilio"),
        strategy="weighted",
        weights={"veesing": 1, "twilio": 1},
    )
    rng = random.Random(7)
    orders = [route.order(rng) for _ in range(200)]
    assert all(sorted(o) == sorted(route.providers) for o in orders)
    assert all(o[-1] == "spare" for o in orders)
    assert {o[0] for o in orders} == {"veesing", "twilio"}


def test_weighted_second_place_is_weighted_too() -> None:
    route = Route(
        name="r",
        providers=("a", "b", "c"),
        strategy="weighted",
        weights={"a": 8, "b": 1, "c": 1},
    )
    rng = random.Random(3)
    n = 4000
    seconds = Counter(o[1] for o in (route.order(rng) for _ in range(n)) if o[0] == "a")
    # Given "a" first, "b" and "c" share second place evenly.
    total = sum(seconds.values())
    assert abs(seconds["b"] / total - 0.5) < 0.04


def test_rule_inherits_strategy_and_weights() -> None:
    t = table(
        {
            "strategy": "weighted",
            "weights": {"veesing": 1, "twilio": 1, "spare": 1},
            "rules": [{"template": ["t"], "providers": ["spare", "twilio"]}],
        }
    )
    route = t.select(msg(template="t"))
    assert route.strategy == "weighted"
    assert dict(route.weights) == {"spare": 1.0, "twilio": 1.0}


@pytest.mark.parametrize(
    ("routing", "match"),
    [
        ({"weights": {"veesing": -1}}, r"routing\.weights\.veesing"),
        ({"strategy": "weighted"}, r"routing\.weights: the weighted strategy"),
        (
            {"rules": [{"providers": ["spare"], "strategy": "weighted", "weights": {"spare": 0}}]},
            r"routing\.rules\[0\]\.weights",
        ),
        ({"providers": ["spare", "spare"]}, "listed twice"),
    ],
)
def test_bad_routing_is_a_config_error(routing, match) -> None:
    with pytest.raises(ConfigError, match=match):
        table(routing)


def test_unknown_instance_is_a_config_error() -> None:
    config = Config.from_dict({"providers": {"a": {"type": "memory"}}})
    with pytest.raises(ConfigError, match="unknown provider 'a'"):
        RouteTable(config, known=["b"])


async def test_router_follows_the_country_rule(make_router) -> None:
    h = make_router(
        {
            "providers": ["primary", "backup"],
            "rules": [{"country": ["CN"], "providers": ["backup"]}],
        }
    )
    assert (await h.router.send(msg(CN))).provider == "backup"
    assert (await h.router.send(msg(US))).provider == "primary"


async def test_router_weighted_split_end_to_end(make_router) -> None:
    h = make_router(
        {"strategy": "weighted", "weights": {"primary": 3, "backup": 1}},
        rng=random.Random(99),
        providers={"primary": {"balance": 10_000}, "backup": {"balance": 10_000}},
    )
    n = 2000
    for _ in range(n):
        await h.router.send(msg())
    counts = Counter({"primary": len(h["primary"].outbox), "backup": len(h["backup"].outbox)})
    assert counts.total() == n
    assert chi_square(counts, {"primary": 3, "backup": 1}, n) < 10.83
