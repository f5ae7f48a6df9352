"""The kit as a pytest plugin: loaded through pytest11, quiet at import, few and clear names."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import notifykit.testing

pytest_plugins = ["pytester"]

FIXTURES = {
    "sms_outbox",
    "notifier",
    "async_notifier",
    "notifykit_config",
    "notifykit_plugin_manager",
}


def test_the_kit_is_loaded_through_the_pytest11_entry_point(pytestconfig: pytest.Config) -> None:
    assert pytestconfig.pluginmanager.get_plugin("notifykit") is notifykit.testing


def test_it_contributes_exactly_the_documented_fixtures(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--fixtures", "-p", "no:cacheprovider")
    lines = result.stdout.lines
    start = next(i for i, line in enumerate(lines) if "from notifykit.testing" in line)
    ours = set()
    for line in lines[start + 1 :]:
        if line.startswith("---") or line.startswith("==="):
            break
        if " -- " in line and not line.startswith(" "):
            ours.add(line.split(" ")[0])
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
