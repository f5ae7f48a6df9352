"""The rules hold across processes sharing one SQLite store (docs/verify.md).

Each test starts worker processes (tests/verify/worker.py) that open the same file and wait
on stdin, releases them together, and counts what came of it. Where an interleaving can be
forced it is: the parent holds SQLite's write lock while every worker queues its checks, so
they all contend when it lets go; a start is held inside its vendor call while the other
process starts. No outcome below depends on timing.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from notifykit.models import VerificationStatus
from notifykit.testing import Outbox

from .conftest import PHONE, SECRET, MakeNotifier

pytestmark = pytest.mark.anyio

WORKER = Path(__file__).with_name("worker.py")
TIMEOUT = 120


class Worker:
    def __init__(self, job: dict[str, Any]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER), json.dumps(job)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def expect(self, line: str) -> None:
        assert self.proc.stdout is not None
        got = self.proc.stdout.readline().strip()
        if got != line:
            self.proc.kill()
            _, err = self.proc.communicate(timeout=TIMEOUT)
            raise AssertionError(f"worker said {got!r}, expected {line!r}; stderr: {err}")

    def tell(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def result(self) -> dict[str, Any]:
        out, err = self.proc.communicate(timeout=TIMEOUT)
        assert self.proc.returncode == 0, err
        return dict(json.loads(out.strip().splitlines()[-1]))


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for worker in started:
        if worker.proc.poll() is None:
            worker.proc.kill()
            worker.proc.communicate(timeout=TIMEOUT)


def spawn(workers: list[Worker], db: Path, **job: Any) -> Worker:
    worker = Worker({"db": str(db), "secret": SECRET, "phone": PHONE, **job})
    workers.append(worker)
    return worker


def wrong(code: str, i: int) -> str:
    guess = f"{(int(code) + 1 + i) % 10 ** len(code):0{len(code)}d}"
    assert guess != code
    return guess


async def started_verification(
    make: MakeNotifier, outbox: Outbox, db: Path, **settings: Any
) -> tuple[str, str]:
    """A verification started by this process on the shared file, on the real clock (the
    workers' own); (verification id, code)."""
    notifier = make(store=f"sqlite:///{db}", **settings)
    notifier.verify.clock = time.time
    started = await notifier.verify.start(PHONE)
    code = outbox.last_code(PHONE)
    await notifier.close()
    return started.verification_id, code


def release_under_lock(db: Path, group: list[Worker]) -> None:
    """Every worker gets ``go`` while this process holds the write lock, so that their
    store operations queue up behind it and contend when it is let go."""
    for worker in group:
        worker.expect("ready")
    lock = sqlite3.connect(db, isolation_level=None)
    try:
        lock.execute("BEGIN IMMEDIATE")
        for worker in group:
            worker.tell("go")
        lock.execute("COMMIT")
    finally:
        lock.close()


async def stored(db: Path, verification_id: str) -> tuple[str, int]:
    conn = sqlite3.connect(db)
    try:
        row = conn.execute(
            "SELECT status, attempts FROM verifications WHERE verification_id = ?",
            (verification_id,),
        ).fetchone()
    finally:
        conn.close()
    return str(row[0]), int(row[1])


async def test_fifty_concurrent_wrong_checks_use_exactly_max_attempts(
    make: MakeNotifier, outbox: Outbox, tmp_path: Path, workers: list[Worker]
) -> None:
    db = tmp_path / "shared.db"
    verification_id, code = await started_verification(make, outbox, db)
    group = [
        spawn(workers, db, action="check", codes=[wrong(code, p * 25 + i) for i in range(25)])
        for p in range(2)
    ]
    release_under_lock(db, group)
    answers = [a for w in group for a in w.result()["answers"]]
    assert len(answers) == 50
    counts = Counter(a["status"] for a in answers)
    # max_attempts = 5: four wrong guesses answered incorrect, the fifth locked it, and the
    # 45 others were not evaluated at all.
    assert counts == {"incorrect": 4, "max_attempts": 46}, counts
    assert sorted(a["left"] for a in answers if a["status"] == "incorrect") == [1, 2, 3, 4]
    assert await stored(db, verification_id) == (VerificationStatus.MAX_ATTEMPTS.value, 5)


async def test_twenty_concurrent_right_checks_approve_exactly_once(
    make: MakeNotifier, outbox: Outbox, tmp_path: Path, workers: list[Worker]
) -> None:
    db = tmp_path / "shared.db"
    verification_id, code = await started_verification(make, outbox, db)
    group = [spawn(workers, db, action="check", codes=[code] * 10) for _ in range(2)]
    release_under_lock(db, group)
    counts = Counter(a["status"] for w in group for a in w.result()["answers"])
    assert counts == {"approved": 1, "not_found": 19}, counts
    assert await stored(db, verification_id) == (VerificationStatus.APPROVED.value, 0)


async def test_two_starts_at_the_same_instant_send_one_sms(
    tmp_path: Path, workers: list[Worker]
) -> None:
    db = tmp_path / "shared.db"
    group = [spawn(workers, db, action="start") for _ in range(2)]
    release_under_lock(db, group)
    results = [w.result() for w in group]
    assert sum(r["sms"] for r in results) == 1, results
    statuses = sorted(r["answers"][0]["status"] for r in results)
    assert statuses == ["rate_limited", "started"], results
    limited = next(r for r in results if r["answers"][0]["status"] == "rate_limited")
    assert 0 < limited["answers"][0]["retry_after"] <= 60


async def test_a_start_while_another_process_is_sending_is_refused(
    tmp_path: Path, workers: list[Worker]
) -> None:
    db = tmp_path / "shared.db"
    first = spawn(workers, db, action="start", hold_send=True)
    first.expect("ready")
    first.tell("go")
    first.expect("sending")  # the first has claimed the interval and is inside its vendor call
    second = spawn(workers, db, action="start")
    second.expect("ready")
    second.tell("go")
    refused = second.result()
    assert refused["sms"] == 0 and refused["answers"][0]["status"] == "rate_limited"
    first.tell("release")
    sent = first.result()
    assert sent["sms"] == 1 and sent["answers"] == [{"status": "started", "sends": 1}]
