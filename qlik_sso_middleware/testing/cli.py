"""`qlik-sso simulate`: run the Qlik Sense simulator standalone until Ctrl-C / SIGTERM.

    python -m qlik_sso_middleware.testing.cli --prefix sso --json

Virtual proxies come from `--prefix` (repeatable, header auth with `--header-name`) or from a TOML
file (`--config`) describing a whole simulated site: `[[virtual_proxy]]` tables take `VirtualProxy`
options, `[access]` says who holds an access pass, and the top-level `port`, `api_port`, `https`,
`cert_dir`, `host`, `api`, `unknown_prefix`, `windows_auth_port`, `qrs`, `embed_runtime` set the
site (flags win). The
format and its errors (file, line and key) are in `sim_config.py`:

    https = false
    [[virtual_proxy]]
    prefix = "sso"
    header_name = "hdr-usr"
    additional_response_headers = [["X-Frame-Options", "SAMEORIGIN"]]
    [access]
    users = { 'ACME\bob' = "none" }

Hazard: the certificates it writes are test credentials; keep the simulator on loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Sequence
from typing import Any

from ..errors import ConfigurationError
from .server import QlikSimulator
from .sim_config import load_simulator_config
from .virtual_proxy import VirtualProxy

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qlik-sso simulate", description="Run a simulated Qlik Sense proxy + QPS API."
    )
    parser.add_argument("--host", default=None, help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="proxy port (default: any free)")
    parser.add_argument("--api-port", type=int, default=None, help="QPS API port (default: any)")
    parser.add_argument("--https", action="store_true", default=None, help="TLS on the proxy port")
    parser.add_argument("--no-api", action="store_true", help="do not start the QPS API port")
    parser.add_argument("--cert-dir", default=None, help="where to write/reuse the certificates")
    parser.add_argument(
        "--prefix", action="append", default=None, help="virtual proxy prefix (repeatable)"
    )
    parser.add_argument("--header-name", default="hdr-usr", help="identity header of the VPs")
    parser.add_argument("--config", default=None, help="TOML file describing virtual proxies")
    parser.add_argument("--json", action="store_true", help="print one JSON line with the URLs")
    parser.add_argument(
        "--embed-runtime",
        default=None,
        metavar="DIR",
        help="serve DIR as <prefix>/qlik-embed/ (a stand-in of Qlik's embed runtime)",
    )
    return parser


def _options(args: argparse.Namespace) -> dict[str, Any]:
    config: dict[str, Any] = load_simulator_config(args.config) if args.config else {}

    def pick(flag: Any, key: str, default: Any) -> Any:
        return flag if flag is not None else config.get(key, default)

    if args.prefix:
        proxies = [VirtualProxy(prefix=p, header_name=args.header_name) for p in args.prefix]
    else:
        proxies = config.get("virtual_proxies") or [VirtualProxy(header_name=args.header_name)]
    options = {
        "virtual_proxies": proxies,
        "https": bool(pick(args.https, "https", False)),
        "api": not args.no_api and bool(config.get("api", True)),
        "cert_dir": pick(args.cert_dir, "cert_dir", None),
        "host": pick(args.host, "host", "127.0.0.1"),
        "port": int(pick(args.port, "port", 0)),
        "api_port": int(pick(args.api_port, "api_port", 0)),
        "embed_runtime": pick(args.embed_runtime, "embed_runtime", None),
        # Standalone runs last for days: keep the introspection log bounded.
        "log_limit": 10_000,
    }
    for key in ("access", "unknown_prefix", "windows_auth_port", "qrs"):
        if key in config:
            options[key] = config[key]
    return options


async def _run(options: dict[str, Any], as_json: bool) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with QlikSimulator(**options) as sim:
        certs = str(sim.certificates.directory) if sim.certificates else None
        proxies = [
            {"prefix": vp.prefix, "cookie_name": vp.session_cookie_name(sim.https)}
            for vp in sim.virtual_proxies
        ]
        info = {
            "proxy_url": sim.proxy_url,
            "api_url": sim.api_url,
            "windows_auth_url": sim.windows_auth_url,
            "qrs_url": sim.qrs_url,
            "cert_dir": certs,
            "virtual_proxies": proxies,
        }
        if as_json:
            print(json.dumps(info), flush=True)
        else:
            print(f"Qlik simulator proxy: {sim.proxy_url}", flush=True)
            if sim.api_url:
                print(f"QPS API (mutual TLS): {sim.api_url}", flush=True)
            if sim.qrs_url:
                print(f"QRS (read-only, mutual TLS): {sim.qrs_url}", flush=True)
            if sim.windows_auth_url:
                print(f"Windows authentication listener: {sim.windows_auth_url}", flush=True)
            if certs:
                print(f"certificates: {certs}", flush=True)
            for vp in proxies:
                print(f"virtual proxy '{vp['prefix']}': cookie {vp['cookie_name']}", flush=True)
            print("Ctrl-C to stop.", flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `qlik-sso simulate`; returns the process exit code."""
    args = build_parser().parse_args(list(argv) if argv is not None else None)
    try:
        options = _options(args)
        asyncio.run(_run(options, args.json))
    except ConfigurationError as exc:
        print(f"qlik-sso simulate: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"qlik-sso simulate: cannot start: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
