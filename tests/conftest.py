"""The secrets scan: every log record of the whole test session is checked for the
canary secrets the tests configure; any occurrence fails the session.

How it works: at start-up (this conftest is loaded for the ``tests`` and ``plugins`` test
paths), :class:`SecretsScan` is registered as a pytest plugin, sets the root logger to
DEBUG and wraps ``logging.Logger.handle``. That is the one method every record passes
through once its logger's level lets it be made, whichever handler (caplog's, the CLI's
stderr handler, none) receives it and whether or not it propagates, so even loggers with
``propagate = False`` are seen. Each record's message, arguments, extra fields (structlog
puts the event dict there) and exception text are searched for every :data:`CANARIES`
string (except httpx's request line of a push *to* the receiver, see
:func:`is_push_to_receiver`); hits are reported with the test that logged them (the secret itself masked) and
the session exits with status 1. Records made in other processes (``notifykit serve``
subprocesses) are not seen.

Verification codes are secrets too, but made at run time: every code that
``notifykit.verify.derive_code`` makes during a test (of 6 digits or more, the first
:data:`MAX_CODES_PER_TEST`) is a canary for the rest of that test, searched as a whole token
in everything a record holds except its timestamps (whose microseconds are digits too).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import select
import struct
import subprocess
import sys
import time
import traceback
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

CANARIES: tuple[str, ...] = (
    # Configured as provider app keys, auth tokens and callback tokens across the suite
    # (grep the tests for app_key / auth_token / token). Short or generic values ("k",
    # "key") are left out: they would match ordinary text.
    "WVNA4A0SECRETKEY",
    "PRIMARY-APP-KEY-0042",
    "BACKUP-APP-KEY-0043",
    "TOPSECRET",
    "key-do-not-show",
    "s3cret-t0ken",
    "s3cr3t-Zq9-config",
    "crash-test-token",
    "cli-secret-token",
    "cb-token-7Hx-leak-canary",
    "twilio-auth-token-not-real",
    "auth-token-never-shown-0042",
    "api-key-secret-never-shown-0042",
    "auth-token-0042",
    "pg-pw-never-shown-0042",
    # The [verify] secret of tests/verify.
    "verify-secret-canary-0042-never-shown",
    # The reliability suite's own.
    "RELIABILITY-APP-KEY-5150",
    "RELIABILITY-BACKUP-KEY-5151",
    "RELIABILITY-CB-TOKEN-7734",
)

PLUGIN_NAME = "notifykit-secrets-scan"

MIN_CODE_LENGTH = 6
"""Shorter codes are not watched: a 4-digit token (a year, a masked number's last digits)
would match by chance."""
MAX_CODES_PER_TEST = 500
"""The statistical tests make 10**5 codes and log none; watching them all would be slow."""
_TIME_FIELDS = frozenset({"created", "msecs", "relativeCreated", "timestamp"})


@dataclass(frozen=True)
class Leak:
    test: str
    logger: str
    canary: str

    def __str__(self) -> str:
        shown = self.canary[:3] + "***"
        return f"{self.test}: logger {self.logger!r} logged secret {shown}"


def record_text(record: logging.LogRecord) -> str:
    """Everything a handler could render from ``record``."""
    parts = [str(value) for value in vars(record).values()]
    # A malformed record cannot render; its raw parts above are still searched.
    with contextlib.suppress(Exception):
        parts.append(record.getMessage())
    if record.exc_info and record.exc_info[1] is not None:
        parts.append("".join(traceback.format_exception(record.exc_info[1])))
    return "\n".join(parts)


def code_text(record: logging.LogRecord) -> str:
    """:func:`record_text` without the timestamps, for the search for codes."""
    parts = [str(v) for k, v in vars(record).items() if k not in _TIME_FIELDS]
    with contextlib.suppress(Exception):
        parts.append(record.getMessage())
    if record.exc_info and record.exc_info[1] is not None:
        parts.append("".join(traceback.format_exception(record.exc_info[1])))
    return "\n".join(parts)


def is_push_to_receiver(record: logging.LogRecord) -> bool:
    """httpx's request line for a POST *to* the callback receiver, made by a test playing the
    vendor (or by a sandbox's pusher): the vendor is configured with the token in the URL,
    so its own HTTP client logging that URL is the vendor's business. notifykit itself never
    calls a ``/callbacks/`` URL, so this exempts no record of notifykit's own requests."""
    if record.name != "httpx" or record.msg != 'HTTP Request: %s %s "%s %d %s"':
        return False
    args = record.args if isinstance(record.args, tuple) else ()
    return len(args) >= 2 and "/callbacks/" in str(args[1])


class SecretsScan:
    """The session-wide scanner (a pytest plugin, see the module docstring)."""

    def __init__(self, canaries: tuple[str, ...] = CANARIES) -> None:
        self.canaries = canaries
        self.leaks: list[Leak] = []
        self.records_scanned = 0
        self.current_test = "<collection>"
        self._diverted: list[Leak] | None = None
        self._original: Callable[[logging.Logger, logging.LogRecord], Any] | None = None
        self._original_derive: Callable[[bytes, bytes, int], str] | None = None
        self._root_level = logging.WARNING
        self.codes: list[tuple[str, re.Pattern[str]]] = []
        """The verification codes made during the current test, as whole-token patterns."""
        self.codes_seen = 0

    def watch_code(self, code: str) -> None:
        """Treat ``code`` as a canary until the test ends."""
        self.codes_seen += 1
        if any(known == code for known, _ in self.codes):
            return  # a resend derives the same code again
        if len(code) >= MIN_CODE_LENGTH and len(self.codes) < MAX_CODES_PER_TEST:
            pattern = re.compile(rf"(?<![0-9A-Za-z]){re.escape(code)}(?![0-9A-Za-z])")
            self.codes.append((code, pattern))

    def scan(self, record: logging.LogRecord) -> None:
        self.records_scanned += 1
        if is_push_to_receiver(record):
            return
        text = record_text(record)
        for canary in self.canaries:
            if canary in text:
                leak = Leak(self.current_test, record.name, canary)
                (self._diverted if self._diverted is not None else self.leaks).append(leak)
        codes = list(self.codes)
        if codes:
            text = code_text(record)
            for code, pattern in codes:
                if pattern.search(text):
                    leak = Leak(self.current_test, record.name, code)
                    (self._diverted if self._diverted is not None else self.leaks).append(leak)

    @contextmanager
    def diverted(self) -> Iterator[list[Leak]]:
        """Collect hits into the yielded list instead of failing the session (for the
        test that proves the scanner sees a leak)."""
        self._diverted = []
        try:
            yield self._diverted
        finally:
            self._diverted = None

    # -- pytest hooks ------------------------------------------------------------------------

    def install(self) -> None:
        original = logging.Logger.handle
        scanner = self

        def handle(logger: logging.Logger, record: logging.LogRecord) -> None:
            scanner.scan(record)
            original(logger, record)

        self._original = original
        logging.Logger.handle = handle  # type: ignore[method-assign]

        import notifykit.verify

        derive = notifykit.verify.derive_code

        def derive_code(key: bytes, seed: bytes, length: int) -> str:
            code = derive(key, seed, length)
            scanner.watch_code(code)
            return code

        self._original_derive = derive
        notifykit.verify.derive_code = derive_code
        root = logging.getLogger()
        self._root_level = root.level
        root.setLevel(logging.DEBUG)

    def uninstall(self) -> None:
        if self._original is not None:
            logging.Logger.handle = self._original  # type: ignore[method-assign]
            self._original = None
        if self._original_derive is not None:
            import notifykit.verify

            notifykit.verify.derive_code = self._original_derive
            self._original_derive = None
        logging.getLogger().setLevel(self._root_level)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logstart(self, nodeid: str) -> None:
        self.current_test = nodeid
        self.codes = []

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.uninstall()
        if self.leaks and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.leaks:
            terminalreporter.section("secrets found in captured logs", red=True)
            for leak in dict.fromkeys(self.leaks):
                terminalreporter.line(str(leak))
        else:
            terminalreporter.line(
                f"secrets scan: {self.records_scanned} log records, "
                f"{len(self.canaries)} canary secrets and {self.codes_seen} verification "
                "codes, 0 occurrences"
            )


def pytest_configure(config: pytest.Config) -> None:
    if config.pluginmanager.has_plugin(PLUGIN_NAME):
        return
    scanner = SecretsScan()
    scanner.install()
    config.pluginmanager.register(scanner, PLUGIN_NAME)


@pytest.fixture
async def veesing_sandboxes() -> AsyncIterator[Callable[..., tuple[Any, Any]]]:
    """``start(app_id=..., app_key=..., **settings)``: a Veesing sandbox served on 127.0.0.1
    with no per-number limits and credits enough, as ``(VeesingSandbox, ServerThread)``;
    every one started is released and stopped after the test. The plugin is imported here,
    not when the suite starts."""
    from notifykit_veesing import VeesingSandbox, VeesingSandboxSettings

    from notifykit.server import ServerThread

    started: list[tuple[VeesingSandbox, ServerThread]] = []

    def start(**settings: Any) -> tuple[VeesingSandbox, ServerThread]:
        defaults: dict[str, Any] = {
            "balance": 1_000_000,
            "per_number_interval": 0.0,
            "per_number_daily_cap": 1_000_000,
        }
        sandbox = VeesingSandbox(VeesingSandboxSettings(port=0, **{**defaults, **settings}))
        server = ServerThread(sandbox.app()).start()
        started.append((sandbox, server))
        return sandbox, server

    yield start
    for sandbox, server in started:
        await sandbox.aclose()
        await asyncio.to_thread(server.stop, 5.0)


RunInPty = Callable[..., tuple[int, str]]


@pytest.fixture
def run_in_pty() -> RunInPty:
    """``run_in_pty(args, columns, cwd=None, env=None)``: ``python -m notifykit *args`` on a
    pseudo-terminal ``columns`` wide (40 rows); its exit status and everything it showed.

    ``env``: the child's environment (default: this one's); ``COLUMNS`` is always left out,
    so that the child reads the terminal's width. The child is killed after 90 seconds."""

    def run(
        args: list[str], columns: int, cwd: Path | None = None, env: dict[str, str] | None = None
    ) -> tuple[int, str]:
        import fcntl  # POSIX only: imported here so that this conftest loads everywhere
        import pty
        import termios

        child_env = {k: v for k, v in (os.environ if env is None else env).items()}
        child_env.pop("COLUMNS", None)
        leader, follower = pty.openpty()
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
        proc = subprocess.Popen(
            [sys.executable, "-m", "notifykit", *args],
            stdin=follower,
            stdout=follower,
            stderr=follower,
            cwd=cwd,
            env=child_env,
            close_fds=True,
        )
        os.close(follower)
        chunks: list[bytes] = []
        deadline = time.monotonic() + 90
        try:
            while time.monotonic() < deadline:
                ready, _, _ = select.select([leader], [], [], 1.0)
                if not ready:
                    if proc.poll() is not None:
                        break
                    continue
                try:
                    data = os.read(leader, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            code = proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            os.close(leader)
        return code, b"".join(chunks).decode("utf-8", errors="replace")

    return run
