"""Configuration: every error path names the key, never a secret; interpolation; lookup."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from notifykit import AsyncNotifier, Config, load_config
from notifykit.config import (
    ConsoleFallbackWarning,
    ProviderConfig,
    find_config_path,
    parse_duration,
)
from notifykit.errors import ConfigError
from notifykit.instances import build_providers
from notifykit.plugins import get_plugin_manager, provider_types

SECRET = "s3cr3t-Zq9-config"
InstallDist = Callable[..., str]


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NK_SECRET", SECRET)
    monkeypatch.delenv("NOTIFYKIT_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)


def write(tmp_path: Path, text: str, name: str = "nk.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def build(config: Config) -> None:
    """Validate the file and every provider instance's options, as ``config check`` does."""
    build_providers(config, provider_types(get_plugin_manager(load_entrypoints=False)))


MEMORY = '[providers.fake]\ntype = "memory"\nnote = "${NK_SECRET}"\n'
# ``note`` is not a memory option: only used where the error is elsewhere.
GOOD = '[providers.fake]\ntype = "memory"\n'

# (file text, what the message must contain). Each file also carries the secret somewhere,
# so that every message is checked for it.
FILE_ERRORS: list[tuple[str, str]] = [
    ("providers = 3\n", "providers: Input should be a valid dictionary"),
    ('[provider.fake]\ntype = "memory"\n', "provider: unknown key (did you mean 'providers'?)"),
    (
        GOOD + 'secret = "${NK_SECRET}"\n',
        "providers.fake.secret: unknown key (known: fail, balance, delay, countries)",
    ),
    ('[providers.fake]\napp_key = "${NK_SECRET}"\n', "providers.fake.type: required, not set"),
    (
        '[providers.fake]\ntype = "nosuchvendor"\napp_key = "${NK_SECRET}"\n',
        "providers.fake.type: unknown provider type 'nosuchvendor' (installed: console, memory)",
    ),
    (
        '[providers.fake]\ntype = "memory"\nbalance = "${NK_SECRET}"\n',
        "providers.fake.balance: Input should be a valid integer",
    ),
    (
        '[providers.fake]\ntype = "memory"\nfail = "${NK_SECRET}"\n',
        "providers.fake.fail: Input should be 'ProviderError'",
    ),
    (
        '[providers.fake]\ntype = "memory"\ncountries = ["${NK_SECRET}"]\n',
        "providers.fake.countries[0]: expected an ISO 3166",
    ),
    (
        '[providers.fake]\ntype = "memory"\napp_key = "${NK_MISSING_VAR}"\n',
        "environment variable not set: NK_MISSING_VAR (providers.fake.app_key)",
    ),
    (
        '[providers.fake]\ntype = "memory"\napp_key = "${NK_SECRET"\n',
        "providers.fake.app_key: malformed reference",
    ),
    (
        GOOD + '[routing]\nproviders = ["fake", "ghost"]\n',
        "routing.providers: unknown provider 'ghost'",
    ),
    (GOOD + "[routing.weights]\nghost = 1\n", "routing.weights: unknown provider 'ghost'"),
    (
        GOOD + '[[routing.rules]]\ncountry = ["CN"]\nproviders = ["ghost"]\n',
        "routing.rules[0].providers: unknown provider 'ghost'",
    ),
    (
        GOOD + '[[routing.rules]]\nproviders = ["fake"]\nweights = { ghost = 2 }\n',
        "routing.rules[0].weights: unknown provider 'ghost'",
    ),
    (
        GOOD + '[templates.verify_code.ghost]\ntemplate_id = "540"\n',
        "templates.verify_code.ghost: unknown provider 'ghost'",
    ),
    (GOOD + '[routing]\ndeadline = "soon"\n', "routing.deadline: expected a duration"),
    (GOOD + "[routing]\ndeadline = -1\n", "routing.deadline: a duration cannot"),
    (GOOD + '[routing.breaker]\ncooldown = "5 parsecs"\n', "routing.breaker.cooldown: expected"),
    (GOOD + '[routing]\nstrategy = "random"\n', "routing.strategy: Input should be 'priority'"),
    (
        GOOD + '[routing]\non_unknown_outcome = "retry"\n',
        "routing.on_unknown_outcome: Input should be 'stop' or 'failover'",
    ),
    (GOOD + "[routing.retry]\nattempts = 0\n", "routing.retry.attempts: Input should be greater"),
    (GOOD + "[store]\nurl = 5\n", "store.url: Input should be a valid string"),
    (GOOD + '[http]\ntransport = "curl"\n', "http.transport: Input should be 'aiohttp' or 'httpx'"),
    (
        GOOD + '[callbacks]\ntoken = "${NK_SECRET}"\nmax_body = 1\n',
        "callbacks.max_body: unknown key (did you mean 'max_body_bytes'?)",
    ),
    ('[providers."a.b"]\ntype = "memory"\n', "providers.a.b: instance names may hold"),
    ('source = "${NK_SECRET}"\n' + GOOD, "source: unknown key"),
]


