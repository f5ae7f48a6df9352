"""The one constant-time comparison notifykit uses for secrets.

Whatever a request brings that is checked against a secret (the callback token in the
receiver's path, a vendor's webhook signature, a sandbox's credentials) is compared with
:func:`constant_time_equal`, never with ``==``: ``==`` stops at the first differing byte,
so its time tells an attacker how much of a guess was right. Keeping one helper means one
place to get right, and one place a test can watch (``tests/core/test_core_compare.py``
spies on it for every kind of request).
"""

from __future__ import annotations

import hmac

__all__ = ["constant_time_equal"]


def constant_time_equal(given: str | bytes, expected: str | bytes) -> bool:
    """True when ``given`` equals ``expected``, in time that does not depend on where they
    differ (:func:`hmac.compare_digest`).

    Text is compared as its UTF-8 bytes, so any characters may be compared (``compare_digest``
    itself refuses non-ASCII ``str``). An empty or shorter ``given`` is compared like any
    other: the caller must not short-cut on length or emptiness first, since the time then
    reveals the secret's length.
    """
    a = given.encode("utf-8") if isinstance(given, str) else bytes(given)
    b = expected.encode("utf-8") if isinstance(expected, str) else bytes(expected)
    return hmac.compare_digest(a, b)
