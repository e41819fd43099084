"""Django: the session resolver over every session engine, bad sessions and users, the logout
signal under ASGI and WSGI, and settings validation. Django runs in this process (sqlite in a
temporary directory, a custom user model); ORM calls of the tests run in threads, as they must."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import AsyncIterator
from datetime import timedelta
from importlib import import_module
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import httpx2 as httpx
import pytest
from starlette.applications import Starlette
from websockets.asyncio.client import connect

_SET_HERE = "DJANGO_SETTINGS_MODULE" not in os.environ
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.integrations.django_settings")

import django  # noqa: E402

django.setup()
if _SET_HERE:
    # Settings are loaded now; keep the variable from leaking into other tests' subprocesses.
    del os.environ["DJANGO_SETTINGS_MODULE"]

from django.contrib.auth import (  # noqa: E402
    BACKEND_SESSION_KEY,
    HASH_SESSION_KEY,
    SESSION_KEY,
)
from django.contrib.sessions.models import Session  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.core.signing import TimestampSigner, b62_encode  # noqa: E402
from django.test import override_settings  # noqa: E402
from django.utils import timezone  # noqa: E402

from qlik_sso_middleware import QlikIdentity, QlikSSOMiddleware, QlikTarget  # noqa: E402
from qlik_sso_middleware.errors import ConfigurationError  # noqa: E402
from qlik_sso_middleware.integrations.django import (  # noqa: E402
    DjangoSessionResolver,
    get_asgi_application,
    get_wsgi_application,
    sso_from_settings,
)
from qlik_sso_middleware.testing import DEMO_APPS, QlikSimulator  # noqa: E402

from ..servers import serve  # noqa: E402
from .djangoapp.models import Member  # noqa: E402

MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"
ENGINES = {
    "db": "django.contrib.sessions.backends.db",
    "cache": "django.contrib.sessions.backends.cache",
    "cached_db": "django.contrib.sessions.backends.cached_db",
    "file": "django.contrib.sessions.backends.file",
    "signed_cookies": "django.contrib.sessions.backends.signed_cookies",
}


@pytest.fixture(scope="module", autouse=True)
def database() -> None:
    call_command("migrate", run_syncdb=True, verbosity=0)


def new_member(handle: str, **extra: Any) -> Member:
    Member.objects.filter(handle=handle).delete()
    return Member.objects.create_user(handle, "pw", **extra)


def session_cookie(member: Member, engine: str, *, backend: str = MODEL_BACKEND) -> str:
    """What `django.contrib.auth.login` stores, saved through `engine`; returns the cookie value."""
    store = import_module(engine).SessionStore()
    store[SESSION_KEY] = member._meta.pk.value_to_string(member)
    store[BACKEND_SESSION_KEY] = backend
    store[HASH_SESSION_KEY] = member.get_session_auth_hash()
    store.save()
    key: str = store.session_key
    assert key
    return key


async def in_thread(func: Any, *args: Any) -> Any:
    return await asyncio.to_thread(func, *args)


@pytest.fixture
async def proxy(simulator: QlikSimulator) -> AsyncIterator[str]:
    """The resolver alone behind the middleware (no Django views involved)."""
    app = QlikSSOMiddleware(
        Starlette(), target=QlikTarget(simulator.proxy_url), resolver=DjangoSessionResolver("ACME")
    )
    async with serve(app) as url:
        yield url


async def qlik_user(url: str, cookie: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url, cookies={"sessionid": cookie}) as client:
        return await client.get("/sso/qps/user", headers={"accept": "application/json"})


@pytest.mark.parametrize("engine", sorted(ENGINES))
async def test_every_session_engine_with_a_custom_user_model(
    proxy: str, simulator: QlikSimulator, engine: str
) -> None:
    with override_settings(SESSION_ENGINE=ENGINES[engine]):
        member = await in_thread(new_member, "alice")
        cookie = await in_thread(session_cookie, member, ENGINES[engine])
        response = await qlik_user(proxy, cookie)
    assert response.status_code == 200
    assert (response.json()["userDirectory"], response.json()["userId"]) == ("ACME", "alice")
    assert simulator.logins("ACME\\alice") == 1


def old_signed_cookie(member: Member, age: int) -> str:
    """A signed-cookie session signed with the real key, but `age` seconds ago."""

    class OldSigner(TimestampSigner):
        def timestamp(self) -> str:
            return b62_encode(int(timezone.now().timestamp()) - age)

    data = {
        SESSION_KEY: str(member.pk),
        BACKEND_SESSION_KEY: MODEL_BACKEND,
        HASH_SESSION_KEY: member.get_session_auth_hash(),
    }
    from django.contrib.sessions.serializers import JSONSerializer

    return OldSigner(salt="django.contrib.sessions.backends.signed_cookies").sign_object(
        data, serializer=JSONSerializer, compress=True
    )


def expire_db_session(key: str) -> None:
    Session.objects.filter(session_key=key).update(expire_date=timezone.now() - timedelta(days=1))


@pytest.mark.parametrize(
    "case",
    [
        "db-unknown-key",
        "db-expired",
        "signed-tampered",
        "signed-foreign-key",
        "signed-expired",
        "password-changed",
        "backend-removed",
        "no-auth-hash",
    ],
)
async def test_bad_sessions_are_nobody(proxy: str, simulator: QlikSimulator, case: str) -> None:
    engine = ENGINES["signed_cookies" if case.startswith("signed") else "db"]
    with override_settings(SESSION_ENGINE=engine):
        member = await in_thread(new_member, "mallory")
        good = await in_thread(session_cookie, member, engine)
        bad = good
        if case == "db-unknown-key":
            bad = "x" * 32
        elif case == "db-expired":
            await in_thread(expire_db_session, good)
        elif case == "signed-tampered":
            payload, rest = good.split(":", 1)
            bad = payload[:-1] + ("A" if payload[-1] != "A" else "B") + ":" + rest
        elif case == "signed-foreign-key":
            with override_settings(SECRET_KEY="another-project-secret"):
                bad = await in_thread(session_cookie, member, engine)
        elif case == "signed-expired":
            bad = await in_thread(old_signed_cookie, member, 1_300_000)  # > 2 weeks
        elif case == "password-changed":

            def change() -> None:
                member.set_password("new")
                member.save()

            await in_thread(change)
        elif case == "backend-removed":
            bad = await in_thread(
                lambda: session_cookie(member, engine, backend="some.removed.Backend")
            )
        elif case == "no-auth-hash":

            def strip() -> str:
                store = import_module(engine).SessionStore()
                store[SESSION_KEY] = str(member.pk)
                store[BACKEND_SESSION_KEY] = MODEL_BACKEND
                store.save()
                key: str = store.session_key
                assert key
                return key

            bad = await in_thread(strip)
        response = await qlik_user(proxy, bad)
        assert response.status_code == 401, case
        assert simulator.requests == []
        if case not in ("db-expired", "password-changed"):
            # Control: the genuine session of the same user still works.
            assert (await qlik_user(proxy, good)).status_code == 200


@pytest.mark.parametrize(
    ("handle", "change", "status"),
    [("deleted", "delete", 401), ("inactive", "deactivate", 401), ("bad\\name", None, 403)],
)
async def test_deleted_inactive_and_unnameable_users(
    proxy: str, simulator: QlikSimulator, handle: str, change: str | None, status: int
) -> None:
    member = await in_thread(new_member, handle)
    cookie = await in_thread(session_cookie, member, ENGINES["db"])
    if change == "delete":
        await in_thread(lambda: Member.objects.filter(pk=member.pk).delete())
    elif change == "deactivate":
        await in_thread(lambda: Member.objects.filter(pk=member.pk).update(is_active=False))
    response = await qlik_user(proxy, cookie)
    assert response.status_code == status
    assert response.json()["status"] == status
    assert simulator.logins() == 0


def shouting(user: Any) -> QlikIdentity:
    """A `TO_IDENTITY` given by dotted path in settings."""
    return QlikIdentity("CORP", user.get_username().upper())


async def test_to_identity_from_settings_maps_users(simulator: QlikSimulator) -> None:
    member = await in_thread(new_member, "erin")
    cookie = await in_thread(session_cookie, member, ENGINES["db"])
    options = {
        "URL": simulator.proxy_url,
        "TO_IDENTITY": "tests.integrations.test_django.shouting",
        "LOGIN_URL": None,
    }
    with override_settings(QLIK_SSO=options):
        sso = sso_from_settings()
    assert sso.login_url is None
    async with serve(QlikSSOMiddleware(Starlette(), sso=sso)) as url:
        response = await qlik_user(url, cookie)
    assert (response.json()["userDirectory"], response.json()["userId"]) == ("CORP", "ERIN")


def qlik_settings(sim: QlikSimulator, **extra: Any) -> dict[str, Any]:
    return {"URL": sim.proxy_url, "PREFIX": "sso", "USER_DIRECTORY": "ACME", **extra}


async def login(client: httpx.AsyncClient, handle: str) -> None:
    response = await client.post("/login/", data={"username": handle, "password": "pw"})
    assert response.status_code == 200, response.text


async def test_asgi_project_login_embed_websocket_and_logout_signal(
    simulator: QlikSimulator,
) -> None:
    await in_thread(new_member, "alice")
    with override_settings(QLIK_SSO=qlik_settings(simulator)):
        application = get_asgi_application()
    async with serve(application) as url, httpx.AsyncClient(base_url=url) as client:
        # Not logged in: a page load goes to the project's LOGIN_URL.
        page = await client.get(
            "/sso/single/?appid=x", headers={"accept": "text/html", "sec-fetch-mode": "navigate"}
        )
        assert page.status_code == 302
        assert page.headers["location"].startswith("/login/?next=")
        await login(client, "alice")
        embed = await client.get(f"/sso/single/?appid={DEMO_APPS[0].id}&obj=sales-table")
        assert embed.status_code == 200
        cookie = f"sessionid={client.cookies['sessionid']}"
        async with connect(
            "ws" + url[4:] + f"/sso/app/{DEMO_APPS[0].id}",
            origin=url,  # type: ignore[arg-type]
            additional_headers={"cookie": cookie},
        ) as ws:
            auth = json.loads(await ws.recv())
            assert auth["params"]["userId"] == "alice"
        assert len(simulator.live_sessions("ACME\\alice")) == 1
        response = await client.post("/logout/")
        assert response.json() == {"logged_out": True}
        # The signal (sync, in Django's thread) ended the Qlik session on the server's loop.
        assert simulator.live_sessions("ACME\\alice") == []
        assert (await client.get("/sso/qps/user")).status_code == 401


async def test_async_view_logout_ends_the_qlik_session_too(simulator: QlikSimulator) -> None:
    await in_thread(new_member, "carol")
    with override_settings(QLIK_SSO=qlik_settings(simulator)):
        application = get_asgi_application()
    async with serve(application) as url, httpx.AsyncClient(base_url=url) as client:
        await login(client, "carol")
        assert (await client.get("/sso/qps/user")).json()["userId"] == "carol"
        assert (await client.post("/alogout/")).json() == {"logged_out": True}
    assert simulator.live_sessions("ACME\\carol") == []


async def test_app_logout_succeeds_when_qlik_fails_to_log_out(
    simulator: QlikSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    await in_thread(new_member, "dan")
    with override_settings(QLIK_SSO=qlik_settings(simulator)):
        application = get_asgi_application()
    async with serve(application) as url, httpx.AsyncClient(base_url=url) as client:
        await login(client, "dan")
        assert (await client.get("/sso/qps/user")).json()["userId"] == "dan"
        await simulator.stop()  # Qlik goes away: the logout cannot reach it
        response = await client.post("/logout/")
        # Django's logout went through all the same.
        assert response.json() == {"logged_out": True}
        assert (await client.get("/sso/qps/user")).status_code == 401
    assert any("after Django logout failed" in r.getMessage() for r in caplog.records)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


async def test_wsgi_project_serves_http_and_refuses_websockets_with_an_explanation(
    simulator: QlikSimulator,
) -> None:
    await in_thread(new_member, "bob")
    with override_settings(QLIK_SSO=qlik_settings(simulator)):
        application = get_wsgi_application()
    server: WSGIServer = make_server("127.0.0.1", 0, application, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            await login(client, "bob")
            embed = await client.get(f"/sso/single/?appid={DEMO_APPS[0].id}&obj=sales-table")
            assert embed.status_code == 200
            me = await client.get("/sso/qps/user")
            assert me.json()["userId"] == "bob"
            upgrade = await client.get(
                f"/sso/app/{DEMO_APPS[0].id}",
                headers={
                    "connection": "Upgrade",
                    "upgrade": "websocket",
                    "sec-websocket-version": "13",
                    "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
                    "origin": url,
                },
            )
            assert upgrade.status_code == 501
            assert "ASGI" in upgrade.json()["error"]
            assert not [r for r in simulator.requests if r.websocket]
            # Logout through the signal works under WSGI too (the core's own loop thread).
            await client.post("/logout/")
            assert simulator.live_sessions("ACME\\bob") == []
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()
        application.close()


def test_settings_are_validated_with_the_key_named() -> None:
    with (
        override_settings(QLIK_SSO={"URL": "http://127.0.0.1:9", "USER_DIRECTRY": "ACME"}),
        pytest.raises(ConfigurationError, match="USER_DIRECTORY"),
    ):
        sso_from_settings()
    with (
        override_settings(QLIK_SSO={"PREFIX": "sso", "USER_DIRECTORY": "ACME"}),
        pytest.raises(ConfigurationError, match=r"QLIK_SSO\.URL"),
    ):
        sso_from_settings()
    with (
        override_settings(QLIK_SSO={"URL": "http://127.0.0.1:9"}),
        pytest.raises(ConfigurationError, match="USER_DIRECTORY"),
    ):
        sso_from_settings()
