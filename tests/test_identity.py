"""`QlikIdentity` validation: nothing unsafe can become a header, a JSON body or a cache key."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qlik_sso_middleware import InvalidIdentity, QlikIdentity


def test_valid_identity_and_its_forms() -> None:
    identity = QlikIdentity("ACME", "alice", {"Group": ["Sales", "EMEA"], "Role": "viewer"})
    assert str(identity) == "ACME\\alice"
    assert identity.header_value() == "ACME\\alice"
    assert identity.header_value("$id") == "alice"
    assert identity.attribute_list() == [{"Group": "Sales"}, {"Group": "EMEA"}, {"Role": "viewer"}]
    assert QlikIdentity.parse("ACME\\alice") == QlikIdentity("ACME", "alice")


@pytest.mark.parametrize(
    ("directory", "user"),
    [
        ("", "alice"),
        ("ACME", "   "),
        ("AC\\ME", "alice"),
        ("ACME", "ali\\ce"),
        ("ACME", "alice\r\nhdr-usr: ACME\\admin"),
        ("ACME", "ali\x00ce"),
        ("ACME", " alice"),
        ("ACME", "alice\u200b"),
        ("ACME", "a" * 257),
    ],
)
def test_unsafe_parts_are_refused(directory: str, user: str) -> None:
    with pytest.raises(InvalidIdentity):
        QlikIdentity(directory, user)


@pytest.mark.parametrize("value", ["alice", "A\\B\\C", "\\alice", "ACME\\"])
def test_parse_needs_exactly_one_backslash_and_two_parts(value: str) -> None:
    with pytest.raises(InvalidIdentity):
        QlikIdentity.parse(value)


def test_non_ascii_is_fine_for_the_apis_but_not_for_headers() -> None:
    identity = QlikIdentity("ACME", "jos\u00e9")
    assert identity.user_key() == "ACME\\jos\u00e9"
    with pytest.raises(InvalidIdentity, match="US-ASCII"):
        identity.header_value()
    # A Cyrillic look-alike is a different user, and cannot be sent as a header either.
    lookalike = QlikIdentity("ACME", "\u0430lice")
    assert lookalike != QlikIdentity("ACME", "alice")
    with pytest.raises(InvalidIdentity):
        lookalike.header_value()


def test_non_string_parts_and_bad_attributes_are_refused() -> None:
    with pytest.raises(InvalidIdentity):
        QlikIdentity("ACME", 42)  # type: ignore[arg-type]
    with pytest.raises(InvalidIdentity):
        QlikIdentity("ACME", "alice", [("Group",)])  # type: ignore[list-item]
    with pytest.raises(InvalidIdentity):
        QlikIdentity("ACME", "alice", {"Group": "Sa\nles"})


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=0x7F), min_size=1, max_size=12))
def test_ascii_fast_path_refuses_exactly_the_control_characters(text: str) -> None:
    refused_for = None
    if not text.strip() or text != text.strip():
        refused_for = "whitespace"
    elif any(unicodedata.category(ch) == "Cc" for ch in text):
        refused_for = "control character"
    elif "\\" in text:
        refused_for = "backslash"
    if refused_for is None:
        assert QlikIdentity("ACME", text).user_id == text
    else:
        with pytest.raises(InvalidIdentity, match=refused_for):
            QlikIdentity("ACME", text)
