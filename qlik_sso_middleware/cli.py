"""`qlik-sso`: demo, check, serve, front-config, simulate.

    qlik-sso demo [--port N] [--embed-kit DIR] [--cloud]  the whole thing on loopback, one URL
    qlik-sso check [--config FILE] [--json] diagnose a Qlik virtual proxy step by step
    qlik-sso serve --config FILE           the middleware as a standalone reverse proxy
    qlik-sso front-config --server nginx|caddy --config FILE
                                           the front proxy's configuration for offload mode
    qlik-sso simulate ...                  the Qlik simulator alone (qlik_sso_middleware.testing.cli)

Exit status: 0 success, 1 a check failed or the command could not run, 2 bad usage or bad
configuration. Errors are one clear message on stderr, never a traceback (`--debug` shows it).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from .errors import ConfigurationError

__all__ = ["main"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qlik-sso",
        description="Embed Qlik Sense in any Python web app: demo, diagnostics, standalone proxy.",
    )
    parser.add_argument("--debug", action="store_true", help="verbose logs and tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = sub.add_parser(
        "demo",
        help="run the simulator, a demo app and the middleware on loopback",
        description="Start the Qlik simulator, a demo app with a login form (alice/demo, "
        "bob/demo) and the middleware, all on 127.0.0.1, and print one URL to open.",
    )
    demo.add_argument("--port", type=int, default=None, help="demo app port (default 8000, 0=any)")
    demo.add_argument(
        "--embed-kit",
        default=None,
        metavar="DIR",
        help="a qlik-embed kit (node tests/js-embed/build.mjs DIR): show a live <qlik-embed>",
    )
    demo.add_argument(
        "--cloud",
        action="store_true",
        help="a simulated Qlik Cloud tenant instead: the token broker and the cookie proxy",
    )

    check = sub.add_parser(
        "check",
        help="diagnose the Qlik side of a configuration step by step",
        description="Read the configuration (TOML file and QLIK_SSO_* variables) and test the "
        "Qlik proxy, QPS API, virtual proxy and WebSocket settings, one step at a time. "
        "Exit 0 only when every step passes.",
    )
    check.add_argument("--config", metavar="FILE", help="TOML file (default: environment only)")
    check.add_argument("--json", action="store_true", help="machine-readable results on stdout")

    serve = sub.add_parser(
        "serve",
        help="run the middleware as a standalone reverse proxy in front of an app",
        description="Serve the Qlik mount path with SSO and proxy everything else to the "
        "configured upstream app. Identity comes from a signed handoff or a trusted header.",
    )
    serve.add_argument("--config", metavar="FILE", help="TOML file (QLIK_SSO_* variables win)")
    serve.add_argument("--host", help="listen address (overrides [serve].host)")
    serve.add_argument("--port", type=int, help="listen port (overrides [serve].port)")

    front = sub.add_parser(
        "front-config",
        help="print the nginx or Caddy configuration of offload mode",
        description="Print the configuration with which nginx or Caddy carries Qlik's traffic "
        "and asks the app's auth endpoint (offload mode; README: Deploying behind nginx or "
        "Caddy). Reads [qlik] and [offload] of the configuration. The output holds the "
        "[offload] secret: write it to a file only root can read.",
    )
    front.add_argument("--server", required=True, help="nginx or caddy")
    front.add_argument("--config", metavar="FILE", help="TOML file (QLIK_SSO_* variables win)")

    sub.add_parser(
        "simulate",
        help="run the Qlik Sense simulator alone (see `qlik-sso simulate --help`)",
        add_help=False,
    )
    return parser


#: Commands that run a server (uvicorn: the `[server]` extra) and what to install for them.
_NEEDS_SERVER = ("demo", "serve", "simulate")
SERVER_EXTRA = "pip install 'qlik-sso-middleware[server]'"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `qlik-sso` command; returns the exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    # `simulate` owns its own options; hand the rest of the line over untouched.
    rest = [a for a in args_list if a != "--debug"]
    if rest[:1] and rest[0] in _NEEDS_SERVER and importlib.util.find_spec("uvicorn") is None:
        print(
            f"qlik-sso {rest[0]}: needs uvicorn, which the bare install leaves out; install it "
            f"with: {SERVER_EXTRA}",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    if rest[:1] == ["simulate"]:
        from .testing.cli import main as simulate_main

        return int(simulate_main(rest[1:]) or 0)
    args = _parser().parse_args(args_list)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Even with --debug: httpx logs every URL at INFO (query strings carry tickets and handoff
    # tokens) and httpcore logs raw headers at DEBUG (Qlik session cookies).
    for noisy in ("httpx", "httpx2", "httpcore", "httpcore2", "websockets"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return _dispatch(args)
    except ConfigurationError as exc:
        if args.debug:
            raise
        print(f"qlik-sso {args.command}: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return EXIT_OK


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "demo":
        from .demo.runner import DemoStartError, run_demo
        from .demo.settings import DEMO_PORT

        port = DEMO_PORT if args.port is None else args.port
        if not 0 <= port <= 65535:
            print("qlik-sso demo: --port must be 0..65535", file=sys.stderr)
            return EXIT_CONFIG
        try:
            if args.cloud:
                from .demo.cloud_runner import run_cloud_demo

                return asyncio.run(run_cloud_demo(port, out=sys.stdout))
            kit = Path(args.embed_kit) if args.embed_kit is not None else None
            return asyncio.run(run_demo(port, out=sys.stdout, embed_kit=kit))
        except DemoStartError as exc:
            print(f"qlik-sso demo: {exc}", file=sys.stderr)
            return EXIT_FAILED
    if args.command == "check":
        from .diagnostics.command import run_check_command

        return run_check_command(args.config, as_json=args.json)
    if args.command == "front-config":
        from .config import load_config
        from .offload.front_config import plan_from_config, render

        plan = plan_from_config(load_config(args.config))
        sys.stdout.write(render(plan, args.server.strip().lower()))
        return EXIT_OK
    if args.command == "serve":
        from .serve.runner import run_serve_command

        return run_serve_command(args.config, host=args.host, port=args.port)
    raise AssertionError(args.command)  # argparse allows only the commands above


if __name__ == "__main__":
    sys.exit(main())
