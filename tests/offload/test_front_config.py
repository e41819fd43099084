"""`FrontProxy` and `qlik-sso front-config`: what they accept, and what the generated files say."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.types import Receive, Scope, Send

from qlik_sso_middleware import ConfigurationError, FrontProxy, QlikSSOMiddleware, QlikTarget
from qlik_sso_middleware.cli import main
from qlik_sso_middleware.offload.front_config import BROWSER_HEADERS

from .front import SECRET


async def _app(scope: Scope, receive: Receive, send: Send) -> None:
    raise AssertionError("not reached")


@pytest.mark.parametrize("bad", ["short", "x" * 31, "a b" * 20, 'quote"' * 8, "semi;" * 8])
def test_the_secret_must_be_long_and_need_no_quoting(bad: str) -> None:
    with pytest.raises(ConfigurationError, match="secret"):
        FrontProxy(bad)


def test_the_secret_is_never_shown() -> None:
    assert SECRET not in repr(FrontProxy(SECRET))


def test_the_auth_path_cannot_lie_under_a_mount_path() -> None:
    with pytest.raises(ConfigurationError, match="front_proxy"):
        QlikSSOMiddleware(
            _app,
            target=QlikTarget("http://127.0.0.1:1"),
            resolver=lambda conn: None,
            front_proxy=FrontProxy(SECRET, auth_path="/sso/auth"),
        )


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "qlik-sso.toml"
    path.write_text(text)
    return path


GOOD = f"""
[qlik]
url = "https://qlik.acme.internal:4443"
prefix = "sso"
[offload]
secret = "{SECRET}"
app_url = "http://127.0.0.1:8000"
listen = "127.0.0.1:8080"
"""


@pytest.mark.parametrize("server", ["nginx", "caddy"])
def test_front_config_prints_the_servers_file(
    server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["front-config", "--server", server, "--config", str(write(tmp_path, GOOD))]) == 0
    text = capsys.readouterr().out
    assert SECRET in text  # the front proxy must send it; the file says to keep it private
    assert "readable by root only" in text
    assert "qlik.acme.internal:4443" in text and "127.0.0.1:8000" in text
    for header in BROWSER_HEADERS:
        assert header in text
    for never in ("X-Qlik-User", "hdr-usr", "Authorization $http"):
        assert never not in text


def test_nginx_file_has_the_auth_cache_only_when_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, GOOD)
    main(["front-config", "--server", "nginx", "--config", str(path)])
    assert "proxy_cache_path" not in capsys.readouterr().out
    path.write_text(GOOD + "auth_cache_seconds = 5\n")
    main(["front-config", "--server", "nginx", "--config", str(path)])
    text = capsys.readouterr().out
    assert "proxy_cache_valid 200 5s;" in text
    assert "$http_cookie" in text.split("proxy_cache_key", 1)[1].split("\n", 1)[0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[qlik]\nurl = 'http://q:1'\n", "offload.secret: is required"),
        (
            "[qlik]\nurl = 'http://q:1'\n[offload]\nsecret = 'too-short'\n",
            "qlik-sso.toml:4: offload.secret: must be at least 32",
        ),
        (
            f"[qlik]\nurl = 'http://q:1'\n[offload]\nsecret = '{SECRET}'\napp_url = 'ftp://x'\n",
            "qlik-sso.toml:5: offload.app_url: must be http://host:port",
        ),
        (
            f"[qlik]\nurl = 'http://q:1'\n[offload]\nsecret = '{SECRET}'\nlisten = 'a b'\n",
            "qlik-sso.toml:5: offload.listen",
        ),
        (
            f"[qlik]\nurl = 'http://q:1'\n[offload]\nsecret = '{SECRET}'\nauth_path = 'x'\n",
            "qlik-sso.toml:5: offload.auth_path",
        ),
        (f"[qlik]\nurl = 'http://q:1'\n[offload]\nsecrte = '{SECRET}'\n", "did you mean 'secret'"),
    ],
)
def test_configuration_errors_name_the_file_line_and_key(
    text: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["front-config", "--server", "nginx", "--config", str(write(tmp_path, text))])
    assert code == 2
    err = capsys.readouterr().err
    assert message in err
    assert "too-short" not in err and SECRET not in err


def test_an_unknown_server_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["front-config", "--server", "apache", "--config", str(write(tmp_path, GOOD))])
    assert code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "unknown front proxy 'apache': choose one of nginx, caddy" in captured.err
