"""The proxy test app (tests/apps.py) as an importable ASGI application, for servers started as
processes (`hypercorn tests.matrix.app_host:application`, ...).

The app is described by the JSON in `QLIK_SSO_MATRIX_SPEC`: `{"url": <Qlik proxy URL>, "target":
{<QlikTarget options>}}`; `target.timeouts` may be a dict of `Timeouts` fields.
"""

from __future__ import annotations

import json
import os
from types import SimpleNamespace
from typing import Any

from qlik_sso_middleware import QlikSSOMiddleware, Timeouts

from ..apps import build_app

SPEC_ENV = "QLIK_SSO_MATRIX_SPEC"


def build(spec: dict[str, Any]) -> QlikSSOMiddleware:
    target = dict(spec.get("target", {}))
    if "timeouts" in target:
        target["timeouts"] = Timeouts(**target["timeouts"])
    app, _ = build_app(SimpleNamespace(proxy_url=spec["url"]), target=target)  # type: ignore[arg-type]
    return app


application = build(json.loads(os.environ[SPEC_ENV])) if SPEC_ENV in os.environ else None
