"""Message ids are the standard library's random UUIDs (no hand-rolled version 4)."""

from __future__ import annotations

import uuid

import pytest

from notifykit.routing import router
from notifykit.routing.router import new_message_id


def test_a_message_id_is_a_version_4_rfc_4122_uuid_in_32_hex_digits() -> None:
    ids = [new_message_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for made in ids:
        parsed = uuid.UUID(hex=made)
        assert made == parsed.hex and len(made) == 32
        assert (parsed.version, parsed.variant) == (4, uuid.RFC_4122)


def test_a_message_id_comes_from_uuid_uuid4(monkeypatch: pytest.MonkeyPatch) -> None:
    fixed = uuid.UUID("12345678-1234-4234-9234-123456789abc")
    monkeypatch.setattr(router.uuid, "uuid4", lambda: fixed)
    assert new_message_id() == fixed.hex
