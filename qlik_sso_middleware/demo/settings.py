"""The demo's fixed settings, printed at start-up so tests and people can rely on them."""

from __future__ import annotations

from ..testing import DEMO_APPS

__all__ = [
    "DEMO_APP_ID",
    "DEMO_DIRECTORY",
    "DEMO_EMBED_OBJECT",
    "DEMO_FRAME_OBJECT",
    "DEMO_HEADER",
    "DEMO_MASHUP_OBJECT",
    "DEMO_PASSWORD",
    "DEMO_PORT",
    "DEMO_PREFIX",
    "DEMO_USERS",
]

DEMO_PREFIX = "sso"
DEMO_HEADER = "hdr-usr"
DEMO_DIRECTORY = "ACME"
DEMO_USERS = ("alice", "bob")
#: Public on purpose: it is printed on the login page. The demo is loopback-only.
DEMO_PASSWORD = "demo"
DEMO_PORT = 8000
DEMO_APP_ID = DEMO_APPS[0].id
#: The object shown in the `single/` iframe and the one the mashup panel renders.
DEMO_FRAME_OBJECT = DEMO_APPS[0].objects[1].id
DEMO_MASHUP_OBJECT = DEMO_APPS[0].objects[0].id
#: The object the qlik-embed card shows (`ui="analytics/chart"`).
DEMO_EMBED_OBJECT = DEMO_APPS[0].objects[1].id
