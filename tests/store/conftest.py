"""The store backends the contract suite runs against: one registry, one line per backend.

Adding a backend: write an async context manager that yields a fresh ``StoreConfig`` (and
removes what it made afterwards; skip, saying why, when its server is not there: the
root conftest.py's ``unavailable`` also fails under CI), then add one ``StoreBackend(...)``
line to ``STORE_BACKENDS``, with its marker (declared in pyproject.toml) and the way two
contenders race on it (``race``: see races.py, where each backend's schedule forces the
interleavings that expose a claim that is not atomic). Every test that takes the ``store``
fixture then runs against it; tests taking ``store_pair`` run against every backend that is
``shared`` between store objects; the race tests (``race`` fixture) run against every one.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from notifykit.config import StoreConfig
from notifykit.store import Store, open_store

from .races import Race, RaceMaker, memory_race, postgres_race, sqlite_race

ConfigMaker = Callable[
    [pytest.FixtureRequest, Path], contextlib.AbstractAsyncContextManager[StoreConfig]
]


@dataclass(frozen=True)
class StoreBackend:
    name: str
    """The test id, and the backend's scheme family."""
    config: ConfigMaker
    """A fresh, empty store's configuration for one test (the test's request, for other
    fixtures, and its ``tmp_path``); cleans up after."""
    mark: Any
    """The backend's marker: ``pytest -m "not postgres"`` leaves it out."""
    race: RaceMaker
    """Two contenders on one fresh store, and the schedule that interleaves their claims
    (races.py)."""
    shared: bool = True
    """Whether two store objects opened on one config see the same data (memory: no)."""


@contextlib.asynccontextmanager
async def memory_config(_request: pytest.FixtureRequest, _tmp: Path) -> AsyncIterator[StoreConfig]:
    yield StoreConfig(url="memory://")


@contextlib.asynccontextmanager
async def sqlite_config(_request: pytest.FixtureRequest, tmp: Path) -> AsyncIterator[StoreConfig]:
    yield StoreConfig(url=f"sqlite:///{tmp}/nk.db", timeout=5)


@contextlib.asynccontextmanager
async def postgres_config(request: pytest.FixtureRequest, _tmp: Path) -> AsyncIterator[StoreConfig]:
    # A schema of the test's own, made (and migrated) by the first store opened on it and
    # dropped after the test (conftest.py at the root: skips saying why when PostgreSQL is
    # not there, fails under CI). Measured on the 45 PostgreSQL contract tests: 2.2 s for the suite
    # with one session schema emptied before each test, 3.2 s with a schema per test.
    schema = request.getfixturevalue("pg_schema")
    yield StoreConfig(url=request.getfixturevalue("pg_store_url"), schema=schema)


STORE_BACKENDS = [
    StoreBackend("memory", memory_config, pytest.mark.memory, memory_race, shared=False),
    StoreBackend("sqlite", sqlite_config, pytest.mark.sqlite, sqlite_race),
    StoreBackend("postgres", postgres_config, pytest.mark.postgres, postgres_race),
]


def _params() -> list[Any]:
    return [pytest.param(b, id=b.name, marks=b.mark) for b in STORE_BACKENDS]


@pytest.fixture(params=_params())
async def store_config(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[StoreBackend, StoreConfig]]:
    """A fresh backend's configuration, for each registered backend."""
    backend: StoreBackend = request.param
    async with backend.config(request, tmp_path) as config:
        yield backend, config


@pytest.fixture
async def store(store_config: tuple[StoreBackend, StoreConfig]) -> AsyncIterator[Store]:
    """An opened, empty store of each registered backend, made through ``open_store``."""
    made = open_store(store_config[1])
    await made.open()
    try:
        yield made
    finally:
        await made.close()


@pytest.fixture
async def store_pair(
    store_config: tuple[StoreBackend, StoreConfig],
) -> AsyncIterator[tuple[Store, Store]]:
    """Two store objects on the same data (as two processes would hold), per backend."""
    backend, config = store_config
    if not backend.shared:
        pytest.skip(f"{backend.name}: each store object has its own data, nothing to share")
    first, second = open_store(config), open_store(config)
    await first.open()
    try:
        await second.open()
        try:
            yield first, second
        finally:
            await second.close()
    finally:
        await first.close()


@pytest.fixture(params=_params())
async def race(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Race]:
    """Two contenders on one fresh store of each registered backend (races.py)."""
    backend: StoreBackend = request.param
    async with backend.race(request, tmp_path) as made:
        yield made
