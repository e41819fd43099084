"""The middleware as a bare install runs it: `<bare venv>/bin/python tests/bare/app.py --port N`.

Imports nothing but the middleware, what `pip install qlik-sso-middleware` pulled, and the ASGI
server the user brings (plain uvicorn, installed after the bare package list was taken). Qlik is
`QLIK_URL`; the app user is the `app_user` cookie. `/engine` tells which HTTP engine serves Qlik
and whether pyreqwest was imported at all.
"""

from __future__ import annotations

import argparse
import os
import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from qlik_sso_middleware import HeaderAuth, QlikIdentity, QlikSSO, QlikSSOMiddleware, QlikTarget


def user(conn: HTTPConnection) -> QlikIdentity | None:
    name = conn.cookies.get("app_user")
    return QlikIdentity("ACME", name) if name else None


sso = QlikSSO(
    QlikTarget(os.environ["QLIK_URL"], prefix="sso", auth=HeaderAuth("hdr-usr")), resolver=user
)


async def engine(request: Request) -> JSONResponse:
    upstream = sso.upstreams[0]
    return JSONResponse(
        {
            "engine": upstream.target.resolved_http_engine,
            "pyreqwest_imported": "pyreqwest" in sys.modules,
        }
    )


app = QlikSSOMiddleware(Starlette(routes=[Route("/engine", engine)]), sso=sso)

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    uvicorn.run(app, host="127.0.0.1", port=parser.parse_args().port, log_level="warning")
