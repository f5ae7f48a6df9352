"""Fixtures of the core's tests: throwaway installed distributions and CLI config files."""

from __future__ import annotations

import itertools
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

_counter = itertools.count()

# A provider type whose options hold a secret; ``fail`` makes every send fail.
VAULT_MODULE = """
from decimal import Decimal
from typing import Any, ClassVar

from pydantic import SecretStr

from notifykit import Balance, ProviderOptions, SendReceipt, SmsProvider, hookimpl
from notifykit.errors import AuthenticationError


class VaultOptions(ProviderOptions):
    api_key: SecretStr
    fail: bool = False
    crash: bool = False


class VaultProvider(SmsProvider[VaultOptions]):
    name: ClassVar[str] = "{type_name}"
    Options: ClassVar[type[ProviderOptions]] = VaultOptions
    requires_templates: ClassVar[bool] = False

    async def send(self, message: Any) -> SendReceipt:
        if self.options.crash:
            # A buggy plugin that puts its key into an exception message.
            raise RuntimeError("request failed for key " + self.options.api_key.get_secret_value())
        if self.options.fail:
            raise AuthenticationError(f"{{self.instance}}: key refused", provider=self.instance)
        return SendReceipt(provider_message_id="vault-1", remaining_credits=41)

    async def balance(self) -> Balance:
        return Balance(provider=self.instance, remaining=Decimal("12.50"), unit="USD")

    def config_warnings(self) -> list[str]:
        return [f"providers.{{self.instance}}: this is a test provider"]


@hookimpl
def register_providers(register: Any) -> None:
    register(VaultProvider)
"""


def install_distribution(
    root: Path,
    *,
    dist: str,
    entry_name: str,
    module_source: str,
) -> str:
    """Write an installed distribution (``*.dist-info`` plus its module) under ``root``.

    With ``root`` on ``sys.path`` importlib.metadata finds it like any pip-installed
    distribution: its entry point in group ``notifykit`` is a real one. Returns the
    module's (unique) name.
    """
    module = f"nk_testplugin_{next(_counter)}"
    (root / f"{module}.py").write_text(textwrap.dedent(module_source), encoding="utf-8")
    info = root / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(
        f"[notifykit]\n{entry_name} = {module}\n", encoding="utf-8"
    )
    return module


InstallDist = Callable[..., str]


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory on sys.path for throwaway distributions; modules unloaded afterwards."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    before = set(sys.modules)
    yield root
    for name in set(sys.modules) - before:
        if name.startswith("nk_testplugin_"):
            del sys.modules[name]


@pytest.fixture
def install_dist(plugin_dir: Path) -> InstallDist:
    def install(
        dist: str, entry_name: str, module_source: str = "", *, type_name: str | None = None
    ) -> str:
        source = module_source or VAULT_MODULE.format(type_name=type_name or entry_name)
        return install_distribution(
            plugin_dir, dist=dist, entry_name=entry_name, module_source=source
        )

    return install
