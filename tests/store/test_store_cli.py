"""``notifykit store status`` and ``notifykit store migrate`` against PostgreSQL, and the
reading commands (``log``, ``events``) working against it unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from notifykit.cli import cli

pytestmark = pytest.mark.postgres

PASSWORD = "pg-pw-never-shown-0042"


def config_file(tmp_path: Path, url: str, schema: str, where: str = "userinfo") -> Path:
    # The test server trusts local connections: the password is accepted and ignored, so
    # it can be checked for in every output. libpq reads it from the user part or the query.
    if where == "userinfo":
        with_password = url.replace("postgres@", f"postgres:{PASSWORD}@", 1)
    else:
        with_password = url + ("&" if "?" in url else "?") + f"password={PASSWORD}"
    assert PASSWORD in with_password
    path = tmp_path / "notifykit.toml"
    path.write_text(
        f'[providers.console]\ntype = "console"\n\n'
        f'[store]\nurl = "{with_password}"\nschema = "{schema}"\nmigrate = false\n',
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize("where", ["userinfo", "query"])
def test_status_migrate_status(
    tmp_path: Path, pg_store_url: str, pg_schema: str, where: str
) -> None:
    path = str(config_file(tmp_path, pg_store_url, pg_schema, where))
    runner = CliRunner()
    before = runner.invoke(cli, ["store", "status", "--config", path])
    assert before.exit_code == 1, before.output
    assert "version 0" in before.output and "notifykit store migrate" in before.output
    # migrate = false: a reading command refuses the old schema, naming the fix.
    refused = runner.invoke(cli, ["log", "--config", path])
    assert refused.exit_code == 1 and "notifykit store migrate" in refused.output
    migrated = runner.invoke(cli, ["store", "migrate", "--config", path])
    assert migrated.exit_code == 0 and "applied migration(s) 0001" in migrated.output
    again = runner.invoke(cli, ["store", "migrate", "--config", path])
    assert again.exit_code == 0 and "up to date" in again.output
    after = runner.invoke(cli, ["store", "status", "--json", "--config", path])
    assert after.exit_code == 0, after.output
    report = json.loads(after.output)
    assert report["schema"] == pg_schema and report["pending"] == 0
    assert report["current"] == report["latest"] >= 1
    assert runner.invoke(cli, ["log", "--config", path]).output.strip() == "No messages."
    assert runner.invoke(cli, ["events", "--config", path]).output.strip() == "No events."
    for result in (before, refused, migrated, again, after):
        assert PASSWORD not in result.output
