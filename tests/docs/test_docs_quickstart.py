"""docs/quickstart.md: every ```python block runs as written, with no configuration file
(the built-in console default), and prints what the text says it does."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from notifykit.config import ConsoleFallbackWarning

DOC = Path(__file__).resolve().parents[2] / "docs" / "quickstart.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```$", DOC.read_text(encoding="utf-8"), re.S | re.M)


@pytest.fixture
def no_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NOTIFYKIT_CONFIG", raising=False)


def run(source: str) -> None:
    exec(compile(source, str(DOC), "exec"), {"__name__": "__main__"})


def test_the_install_line_installs_every_plugin() -> None:
    """The quick start installs what the README's does: the core and every plugin under
    plugins/ (the demo's Alibaba Cloud backup needs notifykit-aliyun)."""
    root = DOC.parents[1]
    (line,) = [ln for ln in DOC.read_text(encoding="utf-8").splitlines() if "pip install" in ln]
    plugins = sorted(p.parent.name for p in (root / "plugins").glob("*/pyproject.toml"))
    assert plugins and all(f"-e plugins/{name}" in line for name in plugins), (line, plugins)


def test_there_are_three_examples() -> None:
    assert len(BLOCKS) == 3


@pytest.mark.usefixtures("no_config")
def test_sync_send(capsys: pytest.CaptureFixture[str]) -> None:
    # The quick start runs without a configuration file: the console fallback says so.
    with pytest.warns(ConsoleFallbackWarning, match="only printed by the built-in console"):
        run(BLOCKS[0])
    out = capsys.readouterr().out
    assert "[console] SMS to +86156****1090: verify_code code=****" in out
    assert "console " in out and "['accepted']" in out


@pytest.mark.usefixtures("no_config")
def test_async_send(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.warns(ConsoleFallbackWarning, match="only printed by the built-in console"):
        run(BLOCKS[1])
    assert capsys.readouterr().out.splitlines()[-1] == "accepted"


@pytest.mark.usefixtures("no_config")
def test_failures(capsys: pytest.CaptureFixture[str]) -> None:
    run(BLOCKS[2])
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("bad input: to: recipient") and "12345" not in out[0]
    assert out[1] == "sms failed InsufficientBalance"
