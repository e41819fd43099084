"""Settings of the Django example: a stock project plus `QLIK_SSO`."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = os.environ.get("APP_SECRET", secrets.token_hex(32))
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
ROOT_URLCONF = "mysite.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "mysite" / "templates"],
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
            ]
        },
    }
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DJANGO_DB", str(BASE_DIR / "db.sqlite3")),
    }
}
# Any engine works with the Qlik resolver: db (default), cache, cached_db, signed_cookies, file.
SESSION_ENGINE = os.environ.get("DJANGO_SESSION_ENGINE", "django.contrib.sessions.backends.db")
SESSION_COOKIE_SAMESITE = "Lax"
LOGIN_URL = "/login"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

QLIK_SSO = {
    "URL": os.environ.get("QLIK_URL", ""),
    "PREFIX": os.environ.get("QLIK_PREFIX", "sso"),
    "HEADER_NAME": os.environ.get("QLIK_HEADER", "hdr-usr"),
    "USER_DIRECTORY": "ACME",  # Qlik sees ACME\<username>
}
QLIK_APP_ID = os.environ.get("QLIK_APP_ID", "4f1c2d3e-5a6b-4c7d-8e9f-0a1b2c3d4e5f")
QLIK_OBJECT_ID = os.environ.get("QLIK_OBJECT_ID", "sales-table")
