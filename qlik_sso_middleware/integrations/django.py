"""Django: the logged-in user from Django's own session, the project served behind the ASGI core.

    # asgi.py
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
    from qlik_sso_middleware.integrations.django import get_asgi_application
    application = get_asgi_application()         # run: uvicorn mysite.asgi:application

    # settings.py
    QLIK_SSO = {"URL": "https://qlik.acme.com", "PREFIX": "sso", "USER_DIRECTORY": "ACME"}

`DjangoSessionResolver` reads the session cookie (`SESSION_COOKIE_NAME`) and loads the session
through `SESSION_ENGINE` (database, cache, cached_db, signed cookies, or your own), then finds the
user the way `django.contrib.auth.get_user` does: the backend recorded in the session must still be
in `AUTHENTICATION_BACKENDS`, and the session's auth hash must match the user's current password
hash (or a `SECRET_KEY_FALLBACKS` one), so changing a password ends Qlik access too. Unlike
`get_user` it never writes to the session (a proxied request cannot hand a new session key to
the browser). Inactive (`is_active == False`) and deleted users are nobody. All of it runs in a
worker thread; database connections are handled as Django does around a request.

Logout: `get_asgi_application()` connects a `user_logged_out` receiver that ends the user's Qlik
sessions. The signal is sync and the core lives on the server's event loop, so the receiver
submits the logout to that loop and waits (it runs in Django's worker thread, never on the loop).
A Qlik failure there is logged, not raised: the user's logout of the app must still succeed.

WSGI: `get_wsgi_application()` serves Qlik's HTTP paths only. Qlik pages and mashups need the
engine WebSocket, which WSGI cannot carry (upgrades get a 501 page saying so): serve the same
project with an ASGI server (`uvicorn mysite.asgi:application`), or put nginx or Caddy in front in
offload mode (`FRONT_PROXY_SECRET`): the front proxy carries the WebSocket, the WSGI app answers
its auth sub-requests.

`QLIK_SSO` keys: `URL`, `PREFIX` (default "sso"), `HEADER_NAME` (default "hdr-usr"), `AUTH` (an
`AuthStrategy`, instead of header auth), `TARGET_OPTIONS` (more `QlikTarget` options), `TARGETS`
(ready `QlikTarget`s instead of `URL`...), `USER_DIRECTORY`, `TO_IDENTITY` (callable or dotted
path, `user -> QlikIdentity | None`), `RESOLVER` (replaces the session resolver, e.g. a
`TenantResolver` around one), `LOGIN_URL` (default `settings.LOGIN_URL`; `None` for 401),
`ALLOWED_ORIGINS`, `TRUSTED_PROXIES`, `FORWARD_COOKIES`, `STORE`, `ALLOW_MISSING_ORIGIN`,
`LOGOUT_ON_SIGNAL` (default True), `FRONT_PROXY_SECRET` (offload mode: nginx or Caddy carries Qlik's
traffic, including the engine WebSocket under WSGI; see README "Deploying behind nginx or Caddy").

Longer than most modules on purpose: the resolver, the `QLIK_SSO` settings reader and the ASGI
entry point read the same Django settings and are one adapter (authlib's layout: one module per
framework).
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable, Mapping
from importlib import import_module
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import (
    BACKEND_SESSION_KEY,
    HASH_SESSION_KEY,
    SESSION_KEY,
    get_user_model,
    load_backend,
)
from django.contrib.auth.signals import user_logged_out
from django.core.exceptions import ValidationError
from django.db import close_old_connections
from django.http.cookie import parse_cookie
from django.shortcuts import resolve_url
from django.utils.crypto import constant_time_compare
from django.utils.module_loading import import_string
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from ..auth.header import HeaderAuth
from ..core import QlikSSO
from ..errors import ConfigurationError, InvalidIdentity, QlikSSOError
from ..identity import QlikIdentity
from ..middleware import QlikSSOMiddleware
from ..offload.front import FrontProxy
from ..resolvers.base import Resolution, ResolverLike
from ..target import QlikTarget
from ._bridge import LoopRecorder, run_in_sso_loop

if TYPE_CHECKING:
    from .wsgi import QlikWSGIMiddleware

__all__ = [
    "DjangoSessionResolver",
    "connect_logout_signal",
    "default_to_identity",
    "get_asgi_application",
    "get_wsgi_application",
    "sso_from_settings",
    "user_for_session_key",
]

logger = logging.getLogger("qlik_sso_middleware.integrations.django")

ToIdentity = Callable[[Any], QlikIdentity | None]

_KEYS = frozenset(
    {
        "URL",
        "PREFIX",
        "HEADER_NAME",
        "AUTH",
        "TARGET_OPTIONS",
        "TARGETS",
        "USER_DIRECTORY",
        "TO_IDENTITY",
        "RESOLVER",
        "LOGIN_URL",
        "ALLOWED_ORIGINS",
        "TRUSTED_PROXIES",
        "FORWARD_COOKIES",
        "STORE",
        "ALLOW_MISSING_ORIGIN",
        "LOGOUT_ON_SIGNAL",
        "FRONT_PROXY_SECRET",
    }
)


def default_to_identity(user_directory: str) -> ToIdentity:
    """`user -> QlikIdentity(user_directory, user.get_username())`."""

    def to_identity(user: Any) -> QlikIdentity | None:
        return QlikIdentity(user_directory, user.get_username())

    return to_identity


class DjangoSessionResolver:
    """The user of Django's session cookie, as a Qlik identity (see the module docstring).

    `to_identity(user)` maps a user to an identity (return `None` to refuse a user); the default
    is `user_directory` + `get_username()`. A name that cannot be a Qlik identity raises
    `InvalidIdentity`, which the middleware answers with 403.
    """

    def __init__(
        self, user_directory: str | None = None, *, to_identity: ToIdentity | None = None
    ) -> None:
        if to_identity is None:
            if not user_directory:
                raise ConfigurationError(
                    "give a user_directory or a to_identity function", field="USER_DIRECTORY"
                )
            to_identity = default_to_identity(user_directory)
        self.to_identity = to_identity

    async def resolve(self, conn: HTTPConnection) -> Resolution:
        # Django's own cookie parser (the last duplicate wins there), so we see the user Django sees.
        cookies = parse_cookie("; ".join(conn.headers.getlist("cookie")))
        session_key = cookies.get(settings.SESSION_COOKIE_NAME)
        if not session_key:
            return None
        return await sync_to_async(self._identity_in_thread, thread_sensitive=False)(session_key)

    def _identity_in_thread(self, session_key: str) -> QlikIdentity | None:
        close_old_connections()
        try:
            user = user_for_session_key(session_key)
            return self.to_identity(user) if user is not None else None
        finally:
            close_old_connections()


def user_for_session_key(session_key: str) -> Any | None:
    """Sync: the active user of a session key, or `None`. Read-only `get_user` (module docstring)."""
    engine = import_module(settings.SESSION_ENGINE)
    session = engine.SessionStore(session_key)
    try:
        raw_id = session[SESSION_KEY]
        backend_path = session[BACKEND_SESSION_KEY]
    except KeyError:  # no such, expired or tampered session: the engines all load as empty
        return None
    if backend_path not in settings.AUTHENTICATION_BACKENDS:
        return None
    try:
        user_id = get_user_model()._meta.pk.to_python(raw_id)
    except ValidationError:
        return None
    user = load_backend(backend_path).get_user(user_id)
    if user is None or getattr(user, "is_active", True) is False:
        return None
    if hasattr(user, "get_session_auth_hash"):
        stored = session.get(HASH_SESSION_KEY)
        if not stored:
            return None
        hashes = [user.get_session_auth_hash(), *_fallback_hashes(user)]
        if not any(constant_time_compare(stored, h) for h in hashes):
            return None  # the password changed since this session logged in
    return user


def _fallback_hashes(user: Any) -> list[str]:
    fallback = getattr(user, "get_session_auth_fallback_hash", None)
    return list(fallback()) if callable(fallback) else []


def _options() -> dict[str, Any]:
    raw = getattr(settings, "QLIK_SSO", None)
    if not isinstance(raw, Mapping):
        raise ConfigurationError("settings.QLIK_SSO must be a dict", field="QLIK_SSO")
    for key in raw:
        if key not in _KEYS:
            close = difflib.get_close_matches(str(key), sorted(_KEYS), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigurationError(f"unknown key {key!r}{hint}", field="QLIK_SSO")
    return dict(raw)


def _to_identity(options: Mapping[str, Any]) -> ToIdentity | None:
    value = options.get("TO_IDENTITY")
    if isinstance(value, str):
        value = import_string(value)
    if value is not None and not callable(value):
        raise ConfigurationError(
            "must be a callable or a dotted path", field="QLIK_SSO.TO_IDENTITY"
        )
    return value


def _targets(options: Mapping[str, Any]) -> list[QlikTarget]:
    if "TARGETS" in options:
        if "URL" in options:
            raise ConfigurationError("give URL or TARGETS, not both", field="QLIK_SSO.TARGETS")
        return list(options["TARGETS"])
    if "URL" not in options:
        raise ConfigurationError("the Qlik proxy URL is required", field="QLIK_SSO.URL")
    auth = options.get("AUTH") or HeaderAuth(options.get("HEADER_NAME", "hdr-usr"))
    extra = dict(options.get("TARGET_OPTIONS", {}))
    return [QlikTarget(options["URL"], prefix=options.get("PREFIX", "sso"), auth=auth, **extra)]


def sso_from_settings() -> QlikSSO:
    """Build the `QlikSSO` described by `settings.QLIK_SSO` (validated here, at start-up)."""
    options = _options()
    resolver: ResolverLike = options.get("RESOLVER") or DjangoSessionResolver(
        options.get("USER_DIRECTORY"), to_identity=_to_identity(options)
    )
    login_url = options.get("LOGIN_URL", getattr(settings, "LOGIN_URL", None))
    return QlikSSO(
        _targets(options),
        resolver=resolver,
        store=options.get("STORE"),
        allowed_origins=options.get("ALLOWED_ORIGINS", ()),
        trusted_proxies=options.get("TRUSTED_PROXIES", ()),
        forward_cookies=options.get("FORWARD_COOKIES", ()),
        login_url=str(resolve_url(login_url)) if login_url else None,
        allow_missing_origin=bool(options.get("ALLOW_MISSING_ORIGIN", False)),
    )


def connect_logout_signal(sso: QlikSSO, to_identity: ToIdentity) -> Callable[..., None]:
    """Connect (and return) a `user_logged_out` receiver that ends the user's Qlik sessions.

    The receiver runs in the thread that sent the signal (Django's worker thread under ASGI,
    the server thread under WSGI) and waits for the core's loop to finish the logout.
    """

    def on_user_logged_out(sender: Any, request: Any = None, user: Any = None, **_: Any) -> None:
        if user is None:
            return
        try:
            identity = to_identity(user)
        except InvalidIdentity:
            return  # never had a Qlik session
        if identity is None:
            return
        try:
            run_in_sso_loop(sso, lambda: sso.logout(identity))
        except QlikSSOError as exc:
            # The app's logout must succeed; the cache is already cleared, Qlik's own timeout
            # ends what it still holds.
            logger.warning("Qlik logout of %s after Django logout failed: %s", identity, exc)
        except RuntimeError as exc:
            logger.warning("Qlik logout of %s skipped: %s", identity, exc)

    user_logged_out.connect(
        on_user_logged_out, weak=False, dispatch_uid=f"qlik_sso_logout_{id(sso)}"
    )
    return on_user_logged_out


def _signal_identity(sso: QlikSSO, options: Mapping[str, Any]) -> ToIdentity | None:
    if not options.get("LOGOUT_ON_SIGNAL", True):
        return None
    explicit = _to_identity(options)
    if explicit is not None:
        return explicit
    resolver = sso.resolver
    if isinstance(resolver, DjangoSessionResolver):
        return resolver.to_identity
    if options.get("USER_DIRECTORY"):
        return default_to_identity(options["USER_DIRECTORY"])
    logger.warning("QLIK_SSO: no TO_IDENTITY or USER_DIRECTORY; logout will not reach Qlik")
    return None


def get_asgi_application(*, sso: QlikSSO | None = None) -> QlikSSOMiddleware:
    """Django's ASGI application behind `QlikSSOMiddleware`, with the logout signal connected.

    `sso` defaults to `sso_from_settings()`; the result's `.sso` is the core.
    """
    from django.core.asgi import get_asgi_application as django_asgi

    django_app = django_asgi()  # sets Django up first: settings and apps are ready below
    sso = sso or sso_from_settings()
    to_identity = _signal_identity(sso, _options() if hasattr(settings, "QLIK_SSO") else {})
    if to_identity is not None:
        connect_logout_signal(sso, to_identity)
    return QlikSSOMiddleware(
        LoopRecorder(_with_lifespan(django_app)), sso=sso, front_proxy=_front_proxy()
    )


def _with_lifespan(django_app: Any) -> ASGIApp:
    """Django's handler refuses lifespan scopes; answer them here so the core still learns of
    start-up and shutdown (it opens and closes its Qlik clients then)."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await django_app(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    return app


def get_wsgi_application(*, sso: QlikSSO | None = None) -> QlikWSGIMiddleware:
    """Django's WSGI application with Qlik's HTTP paths proxied (no WebSockets: see above)."""
    from django.core.wsgi import get_wsgi_application as django_wsgi

    from .wsgi import QlikWSGIMiddleware  # needs a2wsgi: only for WSGI deployments

    django_app = django_wsgi()
    sso = sso or sso_from_settings()
    to_identity = _signal_identity(sso, _options() if hasattr(settings, "QLIK_SSO") else {})
    if to_identity is not None:
        connect_logout_signal(sso, to_identity)
    return QlikWSGIMiddleware(django_app, sso=sso, front_proxy=_front_proxy())  # type: ignore[arg-type]


def _front_proxy() -> FrontProxy | None:
    """Offload mode when `QLIK_SSO["FRONT_PROXY_SECRET"]` is set."""
    secret = (_options() if hasattr(settings, "QLIK_SSO") else {}).get("FRONT_PROXY_SECRET")
    if secret is None:
        return None
    try:
        return FrontProxy(str(secret))
    except ConfigurationError as exc:
        raise ConfigurationError(exc.message, field="QLIK_SSO.FRONT_PROXY_SECRET") from None
