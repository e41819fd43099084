"""Importing the package (and the framework-free adapters) never imports Django, Flask or a2wsgi."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, sys
import qlik_sso_middleware, qlik_sso_middleware.integrations
import qlik_sso_middleware.integrations.starlette
print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & {'django', 'flask', 'a2wsgi', 'flask_login'})))
"""


def test_core_and_starlette_adapter_import_no_optional_framework() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(out.stdout) == []


def test_django_adapter_does_not_need_a2wsgi_for_asgi() -> None:
    probe = PROBE.replace(
        "import qlik_sso_middleware.integrations.starlette",
        "import django; from django.conf import settings; settings.configure(); "
        "import qlik_sso_middleware.integrations.django",
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(out.stdout) == ["django"]
