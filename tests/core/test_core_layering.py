"""Which of notifykit's packages may import which, read from the source (issue 17).

The core (sending, routing, stores, the inbox, verification) imports no adapter: not the
ASGI receiver, the servers, the CLI, the demo, the test kit, and no plugin. Adapters import
the core, never each other except where named below. Every import counts, wherever it
stands (module level, inside a function, under ``TYPE_CHECKING``): a lazy import still
points the wrong way. A new module must be placed in :data:`LAYERS` before it can land.

The last test checks what this is for at run time: ``import notifykit`` loads no web
framework, server or optional driver.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_ROOTS = [ROOT, *sorted((ROOT / "plugins").glob("*"))]

N = "notifykit"

# The core, bottom first. Each may import the units it lists (and itself). When a new
# module lands, give it its own line here with what it imports; if that import points
# upward (a foundation module importing the notifier, a store importing routing), the
# design needs a second look, not a longer line.
FOUNDATION = {
    f"{N}.compare": set(),
    f"{N}.errors": {f"{N}.models"},  # type-only: AllProvidersFailed.attempts (httpx does so too)
    f"{N}.phone": {f"{N}.errors"},
    f"{N}.models": {f"{N}.errors", f"{N}.phone"},
    f"{N}.redact": {f"{N}.errors", f"{N}.phone"},
    f"{N}.log": {f"{N}.phone"},
    f"{N}.events": {f"{N}.models"},
    f"{N}.config": {f"{N}.errors"},
    # config for mask_url_password only: one rule for the passwords a URL may carry.
    f"{N}.sandbox": {f"{N}.config"},
    f"{N}.transport_errors": set(),
    f"{N}.loops": {f"{N}.log"},
    # The synchronous Notifier's event-loop thread.
    f"{N}.loop_thread": {f"{N}.errors"},
    f"{N}.provider": {f"{N}.errors", f"{N}.events", f"{N}.models", f"{N}.redact"},
    # The HTTP edge of providers.
    f"{N}.http": {
        f"{N}.errors",
        f"{N}.log",
        f"{N}.loops",
        f"{N}.provider",
        f"{N}.transport_errors",
    },
}
_BASE = set(FOUNDATION) - {f"{N}.sandbox"}
CORE: dict[str, set[str]] = {
    **FOUNDATION,
    f"{N}.hookspecs": {f"{N}.events", f"{N}.provider", f"{N}.sandbox"},
    f"{N}.plugins": {f"{N}.hookspecs", f"{N}.errors", f"{N}.log", f"{N}.provider", f"{N}.sandbox"},
    f"{N}.instances": _BASE | {f"{N}.plugins"},
    # What `config check` reports from the configuration and the built instances.
    f"{N}.config_check": {f"{N}.config", f"{N}.provider"},
    f"{N}.default_plugins": _BASE | {f"{N}.hookspecs"},
    # Stores know messages and events, never routing, sending or the inbox.
    f"{N}.store": {
        f"{N}.compare",
        f"{N}.config",
        f"{N}.errors",
        f"{N}.events",
        f"{N}.models",
        f"{N}.log",
    },
    f"{N}.routing.policy": {f"{N}.config", f"{N}.errors"},
    f"{N}.routing.breaker": {f"{N}.config", f"{N}.routing.policy"},
    f"{N}.routing.shared_state": {f"{N}.routing.breaker", f"{N}.routing.policy"},
    f"{N}.shared": {
        f"{N}.config",
        f"{N}.errors",
        f"{N}.store",
        f"{N}.routing.breaker",
        f"{N}.routing.policy",
        f"{N}.routing.shared_state",
    },
    # Routing owns the shared-state interface it needs (routing.shared_state); the Redis
    # implementation (notifykit.shared) imports routing, never the other way round.
    f"{N}.routing": _BASE
    | {f"{N}.store", f"{N}.routing.breaker", f"{N}.routing.policy", f"{N}.routing.shared_state"},
    # The inbox: parse, store, correlate, dispatch; no web framework, no notifier.
    f"{N}.inbox": _BASE | {f"{N}.store", f"{N}.plugins"},
    f"{N}.reconcile": _BASE | {f"{N}.store"},
    f"{N}.recovery": _BASE | {f"{N}.store", f"{N}.shared"},
    f"{N}.verify": _BASE | {f"{N}.store", f"{N}.notifier"},  # the notifier: type-only
    f"{N}.notifier": _BASE
    | {
        f"{N}.inbox",
        f"{N}.instances",
        f"{N}.plugins",
        f"{N}.reconcile",
        f"{N}.recovery",
        f"{N}.routing",
        f"{N}.shared",
        f"{N}.store",
        f"{N}.verify",
    },
}
CORE[N] = set(CORE)  # the package itself re-exports from the core, and only from it

ADAPTERS: dict[str, set[str]] = {
    f"{N}.asgi": set(CORE),  # the inbox over HTTP (Starlette)
    f"{N}.server": set(CORE),  # uvicorn on a socket
    f"{N}.slow_clients": set(CORE),
    f"{N}.callbacks": {f"{N}.inbox", f"{N}.asgi"},  # the old paths, kept working
    f"{N}.testing": set(CORE) | {f"{N}.testing", "_notifykit_pytest"},
    # The pytest11 entry module: its fixtures import the core and the kit, when they run.
    "_notifykit_pytest": set(CORE) | {f"{N}.testing"},
    f"{N}.demo": set(CORE) | {f"{N}.asgi", f"{N}.server", f"{N}.demo_verify", f"{N}.demo_render"},
    f"{N}.demo_render": set(CORE),
    f"{N}.demo_verify": set(CORE),
    f"{N}.cli": set(CORE)
    | {f"{N}.asgi", f"{N}.server", f"{N}.slow_clients", f"{N}.demo", f"{N}.demo_render"}
    | {f"{N}.cli"},
    f"{N}.__main__": {f"{N}.cli"},
}
LAYERS = {**CORE, **ADAPTERS}

# A plugin distribution ``notifykit_<name>``: its modules by role. The provider side may
# import notifykit's core; the sandbox and the test kit may also import the provider side.
PLUGIN_ROLES = {
    "": "registration",  # the package: registers the provider and the sandbox
    "sandbox": "sandbox",
    "sandbox_rules": "sandbox",
    "sandbox_pushes": "sandbox",
    "testing": "testing",
}
PLUGIN_MAY_IMPORT = {
    "provider": {"provider"},
    "sandbox": {"provider", "sandbox"},
    "testing": {"provider", "testing"},  # and notifykit.testing (CallbackPush, form_push)
    "registration": {"provider", "sandbox", "registration"},
}

# Third-party packages only some modules may load (type-only imports load nothing).
CONFINED = {
    "starlette": (f"{N}.asgi", "notifykit_*.sandbox"),
    "uvicorn": (f"{N}.server", f"{N}.slow_clients", f"{N}.cli"),
    "psycopg": (f"{N}.store.postgres",),
    "psycopg_pool": (f"{N}.store.postgres",),
    "redis": (f"{N}.shared.redis",),
    "click": (f"{N}.cli", f"{N}.demo", f"{N}.demo_render"),
}


def _modules() -> Iterator[tuple[str, Path]]:
    for root in PACKAGE_ROOTS:
        for package in sorted(root.glob(f"{N}*/__init__.py")):
            for path in sorted(package.parent.rglob("*.py")):
                parts = list(path.relative_to(root).with_suffix("").parts)
                if parts[-1] == "__init__":
                    parts.pop()
                yield ".".join(parts), path
    yield "_notifykit_pytest", ROOT / "_notifykit_pytest.py"


MODULES = dict(_modules())


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(module: str, path: Path) -> Iterator[tuple[str, int, bool]]:
    """(imported module, line, type-only) for every import in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    type_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                type_only.update(id(n) for n in ast.walk(child))
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno, id(node) in type_only
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                # ``from notifykit import models`` imports the module notifykit.models.
                target = f"{base}.{alias.name}"
                yield (target if target in MODULES else base), node.lineno, id(node) in type_only


