"""``open_store``: the backend comes from the URL scheme, imported only when named."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from notifykit.config import StoreConfig
from notifykit.errors import ConfigError
from notifykit.store import BACKENDS, StoreBackend, open_store


@pytest.fixture
def fake_driver_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A backend module that needs a driver that is not installed, under ``fake://``."""
    (tmp_path / "nk_fake_backend.py").write_text(
        textwrap.dedent(
            """
            import nk_driver_that_is_not_installed  # noqa: F401
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(BACKENDS, "fake", StoreBackend("nk_fake_backend:FakeStore", "fake"))
    yield "fake://user:pw@host/db"
    sys.modules.pop("nk_fake_backend", None)


def test_a_missing_driver_names_the_extra_to_install(fake_driver_backend: str) -> None:
    with pytest.raises(ConfigError) as caught:
        open_store(StoreConfig(url=fake_driver_backend))
    message = str(caught.value)
    assert "pip install 'notifykit[fake]'" in message
    assert "nk_driver_that_is_not_installed" in message
    assert "pw" not in message  # the URL (and its password) is not repeated


def test_a_backend_missing_itself_is_a_bug_not_an_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(BACKENDS, "gone", StoreBackend("notifykit.store.gone:GoneStore", "gone"))
    with pytest.raises(ModuleNotFoundError):
        open_store(StoreConfig(url="gone://"))


def unchecked(url: str) -> StoreConfig:
    """A section whose URL skipped StoreConfig's own first check (as code may build one):
    the backend's own parsing is what is tested."""
    return StoreConfig.model_construct(url=url, fsync=False, timeout=5.0)


def test_unknown_and_missing_schemes_are_refused_with_the_known_ones() -> None:
    with pytest.raises(
        ConfigError, match=r"unsupported store 'redis' \(known: memory://, sqlite://"
    ):
        open_store(StoreConfig(url="redis://localhost"))
    with pytest.raises(ConfigError, match="no scheme"):
        open_store(unchecked("notifykit.sqlite3"))


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("memory://x", "a memory store is 'memory://'"),
        ("sqlite://relative.db", "a SQLite store is 'sqlite:///relative/path'"),
        ("sqlite:///", "a SQLite store is"),
    ],
)
def test_each_backend_reads_its_own_url(url: str, complaint: str) -> None:
    with pytest.raises(ConfigError, match=complaint):
        open_store(unchecked(url))


def test_backends_are_imported_only_when_their_scheme_is_opened() -> None:
    code = textwrap.dedent(
        """
        import sys
        import notifykit
        from notifykit.config import StoreConfig
        from notifykit.store import open_store
        assert "notifykit.store.sqlite" not in sys.modules
        open_store(StoreConfig(url="memory://"))
        assert "notifykit.store.memory" in sys.modules
        assert "notifykit.store.sqlite" not in sys.modules, "sqlite imported for memory://"
        from notifykit.store import SQLiteStore  # the old import path still works
        assert SQLiteStore.__module__ == "notifykit.store.sqlite"
        print("ok")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.stdout.strip() == "ok", done.stderr
