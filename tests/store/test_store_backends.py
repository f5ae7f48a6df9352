"""The contract suite's registry of backends (tests/store/conftest.py) keeps its promises:
each PostgreSQL test works in a schema of its own, removed after it."""

from __future__ import annotations

from pathlib import Path

import pytest

from notifykit.store import open_store

from .conftest import postgres_config

_schemas: list[str] = []
"""The schema each run of the test below was given, in order."""


def _exists(url: str, schema: str) -> bool:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        found = conn.execute(
            "SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", (schema,)
        ).fetchone()
        return found is not None


@pytest.mark.postgres
@pytest.mark.anyio
@pytest.mark.parametrize("turn", [0, 1])
async def test_each_postgres_test_has_a_schema_of_its_own_removed_after(
    request: pytest.FixtureRequest, tmp_path: Path, turn: int
) -> None:
    async with postgres_config(request, tmp_path) as config:
        store = open_store(config)
        await store.open()
        await store.close()
        assert _exists(config.url, config.schema_name)
        if turn == 1:
            (earlier,) = _schemas
            assert earlier != config.schema_name
            assert not _exists(config.url, earlier), f"{earlier} outlived its test"
        _schemas.append(config.schema_name)
