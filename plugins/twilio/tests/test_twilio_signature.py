"""X-Twilio-Signature: the documented test vector, and properties of verification."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from notifykit_twilio.signature import compute_signature, url_variants, verify_signature

DOC_TOKEN = "12345"
DOC_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
DOC_PARAMS = [
    ("CallSid", "CA1234567890ABCDE"),
    ("Caller", "+12349013030"),
    ("Digits", "1234"),
    ("From", "+12349013030"),
    ("To", "+18005551212"),
]
DOC_SIGNATURE = "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


def test_documented_example() -> None:
    assert compute_signature(DOC_TOKEN, DOC_URL, DOC_PARAMS) == DOC_SIGNATURE
    assert verify_signature(DOC_TOKEN, DOC_URL, DOC_PARAMS, DOC_SIGNATURE)


def test_parameter_order_does_not_matter() -> None:
    assert verify_signature(DOC_TOKEN, DOC_URL, list(reversed(DOC_PARAMS)), DOC_SIGNATURE)


def test_any_change_breaks_the_signature() -> None:
    assert not verify_signature("54321", DOC_URL, DOC_PARAMS, DOC_SIGNATURE)
    assert not verify_signature(DOC_TOKEN, DOC_URL + "&x=1", DOC_PARAMS, DOC_SIGNATURE)
    assert not verify_signature(DOC_TOKEN, DOC_URL, DOC_PARAMS[:-1], DOC_SIGNATURE)
    tampered = [*DOC_PARAMS[:-1], ("To", "+18005551213")]
    assert not verify_signature(DOC_TOKEN, DOC_URL, tampered, DOC_SIGNATURE)
    assert not verify_signature(DOC_TOKEN, DOC_URL, DOC_PARAMS, None)
    assert not verify_signature(DOC_TOKEN, DOC_URL, DOC_PARAMS, "")


def test_repeated_names_keep_their_order() -> None:
    one = compute_signature("t", "https://x.test/", [("A", "1"), ("A", "2")])
    other = compute_signature("t", "https://x.test/", [("A", "2"), ("A", "1")])
    assert one != other
    assert verify_signature("t", "https://x.test/", [("A", "1"), ("A", "2")], one)


def test_default_port_is_accepted_either_way() -> None:
    with_port = "https://mycompany.com:443/myapp.php?foo=1&bar=2"
    assert url_variants(DOC_URL) == [DOC_URL, with_port]
    assert url_variants(with_port) == [with_port, DOC_URL]
    assert url_variants("http://127.0.0.1:8000/cb") == ["http://127.0.0.1:8000/cb"]
    signed_with_port = compute_signature(DOC_TOKEN, with_port, DOC_PARAMS)
    assert verify_signature(DOC_TOKEN, DOC_URL, DOC_PARAMS, signed_with_port)


params = st.lists(st.tuples(st.text(max_size=12), st.text(max_size=30)), max_size=8)


@given(token=st.text(min_size=1, max_size=40), query=st.text(max_size=20), items=params)
def test_a_signature_verifies_exactly_what_was_signed(
    token: str, query: str, items: list[tuple[str, str]]
) -> None:
    url = f"https://hooks.example.com/callbacks/tw?{query}"
    signature = compute_signature(token, url, items)
    assert verify_signature(token, url, items, signature)
    assert not verify_signature(token + "x", url, items, signature)
    assert not verify_signature(token, url, [*items, ("Extra", "1")], signature)
