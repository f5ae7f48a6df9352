"""Configuration errors a newcomer makes: each found at load, with the file, the key and a hint."""

from __future__ import annotations

from pathlib import Path

import pytest

from notifykit.config import Config, load_config
from notifykit.errors import ConfigError
from notifykit.instances import build_providers
from notifykit.notifier import AsyncNotifier
from notifykit.plugins import get_plugin_manager, provider_types

MEMORY = '[providers.p]\ntype = "memory"\n'


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "nk.toml"
    path.write_text(text, encoding="utf-8")
    return path


def error_of(path: Path) -> str:
    """What loading the file and building its instances (as ``config check`` does) says."""
    with pytest.raises(ConfigError) as info:
        AsyncNotifier(load_config(path))
    return info.value.message


def test_every_missing_environment_variable_is_named_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("NK_A", "NK_B", "NK_C"):
        monkeypatch.delenv(name, raising=False)
    path = write(
        tmp_path,
        '[providers.p]\ntype = "veesing"\napp_id = "${NK_A}"\napp_key = "${NK_B}"\n'
        '[routing]\nproviders = ["${NK_C}"]\n',
    )
    assert error_of(path) == (
        f"{path}: environment variables not set: NK_A (providers.p.app_id), "
        "NK_B (providers.p.app_key), NK_C (routing.providers[0])"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            MEMORY + "[routing]\nprovidrs = []\n",
            "routing.providrs: unknown key (did you mean 'providers'?)",
        ),
        (
            MEMORY + "[routing.retry]\natempts = 2\n",
            "routing.retry.atempts: unknown key (did you mean 'attempts'?)",
        ),
        (
            MEMORY + '[[routing.rules]]\ncountries = ["CN"]\nproviders = ["p"]\n',
            "routing.rules[0].countries: unknown key (did you mean 'country'?)",
        ),
        (MEMORY + "[stroe]\n", "stroe: unknown key (did you mean 'store'?)"),
        (MEMORY + "dealy = 1\n", "providers.p.dealy: unknown key (did you mean 'delay'?)"),
        (
            '[providers.p]\ntype = "veesing"\napp_id = "1"\napp_key = "k"\ntimout = 3\n',
            "providers.p.timout: unknown key (did you mean 'timeout'?)",
        ),
        # a key with an alias is named as the file spells it (``schema``, not ``schema_name``)
        (MEMORY + '[store]\nshcema = "x"\n', "store.shcema: unknown key (did you mean 'schema'?)"),
        (
            MEMORY + '[store]\nzzz = "x"\n',
            "store.zzz: unknown key (known: url, fsync, timeout, recovery_interval, schema,",
        ),
        (
            MEMORY + "zzz = 1\n",
            "providers.p.zzz: unknown key (known: fail, balance, delay, countries)",
        ),
    ],
)
def test_a_misspelt_key_gets_a_did_you_mean(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    message = error_of(path)
    assert message.startswith(f"{path}: ")
    assert expected in message
    assert "Extra inputs" not in message


@pytest.mark.parametrize("url", ["sqlite://x.db", "sqlite://", "sqlite:///", "notifykit.db"])
def test_a_malformed_store_url_is_refused_at_load(tmp_path: Path, url: str) -> None:
    path = write(tmp_path, MEMORY + f'[store]\nurl = "{url}"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.message.startswith(f"{path}: store.url: ")
    assert "unsupported store 'sqlite'" not in info.value.message
    if url.startswith("sqlite"):
        assert "sqlite:///notifykit.db" in info.value.message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[providers.p]\ntype = "nosuch"\n', "providers.p.type: unknown provider type 'nosuch'"),
        (MEMORY + '[store]\nurl = "nosuch://x"\n', "store.url: unsupported store 'nosuch'"),
    ],
)
def test_errors_found_when_building_carry_the_file(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write(tmp_path, text)
    assert error_of(path) == f"{path}: " + error_of(path).split(": ", 1)[1]
    assert expected in error_of(path)


def test_no_python_list_repr_in_a_message(tmp_path: Path) -> None:
    path = write(
        tmp_path, MEMORY + '[providers.q]\ntype = "memory"\n[routing]\nproviders = ["x"]\n'
    )
    message = error_of(path)
    assert "routing.providers: unknown provider 'x' (configured: p, q)" in message
    assert "[" not in message.split(": ", 1)[1]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (MEMORY + "[routing]\ndeadline = 0\n", "routing.deadline: Input should be greater than 0"),
        (
            MEMORY + "[routing]\nidempotency_ttl = 0\n",
            "routing.idempotency_ttl: Input should be greater than 0",
        ),
        (
            MEMORY + "[routing]\nrecipient_min_interval = 0\n",
            "routing.recipient_min_interval: Input should be greater than 0",
        ),
        (MEMORY + "[store]\ntimeout = 0\n", "store.timeout: Input should be greater than 0"),
        (
            MEMORY + '[routing]\nproviders = ["p", "p"]\n',
            "routing.providers: an instance is listed twice",
        ),
        (
            MEMORY + "[routing]\nweights = { p = -1 }\n",
            "routing.weights.p: a weight must be a finite number >= 0",
        ),
        (
            MEMORY + '[routing]\nstrategy = "weighted"\nweights = { p = 0 }\n',
            "routing.weights: the weighted strategy needs a positive weight",
        ),
        (
            MEMORY + '[[routing.rules]]\nproviders = ["p"]\nstrategy = "weighted"\n',
            "routing.rules[0].weights: the weighted strategy needs a positive weight",
        ),
        (
            MEMORY + "[routing.retry]\ninitial_delay = 2\nmax_delay = 1\n",
            "routing.retry.max_delay: must not be shorter",
        ),
        (
            MEMORY + '[[routing.rules]]\ncountry = ["UK"]\nproviders = ["p"]\n',
            "routing.rules[0].country[0]: expected an ISO 3166",
        ),
        (
            '[providers.p]\ntype = "memory"\ncountries = ["China"]\n',
            "providers.p.countries[0]: expected an ISO 3166",
        ),
    ],
)
def test_a_value_that_can_never_work_is_refused_at_load(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        config = load_config(path)
        # instance options are the provider type's to check; still before any send
        build_providers(config, provider_types(get_plugin_manager(load_entrypoints=False)))
    assert info.value.message.startswith(f"{path}: ")
    assert expected in info.value.message


def test_one_spelling_of_a_duration_and_a_region_in_every_section(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[providers.m]\ntype = "memory"\ndelay = "250ms"\ncountries = ["cn", " us"]\n'
        '[providers.v]\ntype = "veesing"\napp_id = "1"\napp_key = "k"\ntimeout = "5s"\n'
        '[providers.t]\ntype = "twilio"\naccount_sid = "AC' + "0" * 32 + '"\nauth_token = "t"\n'
        'from_number = "+15005550006"\ntimeout = "1m"\n'
        '[routing]\ndeadline = "45s"\n[[routing.rules]]\ncountry = ["cn"]\nproviders = ["m"]\n',
    )
    config = load_config(path)
    assert config.routing.deadline == 45.0
    assert config.routing.rules[0].country == ["CN"]
    built = build_providers(config, provider_types(get_plugin_manager()))
    assert built["m"].options.delay == 0.25
    assert built["m"].options.countries == ["CN", "US"]
    assert built["v"].options.timeout == 5.0
    assert built["t"].options.timeout == 60.0


def test_the_source_key_is_refused() -> None:
    with pytest.raises(ConfigError, match="source: unknown key"):
        Config.from_dict({"source": "x"})
