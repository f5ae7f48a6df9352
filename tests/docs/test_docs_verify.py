"""docs/verify.md: its first ```python block runs as written, as a script, against a
``notifykit.toml`` with a ``[verify] secret``, and prints what its comments say."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "verify.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```$", DOC.read_text(encoding="utf-8"), re.S | re.M)


def test_the_opening_example_runs_as_a_script(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NOTIFYKIT_CONFIG", raising=False)
    (tmp_path / "notifykit.toml").write_text(
        '[providers.sms]\ntype = "memory"\n\n[verify]\nsecret = "a-secret-of-24-characters"\n',
        encoding="utf-8",
    )
    exec(compile(BLOCKS[0], str(DOC), "exec"), {"__name__": "__main__"})
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "wait 60 s", lines
    # a guessed code is wrong but for one chance in 10**6 (code_length 6)
    assert lines[1:] in (["False"], ["True"]), lines
