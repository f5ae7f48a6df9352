"""Configuration: a TOML file, validated by pydantic, with ``${ENV_VAR}`` interpolation.

Found at ``--config FILE``, else ``$NOTIFYKIT_CONFIG``, else ``./notifykit.toml``, else the
built-in default, which sends through the ``console`` provider. Errors name the key and
what is wrong, never the value (it may be a secret).
"""

from __future__ import annotations

import difflib
import math
import os
import re
import tomllib
import types
import typing
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import phonenumbers
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    SerializerFunctionWrapHandler,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

from notifykit.errors import ConfigError

__all__ = [
    "BreakerConfig",
    "CallbacksConfig",
    "Config",
    "ConsoleFallbackWarning",
    "Duration",
    "HttpConfig",
    "ProviderConfig",
    "RegionCode",
    "RetryConfig",
    "RouteRule",
    "RoutingConfig",
    "SharedStateConfig",
    "StoreConfig",
    "VerifyConfig",
    "find_config_path",
    "format_validation_error",
    "load_config",
    "mask_url_password",
    "parse_duration",
    "parse_region",
]

CONFIG_ENV = "NOTIFYKIT_CONFIG"
DEFAULT_FILENAME = "notifykit.toml"
DEFAULT_SOURCE = "built-in default"
"""``Config.source`` of the built-in default (no configuration file found)."""

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: Any) -> float:
    """Seconds from a number or a string such as ``"250ms"``, ``"60s"``, ``"5m"``, ``"24h"``."""
    if isinstance(value, bool):
        raise ValueError('expected a duration such as 60, "60s", "5m"')
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    else:
        raise ValueError('expected a duration such as 60, "60s", "5m"')
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]
"""Seconds, written as a number or a string with a unit: every duration in the
configuration, a plugin's included, is this type (add ``Field(gt=0)`` and friends)."""


def parse_region(value: Any) -> str:
    """An ISO 3166 region code that phonenumbers knows (``"cn"`` -> ``"CN"``)."""
    if isinstance(value, str):
        code = value.strip().upper()
        if code in phonenumbers.SUPPORTED_REGIONS:
            return code
    raise ValueError("expected an ISO 3166 two-letter region code such as CN or US")