def _unit(module: str) -> str | None:
    """The LAYERS entry governing ``module``: itself, or its nearest listed package."""
    if module in LAYERS:
        return module
    parts = module.split(".")
    for end in range(len(parts) - 1, 1, -1):  # never the bare package: place modules explicitly
        if ".".join(parts[:end]) in LAYERS:
            return ".".join(parts[:end])
    return None


def _plugin_role(module: str) -> str:
    sub = module.partition(".")[2].partition(".")[0]
    return PLUGIN_ROLES.get(sub, "provider")


def _violation(module: str, target: str) -> str | None:
    if module.startswith(f"{N}_"):
        if target.startswith(f"{N}_"):
            if target.partition(".")[0] != module.partition(".")[0]:
                return "a plugin imports another plugin"
            if _plugin_role(target) not in PLUGIN_MAY_IMPORT[_plugin_role(module)]:
                return f"the plugin's {_plugin_role(module)} side imports its {_plugin_role(target)} side"
            return None
        unit = _unit(target)
        if unit == f"{N}.testing" and _plugin_role(module) == "testing":
            return None
        if unit is None or unit not in CORE:
            return "a plugin imports a notifykit module outside the core"
        return None
    source_unit = _unit(module)
    if source_unit is None:
        return "the module is not placed in LAYERS"
    if target.startswith(f"{N}_"):
        return "notifykit imports a plugin"
    target_unit = _unit(target) if target != N else N
    if target_unit is None or target_unit == source_unit:
        return None
    if target_unit not in LAYERS[source_unit]:
        return f"{source_unit} may not import {target_unit}"
    return None


