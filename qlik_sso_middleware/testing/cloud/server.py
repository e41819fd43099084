"""`CloudSimulator`: one simulated Qlik Cloud tenant served over real TLS on loopback.

The tenant's certificate is signed by a generated root (`sim.ca_file`); clients verify it like
any public tenant's. uvicorn runs in the caller's event loop on a pre-bound socket (port 0 unless
given), like `QlikSimulator`.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import uvicorn

from ..certificates import CertificateFiles, generate_certificates
from ..demo_apps import DEMO_APPS, DemoApp
from ..faults import Faults
from ..server import Lifecycle, _bind, serve_on
from .app import CloudApp
from .oauth import TokenEndpoint
from .origins import OriginPolicy
from .ratelimit import RateLimiter
from .state import CloudRequest, CloudState
from .tenant import (
    TIER1,
    TIER2,
    CloudUser,
    JwtIdentityProvider,
    OAuthClient,
    TierLimit,
    WebIntegration,
)

__all__ = ["CloudSimulator"]


class CloudSimulator(Lifecycle):
    """A simulated Qlik Cloud tenant: `async with CloudSimulator(...) as tenant:`.

    - `identity_providers`, `oauth_clients`, `users`, `web_integrations`: the tenant's setup.
    - `tier1`, `tier2`: rate limits per principal (defaults: Qlik's 1,000 and 100 a minute
      over a 5-minute window).
    - `token_lifetime`: access token lifetime in seconds (21,600: the 6 hours between `iat` and
      `exp` in the access token Qlik shows in its changelog); `exchanged_token_lifetime` for
      WebSocket/web-resource tokens [inferred].
    - `max_tokens_per_user`: live tokens a user may hold before 403 (None: no cap).
    - `session_idle_timeout`: cookie sessions end after this much inactivity [inferred].
    - `jwt_leeway`: seconds of clock skew tolerated on iat/nbf/exp (0: exact).
    - `embed_runtime`: a directory served as `/qlik-embed/` (Qlik's embed runtime, which it does
      not redistribute; the test-suite builds a stand-in from the npm packages: 404 without).
    - `clock`: wall-clock seconds (JWT times are Unix times); a `ManualClock(time.time())` in tests.

    Introspection: `requests` (every request and handshake, credentials redacted),
    `tokens_issued(subject)`, `tokens_revoked(subject)`, `token_valid(value)`,
    `rate_limited(...)`, `user(subject)`; `faults` injects latency and forced statuses. Hazard: test infrastructure with test credentials; binds loopback.
    """

    def __init__(
        self,
        *,
        identity_providers: Sequence[JwtIdentityProvider] = (),
        oauth_clients: Sequence[OAuthClient] = (),
        users: Sequence[CloudUser] = (),
        web_integrations: Sequence[WebIntegration] = (),
        tier1: TierLimit = TIER1,
        tier2: TierLimit = TIER2,
        token_lifetime: float = 21600.0,
        exchanged_token_lifetime: float = 300.0,
        max_tokens_per_user: int | None = None,
        session_idle_timeout: float = 1800.0,
        jwt_leeway: float = 0.0,
        clock: Callable[[], float] | None = None,
        apps: Sequence[DemoApp] = DEMO_APPS,
        embed_runtime: str | Path | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        cert_dir: str | Path | None = None,
    ) -> None:
        self.clock: Callable[[], float] = clock or time.time
        self.faults = Faults()
        self.host = host
        self.port = 0
        self._wanted_port = port
        self._cert_dir = Path(cert_dir) if cert_dir is not None else None
        self._temp_dir: str | None = None
        self.certificates: CertificateFiles | None = None
        self._state = CloudState(users, self.clock, session_idle_timeout=session_idle_timeout)
        self._limiter = RateLimiter({1: tier1, 2: tier2}, self.clock)
        clients = {c.client_id: c for c in oauth_clients}
        if len(clients) != len(oauth_clients):
            raise ValueError("oauth_clients: a client id is used twice")
        self._tokens = TokenEndpoint(
            self._state,
            clients,
            lifetime=token_lifetime,
            exchanged_lifetime=exchanged_token_lifetime,
            max_tokens_per_user=max_tokens_per_user,
        )
        self._providers = tuple(identity_providers)
        self._integrations = list(web_integrations)
        self._origins: OriginPolicy | None = None
        self._apps = {app.id: app for app in apps}
        self._jwt_leeway = jwt_leeway
        self._embed_runtime = Path(embed_runtime) if embed_runtime is not None else None
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Generate the TLS certificates, bind the port and wait until it serves."""
        self.certificates = await asyncio.to_thread(self._make_certificates)
        sock = _bind(self.host, self._wanted_port)
        self.port = sock.getsockname()[1]
        self._origins = OriginPolicy(self._integrations, self.tenant_url)
        app = CloudApp(
            self._state,
            providers=self._providers,
            tokens=self._tokens,
            origins=self._origins,
            limiter=self._limiter,
            faults=self.faults,
            apps=self._apps,
            base_url=lambda: self.tenant_url,
            jwt_leeway=self._jwt_leeway,
            embed_runtime=self._embed_runtime,
        )
        ssl_options = {
            "ssl_certfile": str(self.certificates.server),
            "ssl_keyfile": str(self.certificates.server_key),
        }
        self._server, self._task = await serve_on(app, sock, ssl_options)

    def _make_certificates(self) -> CertificateFiles:
        if self._cert_dir is None:
            self._temp_dir = tempfile.mkdtemp(prefix="qlik-cloud-sim-")
        directory = self._cert_dir or Path(str(self._temp_dir))
        return generate_certificates(directory, root_common_name="qlik-cloud-sim-CA")

    async def stop(self) -> None:
        """Stop serving (open WebSockets are closed) and remove generated certificates."""
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            results = await asyncio.gather(self._task, return_exceptions=True)
            if isinstance(results[0], Exception):
                logging.getLogger(__name__).warning("cloud simulator error: %r", results[0])
        self._server, self._task = None, None
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None

    # -- where --------------------------------------------------------------------------------

    @property
    def tenant_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"

    @property
    def ca_file(self) -> str:
        """The root certificate that signed the tenant's TLS certificate (for `verify=`)."""
        if self.certificates is None:
            raise RuntimeError("the simulator is not running")
        return str(self.certificates.root)

    # -- introspection ------------------------------------------------------------------------

    @property
    def requests(self) -> list[CloudRequest]:
        return self._state.requests

    def user(self, subject: str) -> CloudUser | None:
        return self._state.users_by_subject.get(subject)

    @property
    def users(self) -> list[CloudUser]:
        return list(self._state.users_by_subject.values())

    def add_user(self, user: CloudUser) -> CloudUser:
        return self._state.add_user(user)

    def remove_user(self, subject: str) -> CloudUser | None:
        """Delete a user from the tenant (its tokens stop working)."""
        user = self._state.users_by_subject.pop(subject, None)
        if user is not None:
            self._state.tokens = {
                k: t for k, t in self._state.tokens.items() if t.user_id != user.id
            }
        return user

    def end_sessions(self, subject: str | None = None) -> int:
        """Forget the cookie sessions (of `subject`, or everyone's), as the tenant does after its
        inactivity timeout; returns how many ended."""
        user = self._state.users_by_subject.get(subject) if subject is not None else None
        ended = [
            sid
            for sid, session in self._state.sessions.items()
            if subject is None or (user is not None and session.user_id == user.id)
        ]
        for sid in ended:
            del self._state.sessions[sid]
        return len(ended)

    def live_sessions(self, subject: str) -> int:
        """Cookie sessions the tenant holds for `subject`."""
        user = self._state.users_by_subject.get(subject)
        if user is None:
            return 0
        return sum(1 for s in self._state.sessions.values() if s.user_id == user.id)

    def add_web_integration(self, integration: WebIntegration) -> None:
        """Create (or replace) a web integration, also while serving (an app's origin is often
        known only once its server has a port)."""
        self._integrations = [w for w in self._integrations if w.id != integration.id]
        self._integrations.append(integration)
        if self._origins is not None:
            self._origins.integrations[integration.id] = integration

    def tokens_issued(self, subject: str | None = None) -> int:
        """Impersonation access tokens issued (for `subject`, or for everyone)."""
        if subject is None:
            return sum(self._state.issued.values())
        return self._state.issued.get(subject, 0)

    def tokens_revoked(self, subject: str | None = None) -> int:
        """Impersonation access tokens revoked through `POST /oauth/revoke` (for `subject`, or for
        everyone); a revocation of an unknown or another client's token does not count."""
        if subject is None:
            return sum(self._state.revoked.values())
        return self._state.revoked.get(subject, 0)

    def token_valid(self, value: str) -> bool:
        """Whether the tenant would accept the access token `value` now."""
        return self._state.token(value) is not None

    def rate_limited(self, tier: int | None = None, principal: str | None = None) -> int:
        """How many requests were refused with 429 (optionally one tier / principal key)."""
        return sum(
            count
            for (t, p), count in self._limiter.refused.items()
            if (tier is None or t == tier) and (principal is None or p == principal)
        )

    def clear_log(self) -> None:
        self._state.requests.clear()