@pytest.mark.parametrize(("text", "expected"), FILE_ERRORS)
def test_a_bad_file_names_the_key_and_never_the_secret(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        build(load_config(path))
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    assert expected in message
    assert SECRET not in message
    assert SECRET not in repr(info.value)
    assert info.value.__cause__ is None or SECRET not in str(info.value.__cause__)


def test_bad_template_options_name_the_template_key(tmp_path: Path) -> None:
    # The memory provider accepts any template settings; a real vendor refuses unknown ones.
    pm = get_plugin_manager()
    path = write(
        tmp_path,
        '[providers.primary]\ntype = "veesing"\napp_id = "1"\napp_key = "${NK_SECRET}"\n'
        '[templates.verify_code.primary]\ntemplate_idd = "540"\n',
    )
    with pytest.raises(ConfigError) as info:
        build_providers(load_config(path), provider_types(pm))
    assert "templates.verify_code.primary.template_idd" in str(info.value)
    assert SECRET not in str(info.value)


def test_bad_option_of_a_plugin_provider_names_the_instance_and_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[providers.backup]\ntype = "veesing"\napp_id = "1"\napp_key = "${NK_SECRET}"\n'
        'timeout = "fast"\n',
    )
    with pytest.raises(ConfigError) as info:
        build_providers(load_config(path), provider_types(get_plugin_manager()))
    assert "providers.backup.timeout" in str(info.value)
    assert SECRET not in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read configuration file .*nope\.toml"):
        load_config(tmp_path / "nope.toml")


def test_a_directory_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read configuration file"):
        load_config(tmp_path)


def test_bad_toml_gives_the_position_not_the_content(tmp_path: Path) -> None:
    path = write(tmp_path, f'[providers.fake]\ntype = "memory"\napp_key = {SECRET}\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "not valid TOML" in str(info.value) and "line 3" in str(info.value)
    assert SECRET not in str(info.value)


def test_unreadable_encoding(tmp_path: Path) -> None:
    path = tmp_path / "latin.toml"
    path.write_bytes(b'[providers.fake]\ntype = "m\xe9mory"\n')
    with pytest.raises(ConfigError, match="cannot read configuration file"):
        load_config(path)


def test_store_url_scheme_is_checked_when_the_notifier_is_built(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + '[store]\nurl = "redis://localhost"\n')
    with pytest.raises(ConfigError, match=r"store\.url: unsupported store 'redis'"):
        AsyncNotifier(path, plugin_manager=get_plugin_manager(load_entrypoints=False))


# -- interpolation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "environ", "expected"),
    [
        ("${A}", {"A": "x"}, "x"),
        ("${A}", {"A": ""}, ""),
        ("pre-${A}-${B}-post", {"A": "1", "B": "2"}, "pre-1-2-post"),
        ("${A:-fallback}", {}, "fallback"),
        ("${A:-fallback}", {"A": ""}, "fallback"),
        ("${A:-fallback}", {"A": "set"}, "set"),
        ("${A:-}", {}, ""),
        ("$${A}", {"A": "x"}, "${A}"),
        ("${A}", {"A": "${B}"}, "${B}"),  # values are not scanned again
        ("$A and $", {}, "$A and $"),
    ],
)
def test_interpolation(value: str, environ: dict[str, str], expected: str) -> None:
    config = Config.from_dict({"providers": {"p": {"type": "memory", "x": value}}}, environ=environ)
    assert config.providers["p"].options["x"] == expected


def test_interpolation_reaches_nested_tables_and_lists() -> None:
    config = Config.from_dict(
        {
            "providers": {"a": {"type": "${T}"}, "b": {"type": "memory"}},
            "routing": {"providers": ["${FIRST}", "b"]},
            "callbacks": {"token": "${TOKEN}"},
        },
        environ={"T": "memory", "FIRST": "a", "TOKEN": SECRET},
    )
    assert config.routing.providers == ["a", "b"]
    assert config.providers["a"].type == "memory"
    assert config.callbacks.token is not None
    assert config.callbacks.token.get_secret_value() == SECRET
    assert SECRET not in repr(config)


