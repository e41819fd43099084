"""Run `qlik-sso demo --cloud`: a simulated Qlik Cloud tenant + the demo app + the middleware.

The tenant is set up the way an administrator would (docs/qlik-cloud.md): a JWT identity provider
holding the certificate of a key generated now, an OAuth client allowed to impersonate users, an
admin client for provisioning (users are created on first sight), and a web integration listing
the demo's origin. Everything runs in one event loop, on loopback, until SIGINT/SIGTERM.
"""

from __future__ import annotations

import asyncio
import secrets
import signal
from typing import TextIO

from ..cloud import CloudTarget, JwtSigningSettings, OAuthClientSettings
from ..testing.cloud import (
    CloudSimulator,
    JwtIdentityProvider,
    OAuthClient,
    WebIntegration,
    new_signing_key,
)
from .cloud import DEMO_CLOUD_MOUNT, build_cloud_demo_app
from .runner import _bind, serve_demo
from .settings import DEMO_APP_ID, DEMO_DIRECTORY, DEMO_PASSWORD, DEMO_USERS

__all__ = ["run_cloud_demo"]

_ISSUER = "https://qlik-sso-demo.invalid"
_KEY_ID = "qlik-sso-demo"
_CLIENT = "demo-embed-client"
_ADMIN = "demo-admin-client"
_INTEGRATION = "demo-web-integration"


async def run_cloud_demo(port: int, *, out: TextIO, host: str = "127.0.0.1") -> int:
    """Serve the Cloud demo on `host:port` (0 = any free port) until SIGINT/SIGTERM; return 0."""
    sock = _bind(host, port)
    port = sock.getsockname()[1]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print("Starting the Qlik Cloud simulator (generating keys and certificates)…", file=out)
    key = new_signing_key()
    secret, admin_secret = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    tenant = CloudSimulator(
        identity_providers=[JwtIdentityProvider(_ISSUER, _KEY_ID, key.certificate_pem)],
        oauth_clients=[
            OAuthClient(_CLIENT, secret),
            OAuthClient(_ADMIN, admin_secret, ("client_credentials",), ("admin_classic",)),
        ],
        web_integrations=[
            WebIntegration(_INTEGRATION, (f"http://{host}:{port}", f"http://localhost:{port}"))
        ],
    )
    try:
        await tenant.start()
        target = CloudTarget(
            tenant.tenant_url,
            oauth=OAuthClientSettings(_CLIENT, secret),
            admin_oauth=OAuthClientSettings(_ADMIN, admin_secret, ("admin_classic",)),
            provision_users=True,
            jwt=JwtSigningSettings(key.private_pem, key_id=_KEY_ID, issuer=_ISSUER),
            web_integration_id=_INTEGRATION,
            verify=tenant.ca_file,
            mount_path=DEMO_CLOUD_MOUNT,
        )
        app = build_cloud_demo_app(target, secret_key=secrets.token_urlsafe(32))
        await serve_demo(app, sock, stop, out, lambda: _print_banner(out, host, port, tenant))
    finally:
        await tenant.stop()
        sock.close()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return 0


def _print_banner(out: TextIO, host: str, port: int, tenant: CloudSimulator) -> None:
    users = ", ".join(f"{u} / {DEMO_PASSWORD}" for u in DEMO_USERS)
    lines = [
        "",
        "qlik-sso demo --cloud: simulated Qlik Cloud tenant + demo app + middleware, loopback only.",
        "Fixed settings:",
        f"  users                  {users}  (tenant subject {DEMO_DIRECTORY}\\<user>, "
        "created on first sight)",
        f"  token broker           POST {DEMO_CLOUD_MOUNT}access-token  (same-origin only)",
        f"  cookie proxy           {DEMO_CLOUD_MOUNT}single/, {DEMO_CLOUD_MOUNT}api/v1/…, "
        f"{DEMO_CLOUD_MOUNT}app/<id> (WebSocket)",
        f"  demo Qlik app id       {DEMO_APP_ID}",
        "Qlik Cloud simulator:",
        f"  tenant                 {tenant.tenant_url}",
        f"  tenant CA              {tenant.ca_file}",
        f"  OAuth client           {_CLIENT} (user impersonation), admin client {_ADMIN}",
        f"  JWT identity provider  issuer {_ISSUER}, key id {_KEY_ID}",
        f"  web integration        {_INTEGRATION}",
        "",
        "Stop with Ctrl-C.",
        f"Open: http://{host}:{port}/",
        "",
    ]
    print("\n".join(lines), file=out, flush=True)
