"""An answer of Veesing's that echoes the appKey: blanked at the plugin (test_veesing_send),
and held here at the next level, through a notifier with a SQLite store: the key reaches
neither the error raised, the stored attempts, the log, nor the database file."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest
import respx

from notifykit import AsyncNotifier, Config, errors

pytestmark = pytest.mark.anyio

APP_KEY = "WVNA4A0SECRETKEY"
SEND_URL = "https://vs.veesing.test/smsApi/verifyCode"


async def test_an_echoed_app_key_is_kept_nowhere(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    db = tmp_path / "nk.sqlite3"
    config = Config.from_dict(
        {
            "providers": {
                "vs": {
                    "type": "veesing",
                    "app_id": "APPID",
                    "app_key": APP_KEY,
                    "base_url": "https://vs.veesing.test",
                }
            },
            "templates": {"verify_code": {"vs": {"template_id": "540"}}},
            "store": {"url": f"sqlite:///{db}"},
        }
    )
    router = respx.MockRouter(assert_all_called=True)
    echoed = {
        "returnStatus": "0",
        "message": f"参数错误: appKey={APP_KEY} appId=APPID",
        "remainPoint": None,
        "taskId": None,
        "successCounts": None,
    }
    router.post(SEND_URL).mock(return_value=httpx.Response(200, json=echoed))
    async with AsyncNotifier(
        config, transport=httpx.MockTransport(router.async_handler)
    ) as notifier:
        with pytest.raises(errors.NotifyKitError) as caught:
            await notifier.send("+8615612341090", template="verify_code", params={"code": "4821"})
        records = await notifier.store.list_messages()
    assert "appKey=***" in str(caught.value)  # the vendor's words are kept, the key is not
    kept = [a.error_message or "" for r in records for a in r.attempts]
    assert any("appKey=***" in message for message in kept)
    everything = (
        str(caught.value)
        + repr(caught.value)
        + repr(caught.value.attempts)
        + repr(records)
        + "".join(r.getMessage() + repr(r.__dict__) for r in caplog.records)
    )
    assert APP_KEY not in everything
    for path in tmp_path.iterdir():  # the database, its WAL and shared memory
        assert APP_KEY.encode() not in path.read_bytes(), path.name
