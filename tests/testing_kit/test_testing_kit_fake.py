"""FakeProvider: every scripted outcome, driven directly and through a notifier."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from notifykit import SmsMessage, errors
from notifykit.config import Config
from notifykit.models import DeliveryStatus
from notifykit.plugins import provider_types
from notifykit.testing import (
    Accept,
    Delay,
    Fail,
    FakeProvider,
    Unknown,
    accept,
    delay,
    fail,
    fake_config,
    fake_notifier,
    fake_plugin_manager,
    fake_providers,
    fake_sync_notifier,
    parse_outcome,
    unknown,
)

pytestmark = pytest.mark.anyio

PHONE = "+8615612341090"
MESSAGE = SmsMessage(to=PHONE, template="verify_code", params={"code": "1234"})

PROVIDER_ERRORS = [
    errors.ProviderError,
    errors.AuthenticationError,
    errors.InsufficientBalance,
    errors.QuotaExceeded,
    errors.RecipientRateLimited,
    errors.InvalidRecipient,
    errors.TemplateError,
    errors.ProviderUnavailable,
    errors.UnknownOutcome,
]


@pytest.mark.parametrize("cls", PROVIDER_ERRORS, ids=lambda c: c.__name__)
async def test_each_provider_error_class_is_raised_with_the_instance(
    cls: type[errors.ProviderError],
) -> None:
    fake = FakeProvider.build("primary").script(fail(cls, vendor_code="42", vendor_message="no"))
    with pytest.raises(cls) as caught:
        await fake.send(MESSAGE)
    assert type(caught.value) is cls
    assert caught.value.provider == "primary"
    assert (caught.value.vendor_code, caught.value.vendor_message) == ("42", "no")
    assert fake.calls[0].error is caught.value
    assert fake.outbox == []


@pytest.mark.parametrize("retryable", [True, False])
async def test_provider_unavailable_carries_retryable(retryable: bool) -> None:
    fake = FakeProvider.build().script(fail(errors.ProviderUnavailable, retryable=retryable))
    with pytest.raises(errors.ProviderUnavailable) as caught:
        await fake.send(MESSAGE)
    assert caught.value.retryable is retryable


@pytest.mark.parametrize(
    "cls", [errors.NotSupported, errors.InvalidMessage, RuntimeError], ids=lambda c: c.__name__
)
async def test_errors_outside_provider_error_are_raised_too(cls: type[Exception]) -> None:
    fake = FakeProvider.build().script(fail(cls, "scripted"))
    with pytest.raises(cls, match="scripted"):
        await fake.send(MESSAGE)


async def test_an_exception_object_is_raised_as_a_fresh_copy_each_time() -> None:
    error = errors.QuotaExceeded("daily cap", provider="x", vendor_code="Q")
    fake = FakeProvider.build().script(fail(error), fail(error))
    raised = []
    for _ in range(2):
        with pytest.raises(errors.QuotaExceeded) as caught:
            await fake.send(MESSAGE)
        raised.append(caught.value)
    assert raised[0] is not raised[1]
    assert [e.vendor_code for e in raised] == ["Q", "Q"]


async def test_accept_returns_the_scripted_receipt_and_records_the_message() -> None:
    fake = FakeProvider.build("primary").script(
        accept("vid-7", remaining_credits=41, status=DeliveryStatus.SENT)
    )
    receipt = await fake.send(MESSAGE)
    assert (receipt.provider_message_id, receipt.remaining_credits, receipt.status) == (
        "vid-7",
        41,
        DeliveryStatus.SENT,
    )
    assert [(m.to, m.provider, m.provider_message_id) for m in fake.outbox] == [
        (PHONE, "primary", "vid-7")
    ]
    assert fake.calls[0].receipt == receipt and fake.calls[0].error is None


async def test_generated_ids_are_unique_per_instance() -> None:
    fake = FakeProvider.build("a")
    ids = {(await fake.send(MESSAGE)).provider_message_id for _ in range(5)}
    assert len(ids) == 5 and all(i is not None and i.startswith("fake-a-") for i in ids)


async def test_unknown_outcome_by_default_means_the_message_went_out() -> None:
    fake = FakeProvider.build().script(unknown(), unknown(went_out=False))
    for _ in range(2):
        with pytest.raises(errors.UnknownOutcome):
            await fake.send(MESSAGE)
    assert len(fake.outbox) == 1, "only the first unknown outcome reached the vendor"
    assert len(fake.calls) == 2


async def test_delay_takes_its_time_then_resolves_its_outcome() -> None:
    fake = FakeProvider.build().script(delay(0.05, fail(errors.TemplateError)), delay(0.05))
    started = time.perf_counter()
    with pytest.raises(errors.TemplateError):
        await fake.send(MESSAGE)
    assert time.perf_counter() - started >= 0.045
    assert (await fake.send(MESSAGE)).provider_message_id is not None
    assert fake.calls[0].duration >= 0.045


def test_negative_delay_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        delay(-1)


async def test_script_runs_in_order_then_falls_back_to_then() -> None:
    fake = FakeProvider.build().script(fail(errors.InsufficientBalance), accept("one"))
    fake.then(fail(errors.QuotaExceeded))
    assert fake.pending == 2
    with pytest.raises(errors.InsufficientBalance):
        await fake.send(MESSAGE)
    assert (await fake.send(MESSAGE)).provider_message_id == "one"
    for _ in range(2):
        with pytest.raises(errors.QuotaExceeded):
            await fake.send(MESSAGE)
    assert fake.pending == 0
    assert [type(c.outcome).__name__ for c in fake.calls] == ["Fail", "Accept", "Fail", "Fail"]
    assert fake.attempted == [MESSAGE] * 4


async def test_a_step_may_depend_on_the_message() -> None:
    blocked = "+8613800138000"
    fake = FakeProvider.build().then(
        lambda m: fail(errors.InvalidRecipient) if m.to == blocked else accept()
    )
    await fake.send(MESSAGE)
    with pytest.raises(errors.InvalidRecipient):
        await fake.send(MESSAGE.model_copy(update={"to": blocked}))


async def test_script_then_and_balance_from_options() -> None:
    fake = FakeProvider.build(
        script=["unknown:lost", "ProviderUnavailable:retryable", "accept:v1"],
        then="InsufficientBalance",
        balance="12.5",
        unit="USD",
    )
    with pytest.raises(errors.UnknownOutcome):
        await fake.send(MESSAGE)
    with pytest.raises(errors.ProviderUnavailable) as caught:
        await fake.send(MESSAGE)
    assert caught.value.retryable
    assert (await fake.send(MESSAGE)).provider_message_id == "v1"
    with pytest.raises(errors.InsufficientBalance):
        await fake.send(MESSAGE)
    assert [m.provider_message_id for m in fake.outbox] == ["v1"]
    balance = await fake.balance()
    assert (balance.provider, balance.remaining, balance.unit) == ("fake", Decimal("12.5"), "USD")


async def test_configured_options_reach_the_notifiers_fake() -> None:
    options = {"fake": {"script": ["TemplateError"], "delay": 0.01}}
    async with fake_notifier(options=options) as notifier:
        with pytest.raises(errors.AllProvidersFailed):
            await notifier.send(PHONE, template="verify_code")
        assert (await notifier.send(PHONE, template="verify_code")).provider == "fake"
        assert fake_providers(notifier)["fake"].calls[0].duration >= 0.009


def test_a_bad_configured_script_names_the_key() -> None:
    with pytest.raises(errors.ConfigError, match=r"providers\.fake\.script.*script\[1\].*Teapot"):
        fake_sync_notifier(options={"fake": {"script": ["accept", "Teapot"]}})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("accept", Accept()),
        ("accept:SM1", Accept("SM1")),
        ("unknown", Unknown(went_out=True)),
        ("unknown:lost", Unknown(went_out=False)),
        ("InsufficientBalance", Fail(errors.InsufficientBalance)),
        ("ProviderUnavailable:retryable", Fail(errors.ProviderUnavailable, retryable=True)),
        ("delay:0.5", Delay(0.5, Accept())),
        ("delay:1:TemplateError", Delay(1.0, Fail(errors.TemplateError))),
        (" accept ", Accept()),
    ],
)
def test_parse_outcome_table(text: str, expected: object) -> None:
    assert parse_outcome(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "Accept", "teapot", "delay", "delay:x", "delay:-1", "delay:inf", "delay:nan",
     "InsufficientBalance:retryable", "unknown:maybe", "os.system"],
)  # fmt: skip
def test_parse_outcome_refuses_what_it_does_not_know(text: str) -> None:
    with pytest.raises(ValueError, match=r"outcome|delay"):
        parse_outcome(text)


@given(st.text(max_size=40))
def test_parse_outcome_gives_an_outcome_or_value_error(text: str) -> None:
    try:
        outcome = parse_outcome(text)
    except ValueError:
        return
    assert isinstance(outcome, Accept | Fail | Unknown | Delay)


async def test_countries_decline_other_destinations_without_a_call() -> None:
    async with fake_notifier(options={"fake": {"countries": ["CN"]}}) as notifier:
        with pytest.raises(errors.InvalidMessage, match="US not served"):
            await notifier.send("+14155550100", template="t")
        assert (await notifier.send(PHONE, template="t")).provider == "fake"
        assert len(fake_providers(notifier)["fake"].calls) == 1


def test_fake_is_registered_only_where_asked() -> None:
    assert "fake" in provider_types(fake_plugin_manager())
    from notifykit.plugins import get_plugin_manager

    assert "fake" not in provider_types(get_plugin_manager(load_entrypoints=False))


def test_fake_config_defaults_and_errors() -> None:
    config = fake_config("primary", "backup", route=["backup", "primary"])
    assert isinstance(config, Config)
    assert {n: p.type for n, p in config.providers.items()} == {
        "primary": "fake",
        "backup": "fake",
    }
    assert config.default_route() == ["backup", "primary"]
    assert config.store.url == "memory://"
    with pytest.raises(errors.ConfigError, match="unknown fake instances"):
        fake_config("primary", options={"primay": {}})


# -- through a notifier: the router sees exactly what was scripted -------------------------


async def test_failover_from_a_scripted_failure_to_the_backup() -> None:
    async with fake_notifier("primary", "backup") as notifier:
        fakes = fake_providers(notifier)
        fakes["primary"].script(fail(errors.InsufficientBalance))
        fakes["backup"].script(accept("b-1"))
        result = await notifier.send(PHONE, template="verify_code", params={"code": "1234"})
    assert (result.provider, result.provider_message_id) == ("backup", "b-1")
    assert [(a.provider, a.outcome, a.error_type) for a in result.attempts] == [
        ("primary", "failed", "InsufficientBalance"),
        ("backup", "accepted", None),
    ]


async def test_unknown_outcome_stops_the_route_and_the_message_went_out_once() -> None:
    async with fake_notifier("primary", "backup") as notifier:
        fakes = fake_providers(notifier)
        fakes["primary"].script(unknown())
        with pytest.raises(errors.UnknownOutcome) as caught:
            await notifier.send(PHONE, template="verify_code", params={"code": "1"})
    assert [a.provider for a in caught.value.attempts] == ["primary"]
    assert len(fakes["primary"].outbox) == 1 and fakes["backup"].calls == []


async def test_a_retryable_outage_is_retried_on_the_same_fake() -> None:
    retry = {"routing": {"retry": {"attempts": 3, "initial_delay": 0, "max_delay": 0}}}
    async with fake_notifier(extra=retry) as notifier:
        fake = fake_providers(notifier)["fake"]
        fake.script(fail(errors.ProviderUnavailable, retryable=True), accept("second"))
        result = await notifier.send(PHONE, template="verify_code", params={"code": "1"})
    assert result.provider_message_id == "second"
    assert len(fake.calls) == 2
    assert [a.outcome for a in result.attempts] == ["failed", "accepted"]


def test_the_sync_twin_drives_fakes_too() -> None:
    with fake_sync_notifier("only") as notifier:
        fake_providers(notifier)["only"].script(fail(errors.TemplateError))
        with pytest.raises(errors.AllProvidersFailed) as caught:
            notifier.send(PHONE, template="verify_code", params={"code": "1"})
        assert caught.value.attempts[0].error_type == "TemplateError"
        assert notifier.send(PHONE, template="verify_code").provider == "only"
