"""Plugin discovery: real entry points, NOTIFYKIT_LOAD_PLUGINS, and every refusal."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any, ClassVar

import pytest

from notifykit import SendReceipt, SmsProvider, hookimpl, hookspecs
from notifykit.default_plugins.memory import MemoryOptions
from notifykit.errors import ConfigError
from notifykit.plugins import check_pending, get_plugin_manager, provider_types

InstallDist = Callable[..., str]

WORKSPACE_TYPES = {
    "veesing": "notifykit-veesing",
    "twilio": "notifykit-twilio",
    "aliyun": "notifykit-aliyun",
}


def test_builtin_types_come_through_the_same_hook() -> None:
    types = provider_types(get_plugin_manager(load_entrypoints=False))
    assert {name: reg.distribution for name, reg in types.items()} == {
        "console": "notifykit",
        "memory": "notifykit",
    }


def test_a_real_installed_entry_point_is_discovered(install_dist: InstallDist) -> None:
    install_dist("nk-test-vault", "vault")
    types = provider_types(get_plugin_manager())
    assert types["vault"].distribution == "nk-test-vault"
    assert types["vault"].cls.__name__ == "VaultProvider"
    assert issubclass(types["vault"].cls, SmsProvider)


def test_workspace_plugins_are_discovered_through_their_entry_points() -> None:
    types = provider_types(get_plugin_manager())
    for name, dist in WORKSPACE_TYPES.items():
        assert types[name].distribution == dist


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (None, {"console", "memory", "vault", "other"}),
        ("", {"console", "memory"}),
        ("vault", {"console", "memory", "vault"}),
        (" other , nothing-such ", {"console", "memory", "other"}),
    ],
)
def test_load_plugins_env_limits_what_loads(
    install_dist: InstallDist, monkeypatch: pytest.MonkeyPatch, env: str | None, expected: set[str]
) -> None:
    install_dist("nk-test-vault", "vault")
    install_dist("nk-test-other", "other")
    if env is None:
        monkeypatch.delenv("NOTIFYKIT_LOAD_PLUGINS", raising=False)
    else:
        monkeypatch.setenv("NOTIFYKIT_LOAD_PLUGINS", env)
    found = set(provider_types(get_plugin_manager())) - set(WORKSPACE_TYPES)
    assert found == expected


def test_two_distributions_registering_one_type_name_is_an_error_naming_both(
    install_dist: InstallDist, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFYKIT_LOAD_PLUGINS", "first,second")
    install_dist("nk-first", "first", type_name="sms")
    install_dist("nk-second", "second", type_name="sms")
    with pytest.raises(ConfigError) as info:
        provider_types(get_plugin_manager())
    message = str(info.value)
    assert "'sms'" in message and "nk-first" in message and "nk-second" in message


def test_two_distributions_with_one_entry_point_name_are_both_loaded(
    install_dist: InstallDist, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFYKIT_LOAD_PLUGINS", "same")
    install_dist("nk-first", "same", type_name="alpha")
    install_dist("nk-second", "same", type_name="beta")
    types = provider_types(get_plugin_manager())
    assert types["alpha"].distribution == "nk-first"
    assert types["beta"].distribution == "nk-second"


def test_a_type_name_clashing_with_a_builtin_names_both(
    install_dist: InstallDist, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFYKIT_LOAD_PLUGINS", "fake")
    install_dist("nk-fake-memory", "fake", type_name="memory")
    with pytest.raises(
        ConfigError,
        match=r"'memory'.*'notifykit'.*'nk-fake-memory'|'memory'.*'nk-fake-memory'.*'notifykit'",
    ):
        provider_types(get_plugin_manager())


def test_a_plugin_that_fails_to_import_is_a_config_error(
    install_dist: InstallDist, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFYKIT_LOAD_PLUGINS", "broken")
    install_dist("nk-broken", "broken", "import nk_module_that_does_not_exist\n")
    with pytest.raises(ConfigError, match=r"plugin 'broken'.*'nk-broken'.*failed to load"):
        get_plugin_manager()


class _Plain:
    name = "plain"


class _NoSend(SmsProvider[MemoryOptions]):
    name: ClassVar[str] = "nosend"
    Options: ClassVar[Any] = MemoryOptions


class _BadOptions(SmsProvider[Any]):
    name: ClassVar[str] = "badoptions"
    Options: ClassVar[Any] = dict

    async def send(self, message: Any) -> SendReceipt:
        return SendReceipt()


class _NoName(SmsProvider[MemoryOptions]):
    Options: ClassVar[Any] = MemoryOptions

    async def send(self, message: Any) -> SendReceipt:
        return SendReceipt()


@pytest.mark.parametrize(
    ("cls", "expected"),
    [
        (_Plain, "not a SmsProvider subclass"),
        ("not even a class", "not a SmsProvider subclass"),
        (_NoSend, "does not implement send"),
        (_BadOptions, "Options must subclass"),
        (_NoName, "has no valid `name`"),
    ],
)
def test_a_registered_class_that_is_not_a_usable_provider_is_refused(
    cls: Any, expected: str
) -> None:
    class Plugin:
        @hookimpl
        def register_providers(self, register: Any) -> None:
            register(cls)

    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(Plugin(), name="bad-plugin")
    with pytest.raises(ConfigError, match=re.escape(expected)) as info:
        provider_types(pm)
    assert "bad-plugin" in str(info.value)


def test_a_misspelt_hook_fails_check_pending() -> None:
    class Typo:
        @hookimpl
        def register_provider(self, register: Any) -> None:  # missing the final "s"
            raise AssertionError("never called")

    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(Typo(), name="typo")
    with pytest.raises(ConfigError, match=r"unknown hook.*register_provider"):
        check_pending(pm)


def test_a_misspelt_hook_in_an_installed_plugin_fails_discovery(
    install_dist: InstallDist, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFYKIT_LOAD_PLUGINS", "typo")
    install_dist(
        "nk-typo",
        "typo",
        "from notifykit import hookimpl\n\n@hookimpl\ndef on_events(event):\n    pass\n",
    )
    with pytest.raises(ConfigError, match=r"'nk-typo'.*unknown hook.*on_events"):
        get_plugin_manager()


def test_a_hook_with_a_wrong_argument_name_is_a_config_error(
    install_dist: InstallDist, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFYKIT_LOAD_PLUGINS", "wrong")
    install_dist(
        "nk-wrong",
        "wrong",
        "from notifykit import hookimpl\n\n@hookimpl\ndef register_providers(registrar):\n    pass\n",
    )
    with pytest.raises(ConfigError, match="plugin 'wrong' from 'nk-wrong' is invalid"):
        get_plugin_manager()


def test_an_exception_inside_a_plugin_hook_is_translated() -> None:
    class Exploding:
        @hookimpl
        def register_providers(self, register: Any) -> None:
            raise KeyError("boom")

    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(Exploding(), name="exploding")
    with pytest.raises(ConfigError, match="'exploding' failed in register_providers: KeyError"):
        provider_types(pm)


def test_registration_does_not_depend_on_hook_order() -> None:
    def make(type_name: str) -> object:
        cls = type(
            f"P_{type_name}",
            (SmsProvider,),
            {
                "name": type_name,
                "Options": MemoryOptions,
                "send": lambda self, message: SendReceipt(),
            },
        )

        class Plugin:
            @hookimpl
            def register_providers(self, register: Any) -> None:
                register(cls)

        return Plugin()

    orders = []
    for names in (["a1", "b2", "c3"], ["c3", "b2", "a1"]):
        pm = get_plugin_manager(load_entrypoints=False)
        for name in names:
            pm.register(make(name), name=name)
        orders.append(list(provider_types(pm)))
    assert orders[0] == orders[1] == ["a1", "b2", "c3", "console", "memory"]


def test_every_hook_is_documented() -> None:
    specs = [
        fn
        for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(fn, "notifykit_spec")
    ]
    assert {fn.__name__ for fn in specs} >= {"register_providers", "on_event"}
    for fn in specs:
        doc = inspect.getdoc(fn) or ""
        for param in inspect.signature(fn).parameters:
            assert f":param {param}:" in doc, f"{fn.__name__}: parameter {param} undocumented"
        assert ":returns:" in doc and "firstresult" in doc, fn.__name__
