"""`QlikTarget` and `QlikSSO` validate every option at construction, naming the field."""

from __future__ import annotations

import pytest

from qlik_sso_middleware import ConfigurationError, QlikIdentity, QlikSSO, QlikTarget


def resolver(conn: object) -> QlikIdentity | None:
    return None


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"url": "qlik.acme.com"}, "url"),
        ({"url": "ftp://qlik.acme.com"}, "url"),
        ({"url": "https://qlik.acme.com/sso"}, "url"),
        ({"prefix": "s o"}, "prefix"),
        ({"prefix": "/sso/"}, "prefix"),
        ({"cookie_name": "bad cookie"}, "cookie_name"),
        ({"mount_path": "sso"}, "mount_path"),
        ({"session_ttl": 0}, "session_ttl"),
        ({"max_connections": 0}, "max_connections"),
        ({"auth": "hdr-usr"}, "auth"),
        ({"http_engine": "curl"}, "http_engine"),
    ],
)
def test_bad_target_options_name_the_field(kwargs: dict[str, object], field: str) -> None:
    options: dict[str, object] = {"url": "https://qlik.acme.com"} | kwargs
    with pytest.raises(ConfigurationError) as info:
        QlikTarget(**options)  # type: ignore[arg-type]
    assert info.value.field == field


def test_prefix_typed_with_capitals_is_used_lowercase_and_said(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The QMC stores a prefix typed "A_" as "a_" (Qlik Sense 3.0 and later): follow it.
    with caplog.at_level("WARNING", logger="qlik_sso_middleware"):
        target = QlikTarget("https://qlik.acme.com", prefix="A_")
    assert (target.prefix, target.cookie_name, target.mount_path) == (
        "a_",
        "X-Qlik-Session-a_",
        "/a_/",
    )
    assert "'A_' is used as 'a_'" in caplog.text


def test_defaults_follow_qlik_conventions() -> None:
    target = QlikTarget("https://qlik.acme.com/", prefix="sso")
    assert target.url == "https://qlik.acme.com"
    assert target.cookie_name == "X-Qlik-Session-sso"
    assert target.mount_path == "/sso/"
    assert QlikTarget("https://q", prefix="").cookie_name == "X-Qlik-Session"


def test_sso_options_are_checked() -> None:
    a = QlikTarget("https://q", prefix="a")
    with pytest.raises(ConfigurationError, match="unique"):
        QlikSSO([a, QlikTarget("https://q", prefix="a")], resolver=resolver)
    with pytest.raises(ConfigurationError) as info:
        QlikSSO(a, resolver=resolver, allowed_origins=["portal.acme.com"])
    assert info.value.field == "allowed_origins"
    with pytest.raises(ConfigurationError) as info:
        QlikSSO(a, resolver=resolver, trusted_proxies=["10.0.0.0/33"])
    assert info.value.field == "trusted_proxies"
    with pytest.raises(ConfigurationError):
        QlikSSO([], resolver=resolver)
    with pytest.raises(ConfigurationError):
        QlikSSO(a, resolver=42)  # type: ignore[arg-type]
