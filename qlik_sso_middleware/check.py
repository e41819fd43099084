"""`qlik-sso check` (in progress)."""

from __future__ import annotations


def run_check_command(config: str | None, *, as_json: bool) -> int:
    raise NotImplementedError
