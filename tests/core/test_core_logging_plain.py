"""notifykit under plain ``logging``, as most applications run it: messages that read well
under any handler, the fields in ``extra``, and no output when the host configured nothing."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap

import pytest

from notifykit.config import Config
from notifykit.notifier import Notifier

NUMBER = "+8615612341090"


def failover_config() -> Config:
    return Config.from_dict(
        {
            "providers": {
                "primary": {"type": "memory", "fail": "InsufficientBalance"},
                "backup": {"type": "memory"},
            }
        }
    )


def test_an_attempt_reads_well_under_a_plain_formatter(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="notifykit")
    with Notifier(failover_config()) as sms:
        result = sms.send(NUMBER, template="t")
    lines = [r.getMessage() for r in caplog.records if getattr(r, "event", None) == "attempt"]
    assert lines[0].startswith("attempt primary failed: InsufficientBalance in ")
    assert " ms, message " + result.message_id in lines[0]
    assert lines[1].startswith("attempt backup accepted in ")
    failed = next(r for r in caplog.records if getattr(r, "outcome", None) == "failed")
    assert failed.provider == "primary" and failed.error_type == "InsufficientBalance"  # type: ignore[attr-defined]
    assert failed.levelno == logging.WARNING
    assert "15612341090" not in caplog.text


def test_a_host_that_configured_nothing_sees_nothing_from_notifykit() -> None:
    probe = textwrap.dedent(
        f"""
        from notifykit import Notifier
        from notifykit.config import Config
        config = Config.from_dict({{"providers": {{
            "primary": {{"type": "memory", "fail": "InsufficientBalance"}},
            "backup": {{"type": "memory"}}}}}})
        with Notifier(config) as sms:
            sms.send("{NUMBER}", template="t")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stderr == ""  # a failed attempt is a WARNING: no last-resort line


def test_a_host_with_basic_config_gets_readable_lines() -> None:
    probe = textwrap.dedent(
        f"""
        import logging
        logging.basicConfig(format="%(levelname)s %(name)s %(message)s")
        from notifykit import Notifier
        from notifykit.config import Config
        config = Config.from_dict({{"providers": {{
            "primary": {{"type": "memory", "fail": "InsufficientBalance"}},
            "backup": {{"type": "memory"}}}}}})
        with Notifier(config) as sms:
            sms.send("{NUMBER}", template="t")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    (line,) = done.stderr.splitlines()
    assert line.startswith("WARNING notifykit.routing attempt primary failed: InsufficientBalance")
    assert line != "WARNING notifykit.routing attempt"
