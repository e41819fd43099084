"""Debian's Chromium for every browser test: its path, its flags, and what happens without it.

Never a Playwright-downloaded browser: `launch()` without `executable_path` would silently use
one if present (different version, different cookie defaults), so every launch goes through
`require_chromium()`.
"""

from __future__ import annotations

import os

from .needs import unavailable

__all__ = ["CHROMIUM", "LAUNCH_ARGS", "require_chromium"]

#: Debian's Chromium; `QLIK_SSO_CHROMIUM` points elsewhere (never a downloaded browser).
CHROMIUM = os.environ.get("QLIK_SSO_CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_chromium() -> str:
    """The Chromium binary; skip without it, fail when `CI` is set."""
    if os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    unavailable(f"{CHROMIUM} is missing (apt-get install chromium)")
