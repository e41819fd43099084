"""Signed handoff tokens and the serve session cookie: rotation, expiry, replay, tampering."""

from __future__ import annotations

import time

import pytest

from qlik_sso_middleware import ConfigurationError, QlikIdentity
from qlik_sso_middleware.serve.handoff import Handoff, HandoffRejected, SessionCookie

OLD = "old-key-0123456789abcdef"
NEW = "new-key-0123456789abcdef"
ALICE = QlikIdentity("ACME", "alice", {"Group": ["Sales", "EMEA"]})


def test_round_trip_with_attributes_and_next() -> None:
    handoff = Handoff([NEW])
    verified = handoff.verify(handoff.issue(ALICE, next="/reports?x=1"))
    assert verified.identity == ALICE
    assert verified.next == "/reports?x=1"


def test_rotation_newest_signs_all_verify() -> None:
    old_token = Handoff([OLD]).issue(ALICE)
    assert Handoff([NEW, OLD]).verify(old_token).identity == ALICE
    new_token = Handoff([NEW, OLD]).issue(ALICE)
    assert Handoff([NEW]).verify(new_token).identity == ALICE
    with pytest.raises(HandoffRejected, match="bad signature"):
        Handoff([OLD]).verify(new_token)


def test_expiry_with_injected_clock() -> None:
    now = [time.time()]
    handoff = Handoff([NEW], max_age=60, clock=lambda: now[0])
    token = handoff.issue(ALICE)
    now[0] += 61
    with pytest.raises(HandoffRejected, match="expired"):
        handoff.verify(token)


def test_replay_and_tampering_are_refused_without_echoing_the_token() -> None:
    handoff = Handoff([NEW])
    token = handoff.issue(ALICE)
    handoff.verify(token)
    with pytest.raises(HandoffRejected, match="already used") as replay:
        handoff.verify(token)
    assert token not in str(replay.value)
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    with pytest.raises(HandoffRejected, match="bad signature"):
        Handoff([NEW]).verify(tampered)


@pytest.mark.parametrize(
    "target", ["//evil.example/", "/\\evil.example", "https://evil.example", "/a\r\nb"]
)
def test_next_stays_on_site(target: str) -> None:
    handoff = Handoff([NEW])
    assert handoff.verify(handoff.issue(ALICE, next=target)).next == "/"


def test_keys_and_max_age_are_validated() -> None:
    with pytest.raises(ConfigurationError, match="keys"):
        Handoff(["short"])
    with pytest.raises(ConfigurationError, match="keys"):
        Handoff([])
    with pytest.raises(ConfigurationError, match="handoff_max_age"):
        Handoff([NEW], max_age=0)


def test_session_cookie_is_not_a_handoff_token() -> None:
    cookie = SessionCookie([NEW], max_age=3600)
    assert cookie.loads(cookie.dumps(ALICE)) == ALICE
    assert cookie.loads(Handoff([NEW]).issue(ALICE)) is None  # different salt
    assert cookie.loads("garbage") is None
    assert SessionCookie([OLD], max_age=3600).loads(cookie.dumps(ALICE)) is None
