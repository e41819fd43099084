"""`qlik-sso demo`: the simulator, a small demo app with a login form and the middleware, on loopback.

Its settings are fixed so anyone can script against it (see `settings.py`); `app.py` builds the
Starlette app, `pages.py` its HTML, `runner.py` runs everything in one event loop.
"""

from __future__ import annotations

from .app import build_demo_app
from .runner import run_demo
from .settings import DEMO_DIRECTORY, DEMO_HEADER, DEMO_PASSWORD, DEMO_PREFIX, DEMO_USERS

__all__ = [
    "DEMO_DIRECTORY",
    "DEMO_HEADER",
    "DEMO_PASSWORD",
    "DEMO_PREFIX",
    "DEMO_USERS",
    "build_demo_app",
    "run_demo",
]
