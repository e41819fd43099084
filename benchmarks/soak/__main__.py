"""`python -m benchmarks.soak [--minutes M | --seconds S] [--users N] [--seed N]`: one soak run.

Prints the report (Markdown) and exits 1 when any rule was broken. `--json PATH` writes the
figures, `--keep DIR` keeps the processes' logs and certificates there.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from qlik_sso_middleware.proxy.ws_client import WS_CLIENTS

from .chaos import KINDS
from .run import SoakSettings, run_soak
from .table import markdown


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__)
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--minutes", type=float, help="how long the load runs (default 30)")
    length.add_argument("--seconds", type=float, help="how long the load runs, in seconds")
    parser.add_argument("--users", type=int, default=300, help="simulated browsers (default 300)")
    parser.add_argument("--seed", type=int, default=1, help="chaos schedule and browsers' dice")
    parser.add_argument("--auth", choices=("session", "ticket", "header"), default="session")
    parser.add_argument(
        "--ws-client",
        choices=WS_CLIENTS,
        help="the relays' upstream WebSocket client (default: the library's)",
    )
    parser.add_argument(
        "--faults",
        default=",".join(KINDS),
        help=f"comma-separated fault kinds to draw from (default all: {','.join(KINDS)})",
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="the instances log the middleware's INFO messages (logins, renewals; with --keep)",
    )
    parser.add_argument("--json", type=Path, help="write the figures and violations here")
    parser.add_argument("--keep", type=Path, help="keep logs and certificates in this directory")
    args = parser.parse_args()
    seconds = args.seconds if args.seconds is not None else 60 * (args.minutes or 30)
    faults = tuple(k.strip() for k in args.faults.split(",") if k.strip())
    unknown = sorted(set(faults) - set(KINDS))
    if unknown or not faults:
        parser.error(
            f"--faults: unknown kind(s) {', '.join(unknown)}; choose from {', '.join(KINDS)}"
        )
    settings = SoakSettings.for_duration(
        seconds,
        users=args.users,
        seed=args.seed,
        auth=args.auth,
        ws_client=args.ws_client,
        faults=faults,
        log_level="INFO" if args.verbose else None,
    )
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
    result = asyncio.run(run_soak(settings, args.keep))
    print(markdown(result))
    if args.json is not None:
        figures = {"violations": result.verdict.violations, **result.verdict.figures}
        args.json.write_text(json.dumps(figures, indent=2, default=str))
    return 0 if result.verdict.passed else 1


if __name__ == "__main__":
    sys.exit(main())
