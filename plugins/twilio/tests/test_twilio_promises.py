"""Twilio's signature promises, each held at more than one level where it could regress:
the signature helper, and the receiver over real sockets (the plugin's own tests are in
test_twilio_callbacks.py). The URL signed includes the query string; a push without a
signature is refused; the comparison goes through notifykit's constant-time helper."""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from notifykit_twilio.signature import compute_signature, url_variants, verify_signature

from notifykit.asgi import create_app
from notifykit.config import Config
from notifykit.server import ServerThread
from notifykit.store import SQLiteStore

ACCOUNT = "AC" + "c" * 32
SID = "SM" + "d" * 32
AUTH_TOKEN = "twilio-auth-token-not-real"
PUBLIC = "https://sms.example.com"
CALLBACK_TOKEN = "cb-token-7Hx-leak-canary"
PATH = f"/callbacks/tw/{CALLBACK_TOKEN}"
FIELDS = [
    ("AccountSid", ACCOUNT),
    ("MessageSid", SID),
    ("MessageStatus", "delivered"),
    ("To", "+14155550100"),
]
FORM = {"content-type": "application/x-www-form-urlencoded"}


@pytest.fixture
def comparisons(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[bytes, bytes]]]:
    """Every (given, expected) pair compared through notifykit.compare's one primitive."""
    seen: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        seen.append((bytes(a), bytes(b)))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    yield seen


def test_every_signature_is_compared_in_constant_time_against_every_url_form(
    comparisons: list[tuple[bytes, bytes]],
) -> None:
    url = PUBLIC + PATH + "?attempt=2"
    right = compute_signature(AUTH_TOKEN, url, FIELDS)
    forms = url_variants(url)
    assert len(forms) == 2  # with and without :443
    for given, valid in [
        (right, True),
        (right[:-2] + ("A=" if right[-2:] != "A=" else "B="), False),  # wrong, same length
        (right[:5], False),  # shorter
        (right + "x", False),  # longer
    ]:
        comparisons.clear()
        assert verify_signature(AUTH_TOKEN, url, FIELDS, given) is valid
        expected = {compute_signature(AUTH_TOKEN, form, FIELDS).encode() for form in forms}
        assert [a for a, _ in comparisons] == [given.encode()] * len(forms)
        assert {b for _, b in comparisons} == expected


@pytest.mark.parametrize("missing", [None, ""])
def test_a_missing_signature_is_never_valid(missing: str | None) -> None:
    assert verify_signature(AUTH_TOKEN, PUBLIC + PATH, FIELDS, missing) is False
    assert verify_signature("", PUBLIC + PATH, FIELDS, missing) is False


def _config(db: Path) -> Config:
    return Config.from_dict(
        {
            "providers": {
                "tw": {
                    "type": "twilio",
                    "account_sid": ACCOUNT,
                    "auth_token": AUTH_TOKEN,
                    "from_number": "+15005550006",
                    "public_url": PUBLIC,
                }
            },
            "store": {"url": f"sqlite:///{db}", "timeout": 5},
            "callbacks": {"token": CALLBACK_TOKEN},
        }
    )


def _stored(db: Path) -> tuple[list[str], int, int]:
    async def read() -> tuple[list[str], int, int]:
        store = SQLiteStore(db)
        await store.open()
        try:
            events = await store.list_events()
            return (
                [e.provider_message_id or "" for e in events],
                await store.count_inbox(),
                len(await store.list_quarantine()),
            )
        finally:
            await store.close()

    return asyncio.run(read())


def test_the_receiver_checks_the_query_string_and_refuses_unsigned_pushes(
    tmp_path: Path, comparisons: list[tuple[bytes, bytes]]
) -> None:
    """Over real sockets: Twilio signs its public URL with the query string it called."""
    db = tmp_path / "tw.sqlite3"
    body = urlencode(FIELDS).encode()
    query = "attempt=2&x=%20y"
    with_query = compute_signature(AUTH_TOKEN, f"{PUBLIC}{PATH}?{query}", FIELDS)
    without_query = compute_signature(AUTH_TOKEN, PUBLIC + PATH, FIELDS)
    with ServerThread(create_app(_config(db)), lifespan="on") as server:
        refused = {
            "signed without the query, sent with it": (f"?{query}", without_query),
            "signed with the query, sent without it": ("", with_query),
            "signed with another query": ("?attempt=3&x=%20y", with_query),
            "no signature": (f"?{query}", None),
            "empty signature": (f"?{query}", ""),
        }
        for case, (sent_query, signature) in refused.items():
            headers = dict(FORM)
            if signature is not None:
                headers["x-twilio-signature"] = signature
            answer = httpx.post(server.url + PATH + sent_query, content=body, headers=headers)
            assert answer.status_code == 403, case
        comparisons.clear()
        accepted = httpx.post(
            f"{server.url}{PATH}?{query}",
            content=body,
            headers={**FORM, "x-twilio-signature": with_query},
        )
        assert accepted.status_code == 200, accepted.text
        assert (with_query.encode(), with_query.encode()) in comparisons
    vendor_ids, inbox, quarantined = _stored(db)
    assert vendor_ids == [SID]  # the refused pushes left nothing behind
    assert (inbox, quarantined) == (1, 0)
