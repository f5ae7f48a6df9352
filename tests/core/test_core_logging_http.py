"""Logging that leaves the host alone, and the HTTP edge's fault classification."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap

import httpx
import pytest

from notifykit.errors import ProviderUnavailable, UnknownOutcome
from notifykit.http import classify_transport_error, create_client, request, status_error
from notifykit.log import configure_cli_logging, get_logger
from notifykit.provider import ProviderContext

NUMBER = "+8615612341090"


def test_importing_notifykit_configures_nothing_globally() -> None:
    probe = textwrap.dedent(
        """
        import json, logging, structlog
        def state():
            root = logging.getLogger()
            nk = logging.getLogger("notifykit")
            return {
                "structlog": repr(sorted(structlog.get_config().items(), key=lambda kv: kv[0])),
                "configured": structlog.is_configured(),
                "root": [root.level, [repr(h) for h in root.handlers]],
                "notifykit": [nk.level, nk.propagate, [type(h).__name__ for h in nk.handlers]],
            }
        before = state()
        import notifykit, notifykit.cli, notifykit.notifier, notifykit.default_plugins.console
        from notifykit.plugins import get_plugin_manager, provider_types
        provider_types(get_plugin_manager())
        print(json.dumps([before, state()]))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    before, after = json.loads(done.stdout)
    # A NullHandler on the package logger, nothing else (no output for a host that
    # configured nothing): the rest is as it was.
    assert after["notifykit"] == [*before["notifykit"][:2], ["NullHandler"]]
    assert {**after, "notifykit": None} == {**before, "notifykit": None}
    assert after["configured"] is False


def test_library_events_reach_the_hosts_handlers_with_numbers_masked(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="notifykit")
    get_logger("notifykit.test").info("sent", to=NUMBER, phone=NUMBER, provider="p")
    (record,) = caplog.records
    assert record.name == "notifykit.test" and record.event == "sent"  # type: ignore[attr-defined]
    assert record.getMessage() == "sent: to=+86156****1090, phone=+86156****1090, provider=p"
    assert record.to == "+86156****1090" and record.phone == "+86156****1090"  # type: ignore[attr-defined]
    assert record.provider == "p"  # type: ignore[attr-defined]


def test_a_key_that_logging_owns_cannot_break_a_log_call(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="notifykit")
    get_logger().info("odd", name="x", module="y", message="z", args=1)
    (record,) = caplog.records
    assert record.name == "notifykit" and record.event == "odd"  # type: ignore[attr-defined]
    assert (record.name_, record.module_, record.message_) == ("x", "y", "z")  # type: ignore[attr-defined]


def test_cli_logging_renders_json_and_restores(capsys: pytest.CaptureFixture[str]) -> None:
    logger = logging.getLogger("notifykit")
    before = (list(logger.handlers), logger.level, logger.propagate)
    restore = configure_cli_logging(logging.DEBUG, json=True)
    try:
        get_logger("notifykit.routing").debug("attempt", to=NUMBER, outcome="accepted")
    finally:
        restore()
    assert (list(logger.handlers), logger.level, logger.propagate) == before
    line = json.loads(capsys.readouterr().err.strip())
    assert line["event"] == "attempt" and line["to"] == "+86156****1090"
    assert line["level"] == "debug" and line["outcome"] == "accepted"


def test_cli_logging_console_rendering(capsys: pytest.CaptureFixture[str]) -> None:
    restore = configure_cli_logging(logging.INFO, json=False)
    try:
        get_logger().info("attempt", provider="primary", outcome="failed")
        get_logger().debug("hidden")
    finally:
        restore()
    err = capsys.readouterr().err
    assert "attempt" in err and "provider=primary" in err and "hidden" not in err
    assert not err.lstrip().startswith("{")


# -- HTTP edge ------------------------------------------------------------------------------------


def _raising(exc: Exception) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return httpx.MockTransport(handler)


@pytest.mark.parametrize(
    ("fault", "expected", "retryable"),
    [
        (httpx.ConnectError("refused"), ProviderUnavailable, True),
        (httpx.ConnectTimeout("slow connect"), ProviderUnavailable, True),
        (httpx.PoolTimeout("pool"), ProviderUnavailable, True),
        (httpx.UnsupportedProtocol("ftp"), ProviderUnavailable, True),
        (httpx.ReadTimeout("slow answer"), UnknownOutcome, None),
        (httpx.WriteTimeout("slow upload"), UnknownOutcome, None),
        (httpx.RemoteProtocolError("closed without answering"), UnknownOutcome, None),
        (httpx.ReadError("reset"), UnknownOutcome, None),
        (ConnectionResetError("reset by peer"), UnknownOutcome, None),
        (TimeoutError(), UnknownOutcome, None),
    ],
)
@pytest.mark.anyio
async def test_transport_faults_are_classified(
    fault: Exception, expected: type[Exception], retryable: bool | None
) -> None:
    context = ProviderContext(instance="primary", transport=_raising(fault))
    async with create_client(context, timeout=1.0, base_url="https://vendor.test") as client:
        with pytest.raises(expected) as info:
            await request(client, "POST", "/send", provider="primary")
    assert info.value.provider == "primary"  # type: ignore[attr-defined]
    assert info.value.__cause__ is fault
    if retryable is not None:
        assert info.value.retryable is retryable  # type: ignore[attr-defined]


@pytest.mark.anyio
async def test_an_invalid_url_is_unavailable_and_not_echoed() -> None:
    context = ProviderContext(
        instance="p", transport=httpx.MockTransport(lambda r: httpx.Response(200))
    )
    async with create_client(context, timeout=1.0) as client:
        with pytest.raises(ProviderUnavailable) as info:
            await request(client, "GET", "http://a\x00b/?key=SECRET", provider="p")
    assert "SECRET" not in str(info.value)


@pytest.mark.parametrize(
    ("status", "retryable"), [(500, False), (502, True), (503, True), (429, True)]
)
def test_status_error(status: int, retryable: bool) -> None:
    error = status_error(httpx.Response(status), "primary")
    assert isinstance(error, ProviderUnavailable)
    assert (error.vendor_code, error.retryable) == (str(status), retryable)
    assert str(error) == f"primary: HTTP {status} from the vendor"


def test_classify_reads_the_aiohttp_cause() -> None:
    aiohttp = pytest.importorskip("aiohttp")
    from aiohttp.client_reqrep import ConnectionKey

    key = ConnectionKey("h", 1, False, True, None, None, None)
    never = httpx.ConnectTimeout("x")
    never.__cause__ = aiohttp.ClientConnectorError(key, OSError(111, "refused"))
    after = httpx.ConnectTimeout("x")  # httpx-aiohttp's mapping of a server that hung up
    after.__cause__ = aiohttp.ServerDisconnectedError()
    assert isinstance(classify_transport_error(never, "p"), ProviderUnavailable)
    assert isinstance(classify_transport_error(after, "p"), UnknownOutcome)
