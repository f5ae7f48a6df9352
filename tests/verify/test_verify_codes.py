"""How codes are made: uniform over every ``code_length``-digit string, unpredictable
without the secret, repeatable from the stored seed, and never stored or shown."""

from __future__ import annotations

import logging
import random
import re
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from notifykit.models import VerificationRecord
from notifykit.testing import Outbox
from notifykit.verify import SEED_BYTES, CodeKeys, derive_code, uniform_below

from .conftest import PHONE, SECRET, MakeNotifier

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("n", range(1, 257))
def test_rejection_sampling_gives_every_residue_exactly_as_many_preimages(n: int) -> None:
    # Exhaustive over an 8-bit source: each source value either maps to one residue or is
    # skipped, and every residue ends up with the same number of source values.
    mapped: Counter[int] = Counter()
    for value in range(256):
        try:
            mapped[uniform_below(iter([value]), n, 8)] += 1
        except ValueError:  # skipped: above the largest multiple of n
            continue
    assert set(mapped) == set(range(n))
    assert len(set(mapped.values())) == 1
    assert sum(mapped.values()) == 256 - 256 % n


def test_a_skipped_value_moves_on_to_the_next() -> None:
    assert uniform_below(iter([255, 254, 7]), 10, 8) == 7  # 250..255 are skipped for n=10
    with pytest.raises(ValueError, match="ran out"):
        uniform_below(iter([252]), 10, 8)
    with pytest.raises(ValueError):
        uniform_below(iter([1]), 0, 8)


@pytest.mark.parametrize("length", [4, 5, 6, 7, 8])
def test_codes_have_the_length_and_keep_leading_zeros(length: int) -> None:
    rng = random.Random(length)
    keys = CodeKeys(SECRET, length)
    codes = [keys.code(rng.randbytes(SEED_BYTES)) for _ in range(2000)]
    assert all(len(c) == length and c.isascii() and c.isdigit() for c in codes)
    assert any(c.startswith("0") for c in codes)


def chi_square(counts: Counter[str], buckets: int, total: int) -> float:
    expected = total / buckets
    return sum((counts.get(k, 0) - expected) ** 2 / expected for k in _all(buckets))


def _all(buckets: int) -> list[str]:
    width = len(str(buckets - 1))
    return [f"{i:0{width}d}" for i in range(buckets)]


def test_four_digit_codes_are_uniform_over_all_ten_thousand() -> None:
    # Seeds from a seeded generator: the same sample every run (no flaky statistics).
    rng = random.Random(20261129)
    keys = CodeKeys(SECRET, 4)
    total = 200_000
    counts = Counter(keys.code(rng.randbytes(SEED_BYTES)) for _ in range(total))
    assert len(counts) == 10_000  # every code, 0000 included, occurs
    # 9999 degrees of freedom: mean 9999, sd 141. 10 700 is 5 sd above the mean; a bias of
    # 10 % on a tenth of the codes would add about 2 000.
    assert chi_square(counts, 10_000, total) < 10_700


def test_every_digit_position_of_six_digit_codes_is_uniform() -> None:
    rng = random.Random(7)
    keys = CodeKeys(SECRET, 6)
    codes = [keys.code(rng.randbytes(SEED_BYTES)) for _ in range(50_000)]
    for position in range(6):
        counts = Counter(code[position] for code in codes)
        # 9 degrees of freedom: 33.7 is p = 1e-4.
        assert chi_square(counts, 10, len(codes)) < 33.7, (position, counts)


def test_the_code_depends_on_the_secret_and_the_seed_only() -> None:
    seed = bytes(range(SEED_BYTES))
    one = CodeKeys(SECRET, 6)
    assert one.code(seed) == CodeKeys(SECRET, 6).code(seed)  # a resend repeats it
    others = {CodeKeys(f"{SECRET}-{i}", 6).code(seed) for i in range(50)}
    assert len(others) > 45  # another secret, another code (a few collide by chance)
    assert derive_code(b"k", seed, 6) != derive_code(b"k", seed[::-1], 6)
    assert "secret" not in repr(one).lower() and SECRET not in repr(one)


def test_the_check_hash_is_bound_to_number_and_purpose() -> None:
    keys = CodeKeys(SECRET, 6)
    base = keys.code_hash(PHONE, "login", "123456")
    assert base == keys.code_hash(PHONE, "login", "123456")
    assert len({base, keys.code_hash(PHONE, "reset", "123456")}) == 2
    assert base != keys.code_hash("+8613800138000", "login", "123456")
    assert base != CodeKeys(SECRET + "x", 6).code_hash(PHONE, "login", "123456")
    assert "123456" not in base


def bounded(code: str) -> re.Pattern[str]:
    """The code as a token: not part of a longer run of hex digits."""
    return re.compile(rf"(?<![0-9a-fA-F]){code}(?![0-9a-fA-F])")


async def test_the_sqlite_store_never_holds_the_code(
    make: MakeNotifier, outbox: Outbox, tmp_path: Path
) -> None:
    path = tmp_path / "nk.db"
    notifier = make(store=f"sqlite:///{path}")
    started = await notifier.verify.start(PHONE)
    code = outbox.last_code(PHONE)
    await notifier.verify.check(PHONE, "000000" if code != "000000" else "111111")
    await notifier.close()
    conn = sqlite3.connect(path)
    try:
        dump = "\n".join(conn.iterdump())
    finally:
        conn.close()
    assert started.verification_id in dump  # the verification is there...
    assert not bounded(code).search(dump)  # ...its code is not, in any table
    record = VerificationRecord.model_fields
    assert {"code_hash", "seed"} <= set(record) and "code" not in record


def untimed(record: logging.LogRecord) -> dict[str, object]:
    """A record's fields but its timestamps (their microseconds could match a code)."""
    skip = {"created", "msecs", "relativeCreated", "timestamp"}
    return {k: v for k, v in vars(record).items() if k not in skip}


async def test_reprs_and_logs_of_the_flow_hold_no_code(
    make: MakeNotifier, outbox: Outbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    notifier = make()
    started = await notifier.verify.start(PHONE)
    code = outbox.last_code(PHONE)
    checked = await notifier.verify.check(PHONE, code)
    stored = await notifier.store.get_verification(started.verification_id)
    texts = [
        repr(started),
        started.model_dump_json(),
        repr(checked),
        repr(stored),
        repr(notifier.verify),
        repr(outbox),
        *(f"{r.getMessage()} {untimed(r)!r}" for r in caplog.records),
    ]
    assert any("verification_sent" in t for t in texts)
    assert not any(bounded(code).search(t) for t in texts)
