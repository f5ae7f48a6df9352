"""Plugin discovery: the plugin manager, the one way hook implementations are called, and
the registries built from the registration hooks.

Every hook is called through :func:`call_each` (or :func:`acall_each` for ``on_event``):
each implementation on its own, in pluggy's order, so that one plugin's failure neither
stops the others nor hides which plugin failed. A failure is logged and reported by its
plugin, distribution and exception class, never its message (a plugin's message may hold
an option value or a vendor answer); the caller decides whether it is fatal (registration:
:class:`~notifykit.errors.ConfigError`; observers: logged, the event still acknowledged).
"""

from __future__ import annotations

import importlib.metadata
import inspect
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pluggy

from notifykit import hookspecs
from notifykit.errors import ConfigError
from notifykit.log import get_logger
from notifykit.provider import ProviderOptions, SmsProvider, TemplateOptions
from notifykit.sandbox import Sandbox

__all__ = [
    "ASYNC_HOOKS",
    "DEFAULT_PLUGINS",
    "ENTRY_POINT_GROUP",
    "LOAD_PLUGINS_ENV",
    "HookFailure",
    "NotifykitPluginManager",
    "Registered",
    "acall_each",
    "call_each",
    "check_pending",
    "distribution_of",
    "get_plugin_manager",
    "provider_types",
    "sandbox_types",
]

ENTRY_POINT_GROUP = "notifykit"
DEFAULT_PLUGINS = ("notifykit.default_plugins.console", "notifykit.default_plugins.memory")
LOAD_PLUGINS_ENV = "NOTIFYKIT_LOAD_PLUGINS"

ASYNC_HOOKS = frozenset({"on_event"})
"""Hooks whose implementations may be ``async def`` (they are awaited); every other hook is
called from synchronous code, so a coroutine function implementing it is refused."""

log = get_logger("notifykit.plugins")


class NotifykitPluginManager(pluggy.PluginManager):
    """pluggy's manager, plus which distribution registered each plugin, by plugin name
    (names are unique within a manager), and the checks that make :func:`call_each` safe.

    ``register(plugin, name=None, distribution=None)``: ``distribution`` defaults to the
    plugin's registered name. Refused with :class:`pluggy.PluginValidationError`: a hook
    wrapper (notifykit calls each implementation on its own, so a wrapper would never
    wrap anything) and an ``async def`` implementation of a hook not in
    :data:`ASYNC_HOOKS`.
    """

    def __init__(self) -> None:
        super().__init__(ENTRY_POINT_GROUP)
        self.distributions: dict[str, str] = {}

    def register(
        self, plugin: object, name: str | None = None, *, distribution: str | None = None
    ) -> str | None:
        registered = super().register(plugin, name=name)
        if registered is None:
            return None  # blocked by name (pluggy's ``set_blocked``)
        try:
            _check_implementations(self, plugin)
        except pluggy.PluginValidationError:
            self.unregister(plugin)
            raise
        self.distributions[registered] = distribution if distribution is not None else registered
        return registered

    def unregister(self, plugin: object | None = None, name: str | None = None) -> Any:
        if name is None and plugin is not None:
            name = self.get_name(plugin)
        removed = super().unregister(plugin, name)
        if name is not None:
            self.distributions.pop(name, None)
        return removed


def _check_implementations(pm: pluggy.PluginManager, plugin: object) -> None:
    for caller in pm.get_hookcallers(plugin) or ():
        for impl in caller.get_hookimpls():
            if impl.plugin is not plugin:
                continue
            if impl.hookwrapper or impl.wrapper:
                raise pluggy.PluginValidationError(
                    plugin,
                    f"{caller.name} is a hook wrapper; notifykit calls each implementation "
                    "on its own, so wrappers are not supported",
                )
            if caller.name not in ASYNC_HOOKS and inspect.iscoroutinefunction(impl.function):
                raise pluggy.PluginValidationError(
                    plugin, f"{caller.name} must be a plain function, not async def"
                )


def distribution_of(pm: pluggy.PluginManager, plugin_name: str) -> str:
    """The distribution that registered the plugin named ``plugin_name`` in ``pm``, or the
    name itself (a plugin registered on a plain :class:`pluggy.PluginManager`)."""
    if isinstance(pm, NotifykitPluginManager):
        return pm.distributions.get(plugin_name, plugin_name)
    return plugin_name


@dataclass(frozen=True)
class HookFailure:
    """One implementation that raised (or broke the hook's rules): ``hook``, the registered
    ``plugin`` name, its ``distribution`` and ``error_type`` (the exception's class name).
    The exception itself is kept in ``error`` for chaining, but out of ``repr`` and
    ``str``: its message may hold a secret."""

    hook: str
    plugin: str
    distribution: str
    error: Exception = field(repr=False, compare=False)

    @property
    def error_type(self) -> str:
        return type(self.error).__name__

    def __str__(self) -> str:
        return f"plugin {self.distribution!r} failed in {self.hook}: {self.error_type}"


def _order(pm: pluggy.PluginManager, hook_name: str) -> list[pluggy.HookImpl]:
    # pluggy calls the last of get_hookimpls() first (tryfirst/trylast already sorted in).
    return list(reversed(getattr(pm.hook, hook_name).get_hookimpls()))


def _call_one(impl: pluggy.HookImpl, hook_name: str, kwargs: Mapping[str, Any]) -> object:
    if impl.hookwrapper or impl.wrapper:  # a plain PluginManager did not refuse it
        raise TypeError(f"{hook_name}: hook wrappers are not supported")
    # As pluggy does: an implementation may take any subset of the spec's arguments.
    return impl.function(*[kwargs[name] for name in impl.argnames])


