"""`qlik-sso check`: the command-line face of `diagnostics` (progress, ✓/✗ lines, JSON, exit status).

Exit 0 only when every step passed; 1 when one failed; 2 for configuration errors (raised before
any network traffic, reported by `cli.py` as one line naming the key and file line).
"""

from __future__ import annotations

import asyncio
import sys
from typing import TextIO

from ..config import QlikSSOConfig, load_config
from .report import Report, Step
from .runner import run_checks

__all__ = ["run_check_command"]


def run_check_command(
    config_path: str | None,
    *,
    as_json: bool,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    config = load_config(config_path)
    report = asyncio.run(_run(config, as_json=as_json, out=out, err=err))
    if as_json:
        print(report.to_json(), file=out, flush=True)
    else:
        print(report.summary(), file=out, flush=True)
    return 0 if report.ok else 1


async def _run(config: QlikSSOConfig, *, as_json: bool, out: TextIO, err: TextIO) -> Report:
    # Progress: each step as it finishes (stdout in text mode, stderr beside --json).
    stream = err if as_json else out
    quiet = as_json and not stream.isatty()
    if not quiet:
        what = [f"{config.cloud.tenant_url} (Qlik Cloud)"] if config.cloud.tenant_url else []
        if config.qlik.url:
            what.append(
                f"{config.qlik.url}/{config.qlik.prefix}/ (auth.strategy = {config.auth.strategy!r})"
            )
        print(f"Checking {' and '.join(what)}…", file=stream, flush=True)

    def show(step: Step) -> None:
        if not quiet:
            print(step.render(), file=stream, flush=True)

    return await run_checks(config, on_step=show)
