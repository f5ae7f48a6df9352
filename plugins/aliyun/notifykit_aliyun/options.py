"""The settings of an ``aliyun`` instance and of its templates."""

from __future__ import annotations

import re
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator

from notifykit.provider import ProviderOptions, TemplateOptions

__all__ = ["DEFAULT_ENDPOINT", "AliyunOptions", "AliyunTemplate"]

DEFAULT_ENDPOINT = "https://dysmsapi.aliyuncs.com"
DEFAULT_BALANCE_ENDPOINT = "https://business.aliyuncs.com"
_URL = re.compile(r"^https?://[^/\s?#]+/?$")
_TEMPLATE_CODE = re.compile(r"^SMS_[0-9]{1,20}$")
_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _endpoint(value: str) -> str:
    if not _URL.match(value):
        raise ValueError("must be an http(s) URL of a host, without path or query")
    return value.rstrip("/")


class AliyunOptions(ProviderOptions):
    """``[providers.<instance>]`` settings of a ``type = "aliyun"`` instance."""

    access_key_id: str = Field(min_length=1, description="The AccessKey ID.")
    access_key_secret: SecretStr = Field(description="The AccessKey secret.")
    sign_name: str = Field(min_length=1, description="The approved signature (签名名称).")
    region_id: str = Field(default="cn-hangzhou", min_length=1, description="RegionId sent.")
    endpoint: str = Field(default=DEFAULT_ENDPOINT, description="The Dysmsapi endpoint.")
    timeout: float = Field(default=10.0, gt=0, le=300, description="Seconds per request.")
    signature_method: Literal["HMAC-SHA1", "ACS3-HMAC-SHA256"] = Field(
        default="HMAC-SHA1",
        description="The request signature: RPC HMAC-SHA1 (the SMS product's own documented "
        "scheme) or V3 ACS3-HMAC-SHA256.",
    )
    balance_endpoint: str = Field(
        default=DEFAULT_BALANCE_ENDPOINT,
        description="The BssOpenApi endpoint used by balance() (QueryAccountBalance).",
    )
    vendor_timezone: str = Field(
        default="Asia/Shanghai",
        description="The zone of the times in pushes and QuerySendDetails (Beijing time).",
    )

    @field_validator("endpoint", "balance_endpoint")
    @classmethod
    def _url(cls, value: str) -> str:
        return _endpoint(value)

    @field_validator("sign_name")
    @classmethod
    def _sign_name(cls, value: str) -> str:
        if value != value.strip():
            # Alibaba refuses a signature with stray spaces (isv.SMS_SIGNATURE_ILLEGAL).
            raise ValueError("must not start or end with whitespace")
        return value

    @field_validator("vendor_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (e.g. Asia/Shanghai)") from None
        return value


class AliyunTemplate(TemplateOptions):
    """``[templates.<template>.<instance>]`` of an Alibaba instance."""

    template_code: str = Field(description='The approved template code, e.g. "SMS_15305001".')
    param_names: dict[str, str] = Field(
        default_factory=dict,
        description="notifykit parameter name -> the template's ${variable} name; "
        "parameters not listed keep their name.",
    )

    @field_validator("template_code")
    @classmethod
    def _code(cls, value: str) -> str:
        if not _TEMPLATE_CODE.match(value):
            raise ValueError('must be an Alibaba template code: "SMS_" and digits')
        return value

    @field_validator("param_names")
    @classmethod
    def _names(cls, value: dict[str, str]) -> dict[str, str]:
        for ours, theirs in value.items():
            if not ours or not _VARIABLE.match(theirs):
                raise ValueError(
                    f"{ours!r} -> {theirs!r}: a template variable name is letters, digits, _"
                )
        if len(set(value.values())) != len(value):
            raise ValueError("two parameters map to the same template variable")
        return value

    def variables(self, params: dict[str, str]) -> dict[str, str]:
        """The message's parameters under the template's variable names."""
        return {self.param_names.get(name, name): value for name, value in params.items()}