def _arguments(
    impl: pluggy.HookImpl,
    kwargs: Mapping[str, Any],
    per_plugin: Callable[[str], Mapping[str, Any]] | None,
) -> Mapping[str, Any]:
    return kwargs if per_plugin is None else {**kwargs, **per_plugin(impl.plugin_name)}


def _failed(
    pm: pluggy.PluginManager,
    hook_name: str,
    impl: pluggy.HookImpl,
    exc: Exception,
    log_fields: Mapping[str, object] | None,
) -> HookFailure:
    failure = HookFailure(
        hook=hook_name,
        plugin=impl.plugin_name,
        distribution=distribution_of(pm, impl.plugin_name),
        error=exc,
    )
    log.error(
        "plugin_hook_failed",
        hook=hook_name,
        plugin=failure.plugin,
        distribution=failure.distribution,
        error_type=failure.error_type,
        **dict(log_fields or {}),
    )
    return failure


def call_each(
    pm: pluggy.PluginManager,
    hook_name: str,
    /,
    *,
    log_fields: Mapping[str, object] | None = None,
    per_plugin: Callable[[str], Mapping[str, Any]] | None = None,
    **kwargs: Any,
) -> list[HookFailure]:
    """Call every implementation of the synchronous hook ``hook_name`` with ``kwargs``,
    each on its own, in pluggy's order (last registered first, ``tryfirst``/``trylast``
    honoured). An implementation that raises, or returns an awaitable (the hook is not in
    :data:`ASYNC_HOOKS`), does not stop the others: it is logged at ERROR as
    ``plugin_hook_failed`` (hook, plugin, distribution, error class and ``log_fields``;
    never the message) and returned, in call order. Never raises for a plugin's fault.

    ``per_plugin(plugin_name)``, if given, adds arguments for that plugin alone (a
    ``register`` callback that knows which distribution is calling)."""
    failures: list[HookFailure] = []
    for impl in _order(pm, hook_name):
        try:
            outcome = _call_one(impl, hook_name, _arguments(impl, kwargs, per_plugin))
            if inspect.isawaitable(outcome):
                _discard(outcome)
                raise TypeError(f"{hook_name} returned an awaitable; it must be synchronous")
        except Exception as exc:
            failures.append(_failed(pm, hook_name, impl, exc, log_fields))
    return failures


async def acall_each(
    pm: pluggy.PluginManager,
    hook_name: str,
    /,
    *,
    log_fields: Mapping[str, object] | None = None,
    per_plugin: Callable[[str], Mapping[str, Any]] | None = None,
    **kwargs: Any,
) -> list[HookFailure]:
    """:func:`call_each` for a hook that may be implemented with ``async def`` (those in
    :data:`ASYNC_HOOKS`): an awaitable an implementation returns is awaited before the
    next implementation is called; its exception is reported the same way."""
    failures: list[HookFailure] = []
    for impl in _order(pm, hook_name):
        try:
            outcome = _call_one(impl, hook_name, _arguments(impl, kwargs, per_plugin))
            if inspect.isawaitable(outcome):
                await outcome
        except Exception as exc:
            failures.append(_failed(pm, hook_name, impl, exc, log_fields))
    return failures


def _discard(outcome: Awaitable[Any]) -> None:
    close = getattr(outcome, "close", None)  # a coroutine: no "never awaited" warning
    if callable(close):
        close()


@dataclass(frozen=True)
class Registered:
    """A class a plugin registered, and the distribution it came from."""

    name: str
    cls: type[Any]
    distribution: str


def get_plugin_manager(*, load_entrypoints: bool = True) -> NotifykitPluginManager:
    """A fresh plugin manager with the built-in plugins and, unless told otherwise, the
    installed ones (entry point group ``notifykit``, limited by ``NOTIFYKIT_LOAD_PLUGINS``:
    comma-separated entry point names, empty for none).

    :raises ConfigError: a plugin that fails to import, implements an unknown hook, or
        breaks a rule of :class:`NotifykitPluginManager`.
    """
    pm = NotifykitPluginManager()
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
            f"plugin {_label(pm, exc.plugin)!r} implements an unknown hook: {exc}"
        ) from exc


def _label(pm: pluggy.PluginManager, plugin: object) -> str:
    name = pm.get_name(plugin)
    if name is not None:
        return distribution_of(pm, name)
    return str(getattr(plugin, "__name__", type(plugin).__name__))


def _register(pm: NotifykitPluginManager, plugin: object, name: str, distribution: str) -> None:
    try:
        pm.register(plugin, name=name, distribution=distribution)
    except (pluggy.PluginValidationError, ValueError) as exc:
        raise ConfigError(f"plugin {name!r} from {distribution!r} is invalid: {exc}") from exc


def _load_entrypoints(pm: NotifykitPluginManager) -> None:
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
    refused: list[ConfigError] = []

    # Each implementation gets its own register callback, so that every class is recorded
    # with the distribution that registered it; the result never depends on call order.
    # A refusal is recorded, not raised through the plugin's code (which might catch it).
    def arguments(plugin_name: str) -> dict[str, Any]:
        distribution = distribution_of(pm, plugin_name)

        def register(cls: type[Any], _dist: str = distribution) -> None:
            try:
                _validate(cls, base, what, _dist)
                name = cls.name
                if name in found and found[name].cls is not cls:
                    raise ConfigError(
                        f"{what} type {name!r} is registered by two distributions: "
                        f"{found[name].distribution!r} and {_dist!r}"
                    )
            except ConfigError as exc:
                refused.append(exc)
                return
            found[name] = Registered(name=name, cls=cls, distribution=_dist)

        return {"register": register}

    failures = call_each(pm, hook_name, per_plugin=arguments)
    if refused:
        raise refused[0]
    if failures:
        raise ConfigError(str(failures[0])) from failures[0].error
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
