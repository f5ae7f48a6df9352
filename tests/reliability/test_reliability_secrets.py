"""The session-wide secrets scan (tests/conftest.py) is installed, sees a leak wherever it
is logged, and a send that fails in every way logs none of the configured secrets."""

from __future__ import annotations

import logging
from urllib.parse import unquote_plus

import httpx
import pytest

from notifykit import AsyncNotifier
from notifykit.config import Config
from notifykit.errors import NotifyKitError

from .conftest import APP_ID, APP_KEY, CB_TOKEN

pytestmark = pytest.mark.anyio

SCAN = "notifykit-secrets-scan"


def scanner(config: pytest.Config) -> object:
    plugin = config.pluginmanager.get_plugin(SCAN)
    assert plugin is not None, "tests/conftest.py did not install the secrets scan"
    return plugin


def test_the_scan_sees_a_secret_on_a_logger_that_does_not_propagate(
    pytestconfig: pytest.Config,
) -> None:
    scan = scanner(pytestconfig)
    logger = logging.getLogger("notifykit.reliability.isolated")
    logger.propagate = False  # like the CLI's logger: the root handler never sees it
    try:
        with scan.diverted() as leaks:  # type: ignore[attr-defined]
            logger.debug("key %s", APP_KEY)
            logger.warning("fine", extra={"detail": f"path /callbacks/vs/{CB_TOKEN}"})
            logging.getLogger("other").info("nothing secret here")
    finally:
        logger.propagate = True
    assert [leak.canary for leak in leaks] == [APP_KEY, CB_TOKEN]
    assert all(APP_KEY not in str(leak) for leak in leaks)  # the report masks it


async def test_failing_sends_log_no_configured_secret(pytestconfig: pytest.Config) -> None:
    scan = scanner(pytestconfig)
    answers = iter(
        [
            httpx.Response(500, text=f"<html>echo appKey={APP_KEY}</html>"),
            httpx.Response(200, text='{"returnStatus":"0","message":"未知原因,请联系客服"}'),
            httpx.Response(200, content=b"\xff\xfe not json " + APP_KEY.encode()),
        ]
    )

    def vendor(request: httpx.Request) -> httpx.Response:
        assert APP_KEY.encode() in request.content  # it is sent, only to the vendor
        return next(answers, httpx.Response(503))

    config = Config.from_dict(
        {
            "providers": {
                name: {"type": "veesing", "app_id": APP_ID, "app_key": APP_KEY}
                for name in ("a", "b", "c")
            },
            "templates": {"verify": {n: {"template_id": "540"} for n in ("a", "b", "c")}},
            "routing": {"retry": {"attempts": 1}},
            "callbacks": {"token": CB_TOKEN},
        }
    )
    before = scan.records_scanned  # type: ignore[attr-defined]
    with scan.diverted() as leaks:  # type: ignore[attr-defined]
        async with AsyncNotifier(config, transport=httpx.MockTransport(vendor)) as notifier:
            with pytest.raises(NotifyKitError) as caught:
                await notifier.send("+8615612341090", template="verify", params={"code": "1234"})
            logging.getLogger("notifykit.reliability").error("send failed: %s", caught.value)
    assert scan.records_scanned > before  # DEBUG records of the attempts were made and read
    assert APP_KEY not in str(caught.value)
    assert leaks == []


# -- verification codes: canaries made at run time ----------------------------------------

VERIFY_SECRET = "RELIABILITY-VERIFY-SECRET-0099"


def verify_config(**providers: object) -> Config:
    return Config.from_dict(
        {
            "providers": providers
            or {"a": {"type": "veesing", "app_id": APP_ID, "app_key": APP_KEY}},
            "templates": {"verify_code": {"a": {"template_id": "540"}}},
            "routing": {"retry": {"attempts": 1}},
            "verify": {"secret": VERIFY_SECRET, "resend_interval": 0},
        }
    )


async def test_the_scan_sees_a_verification_code_wherever_it_is_logged(
    pytestconfig: pytest.Config,
) -> None:
    scan = scanner(pytestconfig)
    sent: list[str] = []

    def vendor(request: httpx.Request) -> httpx.Response:
        sent.append(request.content.decode())
        return httpx.Response(200, json={"returnStatus": "1", "message": "ok", "taskId": "t1"})

    async with AsyncNotifier(verify_config(), transport=httpx.MockTransport(vendor)) as notifier:
        await notifier.verify.start("+8615612341090")
    assert len(sent) == 1
    assert len(scan.codes) == 1, "the scan was not told about the code"  # type: ignore[attr-defined]
    made = scan.codes[0][0]  # type: ignore[attr-defined]
    assert made in unquote_plus(sent[0])  # it went to the vendor, and only there
    logger = logging.getLogger("notifykit.reliability.isolated")
    logger.propagate = False
    try:
        with scan.diverted() as leaks:  # type: ignore[attr-defined]
            logger.debug("your code is %s", made)
            logger.info("fine", extra={"detail": {"params": {"code": made}}})
            logger.info(f"ids that only contain it: 9{made}9 ab{made}cd")  # not the code
    finally:
        logger.propagate = True
    assert [leak.canary for leak in leaks] == [made, made]
    assert all(made not in str(leak) for leak in leaks)


async def test_a_verification_that_fails_in_every_way_logs_no_code(
    pytestconfig: pytest.Config,
) -> None:
    scan = scanner(pytestconfig)
    answers = iter(
        [
            # The vendor echoes the whole request (the code in it) in its error text.
            lambda body: httpx.Response(500, text=f"<html>bad request {body}</html>"),
            lambda body: httpx.Response(
                200, json={"returnStatus": "0", "message": f"参数错误 {body}"}
            ),
            lambda body: httpx.Response(200, content=b"\xff not json " + body.encode()),
            lambda body: httpx.Response(200, json={"returnStatus": "1", "taskId": "t9"}),
        ]
    )

    def vendor(request: httpx.Request) -> httpx.Response:
        return next(answers)(request.content.decode())

    before = (scan.records_scanned, scan.codes_seen)  # type: ignore[attr-defined]
    with scan.diverted() as leaks:  # type: ignore[attr-defined]
        async with AsyncNotifier(
            verify_config(), transport=httpx.MockTransport(vendor)
        ) as notifier:
            for _ in range(3):
                with pytest.raises(NotifyKitError) as caught:
                    await notifier.verify.start("+8615612341090")
                logging.getLogger("notifykit.reliability").error(
                    "start failed: %s %r", caught.value, caught.value.attempts
                )
            await notifier.verify.start("+8615612341090")
            for guess in ("000000", "999999"):
                await notifier.verify.check("+8615612341090", guess)
    assert scan.codes_seen > before[1]  # type: ignore[attr-defined]
    assert scan.records_scanned > before[0] + 10  # type: ignore[attr-defined]
    assert leaks == []
