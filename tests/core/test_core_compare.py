"""The one constant-time comparison: what it answers, and that it is the only one.

Timing is not measured (a timing test would be flaky); the mechanism is: each check of a
secret goes through :func:`notifykit.compare.constant_time_equal`, whose one primitive is
:func:`hmac.compare_digest`. The receiver's and the plugins' checks are watched through a
spy on that primitive in their own tests (tests/callbacks, plugins/twilio/tests).
"""

from __future__ import annotations

import hmac
import re
from pathlib import Path

import pytest

from notifykit.compare import constant_time_equal
from notifykit.models import VerificationRecord
from notifykit.store import MemoryStore, SQLiteStore, Store

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("given", "expected", "equal"),
    [
        ("s3cret", "s3cret", True),
        ("s3creT", "s3cret", False),
        ("s3cre", "s3cret", False),
        ("", "s3cret", False),
        ("s3cret-and-more", "s3cret", False),
        ("", "", True),
        ("clé-秘密", "clé-秘密", True),  # compare_digest alone refuses non-ASCII text
        ("clé-秘密", "cle-秘密", False),
        (b"\x00\xff", b"\x00\xff", True),
        (b"\x00\xff", "\x00\xff", False),  # text is its UTF-8 bytes: \xff is two bytes
    ],
)
def test_answers(given: str | bytes, expected: str | bytes, equal: bool) -> None:
    assert constant_time_equal(given, expected) is equal


def test_every_answer_comes_from_compare_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    for given in ("right", "wrong", "rig", ""):
        constant_time_equal(given, "right")
    assert seen == [(b"right", b"right"), (b"wrong", b"right"), (b"rig", b"right"), (b"", b"right")]


def _sources() -> list[Path]:
    packages = [ROOT / "notifykit", *sorted((ROOT / "plugins").glob("*/notifykit_*"))]
    return sorted(p for package in packages for p in package.rglob("*.py"))


def test_no_other_module_compares_secrets_itself() -> None:
    """``compare_digest`` is called in one place; a new check must use the helper (which
    its tests can watch) rather than its own comparison."""
    sources = _sources()
    assert any(p.name == "compare.py" for p in sources)
    assert any("notifykit_twilio" in p.parts for p in sources)
    direct = [
        str(p.relative_to(ROOT))
        for p in sources
        if p.name != "compare.py" and re.search(r"compare_digest\s*\(", p.read_text("utf-8"))
    ]
    assert direct == []


@pytest.mark.anyio
@pytest.mark.parametrize("backend", ["memory", "sqlite"])
async def test_every_verification_code_is_compared_in_constant_time(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored_hash = "ab" * 32
    store: Store = MemoryStore() if backend == "memory" else SQLiteStore(tmp_path / "v.sqlite3")
    await store.open()
    try:
        record = VerificationRecord(
            verification_id="v1",
            to="+8615612341090",
            purpose="login",
            code_hash=stored_hash,
            seed="seed",
            created_at=0.0,
            expires_at=600.0,
            updated_at=0.0,
        )
        claim = await store.claim_verification_send(
            record, now=0.0, resend_interval=60, max_sends=5
        )
        assert claim.claim_id is not None
        seen: list[tuple[bytes, bytes]] = []
        real = hmac.compare_digest

        def spy(a: bytes, b: bytes) -> bool:
            seen.append((a, b))
            return real(a, b)

        monkeypatch.setattr(hmac, "compare_digest", spy)
        for given in ("cd" * 32, "ab" * 31, "", stored_hash):
            await store.check_verification(
                "+8615612341090", "login", given, now=1.0, max_attempts=10
            )
        assert seen == [
            (given.encode(), stored_hash.encode())
            for given in ("cd" * 32, "ab" * 31, "", stored_hash)
        ]
    finally:
        await store.close()
