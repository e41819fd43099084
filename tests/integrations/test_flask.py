"""Flask behind the ASGI core: Flask-Login sessions, logout from a view, bad cookies and users."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass

import httpx2 as httpx
import pytest
from flask import Flask, request, session
from flask.sessions import session_json_serializer
from flask_login import (  # type: ignore[import-untyped]
    LoginManager,
    UserMixin,
    login_user,
    logout_user,
)
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from itsdangerous.encoding import base64_encode
from websockets.asyncio.client import connect

from qlik_sso_middleware import QlikTarget
from qlik_sso_middleware.errors import ConfigurationError
from qlik_sso_middleware.integrations.flask import (
    FlaskSessionResolver,
    logout_from_qlik,
    serve_flask,
)
from qlik_sso_middleware.testing import DEMO_APPS, QlikSimulator

from ..servers import serve

SECRET = "flask-test-secret"


@dataclass
class User(UserMixin):  # type: ignore[misc]
    id: str
    active: bool = True

    @property
    def username(self) -> str:
        return self.id

    @property
    def is_active(self) -> bool:
        return self.active


def flask_app(users: dict[str, User]) -> Flask:
    app = Flask("flask_test_app")
    app.secret_key = SECRET
    manager = LoginManager(app)

    @manager.user_loader  # type: ignore[untyped-decorator]
    def load(user_id: str) -> User | None:
        return users.get(user_id)

    @app.post("/login")
    def login() -> str:
        user = users[request.form["username"]]
        login_user(user, force=True)  # force: log inactive users in too, to test the resolver
        return "ok"

    @app.post("/logout")
    def logout() -> dict[str, int]:
        dropped = logout_from_qlik()
        logout_user()
        return {"dropped": dropped}

    return app


async def logged_in_client(url: str, user: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=url)
    response = await client.post("/login", data={"username": user})
    assert response.status_code == 200
    assert client.cookies.get("session")
    return client


async def test_flask_login_user_reaches_qlik_over_http_and_websocket_and_logs_out(
    simulator: QlikSimulator,
) -> None:
    users = {"alice": User("alice")}
    asgi = serve_flask(
        flask_app(users), target=QlikTarget(simulator.proxy_url), user_directory="ACME"
    )
    async with serve(asgi) as url:
        client = await logged_in_client(url, "alice")
        try:
            me = (await client.get("/sso/qps/user")).json()
            assert (me["userDirectory"], me["userId"]) == ("ACME", "alice")
            page = await client.get(f"/sso/single/?appid={DEMO_APPS[0].id}&obj=sales-table")
            assert page.status_code == 200
            assert "text/html" in page.headers["content-type"]
            cookie = f"session={client.cookies['session']}"
            async with connect(
                "ws" + url[4:] + f"/sso/app/{DEMO_APPS[0].id}",
                origin=url,  # type: ignore[arg-type]
                additional_headers={"cookie": cookie},
            ) as ws:
                auth = json.loads(await ws.recv())
                assert (auth["params"]["userDirectory"], auth["params"]["userId"]) == (
                    "ACME",
                    "alice",
                )
            assert len(simulator.live_sessions("ACME\\alice")) == 1
            response = await client.post("/logout")
            assert response.json() == {"dropped": 1}
            assert simulator.live_sessions("ACME\\alice") == []
            assert (await client.get("/sso/qps/user")).status_code == 401
        finally:
            await client.aclose()


def old_cookie(data: dict[str, str], age: int) -> str:
    """A cookie signed with the app's real key but `age` seconds ago (as Flask signs it)."""

    class OldSigner(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - age

    serializer = URLSafeTimedSerializer(
        SECRET,
        salt="cookie-session",
        serializer=session_json_serializer,
        signer=OldSigner,
        signer_kwargs={"key_derivation": "hmac", "digest_method": hashlib.sha1},
    )
    return serializer.dumps(data)


@pytest.mark.parametrize("case", ["tampered", "foreign-key", "expired", "garbage"])
async def test_bad_session_cookies_are_nobody(simulator: QlikSimulator, case: str) -> None:
    users = {"alice": User("alice"), "bob": User("bob")}
    app = flask_app(users)
    async with serve(
        serve_flask(app, target=QlikTarget(simulator.proxy_url), user_directory="ACME")
    ) as url:
        client = await logged_in_client(url, "alice")
        good = client.cookies["session"]
        await client.aclose()
        if case == "tampered":
            # Same timestamp and signature, payload swapped for another user's.
            _, stamp, signature = good.rsplit(".", 2)
            payload = base64_encode(json.dumps({"_user_id": "bob", "_fresh": True}).encode())
            forged = f"{payload.decode()}.{stamp}.{signature}"
        elif case == "foreign-key":
            other = Flask("other")
            other.secret_key = "someone-elses-secret"
            serializer = other.session_interface.get_signing_serializer(other)  # type: ignore[attr-defined]
            forged = serializer.dumps({"_user_id": "alice", "_fresh": True})
        elif case == "expired":
            lifetime = int(app.permanent_session_lifetime.total_seconds())
            forged = old_cookie({"_user_id": "alice", "_fresh": "1"}, lifetime + 60)
        else:
            forged = "not-a-session"
        async with httpx.AsyncClient(base_url=url, cookies={"session": forged}) as attacker:
            response = await attacker.get("/sso/qps/user")
        assert response.status_code == 401
        assert simulator.requests == []
        # Control: the genuine cookie of the same app does reach Qlik.
        async with httpx.AsyncClient(base_url=url, cookies={"session": good}) as genuine:
            assert (await genuine.get("/sso/qps/user")).json()["userId"] == "alice"


async def test_a_recent_cookie_from_the_same_key_still_works(simulator: QlikSimulator) -> None:
    # The control for "expired": same signing path, recent timestamp → a user.
    users = {"alice": User("alice")}
    async with serve(
        serve_flask(flask_app(users), target=QlikTarget(simulator.proxy_url), user_directory="ACME")
    ) as url:
        cookie = old_cookie({"_user_id": "alice"}, 60)
        async with httpx.AsyncClient(base_url=url, cookies={"session": cookie}) as client:
            response = await client.get("/sso/qps/user")
    assert response.json()["userId"] == "alice"


@pytest.mark.parametrize(
    ("user", "change", "status"),
    [
        ("dave", "delete", 401),
        ("erin", "deactivate", 401),
        ("bad\\name", None, 403),
        (" padded", None, 403),
    ],
)
async def test_deleted_inactive_and_unnameable_users_get_no_qlik_session(
    simulator: QlikSimulator, user: str, change: str | None, status: int
) -> None:
    users = {user: User(user)}
    async with serve(
        serve_flask(flask_app(users), target=QlikTarget(simulator.proxy_url), user_directory="ACME")
    ) as url:
        client = await logged_in_client(url, user)
        try:
            if change == "delete":
                del users[user]
            elif change == "deactivate":
                users[user].active = False
            response = await client.get("/sso/qps/user", headers={"accept": "application/json"})
        finally:
            await client.aclose()
    assert response.status_code == status
    assert "error" in response.json()
    assert simulator.logins() == 0
    assert simulator.requests == []


async def test_plain_session_value_without_flask_login(simulator: QlikSimulator) -> None:
    app = Flask("plain")
    app.secret_key = SECRET

    @app.post("/login")
    def login() -> str:
        session["user"] = request.form["username"]
        return "ok"

    resolver = FlaskSessionResolver(app, "ACME", session_key="user")
    async with serve(
        serve_flask(app, target=QlikTarget(simulator.proxy_url), resolver=resolver)
    ) as url:
        client = await logged_in_client(url, "carol")
        try:
            me = (await client.get("/sso/qps/user")).json()
        finally:
            await client.aclose()
    assert (me["userDirectory"], me["userId"]) == ("ACME", "carol")


def test_configuration_errors_name_the_field() -> None:
    app = Flask("cfg")
    with pytest.raises(ConfigurationError, match="user_directory"):
        FlaskSessionResolver(app)
    with pytest.raises(ConfigurationError, match="resolver"):
        serve_flask(
            app,
            target=QlikTarget("http://127.0.0.1:9"),
            user_directory="ACME",
            resolver=FlaskSessionResolver(app, "ACME"),
        )
