"""`qlik-sso serve` (in progress)."""

from __future__ import annotations


def run_serve_command(config: str | None, *, host: str | None, port: int | None) -> int:
    raise NotImplementedError
