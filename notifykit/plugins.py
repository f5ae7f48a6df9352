"""Plugin discovery: the plugin manager, and the registries built from its hooks."""

from __future__ import annotations

import importlib.metadata
import inspect
import os
from dataclasses import dataclass
from typing import Any

import pluggy

from notifykit import hookspecs
from notifykit.errors import ConfigError
from notifykit.provider import ProviderOptions, SmsProvider
from notifykit.sandbox import Sandbox

__all__ = [
    "DEFAULT_PLUGINS",
    "ENTRY_POINT_GROUP",
    "Registered",
    "get_plugin_manager",
    "provider_types",
    "sandbox_types",
]

ENTRY_POINT_GROUP = "notifykit"
DEFAULT_PLUGINS = ("notifykit.default_plugins.console", "notifykit.default_plugins.memory")
LOAD_PLUGINS_ENV = "NOTIFYKIT_LOAD_PLUGINS"


@dataclass(frozen=True)
class Registered:
    """A class a plugin registered, and the distribution it came from."""

    name: str
    cls: type[Any]
    distribution: str


def get_plugin_manager(*, load_entrypoints: bool = True) -> pluggy.PluginManager:
    """A fresh plugin manager with the built-in plugins and, unless told otherwise, the
    installed ones (entry point group ``notifykit``, limited by ``NOTIFYKIT_LOAD_PLUGINS``:
    comma-separated entry point names, empty for none)."""
    pm = pluggy.PluginManager("notifykit")
    pm.add_hookspecs(hookspecs)
    for module_name in DEFAULT_PLUGINS:
        module = importlib.import_module(module_name)
        pm.register(module, name=module_name)
        _DISTRIBUTIONS[id(module)] = "notifykit"
    if load_entrypoints:
        _load_entrypoints(pm)
    pm.check_pending()
    return pm


# Which distribution each loaded plugin object came from, for error messages and listings.
_DISTRIBUTIONS: dict[int, str] = {}


def _load_entrypoints(pm: pluggy.PluginManager) -> None:
    wanted_env = os.environ.get(LOAD_PLUGINS_ENV)
    wanted = None if wanted_env is None else {n.strip() for n in wanted_env.split(",") if n.strip()}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if wanted is not None and ep.name not in wanted:
            continue
        if pm.get_plugin(ep.name) is not None:
            continue
        try:
            plugin = ep.load()
        except Exception as exc:
            raise ConfigError(f"plugin {ep.name!r} ({ep.value}) failed to load: {exc}") from exc
        pm.register(plugin, name=ep.name)
        _DISTRIBUTIONS[id(plugin)] = ep.dist.name if ep.dist is not None else ep.name


def _collect(
    pm: pluggy.PluginManager, hook_name: str, base: type[Any], what: str
) -> dict[str, Registered]:
    found: dict[str, Registered] = {}
    hook = getattr(pm.hook, hook_name)
    # Each implementation gets its own register callback, so that every class is recorded
    # with the distribution that registered it; the result never depends on call order.
    for impl in hook.get_hookimpls():
        distribution = _DISTRIBUTIONS.get(id(impl.plugin), impl.plugin_name)

        def register(cls: type[Any], _dist: str = distribution) -> None:
            _validate(cls, base, what, _dist)
            name = cls.name
            if name in found and found[name].cls is not cls:
                raise ConfigError(
                    f"{what} type {name!r} is registered by two distributions: "
                    f"{found[name].distribution!r} and {_dist!r}"
                )
            found[name] = Registered(name=name, cls=cls, distribution=_dist)

        impl.function(register=register)
    return dict(sorted(found.items()))


def _validate(cls: Any, base: type[Any], what: str, distribution: str) -> None:
    if not (inspect.isclass(cls) and issubclass(cls, base)):
        raise ConfigError(
            f"{distribution!r} registered {cls!r}, which is not a {base.__name__} subclass"
        )
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name.isidentifier():
        raise ConfigError(
            f"{what} class {cls.__qualname__} from {distribution!r} has no valid `name`"
        )
    if base is SmsProvider:
        options = getattr(cls, "Options", None)
        if not (inspect.isclass(options) and issubclass(options, ProviderOptions)):
            raise ConfigError(
                f"provider {name!r} from {distribution!r}: Options must subclass ProviderOptions"
            )
        if inspect.isabstract(cls):
            raise ConfigError(f"provider {name!r} from {distribution!r} does not implement send()")


def provider_types(pm: pluggy.PluginManager) -> dict[str, Registered]:
    """Every registered provider type by name."""
    return _collect(pm, "register_providers", SmsProvider, "provider")


def sandbox_types(pm: pluggy.PluginManager) -> dict[str, Registered]:
    """Every registered sandbox by name."""
    return _collect(pm, "register_sandboxes", Sandbox, "sandbox")
