"""The demo's verification part: a wrong guess, the right code, a replay refused, a second
start refused; the code never printed."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from notifykit.config import load_config
from notifykit.demo import DemoSettings, run_demo
from notifykit.verify import CodeKeys


def test_the_demo_shows_a_verification_and_never_its_code(tmp_path: Path) -> None:
    lines: list[str] = []
    outcome = run_demo(
        DemoSettings(count=3, keep=tmp_path, echo=lines.append, progress=False, pace=0.0)
    )
    assert outcome.verification is not None and outcome.verification.as_expected, lines
    assert outcome.verification.provider == "backup"
    text = "\n".join(lines)
    assert "Verification codes (notifier.verify):" in text
    assert re.search(r"wrong guess: +incorrect, 4 attempts left", text), text
    assert re.search(r"right code: +approved", text)
    assert re.search(r"replay: +not_found \(a code approves once\)", text)
    assert re.search(
        r"start again: +refused, no SMS sent \(VerificationRateLimited, retry in \d+ s\)", text
    )
    config = load_config(tmp_path / "notifykit.toml")
    assert config.verify.secret is not None
    conn = sqlite3.connect(tmp_path / "notifykit.sqlite3")
    try:
        seed, status = conn.execute(
            "SELECT seed, status FROM verifications WHERE phone = ?", (outcome.verification.phone,)
        ).fetchone()
    finally:
        conn.close()
    assert status == "approved"
    code = CodeKeys(config.verify.secret.get_secret_value(), 6).code(bytes.fromhex(seed))
    assert not re.search(rf"(?<!\d){code}(?!\d)", text)
