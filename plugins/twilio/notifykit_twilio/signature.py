"""``X-Twilio-Signature``: computing and verifying Twilio's webhook signature.

The signed string is the full URL Twilio requested (query string included) followed by
each POST parameter, sorted by name, as ``name + value`` with no separator; repeated names
contribute each value in the order received. It is signed with HMAC-SHA1 keyed by the
account's auth token and base64-encoded. See Twilio's "Webhooks security" page.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

from notifykit.compare import constant_time_equal

__all__ = ["SIGNATURE_HEADER", "compute_signature", "url_variants", "verify_signature"]

SIGNATURE_HEADER = "X-Twilio-Signature"

_DEFAULT_PORTS = {"https": 443, "http": 80}


def compute_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]] = ()) -> str:
    """The base64 HMAC-SHA1 signature Twilio sends for a form POST of ``params`` to ``url``."""
    # sorted() is stable: repeated names keep their values in the order received.
    payload = url + "".join(name + value for name, value in sorted(params, key=lambda p: p[0]))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def url_variants(url: str) -> list[str]:
    """``url`` as given, plus the same URL with the scheme's default port added or removed.

    Twilio has signed some requests with the explicit default port (``:443``) and others
    without it; its own helper libraries accept either form, and so does notifykit.
    """
    parts = urlsplit(url)
    default = _DEFAULT_PORTS.get(parts.scheme)
    if default is None or not parts.hostname:
        return [url]
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    userinfo = parts.netloc.rpartition("@")[0]
    prefix = f"{userinfo}@" if userinfo else ""
    try:
        port = parts.port
    except ValueError:
        return [url]
    if port is None:
        other = f"{prefix}{host}:{default}"
    elif port == default:
        other = f"{prefix}{host}"
    else:
        return [url]
    return [url, urlunsplit(parts._replace(netloc=other))]


def verify_signature(
    auth_token: str, url: str, params: Iterable[tuple[str, str]], signature: str | None
) -> bool:
    """True when ``signature`` is Twilio's signature of ``params`` posted to ``url``.

    Compared in constant time (:func:`notifykit.compare.constant_time_equal`, against every
    URL variant); a missing or empty signature is never valid.
    """
    if not signature:
        return False
    items = list(params)
    given = signature.strip()
    matched = False
    for candidate in url_variants(url):
        expected = compute_signature(auth_token, candidate, items)
        # Every variant is compared, so the time taken does not depend on which matched.
        matched = constant_time_equal(given, expected) or matched
    return matched
