"""`CloudUpstream`: the runtime side of a `CloudTarget`, the counterpart of `Upstream`.

Created once at start-up by `QlikSSO`. It owns the tenant's `QlikCloudClient` (sign-ins, the
rate-limit queues) and, for the cookie proxy, the `Route` and `PathPolicy` the proxy core's
forwarders use exactly as they use a Qlik Sense virtual proxy's: the tenant's paths sit at its
root (`/api/v1/...`, `/app/<id>`), the app serves them under `mount_path`, and the tenant sees its
own host name in `Host` (it serves tenants by name), so redirects are rewritten back to the app.

Without JWT settings there is no cookie session to relay with: only the token broker's path is
served under the mount, everything else is refused before any identity is looked up.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence

from ..identity import QlikIdentity
from ..proxy.aiohttp_transport import AiohttpTransport
from ..proxy.guards import PathPolicy
from ..proxy.headers import RequestHeaderPolicy
from ..proxy.route import Network, Route
from ..target import reqwest_installed
from ..upstream import proxy_engine
from .client import QlikCloudClient
from .identity import CloudIdentity
from .target import BROWSER_HEADERS, CloudTarget

__all__ = ["CloudUpstream"]


class CloudUpstream:
    """One Qlik Cloud tenant at run time.

    `header_policy` and `trusted_proxies` are the middleware's, shared by all its targets.
    `client` replaces the `QlikCloudClient` built from the target (tests inject clocks this way).
    """

    def __init__(
        self,
        target: CloudTarget,
        *,
        header_policy: RequestHeaderPolicy | None = None,
        trusted_proxies: Sequence[Network] = (),
        client: QlikCloudClient | None = None,
    ) -> None:
        self.target = target
        self.client = client if client is not None else QlikCloudClient(target)
        mount = target.mount_path
        if target.cookie_proxy:
            allowed = tuple(target.allowed_paths)
            if target.token_broker:
                allowed += (target.token_path,)
            self.paths = PathPolicy.build(mount, target.blocked_paths, allowed)
        else:  # the token broker alone: "" blocks every other path
            self.paths = PathPolicy.build(mount, ("",), (target.token_path,))
        self.host = target.host
        self.port = target.port
        self.ssl_context: ssl.SSLContext | None = None
        if target.tenant_url.startswith("https://"):
            self.ssl_context = target.ssl_context()
        self._header_policy = header_policy or RequestHeaderPolicy.build(BROWSER_HEADERS)
        self._trusted_proxies = tuple(trusted_proxies)
        self.route = self._new_route()

    def _new_route(self) -> Route:
        target = self.target
        self.transport = AiohttpTransport(
            ssl_context=self.ssl_context, max_connections=target.max_connections
        )
        self.engine_name = (
            "reqwest" if target.http_engine != "aiohttp" and reqwest_installed() else "aiohttp"
        )
        engine = proxy_engine(
            self.engine_name,
            transport=self.transport,
            timeouts=target.proxy_timeouts,
            verify=target.verify,
            max_connections=target.max_connections,
        )
        return Route(
            origin=target.tenant_url,
            host=self.host,
            port=self.port,
            base_path="/",
            mount_path=target.mount_path,
            host_header=target.netloc,
            ssl_context=self.ssl_context,
            engine=engine,
            header_policy=self._header_policy,
            trusted_proxies=self._trusted_proxies,
            websocket_open_timeout=target.proxy_timeouts.websocket_open,
        )

    def cloud_identity(self, identity: QlikIdentity) -> CloudIdentity:
        """The tenant's user for `identity` (`InvalidIdentity` when it cannot be one)."""
        return self.target.identity.to_cloud(identity)

    def check_identity(self, identity: QlikIdentity) -> None:
        self.cloud_identity(identity)

    def is_token_endpoint(self, sub_path: str) -> bool:
        """`sub_path` (after the mount) is the token broker's."""
        return self.target.token_broker and sub_path == self.target.token_path

    async def choose_engine(self) -> str | None:
        """The engine in use (Qlik Cloud's certificates carry subjectAltNames: either verifies)."""
        return self.engine_name

    def ensure_open(self) -> None:
        """Re-create the pools after a shutdown, for servers that run the lifespan more than once."""
        if self.client.closed:
            self.client = QlikCloudClient(self.target)
            self.route = self._new_route()

    async def aclose(self) -> None:
        await self.route.engine.aclose()
        await self.transport.aclose()
        await self.client.aclose()
