"""`QlikSimulator`: the proxy port and the mutual-TLS QPS API port as real uvicorn servers.

Both servers run as tasks in the caller's event loop on pre-bound loopback sockets (port 0 unless
given), so tests get ephemeral ports and no races on start. `SimulatorThread` runs the same thing
in its own loop in a background thread for sync and subprocess-based tests.

Longer than most modules on purpose: the simulator's public face (options, introspection, fault
and site controls) is one class users read from top to bottom.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import dataclasses
import logging
import shutil
import socket
import ssl
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import uvicorn

from .access import AccessPasses
from .api_app import ApiApp
from .auth_module import WindowsAuthApp
from .certificates import CertificateFiles, generate_certificates
from .demo_apps import DEMO_APPS, DemoApp
from .faults import Faults
from .proxy_app import ProxyApp
from .qrs_app import QrsApp
from .records import RecordedFrame, RecordedRequest, SimSession
from .state import SimState
from .virtual_proxy import VirtualProxy

__all__ = ["QlikSimulator"]

_SWEEP_INTERVAL = 0.05
_CERT_FILES = ("root.pem", "server.pem", "server_key.pem", "client.pem", "client_key.pem")


class _Server(uvicorn.Server):
    """uvicorn server that leaves signal handling to its owner (tests, the CLI)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(512)
    sock.setblocking(False)
    return sock


async def serve_on(
    app: Any, sock: socket.socket, ssl_options: dict[str, Any]
) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    """Serve `app` on the bound `sock` in this loop; return once it accepts connections."""
    config = uvicorn.Config(
        app,
        lifespan="off",
        # The sans-io implementation: same max_size handling as the legacy `websockets` one,
        # without its per-connection deprecation warnings (uvicorn 0.36+).
        ws="websockets-sansio",
        ws_max_size=512 * 1024 * 1024,
        ws_ping_interval=None,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=1,
        **ssl_options,
    )
    server = _Server(config)
    config.load()
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()  # re-raise the start-up error
            raise RuntimeError("simulator server stopped during start-up")
        await asyncio.sleep(0.01)
    return server, task


class Lifecycle(abc.ABC):
    """`async with`: `start()` on entry (and `stop()` when it fails half-way), `stop()` on exit."""

    @abc.abstractmethod
    async def start(self) -> None: ...

    @abc.abstractmethod
    async def stop(self) -> None: ...

    async def __aenter__(self) -> Self:
        try:
            await self.start()
        except BaseException:
            await self.stop()  # a half-started simulator must not leave a server running
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


def _existing_certificates(directory: Path, pfx_password: str | None) -> CertificateFiles | None:
    """Reuse a certificate set already in `directory` (so a restarted simulator keeps its CA)."""
    if not all((directory / name).is_file() for name in _CERT_FILES):
        return None
    return CertificateFiles(
        directory=directory,
        root=directory / "root.pem",
        root_key=directory / "root_key.pem",
        server=directory / "server.pem",
        server_key=directory / "server_key.pem",
        client=directory / "client.pem",
        client_key=directory / "client_key.pem",
        client_pfx=directory / "client.pfx",
        pfx_password=pfx_password,
    )


