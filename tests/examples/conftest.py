"""`asgi_server`: the examples run under each server a user may deploy them on (one process each).

daphne cannot call an app factory, so it serves the Django project only (its natural home);
tests/examples/test_django_project.py lists it there.
"""

from __future__ import annotations

import pytest


@pytest.fixture(params=["uvicorn", "hypercorn", "granian"])
def asgi_server(request: pytest.FixtureRequest) -> str:
    return str(request.param)
