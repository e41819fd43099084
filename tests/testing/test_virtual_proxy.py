"""VirtualProxy validation (configuration errors at construction) and the package's public API."""

from __future__ import annotations

import pytest

import qlik_sso_middleware.testing as testing
from qlik_sso_middleware.errors import ConfigurationError
from qlik_sso_middleware.testing import ManualClock, VirtualProxy


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"prefix": "s o"}, "prefix"),
        ({"prefix": "a/b"}, "prefix"),
        ({"prefix": "/sso"}, "prefix"),
        ({"auth": "kerberos"}, "auth"),
        ({"anonymous": "sometimes"}, "anonymous"),
        ({"header_name": "X-Qlik-User"}, "header_name"),
        ({"header_name": "my-x-qlik-security-hdr"}, "header_name"),
        ({"header_name": "X-QLIK-PROXYSESSION"}, "header_name"),
        ({"header_name": "hdr usr"}, "header_name"),
        ({"header_name": "hdr-\u00fcsr"}, "header_name"),
        ({"auth": "header_static"}, "static_user_directory"),
        ({"dynamic_pattern": "$id"}, "dynamic_pattern"),
        ({"samesite_https": "lax"}, "samesite_https"),
        ({"session_timeout": 0}, "session_timeout"),
        ({"max_parallel_sessions": 0}, "max_parallel_sessions"),
        ({"host_allow_list": ["https://portal.test"]}, "host_allow_list"),
        ({"additional_response_headers": [("X-A", "b\nc")]}, "additional_response_headers"),
    ],
)
def test_bad_options_raise_configuration_error_naming_the_field(
    kwargs: dict[str, object], field: str
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        VirtualProxy(**kwargs)  # type: ignore[arg-type]
    assert raised.value.field == field
    assert isinstance(raised.value, ValueError)


def test_prefix_typed_with_capitals_is_lowered_as_the_qmc_does() -> None:
    # Qlik Sense 3.0 and later store "A_" as "a_" (help.qlik.com, "Creating a virtual proxy").
    vp = VirtualProxy(prefix="A_")
    assert vp.prefix == "a_"
    assert vp.session_cookie_name(https=True) == "X-Qlik-Session-a_"


def test_default_pattern_is_written_as_the_qmc_shows_it() -> None:
    assert VirtualProxy().dynamic_pattern == "$ud\\\\$id"
    assert VirtualProxy().parse_identity("CMI\\Me") == ("CMI", "Me")


def test_cookie_names() -> None:
    assert VirtualProxy().session_cookie_name(https=False) == "X-Qlik-Session-sso-HTTP"
    assert VirtualProxy().session_cookie_name(https=True) == "X-Qlik-Session-sso"
    assert VirtualProxy(prefix="").session_cookie_name(https=True) == "X-Qlik-Session"
    assert VirtualProxy(cookie_name="C").session_cookie_name(https=False) == "C-HTTP"


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("$ud\\$id", "ACME\\alice", ("ACME", "alice")),
        # As the QMC shows it (the backslash escaped): the same pattern, not two backslashes.
        ("$ud\\\\$id", "ACME\\alice", ("ACME", "alice")),
        ("$ud\\\\$id", "ACME\\\\alice", None),
        ("$ud\\$id", "ACME\\alice, ACME\\bob", None),
        ("$ud\\$id", "alice", None),
        ("ud=$ud\\id=$id", "ud=ACME\\id=alice", ("ACME", "alice")),
        ("ud=$ud\\id=$id", "ACME\\alice", None),
    ],
)
def test_dynamic_pattern(pattern: str, value: str, expected: tuple[str, str] | None) -> None:
    assert VirtualProxy(dynamic_pattern=pattern).parse_identity(value) == expected


def test_manual_clock() -> None:
    clock = ManualClock(5)
    assert clock() == 5
    assert clock.advance(2.5) == 7.5
    assert clock() == 7.5
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(-1)


def test_public_api_is_sorted_and_importable() -> None:
    names = testing.__all__
    assert names == sorted(names, key=lambda n: (not n.isupper(), n))
    for name in names:
        assert getattr(testing, name) is not None
    assert {
        "QlikSimulator",
        "SimulatorThread",
        "VirtualProxy",
        "ManualClock",
        "Faults",
        "RecordedRequest",
        "RecordedFrame",
        "SimSession",
        "DEMO_APPS",
    } <= set(names)
