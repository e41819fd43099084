"""Flask + Flask-Login app embedding Qlik Sense, served through the ASGI core.

    qlik-sso simulate --port 8080
    QLIK_URL=http://127.0.0.1:8080 python examples/flask_app/app.py --port 8000
    # open http://127.0.0.1:8000 and log in as alice / demo

`serve_flask` puts the Flask app (run by a2wsgi in worker threads) behind `QlikSSOMiddleware`, so
the engine WebSocket works although Flask is WSGI. The user comes from Flask's own signed session
cookie and Flask-Login's `user_loader`. In production: `uvicorn examples.flask_app.app:asgi_app`
style, with the app built once at import.
"""

from __future__ import annotations

import argparse
import os
import secrets
from dataclasses import dataclass
from typing import Any

import uvicorn
from flask import Flask, redirect, render_template_string, request
from flask_login import (  # type: ignore[import-untyped]
    LoginManager,
    UserMixin,
    current_user,
    login_required,
    login_user,
    logout_user,
)

from qlik_sso_middleware import HeaderAuth, QlikSSOMiddleware, QlikTarget
from qlik_sso_middleware.integrations.flask import logout_from_qlik, serve_flask

QLIK_URL = os.environ.get("QLIK_URL", "")
PREFIX = os.environ.get("QLIK_PREFIX", "sso")
HEADER = os.environ.get("QLIK_HEADER", "hdr-usr")
APP_ID = os.environ.get("QLIK_APP_ID", "4f1c2d3e-5a6b-4c7d-8e9f-0a1b2c3d4e5f")
OBJECT_ID = os.environ.get("QLIK_OBJECT_ID", "sales-table")
PASSWORDS = {"alice": "demo", "bob": "demo"}  # a real app checks its user database
STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "static")


@dataclass
class User(UserMixin):  # type: ignore[misc]
    id: str

    @property
    def username(self) -> str:  # what the resolver maps to ACME\<username>
        return self.id


LAYOUT = """<!doctype html><meta charset=utf-8><title>{{ title }}</title>
<style>body{font-family:sans-serif;margin:2em}iframe{width:100%;height:420px;border:1px solid #ccc}
td,th{padding:.2em .8em}</style><h1>{{ title }}</h1>
{% if current_user.is_authenticated %}<p id=user>Logged in as {{ current_user.username }} ·
<a href=/embed>iframe</a> · <a href=/mashup>mashup</a> ·
<a href=/static/qlik-embed.html>qlik-embed</a></p>
<form method=post action=/logout><button id=logout>Log out</button></form>{% endif %}
{{ body | safe }}"""


def render(title: str, body: str, **context: Any) -> str:
    return render_template_string(LAYOUT, title=title, body=render_template_string(body, **context))


def create_flask_app() -> Flask:
    app = Flask(__name__, static_folder=STATIC)  # serves /static/qlik-mashup.js
    app.secret_key = os.environ.get("APP_SECRET", secrets.token_hex(32))
    # Lax: other sites cannot POST /logout with the user's cookie.
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    manager = LoginManager(app)
    manager.login_view = "login"

    @manager.user_loader  # type: ignore[untyped-decorator]
    def load_user(user_id: str) -> User | None:
        return User(user_id) if user_id in PASSWORDS else None

    @app.get("/")
    def home() -> Any:
        return redirect("/embed" if current_user.is_authenticated else "/login")

    @app.route("/login", methods=["GET", "POST"])
    def login() -> Any:
        if request.method == "POST":
            name = request.form.get("username", "")
            expected = PASSWORDS.get(name)
            if expected and secrets.compare_digest(expected, request.form.get("password", "")):
                login_user(User(name))
                return redirect("/embed")
        return render(
            "Log in",
            "<form method=post action=/login><label>User <input name=username></label> "
            "<label>Password <input name=password type=password></label> <button>Log in</button>"
            "</form><p>Users: alice / demo, bob / demo</p>",
        )

    @app.get("/embed")
    @login_required  # type: ignore[untyped-decorator]
    def embed() -> str:
        return render(
            "Qlik in an iframe",
            "<iframe id=qlik-frame src='/{{ prefix }}/single/?appid={{ app_id }}&obj={{ obj }}"
            "&opt=ctxmenu'></iframe>",
            prefix=PREFIX,
            app_id=APP_ID,
            obj=OBJECT_ID,
        )

    @app.get("/mashup")
    @login_required  # type: ignore[untyped-decorator]
    def mashup() -> str:
        return render(
            "Mashup on the engine WebSocket",
            "<div id=mashup data-state=connecting data-prefix='{{ prefix }}' "
            "data-app-id='{{ app_id }}' data-object-id='{{ obj }}'><p id=mashup-user></p>"
            "<table id=mashup-table></table><p id=mashup-error></p></div>"
            "<script src=/static/qlik-mashup.js></script>",
            prefix=PREFIX,
            app_id=APP_ID,
            obj=OBJECT_ID,
        )

    @app.post("/logout")
    def logout() -> Any:
        logout_from_qlik()  # first: it reads the user from the session
        logout_user()
        return redirect("/login")

    return app


def create_app() -> QlikSSOMiddleware:
    if not QLIK_URL:
        raise SystemExit("set QLIK_URL to the Qlik proxy, e.g. QLIK_URL=http://127.0.0.1:8080")
    return serve_flask(
        create_flask_app(),
        target=QlikTarget(QLIK_URL, prefix=PREFIX, auth=HeaderAuth(HEADER)),
        user_directory="ACME",
        login_url="/login",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    args = parser.parse_args()
    uvicorn.run(
        create_app(),
        host=args.host,
        port=args.port,
        ws="websockets-sansio",
        ws_max_size=256 * 1024 * 1024,  # Qlik layouts can be many MiB
    )


if __name__ == "__main__":
    main()
