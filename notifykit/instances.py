"""Building provider instances from the configuration and the registered provider types."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import httpx
from pydantic import SecretStr, ValidationError

from notifykit.config import Config, format_validation_error
from notifykit.errors import ConfigError
from notifykit.http import HttpxPoolTransport
from notifykit.plugins import Registered
from notifykit.provider import ProviderContext, SmsProvider, TemplateOptions

__all__ = ["TransportFactory", "build_providers", "callback_path"]

TransportFactory = Callable[[str], httpx.AsyncBaseTransport | None]


def callback_path(config: Config, instance: str) -> SecretStr:
    """The receiver's path for ``instance``: ``/callbacks/<instance>[/<token>]`` (a secret)."""
    path = f"/callbacks/{instance}"
    if config.callbacks.token is not None:
        path += f"/{config.callbacks.token.get_secret_value()}"
    return SecretStr(path)


def build_providers(
    config: Config,
    types: Mapping[str, Registered],
    *,
    transport: httpx.AsyncBaseTransport | TransportFactory | None = None,
) -> dict[str, SmsProvider[Any]]:
    """One provider object per ``[providers.<instance>]``, options and templates validated.

    Raises :class:`ConfigError` naming the key (``providers.primary.app_key: ...``).
    """
    built: dict[str, SmsProvider[Any]] = {}
    for instance, section in config.providers.items():
        registered = types.get(section.type)
        if registered is None:
            where = f"{config.source}: " if config.source else ""
            raise ConfigError(
                f"{where}providers.{instance}.type: unknown provider type {section.type!r} "
                f"(installed: {', '.join(sorted(types)) or 'none'})"
            )
        cls: type[SmsProvider[Any]] = registered.cls
        try:
            options = cls.Options.model_validate(section.options)
        except ValidationError as exc:
            raise ConfigError(
                format_validation_error(
                    exc, config.source, f"providers.{instance}", model=cls.Options
                )
            ) from None
        templates: dict[str, TemplateOptions] = {}
        for template, per_instance in config.templates.items():
            if instance not in per_instance:
                continue
            try:
                templates[template] = cls.TemplateOptions.model_validate(per_instance[instance])
            except ValidationError as exc:
                raise ConfigError(
                    format_validation_error(
                        exc,
                        config.source,
                        f"templates.{template}.{instance}",
                        model=cls.TemplateOptions,
                    )
                ) from None
        path = callback_path(config, instance)
        public = config.callbacks.public_url
        context = ProviderContext(
            instance=instance,
            secrets=tuple(
                s for s in (config.callbacks.token, config.verify.secret) if s is not None
            ),
            callback_path=path,
            callback_url=None if public is None else SecretStr(public + path.get_secret_value()),
            transport=_transport_for(config, instance, transport),
        )
        try:
            built[instance] = cls(options, context=context, templates=templates)
        except ConfigError:
            raise
        except Exception as exc:
            # A plugin bug must not surface as a foreign exception; its text may hold an
            # option value, so only the type is named.
            raise ConfigError(
                f"{config.source + ': ' if config.source else ''}providers.{instance}: "
                f"provider type {section.type!r} "
                f"({registered.distribution}) failed to start: {type(exc).__name__}"
            ) from exc
    return built


def _transport_for(
    config: Config, instance: str, transport: httpx.AsyncBaseTransport | TransportFactory | None
) -> httpx.AsyncBaseTransport | None:
    if isinstance(transport, httpx.AsyncBaseTransport):
        # One transport handed to every instance: closing one provider must not close it
        # under the others; it stays its owner's to close.
        return _Borrowed(transport)
    if transport is not None:
        return transport(instance)
    if config.http.transport == "httpx":
        return HttpxPoolTransport(max_connections=100)
    return None


class _Borrowed(httpx.AsyncBaseTransport):
    """A transport shared by several providers, which none of them closes."""

    def __init__(self, transport: httpx.AsyncBaseTransport) -> None:
        self._transport = transport

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._transport.handle_async_request(request)

    async def aclose(self) -> None:
        """Leave the shared transport open."""