def test_a_missing_variable_in_a_list_names_its_index() -> None:
    with pytest.raises(
        ConfigError, match=r"environment variable not set: NOPE \(routing\.providers\[1\]\)"
    ):
        Config.from_dict({"routing": {"providers": ["a", "${NOPE}"]}}, environ={})


def test_provider_config_repr_shows_option_names_only() -> None:
    config = Config.from_dict({"providers": {"p": {"type": "memory", "app_key": "${NK_SECRET}"}}})
    assert config.providers["p"].options == {"app_key": SECRET}
    for text in (repr(config), str(config), repr(config.providers["p"])):
        assert SECRET not in text
    assert "app_key" in repr(config.providers["p"])


# -- lookup ---------------------------------------------------------------------------------------


def test_no_file_means_the_built_in_console_default() -> None:
    with pytest.warns(ConsoleFallbackWarning, match="no notifykit configuration found"):
        config = load_config()
    assert config.source == "built-in default"
    assert {name: p.type for name, p in config.providers.items()} == {"console": "console"}
    assert config.default_route() == ["console"]


def test_lookup_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    local = write(tmp_path, GOOD, "notifykit.toml")
    assert find_config_path() == Path("notifykit.toml")
    env_file = write(tmp_path, GOOD, "from-env.toml")
    monkeypatch.setenv("NOTIFYKIT_CONFIG", str(env_file))
    assert find_config_path() == env_file
    explicit = write(tmp_path, GOOD, "explicit.toml")
    assert find_config_path(explicit) == explicit
    assert load_config().source == str(env_file)
    assert local.exists()


def test_the_issue_example_loads_and_builds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("VEESING_APP_ID", "BACKUP_APP_ID"):
        monkeypatch.setenv(var, "10001")
    for var in ("VEESING_APP_KEY", "BACKUP_APP_KEY"):
        monkeypatch.setenv(var, f"{var.lower()}-{SECRET}")
    path = write(
        tmp_path,
        """
[providers.primary]
type = "veesing"
app_id = "${VEESING_APP_ID}"
app_key = "${VEESING_APP_KEY}"

[providers.backup]
type = "veesing"
app_id = "${BACKUP_APP_ID}"
app_key = "${BACKUP_APP_KEY}"
base_url = "https://vip.veesing.com"

[templates.verify_code.primary]
template_id = "540"
[templates.verify_code.backup]
template_id = "611"

[routing]
providers = ["primary", "backup"]

[store]
url = "memory://"
""",
    )
    config = load_config(path)
    providers = build_providers(config, provider_types(get_plugin_manager()))
    assert list(providers) == ["primary", "backup"]
    assert config.default_route() == ["primary", "backup"]
    for provider in providers.values():
        assert SECRET not in repr(provider) and SECRET not in repr(provider.options)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (60, 60.0),
        (0.5, 0.5),
        ("250ms", 0.25),
        ("60s", 60.0),
        ("5m", 300.0),
        ("24h", 86400.0),
        ("1d", 86400.0),
        (" 2 s ", 2.0),
    ],
)
def test_durations(value: Any, seconds: float) -> None:
    assert parse_duration(value) == pytest.approx(seconds)


@pytest.mark.parametrize("value", ["", "5 parsecs", "-1s", True, None, [1], "1.2.3s"])
def test_bad_durations(value: Any) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(value)


def test_provider_config_keeps_unknown_keys_for_the_provider_type() -> None:
    section = ProviderConfig.model_validate({"type": "memory", "balance": 3})
    assert section.options == {"balance": 3}


def test_relative_sqlite_path_is_relative_to_the_configuration_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One rule (docs/configuration.md [store]): the configuration file's folder, whatever the
    working directory; ``:memory:`` is not a path."""
    folder = tmp_path / "etc"
    folder.mkdir()
    elsewhere = tmp_path / "run"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config_file = folder / "notifykit.toml"
    config_file.write_text('[store]\nurl = "sqlite:///data/notifykit.sqlite3"\n')
    url = load_config(config_file).store.url
    assert url == f"sqlite:///{folder / 'data' / 'notifykit.sqlite3'}"
    config_file.write_text('[store]\nurl = "sqlite:///:memory:"\n')
    assert load_config(config_file).store.url == "sqlite:///:memory:"
    config_file.write_text('[store]\nurl = "sqlite:////abs/notifykit.sqlite3"\n')
    assert load_config(config_file).store.url == "sqlite:////abs/notifykit.sqlite3"
