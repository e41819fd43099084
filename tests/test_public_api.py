"""The public API: one sorted `__all__`, every name importable, no optional dependency pulled in."""

from __future__ import annotations

import subprocess
import sys

import qlik_sso_middleware


def test_all_is_sorted_unique_and_importable() -> None:
    names = qlik_sso_middleware.__all__
    assert names == sorted(names)
    assert len(set(names)) == len(names)
    for name in names:
        assert getattr(qlik_sso_middleware, name) is not None


def test_importing_the_package_needs_no_optional_dependency() -> None:
    code = (
        "import sys, qlik_sso_middleware; "
        "print(sorted(m for m in ('redis', 'django', 'flask', 'prometheus_client', 'jwt') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
