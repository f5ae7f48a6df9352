"""``notifykit sandbox NAME`` says how to point a provider at it (issue 15 item 16): the
snippet it prints, pasted into a configuration as printed, sends a message through the
sandbox it came from."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from notifykit import AsyncNotifier
from notifykit.sandbox import hide_callback_token

NUMBERS = {"veesing": "+8615612341090", "aliyun": "+8615612341091", "twilio": "+14155550100"}


def _banner(name: str, *options: str) -> tuple[subprocess.Popen[str], list[str]]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "notifykit", "sandbox", name, "--port", "0", *options],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    lines: list[str] = []
    for _ in range(40):  # the banner, bounded
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if line.startswith("    [templates."):
            lines.append(proc.stderr.readline().rstrip("\n"))  # the template's entry
            break
    return proc, lines


@pytest.mark.parametrize("name", ["veesing", "aliyun", "twilio"])
def test_the_printed_snippet_sends_through_the_sandbox(name: str, tmp_path: Path) -> None:
    proc, lines = _banner(name)
    try:
        assert lines[0].startswith(f"{name} sandbox on http://127.0.0.1:"), lines
        assert lines[1] == "Point a provider at it (in notifykit.toml):", lines
        snippet = "\n".join(line.removeprefix("    ") for line in lines[2:])
        assert f"[providers.{name}]" in snippet and f"[templates.verify_code.{name}]" in snippet
        config = tmp_path / "notifykit.toml"
        config.write_text(snippet + "\n", encoding="utf-8")

        async def send() -> str:
            async with AsyncNotifier(config) as notifier:
                result = await notifier.send(
                    NUMBERS[name], template="verify_code", params={"code": "123456"}
                )
                return result.provider

        assert asyncio.run(send()) == name
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


TOKEN = "KUodb_Oga2GNjTIz3zOAOl8Yts9oJXI2"


@pytest.mark.parametrize("name", ["veesing", "aliyun"])
def test_the_snippet_says_where_pushes_go_without_the_token(name: str) -> None:
    """The banner names the push URL, the token as ``<token>`` as ``notifykit serve`` prints
    it: the token is a secret (CONVENTIONS: never in CLI output)."""
    url = f"http://127.0.0.1:9/callbacks/{name}/{TOKEN}"
    proc, lines = _banner(name, "--callback-url", url)
    try:
        assert proc.stderr is not None
        for _ in range(3):  # the lines after the template's entry, up to the pushes comment
            if "pushed" in lines[-1]:
                break
            lines.append(proc.stderr.readline().rstrip("\n"))
        text = "\n".join(lines)
        assert f"pushed to http://127.0.0.1:9/callbacks/{name}/<token>" in text, text
        assert TOKEN not in text
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.mark.parametrize("name", ["veesing", "aliyun"])
def test_the_snippet_names_the_instance_the_pushes_go_to(name: str) -> None:
    """Pushes to ``.../callbacks/primary/<token>`` reach instance ``primary`` only: the snippet
    pasted as printed must define that instance, not one named after the sandbox (``serve``
    would answer its pushes 404)."""
    proc, lines = _banner(name, "--callback-url", f"http://127.0.0.1:9/callbacks/primary/{TOKEN}")
    try:
        text = "\n".join(lines)
        assert "    [providers.primary]" in text, text
        assert "    [templates.verify_code.primary]" in text, text
        assert f"[providers.{name}]" not in text, text
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "http://127.0.0.1:8000/callbacks/primary/s3cret",
            "http://127.0.0.1:8000/callbacks/primary/<token>",
        ),
        ("https://h/hooks/callbacks/p/s3cret?x=1", "https://h/hooks/callbacks/p/<token>?x=1"),
        ("http://127.0.0.1:8000/callbacks/primary", "http://127.0.0.1:8000/callbacks/primary"),
        ("http://u:s3cret@h:1/callbacks/p", "http://u:***@h:1/callbacks/p"),
    ],
)
def test_hide_callback_token(url: str, shown: str) -> None:
    assert hide_callback_token(url) == shown