def test_every_module_is_placed() -> None:
    notifykit_modules = [m for m in MODULES if m == N or m.startswith(f"{N}.")]
    assert len(notifykit_modules) > 50
    unplaced = [m for m in notifykit_modules if _unit(m) is None]
    assert unplaced == [], "give each new module a line in LAYERS (this file): what it may import"
    assert {m.partition(".")[0] for m in MODULES} >= {
        "notifykit_veesing",
        "notifykit_twilio",
        "notifykit_aliyun",
    }


def test_the_table_keeps_the_core_free_of_adapters() -> None:
    for unit, allowed in CORE.items():
        assert allowed <= set(CORE), f"{unit} may import {sorted(allowed - set(CORE))}"
    assert not set(ADAPTERS) & set(CORE)
    assert f"{N}.routing" not in CORE[f"{N}.store"]
    assert f"{N}.notifier" not in CORE[f"{N}.inbox"]
    assert f"{N}.asgi" not in CORE[f"{N}.notifier"]


def test_imports_go_the_way_the_table_says() -> None:
    wrong = []
    for module, path in MODULES.items():
        for target, line, _type_only in _imports(module, path):
            if not (target in (N, "_notifykit_pytest") or target.startswith((f"{N}.", f"{N}_"))):
                continue
            why = _violation(module, target)
            if why is not None:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {target}: {why}")
    assert wrong == [], "an import points the wrong way: see LAYERS in this file"


def test_heavy_dependencies_stay_in_their_modules() -> None:
    wrong = []
    for module, path in MODULES.items():
        for target, line, type_only in _imports(module, path):
            top = target.partition(".")[0]
            if top not in CONFINED or type_only:
                continue
            homes = CONFINED[top]
            plugin_sandbox = module.startswith(f"{N}_") and _plugin_role(module) == "sandbox"
            if plugin_sandbox and "notifykit_*.sandbox" in homes:
                continue
            if not any(module == h or module.startswith(h + ".") for h in homes):
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {top}")
    assert wrong == [], "a heavy dependency outside its modules: see CONFINED in this file"


@pytest.mark.parametrize(
    ("source", "target", "expected"),
    [
        (f"{N}.notifier", f"{N}.asgi", "notifykit.notifier may not import notifykit.asgi"),
        (f"{N}.store.sqlite", f"{N}.routing.router", "notifykit.store may not import"),
        (f"{N}.inbox", f"{N}.testing.fake", "notifykit.inbox may not import notifykit.testing"),
        (f"{N}.verify", "notifykit_twilio.signature", "notifykit imports a plugin"),
        ("notifykit_veesing.provider", "notifykit_veesing.sandbox", "provider side imports"),
        ("notifykit_twilio.callbacks", f"{N}.cli.common", "outside the core"),
        ("notifykit_twilio.testing", "notifykit_veesing.testing", "another plugin"),
        ("notifykit_twilio.provider", f"{N}.testing.callbacks", "outside the core"),
        (f"{N}.testing.callbacks", "notifykit_twilio.signature", "notifykit imports a plugin"),
        (f"{N}.notifier", "_notifykit_pytest", "may not import _notifykit_pytest"),
    ],
)
def test_a_wrong_way_import_is_named(source: str, target: str, expected: str) -> None:
    why = _violation(source, target)
    assert why is not None and expected in why


