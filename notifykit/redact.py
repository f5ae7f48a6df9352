"""The one redactor of vendor text: secrets in every encoding a request carries them in,
and phone numbers, masked before the text enters an error, a log line or the store.

A vendor may echo the request it got: an error message quoting the form body
(``appKey=CANARY%2BK%2FEY%3D7``), a JSON body with the key JSON-escaped, a header with the
Basic credentials. :class:`Redactor` knows each configured secret as it is sent: raw,
``quote`` (with and without ``/`` kept, upper- or lower-case hex), ``quote_plus`` (also
twice applied), JSON-escaped (ASCII or not, ``/`` escaped or not), base64 alone and as
Basic-auth ``user:secret`` with every plain option of the instance as the user. Each is
replaced by ``***``; then every run of 7 or more digits (a phone number, E.164 or
national) is masked by :func:`notifykit.phone.mask_phone`.

The core applies it to everything a provider hands back that is kept, logged or shown
(errors from ``send``, ``balance`` and ``fetch_status``, a polled receipt's ``raw``, a push
the plugin could not parse; a send's :class:`~notifykit.models.SendReceipt` is none of
these: only its id, credits and status are kept),
through each instance's :attr:`SmsProvider.redactor <notifykit.provider.SmsProvider>`, so
a plugin cannot forget it; a plugin may also call it itself.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable
from typing import Any, TypeVar
from urllib.parse import quote, quote_plus

from pydantic import BaseModel, SecretStr

from notifykit.errors import NotifyKitError, ProviderError
from notifykit.phone import mask_phone

__all__ = ["MASK", "MIN_SECRET_LENGTH", "Redactor", "secret_values"]

MASK = "***"
MIN_SECRET_LENGTH = 4
"""Shorter secrets are not searched for: they would match ordinary text."""

_NUMBER = re.compile(r"\+?\d{7,}")
_PERCENT = re.compile(r"%[0-9A-F]{2}")

E = TypeVar("E", bound=NotifyKitError)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode("ascii")


def encodings(secret: str, users: Iterable[str] = ()) -> set[str]:
    """Every form ``secret`` may take in a request (see the module docstring)."""
    forms = {
        secret,
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret),
        quote_plus(quote_plus(secret)),
        _b64(secret),
    }
    for escaped in (json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]):
        forms.update({escaped, escaped.replace("/", "\\/")})
    forms.update({_PERCENT.sub(lambda m: m.group().lower(), form) for form in forms})
    forms.update(_b64(f"{user}:{secret}") for user in users if user)
    return {form for form in forms if form}


def secret_values(value: Any) -> list[str]:
    """The values of every SecretStr in ``value`` (a model, mapping, sequence or secret)."""
    found: list[str] = []
    if isinstance(value, SecretStr):
        found.append(value.get_secret_value())
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            found += secret_values(getattr(value, name, None))
    elif isinstance(value, dict):
        for item in value.values():
            found += secret_values(item)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            found += secret_values(item)
    return found


def _plain_values(model: BaseModel) -> list[str]:
    """The plain string options of ``model``: who a Basic-auth secret may belong to."""
    return [
        value
        for name in type(model).model_fields
        if isinstance(value := getattr(model, name, None), str)
    ]


class Redactor:
    """Masks ``secrets`` (in every encoding) and phone numbers in text from a vendor."""

    def __init__(self, secrets: Iterable[str] = (), *, users: Iterable[str] = ()) -> None:
        users = list(users)
        forms: set[str] = set()
        for secret in secrets:
            if len(secret) >= MIN_SECRET_LENGTH:
                forms |= encodings(secret, users)
        # Longest first, so that an encoding containing another is replaced whole.
        ordered = sorted(forms, key=len, reverse=True)
        self._secrets = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def __repr__(self) -> str:
        return "<Redactor>"  # never the secrets

    @classmethod
    def for_options(cls, options: BaseModel, extra: Iterable[SecretStr] = ()) -> Redactor:
        """The redactor of one provider instance: the SecretStr values of its options (and
        ``extra``, the configuration's own secrets), with its plain options as users."""
        secrets = secret_values(options) + [s.get_secret_value() for s in extra]
        return cls(secrets, users=_plain_values(options))

    def secrets(self, text: str) -> str:
        """``text`` with every encoding of every secret replaced by ``***``."""
        if self._secrets is None:
            return text
        return self._secrets.sub(MASK, text)

    def text(self, text: str) -> str:
        """``text`` with secrets replaced and phone numbers masked."""
        return _NUMBER.sub(lambda m: mask_phone(m.group()), self.secrets(text))

    def optional(self, text: str | None) -> str | None:
        return None if text is None else self.text(text)

    def value(self, value: Any) -> Any:
        """``value`` (JSON-like: dicts, lists, strings, numbers) with every string redacted."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {key: self.value(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(item) for item in value]
        return value

    def error(self, exc: E, *, content: Iterable[str] = ()) -> E:
        """``exc`` with its message (and a ProviderError's ``vendor_code`` and
        ``vendor_message``: a plugin may put any vendor text in either) redacted, in place;
        returned for ``raise redactor.error(exc)``. ``content``: the message's own
        parameter values (a verification code), also masked where a vendor echoes them."""
        values = sorted((v for v in content if len(v) >= MIN_SECRET_LENGTH), key=len)[::-1]

        def clean(text: str) -> str:
            for value in values:
                text = text.replace(value, MASK)
            return self.text(text)

        exc.message = clean(exc.message)
        exc.args = (exc.message, *exc.args[1:])
        if isinstance(exc, ProviderError):
            if exc.vendor_message is not None:
                exc.vendor_message = clean(exc.vendor_message)
            if exc.vendor_code is not None:
                exc.vendor_code = clean(exc.vendor_code)
        return exc
