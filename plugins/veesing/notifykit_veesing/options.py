"""The settings of a Veesing provider instance and of one template on it."""

from __future__ import annotations

from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator

from notifykit.config import Duration
from notifykit.provider import ProviderOptions, TemplateOptions

__all__ = ["DEFAULT_BASE_URL", "VeesingOptions", "VeesingTemplateOptions"]

DEFAULT_BASE_URL = "https://vip.veesing.com"


class VeesingOptions(ProviderOptions):
    """``[providers.<instance>]`` with ``type = "veesing"``."""

    app_id: str = Field(min_length=1, description="The account's appId (the vendor console).")
    app_key: SecretStr = Field(description="The account's appKey; a secret.")
    base_url: str = Field(default=DEFAULT_BASE_URL, description="Scheme and host of the API.")
    timeout: Duration = Field(
        default=10.0,
        gt=0,
        le=300,
        description='Seconds allowed to connect, and to read (a duration: 10, "10s", "500ms").',
    )
    callback_timezone: str = Field(
        default="Asia/Shanghai", description="The zone `receivetime` in pushes is read in."
    )
    variables_param: str = Field(
        default="code",
        min_length=1,
        description="The message parameter whose value is sent as `variables`.",
    )

    @field_validator("app_id")
    @classmethod
    def _app_id(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("app_id is empty")
        return value

    @field_validator("app_key")
    @classmethod
    def _app_key(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("app_key is empty")
        return SecretStr(value.get_secret_value().strip())

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("base_url must be an http:// or https:// URL with a host")
        if parts.query or parts.fragment:
            raise ValueError("base_url must not carry a query or fragment")
        return value

    @field_validator("callback_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(
                f"unknown time zone {value!r} (an IANA name such as 'Asia/Shanghai')"
            ) from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.callback_timezone)


class VeesingTemplateOptions(TemplateOptions):
    """``[templates.<template>.<instance>]`` for a Veesing instance."""

    template_id: str = Field(min_length=1, description="The approved template's id, e.g. 540.")

    @field_validator("template_id", mode="before")
    @classmethod
    def _template_id(cls, value: object) -> object:
        # TOML users write `template_id = 540` as readily as `"540"`.
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if isinstance(value, str):
            value = value.strip()
            if any(ch.isspace() for ch in value):
                raise ValueError("template_id must not contain whitespace")
        return value
