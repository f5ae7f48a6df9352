"""The kit as a pytest plugin: loaded through pytest11, cheap and quiet at import, few and
clear names."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

import _notifykit_pytest
import notifykit.testing

ROOT = Path(__file__).resolve().parents[2]

pytest_plugins = ["pytester"]

FIXTURES = {
    "sms_outbox",
    "notifier",
    "async_notifier",
    "notifykit_config",
    "notifykit_plugin_manager",
}


def _declared_entry_module() -> str:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return str(pyproject["project"]["entry-points"]["pytest11"]["notifykit"])


def _installed_entry_module() -> str | None:
    for entry in importlib.metadata.entry_points(group="pytest11", name="notifykit"):
        return entry.value
    return None


def test_the_entry_point_names_the_cheap_module() -> None:
    assert _declared_entry_module() == "_notifykit_pytest"


def test_the_fixtures_are_loaded_through_the_pytest11_entry_point(
    pytestconfig: pytest.Config,
) -> None:
    plugin = pytestconfig.pluginmanager.get_plugin("notifykit")
    assert plugin is not None
    if _installed_entry_module() == _declared_entry_module():
        assert plugin is _notifykit_pytest
    # An install made before the entry point moved names notifykit.testing (pip install -e .
    # refreshes it): that module re-exports the same fixtures, so both keep working.
    for name in FIXTURES:
        assert getattr(plugin, name) is getattr(_notifykit_pytest, name), name
        assert getattr(notifykit.testing, name) is getattr(_notifykit_pytest, name), name


HEAVY = ("notifykit", "pydantic", "httpx", "aiohttp", "starlette", "anyio", "phonenumbers")


def test_importing_the_entry_module_loads_nothing_but_itself() -> None:
    script = textwrap.dedent(
        f"""
        import sys
        import pytest
        before = set(sys.modules)
        import {_declared_entry_module()}
        print(" ".join(sorted(set(sys.modules) - before)))
        print(" ".join(m for m in sys.modules if m.partition(".")[0] in {HEAVY!r}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    new, heavy = (done.stdout + "\n").split("\n")[:2]
    assert new.split() == ["_notifykit_pytest"]
    assert heavy.split() == []


def test_a_test_run_that_uses_no_fixture_never_imports_notifykit(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_other_project="""
        import sys

        def test_untouched():
            assert "_notifykit_pytest" in sys.modules  # the plugin was loaded...
            assert "notifykit" not in sys.modules  # ...and imported nothing of notifykit
            assert "pydantic" not in sys.modules
        """
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_it_contributes_exactly_the_documented_fixtures(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--fixtures", "-p", "no:cacheprovider")
    lines = result.stdout.lines
    assert any("fixtures defined from _notifykit_pytest" in line for line in lines)
    # "name -- path:line", ours being those defined in the entry module.
    ours = {
        line.split(" ")[0]
        for line in lines
        if " -- " in line and not line.startswith(" ") and "_notifykit_pytest.py:" in line
    }
    assert ours == FIXTURES
    assert not any(line.startswith("anyio_backend -- ") and "notifykit" in line for line in lines)


def test_importing_the_kit_patches_and_configures_nothing() -> None:
    script = textwrap.dedent(
        """
        import logging
        import structlog
        from notifykit.default_plugins.memory import MemoryProvider
        before_init = MemoryProvider.__dict__.get("__init__")
        before_handlers = list(logging.getLogger().handlers)
        before_structlog = structlog.is_configured()
        import notifykit.testing
        from notifykit.testing import FakeProvider
        assert MemoryProvider.__dict__.get("__init__") is before_init
        assert logging.getLogger().handlers == before_handlers
        assert structlog.is_configured() == before_structlog
        assert FakeProvider.created == []
        print("clean")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "clean"


def test_a_test_that_uses_nothing_of_the_kit_runs_untouched(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_plain="""
        from notifykit.default_plugins.memory import MemoryProvider

        def test_plain():
            assert "__init__" in MemoryProvider.__dict__
            assert MemoryProvider.__init__.__qualname__ == "MemoryProvider.__init__"
        """
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_every_public_name_is_importable_and_listed() -> None:
    for name in notifykit.testing.__all__:
        assert hasattr(notifykit.testing, name), name
    assert notifykit.testing.__all__ == sorted(notifykit.testing.__all__)
    public = {n for n in vars(notifykit.testing) if n.isidentifier() and not n.startswith("_")}
    submodules = {"callbacks", "fake", "fixtures", "outbox", "annotations"}
    assert public - submodules == set(notifykit.testing.__all__)
