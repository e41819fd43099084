"""The Django project of the gunicorn test: the integration tests' settings and app, a database the
test shares (`QLIK_SSO_TEST_DB`), Qlik at `QLIK_SSO_TEST_QLIK`, offload mode on. Also the WSGI
entry point gunicorn loads (`application`)."""

from __future__ import annotations

import os

from tests.integrations.django_settings import *  # noqa: F403

from .front import SECRET

DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["QLIK_SSO_TEST_DB"]}
}
QLIK_SSO = {
    "URL": os.environ["QLIK_SSO_TEST_QLIK"],
    "PREFIX": "sso",
    "USER_DIRECTORY": "ACME",
    "FRONT_PROXY_SECRET": SECRET,
}


def application_factory() -> object:
    """The WSGI application (gunicorn: `tests.offload.gunicorn_project:application_factory()`)."""
    from qlik_sso_middleware.integrations.django import get_wsgi_application

    return get_wsgi_application()
