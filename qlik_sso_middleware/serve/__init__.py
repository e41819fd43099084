"""The standalone proxy (`qlik-sso serve`) for apps that cannot host the ASGI middleware.

- `app`: `ServeApp`, the middleware in front of `AppProxy`, with its own endpoints (health,
  hand-off, logout, metrics);
- `app_proxy` / `app_websocket`: relay everything that is not Qlik's to the app (HTTP, WebSockets);
- `handoff`: the signed, single-use token an app issues to hand its user over (importable by the
  app without any server: it needs only itsdangerous);
- `runner`: `qlik-sso serve` itself (uvicorn).

Nothing is imported here, so `from qlik_sso_middleware.serve.handoff import Handoff` stays light.
"""
