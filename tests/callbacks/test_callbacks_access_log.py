"""The mounting recipe of docs/callbacks.md, run as written under real uvicorn with its
default logging: the callbacks token never reaches the access log (issue 15 item 6); and
``TokenLogFilter`` masks every form a server writes."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from notifykit.asgi import TokenLogFilter, create_app, hide_token
from notifykit.config import Config
from notifykit.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "cb-Token_0123456789abcdef"
CONFIG = f"""
[providers.primary]
type = "veesing"
app_id = "app"
app_key = "veesing-app-key"

[callbacks]
token = "{TOKEN}"
"""


def _recipe() -> str:
    text = (ROOT / "docs" / "callbacks.md").read_text(encoding="utf-8")
    section = text[text.index("## Mounting it in an ASGI application") :]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None
    return match.group(1)


def _serve(tmp_path: Path, code: str) -> tuple[str, str]:
    """Run ``code`` + ``uvicorn.run(app)`` on a free port, POST to the token's URL, stop it
    with Ctrl+C; returns (stdout, stderr)."""
    (tmp_path / "notifykit.toml").write_text(CONFIG, encoding="utf-8")
    script = tmp_path / "app.py"
    script.write_text(
        code + '\nimport uvicorn\nuvicorn.run(app, host="127.0.0.1", port=0)\n', encoding="utf-8"
    )
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("NOTIFYKIT_CONFIG", None)
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        started = []
        for _ in range(50):  # uvicorn's start-up lines, bounded
            line = proc.stderr.readline()
            started.append(line)
            found = re.search(r"Uvicorn running on http://127\.0\.0\.1:(\d+)", line)
            if found:
                break
            if not line:
                pytest.fail("uvicorn did not start: " + "".join(started))
        else:
            pytest.fail("uvicorn did not start: " + "".join(started))
        base = f"http://127.0.0.1:{found.group(1)}/hooks"
        with httpx.Client(timeout=10) as client:
            answer = client.post(f"{base}/callbacks/primary/{TOKEN}", content=b"{}")
            assert answer.status_code in (200, 400)  # a push it stores, or quarantines
            assert client.get(f"{base}/healthz").status_code == 200
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return out, "".join(started) + err


def test_the_docs_recipe_keeps_the_token_out_of_uvicorns_access_log(tmp_path: Path) -> None:
    out, err = _serve(tmp_path, _recipe())
    logged = out + err
    assert '"POST /hooks/callbacks/primary/*** HTTP/1.1"' in logged, logged
    assert TOKEN not in logged


def test_without_the_filter_uvicorn_would_log_it(tmp_path: Path) -> None:
    """The control: the same recipe without its filter line does put the token in the log,
    so the test above would see a leak."""
    recipe = _recipe()
    line = 'logging.getLogger("uvicorn.access").addFilter(hide_token(receiver))\n'
    assert line in recipe
    out, err = _serve(tmp_path, recipe.replace(line, ""))
    assert f"/hooks/callbacks/primary/{TOKEN}" in out + err


ODD = "tok+en/1234567890"  # a token a server writes percent-encoded


@pytest.mark.parametrize(
    "written", [ODD, "tok%2Ben/1234567890", "tok%2Ben%2F1234567890"], ids=["raw", "quote", "all"]
)
def test_the_filter_masks_every_form_in_any_argument_shape(written: str) -> None:
    token_filter = TokenLogFilter(ODD)
    # uvicorn: a tuple of arguments.
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "POST", f"/hooks/callbacks/primary/{written}", "1.1", 200),
        None,
    )
    assert token_filter.filter(record) is True
    assert (
        record.getMessage() == '127.0.0.1:5000 - "POST /hooks/callbacks/primary/*** HTTP/1.1" 200'
    )
    # gunicorn: a mapping of atoms; and a message with the path already in it.
    record = logging.LogRecord("gunicorn.access", logging.INFO, __file__, 1, "%(r)s", None, None)
    record.args = {"r": f"POST /callbacks/p/{written} HTTP/1.1", "s": 200}
    token_filter.filter(record)
    assert record.getMessage() == "POST /callbacks/p/*** HTTP/1.1"
    record = logging.LogRecord("h", logging.INFO, __file__, 1, f"GET /c/{written}", None, None)
    token_filter.filter(record)
    assert record.getMessage() == "GET /c/***"


def test_hide_token_needs_the_receiver_app() -> None:
    app = create_app(Config.from_dict({"providers": {"p": {"type": "memory"}}}))
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "GET /callbacks/p %s", ("x",), None)
    assert hide_token(app).filter(record) and record.args == ("x",)  # no token: unchanged
    with pytest.raises(ConfigError):
        hide_token(Starlette())