def test_relative_and_from_package_imports_are_resolved(tmp_path: Path) -> None:
    path = tmp_path / "sqlite.py"
    path.write_text(
        "from . import base\nfrom ..routing import router\nfrom notifykit import models\n"
        "from notifykit import hookimpl\nif TYPE_CHECKING:\n    import click\n",
        encoding="utf-8",
    )
    found = [(target, type_only) for target, _, type_only in _imports(f"{N}.store.sqlite", path)]
    assert found == [
        (f"{N}.store.base", False),
        (f"{N}.routing.router", False),
        (f"{N}.models", False),
        (N, False),
        ("click", True),
    ]


def test_import_notifykit_loads_no_web_framework_server_or_driver() -> None:
    heavy = ["starlette", "anyio", "uvicorn", "psycopg", "psycopg_pool", "redis"]
    code = (
        "import sys, notifykit, notifykit.callbacks, notifykit.inbox\n"
        f"print(' '.join(m for m in {heavy!r} if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.split() == []


def test_the_old_callbacks_paths_still_work() -> None:
    code = """
import sys
import notifykit.callbacks.processor as processor
import notifykit.inbox
assert processor is notifykit.inbox, processor
from notifykit.callbacks.processor import CallbackProcessor, allowed_methods
from notifykit.callbacks import CallbackProcessor as again, CallbackResponse, Subscriber
assert again is CallbackProcessor is notifykit.inbox.CallbackProcessor
assert 'starlette' not in sys.modules, 'the old package path loaded Starlette'
from notifykit.callbacks import CallbackReceiver, create_app
from notifykit.callbacks.app import drain_bound
import notifykit.asgi
assert create_app is notifykit.asgi.create_app and drain_bound is notifykit.asgi.drain_bound
assert CallbackReceiver is notifykit.asgi.CallbackReceiver
try:
    from notifykit.callbacks import nothing_here
except ImportError:
    pass
else:
    raise AssertionError('unknown names must not resolve')
print('ok')
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["ok"]


def test_a_sending_worker_with_every_vendor_plugin_loads_no_web_framework(
    tmp_path: Path,
) -> None:
    # A worker that only sends opens a notifier whose providers come from all three plugins:
    # the plugins' sandboxes (Starlette apps) are imported only when a sandbox is asked for.
    config = tmp_path / "notifykit.toml"
    config.write_text(
        """
[providers.cn]
type = "veesing"
app_id = "a"
app_key = "veesing-app-key"
[providers.backup]
type = "aliyun"
access_key_id = "ak"
access_key_secret = "aliyun-secret"
sign_name = "notifykit"
[providers.intl]
type = "twilio"
account_sid = "AC00000000000000000000000000000000"
auth_token = "twilio-auth-token"
from_number = "+15005550006"
[templates.verify_code.cn]
template_id = "540"
[templates.verify_code.backup]
template_code = "SMS_1"
[routing]
providers = ["cn", "backup", "intl"]
""",
        encoding="utf-8",
    )
    code = f"""
import sys
from notifykit import Notifier
with Notifier(config={str(config)!r}) as notifier:
    assert sorted(notifier.health()) == ['backup', 'cn', 'intl'], notifier.health()
import notifykit_veesing, notifykit_twilio, notifykit_aliyun
print(' '.join(m for m in ('starlette', 'anyio', 'uvicorn') if m in sys.modules))
from notifykit_veesing import VeesingSandbox
from notifykit_twilio import TwilioSandbox, TwilioSandboxSettings
from notifykit_aliyun import AliyunSandbox
print('starlette' in sys.modules)
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.splitlines() == ["", "True"]