class QlikSimulator(Lifecycle):
    """A simulated Qlik Sense proxy + QPS API on loopback: `async with QlikSimulator() as sim:`.

    See the package docstring for the behaviour. Introspection (`requests`, `frames`, `logins`,
    `live_sessions`) reads the simulator's memory; `faults` makes it misbehave on purpose.
    `log_limit` bounds `requests` and `frames` (oldest dropped) for long-running use; tests leave
    it None (keep everything). `tag_user` marks every answer and engine frame with the user it
    served (`user_tag`: header `X-Qlik-Sim-User`, field `qlikSimUser`), for clients that check
    end to end that nobody got someone else's answer. Hazard: the generated certificates are test
    credentials, removed on exit unless `cert_dir` was given.

    Site settings: `access` (who holds an access pass, `AccessPasses`; assign `sim.access` to
    change it live), `unknown_prefix` ("bad_request": QPS's 400 page for a first path segment that
    names no VP, as Qlik answers; "default_vp": serve it from the default VP instead),
    `windows_auth_port` (also run the Windows authentication listener, 4244 in production, at
    `sim.windows_auth_url`), `qrs` (also run a read-only QRS, 4242 in production, at
    `sim.qrs_url`: the virtual proxies' settings for a client with the site's certificate). `configure_virtual_proxy` edits a VP live, as a QMC edit does.
    `embed_runtime` is a directory served as `<prefix>/qlik-embed/` (Qlik's embed runtime, which
    the simulator cannot ship: 404 without it); `proxy_xrfkey_check=False` stops refusing an
    `xrfkey` query without its matching header on `qps/` and `api/` paths (`testing/xrfkey.py`).
    """

    def __init__(
        self,
        virtual_proxies: Sequence[VirtualProxy] = (VirtualProxy(),),
        *,
        https: bool = False,
        api: bool = True,
        cert_dir: str | Path | None = None,
        pfx_password: str | None = None,
        clock: Callable[[], float] | None = None,
        apps: Sequence[DemoApp] = DEMO_APPS,
        host: str = "127.0.0.1",
        port: int = 0,
        api_port: int = 0,
        log_limit: int | None = None,
        access: AccessPasses | None = None,
        unknown_prefix: str = "bad_request",
        windows_auth_port: bool = False,
        qrs: bool = False,
        embed_runtime: str | Path | None = None,
        proxy_xrfkey_check: bool = True,
        tag_user: bool = False,
    ) -> None:
        if not virtual_proxies:
            raise ValueError("virtual_proxies: at least one virtual proxy is needed")
        self.clock: Callable[[], float] = clock or time.monotonic
        self.faults = Faults()
        self.https = https
        self.host = host
        self._api = api
        self._cert_dir = Path(cert_dir) if cert_dir is not None else None
        self._pfx_password = pfx_password
        self._ports = (port, api_port)
        self.apps = {app.id: app for app in apps}
        if unknown_prefix not in ("bad_request", "default_vp"):
            raise ValueError("unknown_prefix: 'bad_request' or 'default_vp'")
        self.access = access if access is not None else AccessPasses()
        self._windows_auth = windows_auth_port
        self._qrs = qrs
        self._state = SimState(
            virtual_proxies, self.clock, access_allowed=self._has_access, log_limit=log_limit
        )
        self._proxy = ProxyApp(
            self._state,
            self.faults,
            self.apps,
            https=https,
            api_port=lambda: self.api_port,
            unknown_prefix=unknown_prefix,
            embed_runtime=Path(embed_runtime) if embed_runtime is not None else None,
            xrfkey_check=proxy_xrfkey_check,
            tag_user=tag_user,
        )
        self._servers: list[uvicorn.Server] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._sweeper: asyncio.Task[None] | None = None
        self._temp_dir: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.certificates: CertificateFiles | None = None
        self.proxy_port = 0
        self.api_port: int | None = None
        self.windows_auth_port: int | None = None
        self.qrs_port: int | None = None
        self.faults.bind(self._close_websockets)

    def _has_access(self, user_directory: str, user_id: str) -> bool:
        return not self.faults.no_access_pass and self.access.allows(user_directory, user_id)

    @property
    def virtual_proxies(self) -> tuple[VirtualProxy, ...]:
        """The virtual proxies as they are configured now."""
        return tuple(self._state.vps.values())

    def configure_virtual_proxy(self, prefix: str, **changes: Any) -> VirtualProxy:
        """Change VP `prefix` live, as a QMC edit does (QPS re-reads its settings); a prefix
        not configured yet is created (from `VirtualProxy` defaults) with `changes`. Sessions
        stay. Raises `ConfigurationError` for a bad value, like `VirtualProxy(...)`."""
        current = self._state.vps.get(prefix.lower())
        if current is None:
            vp = VirtualProxy(**{"prefix": prefix, **changes})
        else:
            vp = dataclasses.replace(current, **changes)
        if vp.prefix != prefix.lower():
            raise ValueError("configure_virtual_proxy cannot rename a virtual proxy")
        self._state.vps[vp.prefix] = vp
        return vp

    # -- life cycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Generate/reuse certificates, bind both ports and wait until they serve."""
        self._loop = asyncio.get_running_loop()
        if self.https or self._api or self._windows_auth or self._qrs:
            self.certificates = await asyncio.to_thread(self._certificates)
        proxy_sock = _bind(self.host, self._ports[0])
        self.proxy_port = proxy_sock.getsockname()[1]
        ssl_options: dict[str, Any] = {}
        if self.https:
            assert self.certificates is not None
            ssl_options = {
                "ssl_certfile": str(self.certificates.server),
                "ssl_keyfile": str(self.certificates.server_key),
            }
        await self._serve(self._proxy, proxy_sock, ssl_options)
        if self._api:
            api_app = ApiApp(self._state, self.faults, self._proxy.targets.get)
            self.api_port = await self._serve_tls(api_app, self._ports[1], client_certificate=True)
        if self._qrs:
            qrs_app = QrsApp(lambda: self._state.vps.values())
            self.qrs_port = await self._serve_tls(qrs_app, 0, client_certificate=True)
        if self._windows_auth:
            self.windows_auth_port = await self._serve_tls(WindowsAuthApp(), 0)
        self._sweeper = asyncio.create_task(self._sweep())

    async def _serve_tls(self, app: Any, port: int, *, client_certificate: bool = False) -> int:
        """Serve `app` over TLS with the server certificate (and the client certificate check of
        Qlik's API ports); returns the bound port."""
        assert self.certificates is not None
        sock = _bind(self.host, port)
        options: dict[str, Any] = {
            "ssl_certfile": str(self.certificates.server),
            "ssl_keyfile": str(self.certificates.server_key),
        }
        if client_certificate:
            options |= {
                "ssl_ca_certs": str(self.certificates.root),
                "ssl_cert_reqs": ssl.CERT_REQUIRED,
            }
        await self._serve(app, sock, options)
        return int(sock.getsockname()[1])

    def _certificates(self) -> CertificateFiles:
        if self._cert_dir is None:
            self._temp_dir = tempfile.mkdtemp(prefix="qlik-sim-")
            directory = Path(self._temp_dir)
        else:
            directory = self._cert_dir
            existing = _existing_certificates(directory, self._pfx_password)
            if existing is not None:
                return existing
        return generate_certificates(directory, pfx_password=self._pfx_password)

    async def _serve(self, app: Any, sock: socket.socket, ssl_options: dict[str, Any]) -> None:
        server, task = await serve_on(app, sock, ssl_options)
        self._servers.append(server)
        self._tasks.append(task)

    async def _sweep(self) -> None:
        """End sessions whose timeout passed, so open sockets get `OnSessionTimedOut` promptly."""
        while True:
            await asyncio.sleep(_SWEEP_INTERVAL)
            self._state.expire()

    async def stop(self) -> None:
        """Close every socket and stop both servers; remove generated certificates."""
        self._state.close_all_sockets(1001, "Simulator stopping")
        for server in self._servers:
            server.should_exit = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        results = await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        self._servers.clear()
        for result in results:
            if isinstance(result, Exception):
                logging.getLogger(__name__).warning("simulator server error: %r", result)
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None

    # -- URLs -----------------------------------------------------------------------------------

    @property
    def _url_host(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host

    @property
    def proxy_url(self) -> str:
        scheme = "https" if self.https else "http"
        return f"{scheme}://{self._url_host}:{self.proxy_port}"

    @property
    def api_url(self) -> str | None:
        return f"https://{self._url_host}:{self.api_port}" if self.api_port else None

    @property
    def qrs_url(self) -> str | None:
        """The read-only QRS (4242 in production), when started."""
        return f"https://{self._url_host}:{self.qrs_port}" if self.qrs_port else None

    @property
    def windows_auth_url(self) -> str | None:
        """The Windows authentication listener (4244 in production), when started."""
        port = self.windows_auth_port
        return f"https://{self._url_host}:{port}" if port else None

    # -- introspection --------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        return self._state.requests

    @property
    def frames(self) -> list[RecordedFrame]:
        return self._state.frames

    def cookie_name(self, prefix: str | None = None) -> str:
        """The session cookie name of VP `prefix` (first VP by default) on this port's scheme."""
        vp = self._vp(prefix)
        return vp.session_cookie_name(self.https)

    def _vp(self, prefix: str | None) -> VirtualProxy:
        if prefix is None:
            return self.virtual_proxies[0]
        return self._state.vps[prefix]

    def logins(self, user: str | None = None, prefix: str | None = None) -> int:
        """How many sessions were ever created (for `user` "DIR\\id", case-insensitive)."""
        return len(self._matching(self._state.history, user, prefix))

    def live_sessions(self, user: str | None = None, prefix: str | None = None) -> list[SimSession]:
        self._state.expire()
        return self._matching(list(self._state.sessions.values()), user, prefix)

    @staticmethod
    def _matching(
        sessions: list[SimSession], user: str | None, prefix: str | None
    ) -> list[SimSession]:
        return [
            s
            for s in sessions
            if (user is None or s.user.lower() == user.lower())
            and (prefix is None or s.prefix == prefix)
        ]

    def session(self, session_id: str) -> SimSession | None:
        """The live session with cookie value `session_id`, if any."""
        return self._state.sessions.get(session_id)

    def clear_log(self) -> None:
        self._state.requests.clear()
        self._state.frames.clear()

    def restart(self) -> None:
        """Forget every session (and cool-down and ticket); open WebSockets get OnSessionClosed."""
        self._state.restart()

    async def _close_websockets(self, code: int, reason: str) -> int:
        loop = self._loop
        if loop is None:
            return 0
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            return self._state.close_all_sockets(code, reason)
        future = asyncio.run_coroutine_threadsafe(self._close_in_loop(code, reason), loop)
        return await asyncio.wrap_future(future)

    async def _close_in_loop(self, code: int, reason: str) -> int:
        return self._state.close_all_sockets(code, reason)
