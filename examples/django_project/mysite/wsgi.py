"""WSGI entry point: Qlik over HTTP only (iframes of static pages fail without the engine
WebSocket, which WSGI cannot carry; upgrade requests get a 501 page saying so). Prefer asgi.py."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")

from qlik_sso_middleware.integrations.django import get_wsgi_application

application = get_wsgi_application()
