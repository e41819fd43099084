"""One thin adapter per framework around the one async core; importing an adapter is opting in.

- `integrations.starlette`: reach the core from Starlette/FastAPI routes, log users out of Qlik.
- `integrations.django`: Django's session + auth as the resolver, `user_logged_out` → Qlik logout,
  `get_asgi_application()` (WebSockets included) and `get_wsgi_application()` (HTTP only).
- `integrations.flask`: Flask's signed session (+ Flask-Login) as the resolver, `serve_flask`,
  `logout_from_qlik`. Extra: `[flask]`.
- `integrations.wsgi`: `QlikWSGIMiddleware` for any WSGI app, HTTP only. Extra: `[wsgi]`.

This package imports no framework itself: `import qlik_sso_middleware` needs only the core.
"""