RegionCode = Annotated[str, BeforeValidator(parse_region)]
"""A destination region: every region code in the configuration is this type."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class ProviderConfig(BaseModel):
    """``[providers.<instance>]``: ``type`` plus the provider type's own options.

    The options stay raw until the provider type validates them (into ``SecretStr`` and
    friends), so neither the repr nor a dump of this section shows their values.
    """

    model_config = ConfigDict(extra="allow", frozen=True, hide_input_in_errors=True)

    type: str = Field(min_length=1)

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    @model_serializer(mode="wrap")
    def _hide_options(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Which options are secrets only the provider type knows: dump none of the values.
        data: dict[str, Any] = handler(self)
        return {k: (v if k == "type" else "**********") for k, v in data.items()}

    def __repr_args__(self) -> Any:
        # The options are raw until the provider type validates them into SecretStr and
        # friends: show their names only, never their values.
        yield "type", self.type
        yield "options", sorted(self.model_extra or {})


class RetryConfig(_Section):
    """Retries of the same provider, only where the request never reached the vendor."""

    attempts: int = Field(default=3, ge=1, le=10)
    """Tries of one provider in all, the first included."""
    initial_delay: Duration = 0.05
    max_delay: Duration = 1.0

    @field_validator("max_delay")
    @classmethod
    def _delays(cls, value: float, info: ValidationInfo) -> float:
        if value < info.data.get("initial_delay", 0.0):
            raise ValueError("must not be shorter than initial_delay")
        return value


class BreakerConfig(_Section):
    failure_threshold: int = Field(default=5, ge=1)
    """Consecutive vendor-side failures that open the breaker."""
    cooldown: Duration = 30.0
    """How long an open breaker skips the provider before letting one probe through."""
    account_cooldown: Duration = 300.0
    """How long an account-level failure (balance, quota, credentials) takes the
    instance out of rotation."""


Strategy = Literal["priority", "weighted"]


class RouteRule(_Section):
    """``[[routing.rules]]``: the first rule whose conditions all match chooses the route."""

    country: list[RegionCode] | None = None
    template: list[str] | None = None
    tags: list[str] | None = None
    providers: list[str] = Field(min_length=1)
    strategy: Strategy | None = None
    weights: dict[str, float] | None = None


class RoutingConfig(_Section):
    providers: list[str] = Field(default_factory=list)
    strategy: Strategy = "priority"
    weights: dict[str, float] = Field(default_factory=dict)
    rules: list[RouteRule] = Field(default_factory=list)
    on_unknown_outcome: Literal["stop", "failover"] = "stop"
    on_recipient_rate_limited: Literal["stop", "failover"] = "stop"
    deadline: Duration = Field(default=30.0, gt=0)
    """The whole send, every attempt and retry included, in seconds."""
    retry: RetryConfig = Field(default_factory=RetryConfig)
    breaker: BreakerConfig = Field(default_factory=BreakerConfig)
    recipient_min_interval: Annotated[Duration, Field(gt=0)] | None = None
    idempotency_ttl: Duration = Field(default=86400.0, gt=0)


_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_URL_PASSWORD = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://[^:/@]*:)([^@]*)(@)")
# A password given as a query parameter: libpq reads ``?password=`` and ``?sslpassword=``,
# redis-py ``?password=``; any parameter whose name holds "password" is hidden.
_QUERY_PASSWORD = re.compile(r"([?&][^=&#]*password[^=&#]*=)([^&#]*)", re.IGNORECASE)


def mask_url_password(url: str) -> str:
    """``url`` with every password in it replaced by ``***``: the one of its
    ``user:password@`` part and the value of any query parameter whose name holds
    ``password`` (``?password=``, ``?sslpassword=``), as PostgreSQL and Redis URLs may
    carry either."""
    return _QUERY_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1***\3", url))


class StoreConfig(_Section):
    """``[store]``: where messages, callbacks and guards are kept.

    ``url`` may hold a password (``postgresql://user:${PGPASSWORD}@host/db``): the repr,
    a dump and every error show it as ``***``.
    """

    model_config = ConfigDict(populate_by_name=True)

    url: str = "memory://"
    fsync: bool = False
    """Whether each commit is flushed to disk (SQLite ``synchronous=FULL``) so that it
    survives a power cut, not only a killed process. Costs throughput: docs/benchmarks.md."""
    timeout: Duration = Field(default=5.0, gt=0)
    """How long a store operation may wait (e.g. for a lock) before it fails."""
    recovery_interval: Duration = 60.0
    """Seconds between two recovery sweeps in an open notifier (0: only the sweep when it
    opens the store). See :mod:`notifykit.recovery`."""
    schema_name: str = Field(default="notifykit", alias="schema")
    """PostgreSQL only: the schema that holds notifykit's tables, apart from the
    application's (created when missing)."""
    pool_min_size: int = Field(default=1, ge=0)
    """PostgreSQL only: connections the pool keeps open when idle."""
    pool_max_size: int = Field(default=10, ge=1)
    """PostgreSQL only: connections the pool opens at most (per process)."""
    migrate: bool = True
    """PostgreSQL only: bring an old schema up to date on open. ``false``: refuse to start
    on an old schema (migrate in a deploy step with ``notifykit store migrate``)."""

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        scheme, sep, rest = value.partition("://")
        if not sep or not re.fullmatch(r"[a-z][a-z0-9+.-]*", scheme):
            raise ValueError("expected a URL such as memory:// or sqlite:///notifykit.db")
        if scheme == "sqlite" and (not rest.startswith("/") or not rest.strip("/")):
            raise ValueError(
                "a SQLite URL has three slashes and a path: sqlite:///notifykit.db "
                "(relative) or sqlite:////var/lib/notifykit.db (absolute)"
            )
        return value

    @field_validator("schema_name")
    @classmethod
    def _schema_name(cls, value: str) -> str:
        if not _SCHEMA_NAME.fullmatch(value):
            raise ValueError(
                "expected a plain lower-case identifier (a-z, 0-9 and _, not starting with a "
                "digit, at most 63 characters)"
            )
        return value

    @model_validator(mode="after")
    def _pool_sizes(self) -> StoreConfig:
        if self.pool_min_size > self.pool_max_size:
            raise ValueError("pool_min_size: cannot exceed pool_max_size")
        return self

    @model_serializer(mode="wrap")
    def _hide_password(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if isinstance(data.get("url"), str):
            data["url"] = mask_url_password(data["url"])
        return data

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            yield name, mask_url_password(value) if name == "url" else value


class SharedStateConfig(_Section):
    """``[shared_state]``: counters every instance shares (circuit breakers, account
    cooldowns, the recipient guard). Unset: each process keeps its own breakers and the
    recipient guard lives in the store."""

    url: str | None = None
    """``redis://host:6379/0`` (``rediss://`` for TLS); may hold a password, shown as ``***``."""
    key_prefix: str = "notifykit:"
    """Put before every key notifykit writes, so that one Redis can serve several apps."""
    timeout: Duration = 0.5
    """How long one Redis operation may take before the instance falls back to local state."""
    retry_after: Duration = 1.0
    """While Redis is unreachable, how long to wait before trying it again."""

    @field_validator("url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("expected a redis://, rediss:// or unix:// URL")
        return value

    @model_serializer(mode="wrap")
    def _hide_password(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if isinstance(data.get("url"), str):
            data["url"] = mask_url_password(data["url"])
        return data

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            yield name, mask_url_password(value) if name == "url" and value else value


class CallbacksConfig(_Section):
    token: SecretStr | None = None
    max_body_bytes: int = Field(default=65536, ge=1)
    dispatch_lease: Duration = Field(default=30.0, gt=0)
    """Seconds a receiver holds the events it hands to observers before another receiver
    sharing the store may take them over (after a crash: how long until they are retried)."""
    header_timeout: Duration = Field(default=5.0, gt=0)
    """``notifykit serve``: seconds a request may take to send its headers."""
    body_timeout: Duration = Field(default=10.0, gt=0)
    """``notifykit serve``: seconds a request may take to send its body after its headers."""
    max_connections: int = Field(default=500, ge=1)
    """``notifykit serve``: connections held at once; one more is answered 503 at once."""
    public_url: str | None = None
    """The receiver's externally visible base URL (``https://sms.example.com``), behind any
    proxy. Each instance's callback URL is ``public_url`` + ``/callbacks/<instance>`` (+
    ``/<token>``): vendors that sign over the URL (Twilio) verify against it."""

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")) or "?" in value or "#" in value:
            raise ValueError("must be an http(s) URL without query or fragment")
        return value.rstrip("/")


class HttpConfig(_Section):
    transport: Literal["aiohttp", "httpx"] = "aiohttp"
    """``aiohttp`` (the default: notifykit.http.AiohttpTransport) or httpx's own pool."""


MIN_VERIFY_SECRET = 16


class VerifyConfig(_Section):
    """``[verify]``: verification codes (notifykit.verify, docs/verify.md)."""

    secret: SecretStr | None = None
    """Keys every code (HMAC): required to use verification; at least 16 characters. Without
    it nobody, the store's reader included, can derive or test a code."""
    template: str = Field(default="verify_code", min_length=1)
    """The logical template a code is sent with."""
    code_param: str = Field(default="code", min_length=1)
    """The template parameter that carries the code."""
    code_length: int = Field(default=6, ge=4, le=8)
    """Digits per code (leading zeros allowed)."""
    ttl: Duration = Field(default=600.0, gt=0)
    """Seconds a code stays valid after its (last) SMS."""
    max_attempts: int = Field(default=5, ge=1)
    """Wrong guesses allowed per verification; the one that uses up the last locks it."""
    resend_interval: Duration = 60.0
    """Seconds from the last SMS to a number for a purpose before ``start`` may send another
    (Veesing's own one-a-minute rule)."""
    max_sends: int = Field(default=5, ge=1)
    """SMS per verification (the first and its resends)."""
    allowed_countries: list[str] | None = None
    """ISO 3166 regions codes may be sent to; unset: any. Any other number (and a number with
    no region) is refused before any vendor is paid: the defence against SMS pumping."""

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_VERIFY_SECRET:
            raise ValueError(f"must be at least {MIN_VERIFY_SECRET} characters")
        return value

    @field_validator("allowed_countries")
    @classmethod
    def _regions(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        regions = [code.strip().upper() for code in value]
        for code in regions:
            if len(code) != 2 or not code.isascii() or not code.isalpha():
                raise ValueError("expected ISO 3166 two-letter region codes such as CN or US")
        return regions


class Config(_Section):
    """The whole configuration file."""

    providers: dict[str, ProviderConfig] = Field(default_factory=dict)
    templates: dict[str, dict[str, dict[str, Any]]] = Field(default_factory=dict)
    routing: RoutingConfig = Field(default_factory=RoutingConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    callbacks: CallbacksConfig = Field(default_factory=CallbacksConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)
    shared_state: SharedStateConfig = Field(default_factory=SharedStateConfig)
    verify: VerifyConfig = Field(default_factory=VerifyConfig)
    source: str | None = Field(default=None, exclude=True)
    """Where this configuration came from (a path, or ``"built-in default"``)."""

    @model_validator(mode="after")
    def _check_references(self) -> Config:
        known = set(self.providers)
        for instance in self.providers:
            if not re.fullmatch(r"[A-Za-z0-9_-]+", instance):
                raise ValueError(
                    f"providers.{instance}: instance names may hold letters, digits, - and _"
                )
        refs = [
            ("routing.providers", self.routing.providers),
            ("routing.weights", list(self.routing.weights)),
        ]
        for i, rule in enumerate(self.routing.rules):
            refs.append((f"routing.rules[{i}].providers", rule.providers))
            refs.append((f"routing.rules[{i}].weights", list(rule.weights or {})))
        configured = ", ".join(self.providers) or "none"
        for where, names in refs:
            for name in names:
                if name not in known:
                    raise ValueError(
                        f"{where}: unknown provider {name!r} (configured: {configured})"
                    )
        routes = [("routing", self.routing.providers, self.routing.strategy, self.routing.weights)]
        for i, rule in enumerate(self.routing.rules):
            weights = self.routing.weights if rule.weights is None else rule.weights
            strategy = rule.strategy or self.routing.strategy
            routes.append((f"routing.rules[{i}]", rule.providers, strategy, weights))
        for where, providers, strategy, weights in routes:
            if len(set(providers)) != len(providers):
                raise ValueError(f"{where}.providers: an instance is listed twice")
            for name, weight in weights.items():
                if not math.isfinite(weight) or weight < 0:
                    raise ValueError(
                        f"{where}.weights.{name}: a weight must be a finite number >= 0"
                    )
            route = providers or list(self.providers)
            if strategy == "weighted" and route and not any(weights.get(n, 0) > 0 for n in route):
                raise ValueError(
                    f"{where}.weights: the weighted strategy needs a positive weight for at "
                    "least one provider on the route"
                )
        for template, per_instance in self.templates.items():
            for instance in per_instance:
                if instance not in known:
                    raise ValueError(
                        f"templates.{template}.{instance}: unknown provider {instance!r}"
                    )
        return self

    def default_route(self) -> list[str]:
        """``routing.providers``, or every configured instance in file order when unset."""
        return list(self.routing.providers) or list(self.providers)

    @classmethod
    def default(cls) -> Config:
        """The configuration used when no file is found: print messages to the console."""
        return cls(providers={"console": ProviderConfig(type="console")}, source=DEFAULT_SOURCE)

    @property
    def is_console_fallback(self) -> bool:
        """True for the built-in default used because no configuration file was found
        (:func:`load_config`): a try-out that prints messages and sends none."""
        return self.source == DEFAULT_SOURCE

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        *,
        source: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Config:
        """Validate a parsed configuration, interpolating ``${VAR}`` from ``environ``."""
        where = f"{source}: " if source else ""
        if "source" in data:
            raise ConfigError(f"{where}source: unknown key")
        missing: list[str] = []
        try:
            expanded = _interpolate(
                dict(data), os.environ if environ is None else environ, (), missing
            )
        except ConfigError as exc:
            raise ConfigError(where + exc.message) from None
        if missing:
            raise ConfigError(
                f"{where}environment variable{'s' if len(missing) > 1 else ''} not set: "
                + ", ".join(missing)
            )
        try:
            config = cls.model_validate({**expanded, "source": source})
        except ValidationError as exc:
            raise ConfigError(format_validation_error(exc, source, model=cls)) from None
        return config


def format_validation_error(
    exc: ValidationError,
    source: str | None = None,
    prefix: str = "",
    *,
    model: type[BaseModel] | None = None,
) -> str:
    """One line per problem, ``key: what is wrong``, without the offending values.

    With ``model`` (the class that was validated), an unknown key is answered with the
    closest known one (``timout: unknown key (did you mean 'timeout'?)``).
    """
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        key = prefix
        for part in error["loc"]:
            key += f"[{part}]" if isinstance(part, int) else f"{'.' if key else ''}{part}"
        msg = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            msg = _unknown_key(model, error["loc"])
        elif error["type"] == "missing":
            msg = "required, not set"
        problems.append(f"{key}: {msg}" if key else msg)
    where = f"{source}: " if source else ""
    return where + "; ".join(problems)


def _unknown_key(model: type[BaseModel] | None, loc: tuple[int | str, ...]) -> str:
    known = _keys_at(model, loc[:-1])
    close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
    if close:
        return f"unknown key (did you mean {close[0]!r}?)"
    if known:
        return f"unknown key (known: {', '.join(known)})"
    return "unknown key"


def _keys_at(model: type[BaseModel] | None, loc: tuple[int | str, ...]) -> list[str]:
    """The keys the section at ``loc`` inside ``model`` accepts ([] when unknown)."""
    annotation: Any = model
    for part in loc:
        annotation = _unwrap_optional(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            fields = annotation.model_fields
            field = fields.get(str(part)) or next(
                (f for f in fields.values() if f.alias == str(part)), None
            )
            if field is None:
                return []
            annotation = field.annotation
        elif typing.get_origin(annotation) in (dict, list):
            annotation = typing.get_args(annotation)[-1]
        else:
            return []
    annotation = _unwrap_optional(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        # a key as the file spells it: the alias where there is one (``schema``, not the
        # attribute ``schema_name``)
        return [
            field.alias or name
            for name, field in annotation.model_fields.items()
            if not field.exclude
        ]
    return []


def _unwrap_optional(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


# ``$${`` is a literal ``${``; any other ``${`` that is not a well-formed reference is an
# error, so that a typo never passes the reference itself on as a credential.
_VAR = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{")


def _interpolate(
    value: Any, environ: Mapping[str, str], path: tuple[str, ...], missing: list[str]
) -> Any:
    """``value`` with ``${VAR}`` references replaced; each unset variable is added to
    ``missing`` (``"VK (providers.primary.app_key)"``) so that all are reported at once."""
    if isinstance(value, dict):
        return {k: _interpolate(v, environ, (*path, str(k)), missing) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, environ, (*path, f"[{i}]"), missing) for i, v in enumerate(value)]
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            if match.group(0) == "$${":
                return "${"
            name, default = match.group(1), match.group(2)
            if name is None:
                raise ConfigError(
                    f"{_dotted(path)}: malformed reference (write ${{NAME}} or "
                    "${NAME:-default}; $${ for a literal ${)"
                )
            current = environ.get(name)
            # Shell semantics: ``${VAR:-default}`` also replaces a variable set but empty.
            if current is not None and (current or default is None):
                return current
            if default is not None:
                return default
            missing.append(f"{name} ({_dotted(path)})")
            return ""

        return _VAR.sub(substitute, value)
    return value


def _dotted(path: tuple[str, ...]) -> str:
    return ".".join(path).replace(".[", "[")


def find_config_path(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The file to read: ``explicit``, else ``$NOTIFYKIT_CONFIG``, else ``./notifykit.toml``,
    else None (the built-in default)."""
    if explicit is not None:
        return Path(explicit)
    if env := os.environ.get(CONFIG_ENV):
        return Path(env)
    local = Path(DEFAULT_FILENAME)
    return local if local.is_file() else None


def console_fallback_refusal(what: str) -> ConfigError:
    """The error for a production-looking use (``what``) of the console fallback: it names
    where configuration was looked for."""
    return ConfigError(
        f"{what}, but {fallback_notice()}. The console fallback is a try-out of the default "
        f"template only: name the configuration file (a path, ${CONFIG_ENV}, or "
        f"{DEFAULT_FILENAME} in the working directory)"
    )


class ConsoleFallbackWarning(UserWarning):
    """No configuration file was found: messages are printed by the ``console`` provider,
    not sent. Shown once per place by Python's warnings filter (and logged)."""


_SENDING_FALLBACK = "messages are only printed by the built-in console provider, never sent"


def fallback_notice(consequence: str = _SENDING_FALLBACK) -> str:
    """Where configuration was looked for, and what happens without one (``consequence``:
    by default, what it means for sending)."""
    env = os.environ.get(CONFIG_ENV)
    return (
        "no notifykit configuration found (no path given; "
        f"${CONFIG_ENV} {'is empty' if env == '' else 'is not set'}; "
        f"no {DEFAULT_FILENAME} in {Path.cwd()}): {consequence}"
    )


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read and validate the configuration, or return the built-in default.

    Falling back to the built-in default (the ``console`` provider) is loud: a
    :class:`ConsoleFallbackWarning` (shown by Python's default warning filter) names where
    configuration was looked for, since a service started from the wrong directory would otherwise
    "send" every message to its stdout.
    """
    found = find_config_path(path)
    if found is None:
        warnings.warn(fallback_notice(), ConsoleFallbackWarning, stacklevel=2)
        return Config.default()
    # A path the user did not type here is named with where it came from.
    origin = f" (from ${CONFIG_ENV})" if path is None and os.environ.get(CONFIG_ENV) else ""
    try:
        text = found.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot read configuration file {found}{origin}: {exc.strerror}"
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"cannot read configuration file {found}{origin}: not UTF-8 (byte {exc.start})"
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{found}: not valid TOML: {exc}") from None
    return _relative_to(Config.from_dict(data, source=str(found)), found.parent)


def _relative_to(config: Config, directory: Path) -> Config:
    """Resolve a relative ``sqlite:///`` path against the configuration file's directory, so
    that ``notifykit log --config DIR/notifykit.toml`` reads the same store from anywhere
    (the one rule, docs/configuration.md ``[store]``); ``sqlite:///:memory:`` stays as it is."""
    prefix = "sqlite:///"
    if not config.store.url.startswith(prefix):
        return config
    path = Path(config.store.url.removeprefix(prefix))
    if path.is_absolute() or str(path) == ":memory:":
        return config
    store = config.store.model_copy(update={"url": prefix + str((directory / path).resolve())})
    return config.model_copy(update={"store": store})
