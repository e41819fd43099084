"""Flask: the logged-in user from Flask's own signed session cookie, served behind the ASGI core.

    from qlik_sso_middleware.integrations.flask import serve_flask, logout_from_qlik
    asgi_app = serve_flask(app, target=QlikTarget(os.environ["QLIK_URL"]), user_directory="ACME")
    # run: uvicorn module:asgi_app  (WebSockets included; the Flask app runs in a2wsgi's threads)

    @app.post("/logout")
    def logout():
        logout_from_qlik()          # before logout_user()/session.clear(): it reads the user
        logout_user()

`FlaskSessionResolver` asks the app for its own session serializer
(`app.session_interface.get_signing_serializer(app)`), so the secret key, `SECRET_KEY_FALLBACKS`,
salt and lifetime are exactly Flask's: a tampered, foreign or expired cookie is nobody. With
Flask-Login the user id under `_user_id` goes through the app's `user_loader`; without it the value
under `session_key` is the user name itself. Not supported: Flask-Login's "remember me" cookie
(a request carrying only that cookie is nobody here until Flask has restored the session),
Flask-Login's session protection (its `_id` fingerprint is not re-checked here), and server-side
session interfaces without a signing serializer (pass your own resolver instead).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from a2wsgi import WSGIMiddleware
from flask import Flask, current_app, session
from itsdangerous import BadSignature
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection
from werkzeug.http import parse_cookie

from ..core import QlikSSO
from ..errors import ConfigurationError
from ..identity import QlikIdentity
from ..middleware import QlikSSOMiddleware
from ..resolvers.base import Resolution, ResolverLike
from ._bridge import CoroutineChannels, LoopRecorder, run_in_sso_loop

__all__ = ["FlaskSessionResolver", "logout_from_qlik", "serve_flask"]

_EXTENSION = "qlik_sso"
_RESOLVER = "qlik_sso_resolver"


class FlaskSessionResolver:
    """Reads the user from `app`'s signed session cookie (see the module docstring).

    - `user_directory`: the Qlik user directory of every user (needed unless `to_identity`).
    - `to_identity(user)`: maps the loaded user to a `QlikIdentity` (or `None` to refuse);
      the default uses `user.username`, else `user.get_id()`, else the user if it is a string.
    - `session_key`: where the session keeps the user (Flask-Login: `_user_id`).
    - `load_user(user_id)`: turns that value into a user; default: Flask-Login's `user_loader`
      when the app has a `LoginManager`, else the value itself (a user name).

    Users with `is_active == False` are nobody. Loading runs in a worker thread inside an app
    context, so a loader may query a database.
    """

    def __init__(
        self,
        app: Flask,
        user_directory: str | None = None,
        *,
        to_identity: Callable[[Any], QlikIdentity | None] | None = None,
        session_key: str = "_user_id",
        load_user: Callable[[str], Any] | None = None,
    ) -> None:
        if to_identity is None and not user_directory:
            raise ConfigurationError(
                "give a user_directory or a to_identity function", field="user_directory"
            )
        if not hasattr(app.session_interface, "get_signing_serializer"):
            raise ConfigurationError(
                f"{type(app.session_interface).__name__} has no signing serializer; pass a "
                "resolver of your own for server-side sessions",
                field="session_interface",
            )
        self.app = app
        self._directory = user_directory
        self._to_identity = to_identity
        self._session_key = session_key
        self._load_user = load_user

    async def resolve(self, conn: HTTPConnection) -> Resolution:
        name = self.app.config["SESSION_COOKIE_NAME"]
        # Werkzeug's parser, first value wins: the same user the Flask app itself sees.
        cookie = parse_cookie("; ".join(conn.headers.getlist("cookie"))).get(name)
        if not cookie:
            return None
        return await run_in_threadpool(self.identity_from_cookie, cookie)

    def identity_from_cookie(self, cookie: str) -> QlikIdentity | None:
        """Sync: the identity for a raw session cookie value, `None` if invalid or nobody."""
        serializer = self.app.session_interface.get_signing_serializer(self.app)  # type: ignore[attr-defined]
        if serializer is None:  # no SECRET_KEY: Flask itself has no sessions then
            return None
        max_age = int(self.app.permanent_session_lifetime.total_seconds())
        try:
            data = serializer.loads(cookie, max_age=max_age)
        except BadSignature:  # includes SignatureExpired and malformed payloads
            return None
        if not isinstance(data, dict):
            return None
        return self.identity_from_session(data)

    def identity_from_session(self, data: dict[str, Any]) -> QlikIdentity | None:
        """Sync: the identity for an already decoded session (e.g. `flask.session` in a view)."""
        user_id = data.get(self._session_key)
        if not isinstance(user_id, str) or not user_id:
            return None
        with self.app.app_context():
            user = self._loader()(user_id)
            if user is None or getattr(user, "is_active", True) is False:
                return None
            if self._to_identity is not None:
                return self._to_identity(user)
            return self._default_identity(user)

    def _loader(self) -> Callable[[str], Any]:
        if self._load_user is not None:
            return self._load_user
        manager = getattr(self.app, "login_manager", None)
        callback = getattr(manager, "_user_callback", None)
        if callable(callback):
            return callback  # type: ignore[no-any-return]
        return lambda user_id: user_id

    def _default_identity(self, user: Any) -> QlikIdentity | None:
        name = user if isinstance(user, str) else getattr(user, "username", None)
        if name is None and callable(getattr(user, "get_id", None)):
            name = user.get_id()
        if not isinstance(name, str):
            return None
        assert self._directory is not None
        return QlikIdentity(self._directory, name)  # InvalidIdentity → 403 for a bad name


def serve_flask(
    app: Flask,
    *,
    user_directory: str | None = None,
    resolver: ResolverLike | None = None,
    **options: Any,
) -> QlikSSOMiddleware:
    """The Flask `app` behind `QlikSSOMiddleware` as one ASGI app (run it with uvicorn).

    `resolver` defaults to `FlaskSessionResolver(app, user_directory)`; other options are those of
    `QlikSSO` (`target`/`targets`, `login_url`, `store`, ...). Requests outside the mount run the
    Flask app in a2wsgi's thread pool; the Qlik paths, WebSockets included, run on the event loop.
    The core is reachable from views as `current_app.extensions["qlik_sso"]`.
    """
    if resolver is None:
        resolver = FlaskSessionResolver(app, user_directory)
    elif user_directory is not None:
        raise ConfigurationError("give resolver or user_directory, not both", field="resolver")
    inner = LoopRecorder(CoroutineChannels(WSGIMiddleware(app)))  # type: ignore[arg-type]
    middleware = QlikSSOMiddleware(inner, resolver=resolver, **options)
    app.extensions[_EXTENSION] = middleware.sso
    app.extensions[_RESOLVER] = resolver
    return middleware


def logout_from_qlik(
    identity: QlikIdentity | None = None, *, target: str | None = None, timeout: float = 30.0
) -> int:
    """From a Flask view: end the Qlik session(s) of `identity` (default: the current user).

    Call it before clearing the session (`logout_user()`), since the default reads the user from
    it. Returns how many cached sessions were dropped; Qlik failures propagate as `QlikError`.
    Needs the app served by `serve_flask`.
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    sso = app.extensions.get(_EXTENSION)
    if not isinstance(sso, QlikSSO):
        raise ConfigurationError("serve the app with serve_flask()", field="app")
    if identity is None:
        resolver = app.extensions.get(_RESOLVER)
        if not isinstance(resolver, FlaskSessionResolver):
            raise ConfigurationError(
                "pass the identity: the app's resolver is not a FlaskSessionResolver",
                field="identity",
            )
        identity = resolver.identity_from_session(dict(session))
        if identity is None:
            return 0
    chosen = identity
    return run_in_sso_loop(sso, lambda: sso.logout(chosen, target=target), timeout=timeout)
