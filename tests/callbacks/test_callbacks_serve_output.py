"""What ``notifykit serve`` tells its operator (issue 15 items 6 and 16): a warning when
the store keeps nothing, one line per pushed event under ``-v`` (provider, masked number,
status), and never the callbacks token, whatever the verbosity."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import httpx
from notifykit_veesing.testing import veesing_receipt

from .conftest import serve_argv

TOKEN = "serve-Token_0123456789abcdef"
NUMBER = "+8615612341090"


def _serve(tmp_path: Path, store: str, *flags: str) -> tuple[str, str]:
    config = tmp_path / "notifykit.toml"
    config.write_text(
        '[providers.primary]\ntype = "veesing"\napp_id = "app"\napp_key = "veesing-app-key"\n\n'
        f'[callbacks]\ntoken = "{TOKEN}"\n\n[store]\nurl = "{store}"\n',
        encoding="utf-8",
    )
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("NOTIFYKIT_CONFIG", None)
    proc = subprocess.Popen(
        serve_argv(config, *flags),
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        # The banner by readline only: communicate() below reads the pipe itself, so what
        # readline buffered past its line would be lost to it.
        first = proc.stdout.readline()
        first += proc.stdout.readline()  # the push URL of the one instance
        found = re.search(r"http://127\.0\.0\.1:(\d+)", first)
        assert found, first + (proc.stderr.read() if proc.stderr else "")
        url = f"http://127.0.0.1:{found.group(1)}/callbacks/primary/{TOKEN}"
        push = veesing_receipt("7001", NUMBER)
        with httpx.Client(timeout=10) as client:
            answer = client.post(url, content=push.body, headers=push.headers)
            assert answer.status_code == 200, answer.text
            assert client.post(url, content=push.body, headers=push.headers).status_code == 200
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return first + out, err


def test_verbose_serve_prints_one_line_per_pushed_event_and_never_the_token(
    tmp_path: Path,
) -> None:
    out, err = _serve(tmp_path, f"sqlite:///{tmp_path / 'nk.sqlite3'}", "-v")
    both = out + err
    assert TOKEN not in both
    assert NUMBER not in both and "15612341090" not in both
    lines = [line for line in both.splitlines() if "callback_event" in line]
    assert len(lines) == 2, both  # the push, then the vendor's retry of it
    for line in lines:
        assert "primary" in line and "+86156****1090" in line and "delivered" in line
    assert '"duplicate": true' in lines[1] and '"duplicate": false' in lines[0]
    assert "memory://" not in err  # a kept store: no warning
    # Where to point the vendor, the token named but not shown.
    assert re.search(
        r"^  push URL of primary \(veesing\): http://127\.0\.0\.1:\d+/callbacks/primary/<token>$",
        out,
        re.MULTILINE,
    ), out


def test_serve_on_the_memory_store_warns_that_nothing_is_kept(tmp_path: Path) -> None:
    out, err = _serve(tmp_path, "memory://")
    assert "Warning: [store] url is memory://" in err and "lost when it stops" in err
    assert "callback_event" not in out + err  # quiet without -v
    assert TOKEN not in out + err
