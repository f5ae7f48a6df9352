"""Fixtures of the Alibaba plugin's tests: a sandbox on a loopback socket, a notifier."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import notifykit_aliyun
from notifykit_aliyun import AliyunSandbox, AliyunSandboxSettings

from notifykit import AsyncNotifier, Config
from notifykit.plugins import get_plugin_manager
from notifykit.server import ServerThread

MOBILE = "+8615612341090"
SIGN = "阿里云短信测试"
CODE = "SMS_15305001"


@contextlib.asynccontextmanager
async def sandbox_running(**settings: Any) -> AsyncIterator[tuple[AliyunSandbox, str]]:
    values: dict[str, Any] = {"port": 0, "receipt_delay": 0.01, "seed": 3}
    values.update(settings)
    sandbox = AliyunSandbox(AliyunSandboxSettings.model_validate(values))
    server = ServerThread(sandbox.app()).start()
    try:
        yield sandbox, server.url
    finally:
        await sandbox.aclose()
        await asyncio.to_thread(server.stop)


def aliyun_config(
    url: str,
    sandbox: AliyunSandbox,
    *,
    token: str | None = None,
    store: str | None = None,
    **options: Any,
) -> Config:
    extra: dict[str, Any] = {"callbacks": {"token": token}} if token else {}
    if store is not None:
        extra["store"] = {"url": store}
    return Config.from_dict(
        {
            **extra,
            "providers": {
                "ali": {
                    "type": "aliyun",
                    "access_key_id": sandbox.settings.access_key_id,
                    "access_key_secret": sandbox.settings.access_key_secret,
                    "sign_name": SIGN,
                    "endpoint": url,
                    "balance_endpoint": url,
                    "timeout": 5,
                    **options,
                }
            },
            "templates": {
                "verify_code": {"ali": {"template_code": CODE, "param_names": {"otp": "code"}}}
            },
        }
    )


def make_notifier(config: Config) -> AsyncNotifier:
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(notifykit_aliyun, name="aliyun")
    return AsyncNotifier(config, plugin_manager=pm)
