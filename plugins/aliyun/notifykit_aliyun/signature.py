"""Alibaba Cloud's two request signatures, for signing (the provider) and verifying (the
sandbox).

* RPC signature "V2" (``SignatureMethod=HMAC-SHA1``, ``SignatureVersion=1.0``): every
  parameter but ``Signature``, percent-encoded, sorted, joined; ``METHOD&%2F&`` + that string
  encoded once more; Base64 of HMAC-SHA1 keyed with ``secret + "&"``. Fact sheet §5, from
  https://help.aliyun.com/document_detail/101343.html.
* V3 (``ACS3-HMAC-SHA256``): a canonical request of method, ``/``, the sorted query, the
  signed headers (``host``, ``x-acs-*``, ``content-type``) and the body's SHA-256;
  lowercase hex HMAC-SHA256 keyed with the raw secret over ``ACS3-HMAC-SHA256\\n`` + the
  canonical request's hash, sent in ``Authorization``. Fact sheet §6, from
  https://help.aliyun.com/document_detail/2593177.html.

Both are checked against every test vector of the fact sheet (tests/test_aliyun_signature.py).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import quote

__all__ = [
    "V3_ALGORITHM",
    "Authorization",
    "canonical_query",
    "percent_encode",
    "rpc_signature",
    "rpc_string_to_sign",
    "sha256_hex",
    "v3_canonical_request",
    "v3_signature",
]

V3_ALGORITHM = "ACS3-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def percent_encode(text: str) -> str:
    """Alibaba's percentEncode: UTF-8, ``A-Z a-z 0-9 - _ . ~`` kept, every other byte as
    ``%XY`` in upper-case hex (space ``%20``, ``*`` ``%2A``)."""
    return quote(text, safe="-_.~")


def canonical_query(params: Iterable[tuple[str, str]]) -> str:
    """``k=v`` pairs, both percent-encoded, sorted by encoded name (then value), ``&``-joined."""
    pairs = sorted((percent_encode(k), percent_encode(v)) for k, v in params)
    return "&".join(f"{k}={v}" for k, v in pairs)


def rpc_string_to_sign(method: str, params: Mapping[str, str]) -> str:
    """``METHOD&%2F&`` + percentEncode(canonicalized query), ``Signature`` left out."""
    query = canonical_query((k, v) for k, v in params.items() if k != "Signature")
    return f"{method.upper()}&{percent_encode('/')}&{percent_encode(query)}"


def rpc_signature(method: str, params: Mapping[str, str], secret: str) -> str:
    """The RPC (HMAC-SHA1, 1.0) ``Signature`` of a request with these parameters."""
    digest = hmac.new(
        (secret + "&").encode(), rpc_string_to_sign(method, params).encode(), hashlib.sha1
    ).digest()
    return base64.b64encode(digest).decode()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def v3_canonical_request(
    method: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    signed_headers: Iterable[str],
    payload_hash: str,
    path: str = "/",
) -> str:
    """The V3 canonical request; ``headers`` keyed by lower-case name, ``signed_headers``
    the lower-case names signed (sorted here)."""
    names = sorted(signed_headers)
    lines = "".join(f"{name}:{headers.get(name, '').strip()}\n" for name in names)
    return "\n".join(
        [method.upper(), path, canonical_query(query), lines, ";".join(names), payload_hash]
    )


def v3_signature(canonical_request: str, secret: str) -> str:
    """Lowercase hex HMAC-SHA256 (key: the raw secret) of the V3 string to sign."""
    to_sign = f"{V3_ALGORITHM}\n{sha256_hex(canonical_request.encode())}"
    return hmac.new(secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()


_AUTHORIZATION = re.compile(
    r"^ACS3-HMAC-SHA256\s+Credential=([^,\s]+),\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]+)$"
)


@dataclass(frozen=True)
class Authorization:
    """A parsed V3 ``Authorization`` header."""

    access_key_id: str
    signed_headers: tuple[str, ...]
    signature: str

    @classmethod
    def parse(cls, header: str) -> Authorization | None:
        match = _AUTHORIZATION.match(header.strip())
        if match is None:
            return None
        names = tuple(n.strip().lower() for n in match.group(2).split(";") if n.strip())
        return cls(match.group(1), names, match.group(3))

    def header(self) -> str:
        return (
            f"{V3_ALGORITHM} Credential={self.access_key_id},"
            f"SignedHeaders={';'.join(self.signed_headers)},Signature={self.signature}"
        )
