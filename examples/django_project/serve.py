"""Run the Django example in one command: migrate, create the demo users, serve over ASGI.

    qlik-sso simulate --port 8080
    QLIK_URL=http://127.0.0.1:8080 python examples/django_project/serve.py --port 8000
    # open http://127.0.0.1:8000 and log in as alice / demo

Equivalent by hand: `python manage.py migrate`, create users, then
`uvicorn mysite.asgi:application --ws websockets-sansio` from this directory. `--server daphne`
(or hypercorn, granian) serves it with that server instead; see README, "ASGI servers", for the
WebSocket message size each one accepts by default.
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


def _command(server: str, host: str, port: int) -> list[str]:
    app = "mysite.asgi:application"
    if server == "daphne":
        return ["daphne", "-b", host, "-p", str(port), app]
    if server == "hypercorn":
        return ["hypercorn", app, "--bind", f"{host}:{port}"]
    return ["granian", "--interface", "asgi", "--host", host, "--port", str(port), app]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument(
        "--server", choices=("uvicorn", "daphne", "hypercorn", "granian"), default="uvicorn"
    )
    args = parser.parse_args()
    if not os.environ.get("QLIK_URL"):
        raise SystemExit("set QLIK_URL to the Qlik proxy, e.g. QLIK_URL=http://127.0.0.1:8080")
    sys.path.insert(0, str(HERE))
    # This script serves this project, whatever an inherited environment says.
    os.environ["DJANGO_SETTINGS_MODULE"] = "mysite.settings"
    prepare()
    if args.server != "uvicorn":
        os.chdir(HERE)
        os.execv(
            sys.executable, [sys.executable, "-m", *_command(args.server, args.host, args.port)]
        )
    uvicorn.run(
        "mysite.asgi:application",
        host=args.host,
        port=args.port,
        ws="websockets-sansio",
        ws_max_size=256 * 1024 * 1024,  # Qlik layouts can be many MiB
    )


if __name__ == "__main__":
    main()
