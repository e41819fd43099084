"""The project's ASGI application with Qlik behind it (`uvicorn mysite.asgi:application`)."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")

from qlik_sso_middleware.integrations.django import get_asgi_application

application = get_asgi_application()
