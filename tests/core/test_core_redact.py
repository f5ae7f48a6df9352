"""notifykit.redact: every encoding of every secret, and phone numbers, masked."""

from __future__ import annotations

import base64
import json
import re
from urllib.parse import quote, quote_plus

import pytest
from pydantic import BaseModel, SecretStr

from notifykit.errors import ProviderError
from notifykit.redact import Redactor

SECRET = "CANARY+K/EY=7é"
USER = "app-1"


@pytest.mark.parametrize(
    "form",
    [
        SECRET,
        quote(SECRET, safe=""),
        quote(SECRET),
        re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), quote(SECRET, safe="")),
        quote_plus(SECRET),
        quote_plus(quote_plus(SECRET)),
        json.dumps(SECRET)[1:-1],
        json.dumps(SECRET, ensure_ascii=False)[1:-1],
        json.dumps(SECRET)[1:-1].replace("/", "\\/"),
        base64.b64encode(SECRET.encode()).decode(),
        base64.b64encode(f"{USER}:{SECRET}".encode()).decode(),
    ],
)
def test_every_encoding_of_a_secret_is_masked(form: str) -> None:
    redactor = Redactor([SECRET], users=[USER])
    assert redactor.text(f"echo <{form}> end") == "echo <***> end"


def test_phone_numbers_are_masked_and_short_secrets_ignored() -> None:
    redactor = Redactor(["ab"])
    assert redactor.text("to +8615612341090 and 15612341090, code ab") == (
        "to +86156****1090 and 156****1090, code ab"
    )


class Options(BaseModel):
    app_id: str
    app_key: SecretStr
    nested: dict[str, SecretStr]


def test_for_options_finds_nested_secrets_and_users_and_errors_are_redacted_in_place() -> None:
    options = Options(
        app_id=USER, app_key=SecretStr(SECRET), nested={"x": SecretStr("NESTED-SECRET")}
    )
    redactor = Redactor.for_options(options, [SecretStr("CONFIG-TOKEN")])
    auth = base64.b64encode(f"{USER}:{SECRET}".encode()).decode()
    error = ProviderError(
        f"refused: {quote_plus(SECRET)} NESTED-SECRET CONFIG-TOKEN",
        vendor_message=f"Basic {auth} to 15612341090",
        vendor_code=f"E {SECRET} +8615612341090",  # a plugin may put any vendor text here
    )
    assert redactor.error(error) is error
    assert error.message == "refused: *** *** ***" and str(error) == error.message
    assert error.vendor_message == "Basic *** to 156****1090"
    assert error.vendor_code == "E *** +86156****1090"
    assert SECRET not in repr(redactor)
