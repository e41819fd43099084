"""examples/django_project, started as its README says, driven through a login and Qlik."""

from __future__ import annotations

from pathlib import Path

import pytest

from qlik_sso_middleware.testing import QlikSimulator

from .driver import assert_embed_snippets, assert_visit, running, visit

DB = "django.contrib.sessions.backends.db"
SIGNED = "django.contrib.sessions.backends.signed_cookies"


@pytest.mark.parametrize(
    ("engine", "asgi_server"),
    [
        (DB, "uvicorn"),
        (SIGNED, "uvicorn"),
        (DB, "daphne"),  # Django's own ASGI server
        (DB, "hypercorn"),
        (DB, "granian"),
    ],
    ids=["db", "signed_cookies", "daphne", "hypercorn", "granian"],
)
async def test_django_example_end_to_end(
    simulator: QlikSimulator, tmp_path: Path, engine: str, asgi_server: str
) -> None:
    env = {
        "QLIK_URL": simulator.proxy_url,
        "DJANGO_DB": str(tmp_path / "db.sqlite3"),
        "DJANGO_SESSION_ENGINE": engine,
    }
    async with running(["examples/django_project/serve.py"], env, server=asgi_server) as url:
        result = await visit(url)
        await assert_embed_snippets(url, result.embed_html)
    assert_visit(result, simulator)
