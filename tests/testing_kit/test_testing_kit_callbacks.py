"""What the kit's push helpers share with every vendor's builders: form bodies, the URL a
vendor calls, and ``deliver``. Each vendor's own builders are tested with its plugin
(plugins/veesing/tests/test_veesing_testing.py, plugins/twilio/tests/test_twilio_testing.py).
"""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest

import notifykit.testing
from notifykit import Config
from notifykit.errors import ConfigError
from notifykit.testing import CallbackPush, callback_url, form_push


def fields_of(push: CallbackPush) -> list[tuple[str, str]]:
    return parse_qsl(push.body.decode("ascii"), keep_blank_values=True, strict_parsing=True)


def test_form_push_keeps_order_repeats_and_utf8() -> None:
    push = form_push([("b", "2"), ("a", "收到 👍"), ("b", "1")], "text/x; charset=utf-8", x_a="1")
    assert push.headers == {"content-type": "text/x; charset=utf-8", "x_a": "1"}
    assert fields_of(push) == [("b", "2"), ("a", "收到 👍"), ("b", "1")]
    assert "收到".encode() not in push.body, "percent-encoded, as a form body is"
    assert form_push({"k": "1"}).headers == {"content-type": "application/x-www-form-urlencoded"}


def _config(**callbacks: str) -> Config:
    return Config.from_dict(
        {
            "providers": {
                "own": {"type": "memory", "public_url": "https://own.example.test/hooks/"},
                "mem": {"type": "memory"},
            },
            "callbacks": callbacks,
        }
    )


def test_callback_url_is_the_instances_public_url_else_the_receivers() -> None:
    config = _config(token="tok123", public_url="https://hooks.example.test")
    assert callback_url(config, "own") == "https://own.example.test/hooks/callbacks/own/tok123"
    assert callback_url(config, "mem") == "https://hooks.example.test/callbacks/mem/tok123"
    with pytest.raises(ConfigError, match=r"providers\.mem\.public_url: not set"):
        callback_url(_config(), "mem")
    with pytest.raises(ConfigError, match="unknown provider 'nope'"):
        callback_url(config, "nope")


@pytest.mark.parametrize(
    ("name", "home"),
    [("veesing_receipt", "notifykit_veesing.testing"), ("twilio_signature", "notifykit_twilio")],
)
def test_a_moved_builder_says_where_it_lives(name: str, home: str) -> None:
    with pytest.raises(AttributeError, match=home):
        getattr(notifykit.testing, name)
    assert name not in notifykit.testing.__all__
