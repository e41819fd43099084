"""`qlik-sso check`: find what is wrong between this configuration and a real Qlik, step by step.

    report = await run_checks(load_config("qlik-sso.toml"))
    for step in report.steps: print(step.render())    # ✓/✗ lines with a concrete fix

`report.py` (results and machine-readable fixes), `network.py` (DNS/TCP/TLS), `vp.py` (does the
prefix name a VP: evidence only), `login.py` (the login and why Qlik ignored it), `engine.py` (a
real engine request over the WebSocket), `qlik.py` (the Qlik-level steps in order), `runner.py`
(order and dependencies), `command.py` (`qlik-sso check`: progress, JSON, exit status).
"""

from __future__ import annotations

from .report import Action, Report, Step
from .runner import run_checks

__all__ = ["Action", "Report", "Step", "run_checks"]
