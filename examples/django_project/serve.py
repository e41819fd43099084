"""Run the Django example in one command: migrate, create the demo users, serve over ASGI.

    qlik-sso simulate --port 8080
    QLIK_URL=http://127.0.0.1:8080 python examples/django_project/serve.py --port 8000
    # open http://127.0.0.1:8000 and log in as alice / demo

Equivalent by hand: `python manage.py migrate`, create users, then
`uvicorn mysite.asgi:application --ws websockets-sansio` from this directory.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import uvicorn

HERE = Path(__file__).resolve().parent


def prepare() -> None:
    import django
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    users = get_user_model()
    for name in ("alice", "bob"):
        if not users.objects.filter(username=name).exists():
            users.objects.create_user(name, password="demo")  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    args = parser.parse_args()
    if not os.environ.get("QLIK_URL"):
        raise SystemExit("set QLIK_URL to the Qlik proxy, e.g. QLIK_URL=http://127.0.0.1:8080")
    sys.path.insert(0, str(HERE))
    # This script serves this project, whatever an inherited environment says.
    os.environ["DJANGO_SETTINGS_MODULE"] = "mysite.settings"
    prepare()
    uvicorn.run(
        "mysite.asgi:application",
        host=args.host,
        port=args.port,
        ws="websockets-sansio",
        ws_max_size=256 * 1024 * 1024,  # Qlik layouts can be many MiB
    )


if __name__ == "__main__":
    main()
