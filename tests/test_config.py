"""The configuration schema: TOML + QLIK_SSO_* variables, errors that name the key and the line."""

from __future__ import annotations

from pathlib import Path

import httpx2 as httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import HTTPConnection

from qlik_sso_middleware import ConfigurationError, HeaderAuth, QlikIdentity, QlikSSOMiddleware
from qlik_sso_middleware.config import Secret, build_sso, build_target, load_config
from qlik_sso_middleware.target import reqwest_installed
from qlik_sso_middleware.testing import QlikSimulator
from tests.servers import serve

BASE = """\
# a comment
[qlik]
url = "http://127.0.0.1:1"
prefix = "sso"

[auth]
header_name = "hdr-usr"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "qlik-sso.toml"
    path.write_text(text, encoding="utf-8")
    return path


def error_of(path: Path | None, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigurationError) as caught:
        load_config(path, env or {})
    return str(caught.value)


def test_file_values_and_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, BASE), {})
    assert config.qlik.url == "http://127.0.0.1:1"
    assert config.auth.strategy == "header"
    assert config.app.embedding == "proxy"
    assert config.location("qlik.prefix") == f"{tmp_path / 'qlik-sso.toml'}:4"
    target = build_target(config)
    assert isinstance(target.auth, HeaderAuth)
    assert target.auth.header_name == "hdr-usr"
    assert target.cookie_name == "X-Qlik-Session-sso"


def test_environment_wins_and_is_typed(tmp_path: Path) -> None:
    env = {
        "QLIK_SSO_QLIK_PREFIX": "other",
        "QLIK_SSO_QLIK_SESSION_TTL": "60",
        "QLIK_SSO_QLIK_VERIFY": "false",
        "QLIK_SSO_APP_ALLOWED_ORIGINS": "https://a.example, https://b.example",
        "QLIK_SSO_APP_ALLOW_MISSING_ORIGIN": "yes",
        "QLIK_SSO_SERVE_PORT": "9000",
        "QLIK_SSO_QLIK_COOKIE_NAME": "",
        "UNRELATED": "x",
    }
    config = load_config(write(tmp_path, BASE), env)
    assert config.qlik.prefix == "other"
    assert config.qlik.session_ttl == 60.0
    assert config.qlik.verify is False
    assert config.qlik.cookie_name is None
    assert config.app.allowed_origins == ["https://a.example", "https://b.example"]
    assert config.app.allow_missing_origin is True
    assert config.serve.port == 9000
    assert config.location("qlik.prefix") == "$QLIK_SSO_QLIK_PREFIX"


def test_environment_only_and_config_variable(tmp_path: Path) -> None:
    assert load_config(None, {"QLIK_SSO_QLIK_URL": "https://q.example"}).qlik.url == (
        "https://q.example"
    )
    path = write(tmp_path, BASE)
    assert load_config(None, {"QLIK_SSO_CONFIG": str(path)}).qlik.prefix == "sso"


def test_unknown_key_names_line_and_suggests(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, BASE + 'hedaer_name = "x"\n'))
    assert message == (
        f"{tmp_path / 'qlik-sso.toml'}:8: auth.hedaer_name: unknown key; "
        "did you mean 'header_name'?"
    )


def test_unknown_section_and_dotted_keys(tmp_path: Path) -> None:
    assert "qlk: unknown section; did you mean 'qlik'?" in error_of(
        write(tmp_path, '[qlk]\nurl = "http://x"\n')
    )
    message = error_of(write(tmp_path, 'qlik.url = "http://x"\nqlik.prefixx = "a"\n'))
    assert message.endswith(":2: qlik.prefixx: unknown key; did you mean 'prefix'?")


def test_unknown_variable_suggests() -> None:
    message = error_of(None, {"QLIK_SSO_QLIK_URL": "http://x", "QLIK_SSO_QLIK_PREFX": "a"})
    assert message.startswith("$QLIK_SSO_QLIK_PREFX: unknown configuration variable")
    assert "did you mean 'QLIK_SSO_QLIK_PREFIX'?" in message


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('session_ttl = "long"', "qlik.session_ttl: must be a number, not str 'long'"),
        ("max_connections = 1.5", "qlik.max_connections: must be an integer, not float 1.5"),
        ("verify = 3", "qlik.verify: must be true or false or a string"),
        ('prefix = ["a"]', "qlik.prefix: must be a string, not list"),
    ],
)
def test_wrong_types_name_key_and_line(tmp_path: Path, line: str, expected: str) -> None:
    message = error_of(write(tmp_path, BASE.replace('prefix = "sso"', line)))
    assert f"qlik-sso.toml:4: {expected}" in message


def test_wrong_env_types() -> None:
    env = {"QLIK_SSO_QLIK_URL": "http://x", "QLIK_SSO_APP_ALLOW_MISSING_ORIGIN": "maybe"}
    assert error_of(None, env) == (
        "$QLIK_SSO_APP_ALLOW_MISSING_ORIGIN: app.allow_missing_origin: must be true or false, "
        "not 'maybe'"
    )


def test_choices(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, BASE + 'strategy = "hedaer"\n'))
    assert ":8: auth.strategy: 'hedaer' is not one of header, session_api, ticket" in message


def test_missing_file_bad_toml_missing_url(tmp_path: Path) -> None:
    assert (
        error_of(tmp_path / "nope.toml")
        == f"{tmp_path / 'nope.toml'}: configuration file not found"
    )
    assert "invalid TOML" in error_of(write(tmp_path, "[qlik\n"))
    assert "qlik.url: is required" in error_of(write(tmp_path, "[auth]\n"))
    assert "qlik.url: is required" in error_of(None, {})


def test_cross_field_rules(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, BASE + 'strategy = "session_api"\n'))
    assert "qps.api_url: is required for auth.strategy = 'session_api'" in message
    message = error_of(write(tmp_path, BASE + '[store]\nkind = "redis"\n'))
    assert "store.url: is required" in message
    message = error_of(write(tmp_path, BASE + '[serve]\nhandoff_path = "handoff"\n'))
    assert ":9: serve.handoff_path: 'handoff' must be a path starting with '/'" in message
    message = error_of(write(tmp_path, BASE + '[check]\ntest_user = "alice"\n'))
    assert ":9: check.test_user:" in message and "one backslash" in message


def test_relative_certificate_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "root.pem").write_text("x")
    text = BASE + '[qps]\napi_url = "https://127.0.0.1:4243"\nroot = "certs/root.pem"\n'
    config = load_config(write(tmp_path, text), {})
    assert config.qps.root == str(tmp_path / "certs" / "root.pem")
    message = error_of(write(tmp_path, text.replace("certs/root.pem", "certs/missing.pem")))
    assert ":10: qps.root: file not found:" in message


def test_secrets_never_shown(tmp_path: Path) -> None:
    text = BASE + '[serve]\nkeys = ["s3cret-key-1", "s3cret-key-2"]\n[qps]\npfx_password = 7\n'
    message = error_of(write(tmp_path, text))
    assert message.endswith(":11: qps.pfx_password: must be a string")  # the value is not echoed
    config = load_config(write(tmp_path, BASE + '[serve]\nkeys = ["s3cret-key-1"]\n'), {})
    assert config.serve.keys == [Secret("s3cret-key-1")]
    assert "s3cret" not in repr(config)
    assert config.serve.keys[0].reveal() == "s3cret-key-1"


def test_object_errors_are_located_at_the_key(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, BASE.replace('prefix = "sso"', 'prefix = "s o"')), {})
    with pytest.raises(ConfigurationError) as caught:
        build_target(config)
    assert str(caught.value).startswith(f"{tmp_path / 'qlik-sso.toml'}:4: qlik.prefix: 's o'")
    config = load_config(write(tmp_path, BASE.replace("hdr-usr", "X-Qlik-User-x")), {})
    with pytest.raises(ConfigurationError) as caught:
        build_target(config)
    assert ":7: auth.header_name:" in str(caught.value)
    with pytest.raises(ConfigurationError, match=r"resolver\.kind: no resolver"):
        build_sso(load_config(write(tmp_path, BASE), {}))


def _user(conn: HTTPConnection) -> QlikIdentity | None:
    user = conn.headers.get("x-test-user")
    return QlikIdentity("ACME", user) if user else None


async def test_from_config_serves_qlik(tmp_path: Path, simulator: QlikSimulator) -> None:
    path = write(tmp_path, BASE.replace("http://127.0.0.1:1", simulator.proxy_url))
    app = QlikSSOMiddleware.from_config(Starlette(), path, {}, resolver=_user)
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as client:
        answer = await client.get("/sso/qps/user", headers={"x-test-user": "alice"})
        assert answer.json()["userId"] == "alice"
    env = {"QLIK_SSO_QLIK_URL": simulator.proxy_url, "QLIK_SSO_RESOLVER_KIND": "trusted_header"}
    app = QlikSSOMiddleware.from_config(Starlette(), None, env)
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as client:
        answer = await client.get("/sso/qps/user", headers={"x-remote-user": "ACME\\bob"})
        assert answer.json()["userId"] == "bob"


@pytest.mark.no_fast
def test_reqwest_without_pyreqwest_names_the_extra(tmp_path: Path) -> None:
    env = {"QLIK_SSO_QLIK_URL": "http://x", "QLIK_SSO_QLIK_HTTP_ENGINE": "reqwest"}
    config = load_config(None, env)
    with pytest.raises(ConfigurationError) as caught:
        build_target(config)
    assert "http_engine: the reqwest engine needs pyreqwest" in str(caught.value)
    assert "pip install 'qlik-sso-middleware[fast]'" in str(caught.value)


def test_http_engine_reaches_the_target(tmp_path: Path) -> None:
    from qlik_sso_middleware.config import build_target

    default = build_target(load_config(write(tmp_path, BASE), {}))
    assert default.http_engine == "auto"
    assert default.resolved_http_engine == ("reqwest" if reqwest_installed() else "aiohttp")
    config = load_config(write(tmp_path, BASE), {"QLIK_SSO_QLIK_HTTP_ENGINE": "aiohttp"})
    assert build_target(config).resolved_http_engine == "aiohttp"
    message = error_of(None, {"QLIK_SSO_QLIK_URL": "http://x", "QLIK_SSO_QLIK_HTTP_ENGINE": "curl"})
    assert "qlik.http_engine: 'curl' is not one of auto, reqwest, aiohttp" in message


def test_auth_pattern_pasted_from_the_qmc(tmp_path: Path) -> None:
    # A TOML literal string keeps what the QMC shows: `$ud\\$id` (one escaped backslash).
    text = BASE.replace(
        'header_name = "hdr-usr"', "header_name = \"hdr-usr\"\npattern = '$ud\\\\$id'"
    )
    config = load_config(write(tmp_path, text), {})
    assert config.auth.pattern == "$ud\\\\$id"
    auth = build_target(config).auth
    assert auth.upstream_headers(QlikIdentity("CMI", "Me")) == [(b"hdr-usr", b"CMI\\Me")]
