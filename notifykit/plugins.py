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
from notifykit.provider import ProviderOptions, SmsProvider, TemplateOptions
from notifykit.sandbox import Sandbox

__all__ = [
    "DEFAULT_PLUGINS",
    "ENTRY_POINT_GROUP",
    "LOAD_PLUGINS_ENV",
    "Registered",
    "check_pending",
    "get_plugin_manager",
    "provider_types",
    "sandbox_types",
]

ENTRY_POINT_GROUP = "notifykit"
DEFAULT_PLUGINS = ("notifykit.default_plugins.console", "notifykit.default_plugins.memory")
LOAD_PLUGINS_ENV = "NOTIFYKIT_LOAD_PLUGINS"


# Which distribution each loaded plugin object came from, for error messages and listings.
_DISTRIBUTIONS: dict[int, str] = {}


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
        _register(pm, module, module_name, "notifykit")
    if load_entrypoints:
        _load_entrypoints(pm)
    check_pending(pm)
    return pm


def check_pending(pm: pluggy.PluginManager) -> None:
    """Fail on a hook implementation that matches no hook spec (a misspelt hook name)."""
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise ConfigError(
            f"plugin {_label(exc.plugin)!r} implements an unknown hook: {exc}"
        ) from exc


def _label(plugin: object) -> str:
    known = _DISTRIBUTIONS.get(id(plugin))
    return known if known is not None else str(getattr(plugin, "__name__", type(plugin).__name__))


def _register(pm: pluggy.PluginManager, plugin: object, name: str, distribution: str) -> None:
    _DISTRIBUTIONS[id(plugin)] = distribution
    try:
        pm.register(plugin, name=name)
    except (pluggy.PluginValidationError, ValueError) as exc:
        raise ConfigError(f"plugin {name!r} from {distribution!r} is invalid: {exc}") from exc


def _load_entrypoints(pm: pluggy.PluginManager) -> None:
    wanted_env = os.environ.get(LOAD_PLUGINS_ENV)
    wanted = None if wanted_env is None else {n.strip() for n in wanted_env.split(",") if n.strip()}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if wanted is not None and ep.name not in wanted:
            continue
        distribution = ep.dist.name if ep.dist is not None else ep.name
        try:
            plugin = ep.load()
        except Exception as exc:
            raise ConfigError(
                f"plugin {ep.name!r} ({ep.value}) from {distribution!r} failed to load: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        if pm.is_registered(plugin):
            continue  # the same distribution found twice on sys.path
        # Two distributions may pick the same entry point name; both load, so that a type
        # name they both register is reported rather than one of them silently dropped.
        name = ep.name if pm.get_plugin(ep.name) is None else f"{ep.name}@{distribution}"
        _register(pm, plugin, name, distribution)


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

        try:
            impl.function(register=register)
        except ConfigError:
            raise
        except Exception as exc:
            raise ConfigError(
                f"plugin {distribution!r} failed in {hook_name}: {type(exc).__name__}: {exc}"
            ) from exc
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
                f"provider {name!r} from {distribution!r}: Options must subclass "
                "notifykit.ProviderOptions"
            )
        template_options = getattr(cls, "TemplateOptions", None)
        if not (
            inspect.isclass(template_options) and issubclass(template_options, TemplateOptions)
        ):
            raise ConfigError(
                f"provider {name!r} from {distribution!r}: "
                "TemplateOptions must subclass notifykit.TemplateOptions"
            )
        if inspect.isabstract(cls):
            raise ConfigError(f"provider {name!r} from {distribution!r} does not implement send()")


def provider_types(pm: pluggy.PluginManager) -> dict[str, Registered]:
    """Every registered provider type by name."""
    return _collect(pm, "register_providers", SmsProvider, "provider")


def sandbox_types(pm: pluggy.PluginManager) -> dict[str, Registered]:
    """Every registered sandbox by name."""
    return _collect(pm, "register_sandboxes", Sandbox, "sandbox")
