"""`qlik-sso check`: find what is wrong between this configuration and a real Qlik, step by step.

    report = await run_checks(load_config("qlik-sso.toml"))
    for step in report.steps: print(step.render())    # ✓/✗ lines with a concrete fix

`report.py` (results), `network.py` (DNS/TCP/TLS), `qlik.py` (virtual proxy, login, WebSocket,
cookie), `runner.py` (order and dependencies).
"""

from __future__ import annotations

from .report import Report, Step
from .runner import run_checks

__all__ = ["Report", "Step", "run_checks"]
