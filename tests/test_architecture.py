"""The layers of docs/architecture.md, enforced: which part of the package may import which.

Every `import` in the package is read from the source (module level, function level and under
`TYPE_CHECKING` alike), so a layer cannot call back up even "only for typing". The table below is
the one in docs/architecture.md; a test checks that they agree.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "qlik_sso_middleware"

# Each part of the package (a top-level module or subpackage) and the parts it may import.
# Read bottom-up: `errors` is the foundation; the products (`serve`, `diagnostics`, `cli`, `demo`)
# sit on top. `testing` (the Qlik simulator) stands apart: it must behave like Qlik, not like us.
LIBRARY = (
    "errors",
    "identity",
    "stores",
    "proxy",
    "auth",
    "target",
    "upstream",
    "cloud",
    "sessions",
)
ALLOWED: dict[str, frozenset[str]] = {
    "errors": frozenset(),
    "secret": frozenset(),
    "identity": frozenset({"errors"}),
    "responses": frozenset({"errors"}),
    "proxy": frozenset({"errors"}),
    "stores": frozenset({"errors"}),
    "resolvers": frozenset({"errors", "identity"}),
    "auth": frozenset({"errors", "identity", "stores"}),
    "target": frozenset({"errors", "auth", "proxy"}),
    "upstream": frozenset({"errors", "identity", "stores", "auth", "proxy", "target"}),
    "cloud": frozenset({"errors", "identity", "secret", "auth", "proxy", "target", "upstream"}),
    "sessions": frozenset(
        {"errors", "identity", "stores", "auth", "proxy", "target", "upstream", "cloud"}
    ),
    "core": frozenset({*LIBRARY, "resolvers"}),
    "config": frozenset({*LIBRARY, "resolvers", "core", "secret"}),
    "offload": frozenset({*LIBRARY, "resolvers", "responses", "core", "config"}),
    "middleware": frozenset({*LIBRARY, "resolvers", "responses", "core", "config", "offload"}),
    "metrics": frozenset({*LIBRARY, "resolvers", "responses", "core", "middleware"}),
    "integrations": frozenset(
        {*LIBRARY, "resolvers", "responses", "core", "middleware", "config", "metrics", "offload"}
    ),
    "serve": frozenset(
        {*LIBRARY, "resolvers", "responses", "core", "middleware", "config", "metrics"}
    ),
    "diagnostics": frozenset({*LIBRARY, "resolvers", "core", "config", "offload"}),
    "testing": frozenset({"errors"}),
    "demo": frozenset(
        {*LIBRARY, "resolvers", "responses", "core", "middleware", "config", "testing", "offload"}
    ),
    "cli": frozenset({"errors", "config", "diagnostics", "serve", "demo", "testing", "offload"}),
    "__init__": frozenset({*LIBRARY, "resolvers", "core", "middleware", "offload"}),
}


def part_of(path: Path) -> str:
    """The part a source file belongs to: `proxy` for proxy/http.py, `core` for core.py."""
    relative = path.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def imported_parts(source: str, path: Path) -> set[str]:
    """The parts of the package that `source` (the file at `path`) imports, at any depth."""
    package = path.relative_to(ROOT).with_suffix("").parts[:-1]  # the file's own package
    if path.name == "__init__.py":
        package = path.relative_to(ROOT).parts[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                names = [*base, *(node.module.split(".") if node.module else [])]
            else:
                names = (node.module or "").split(".")
            if names[0] != "qlik_sso_middleware":
                continue
            if len(names) > 1:
                found.add(names[1])
            else:  # `from . import x` at the top: x is the part
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                names = alias.name.split(".")
                if names[0] == "qlik_sso_middleware" and len(names) > 1:
                    found.add(names[1])
    return found


def violations(path: Path, source: str | None = None) -> list[str]:
    part = part_of(path)
    text = path.read_text() if source is None else source
    allowed = ALLOWED[part] | {part}
    return [f"{part} imports {other}" for other in sorted(imported_parts(text, path) - allowed)]


SOURCES = sorted(p for p in PACKAGE.rglob("*.py") if "static" not in p.parts)


def test_every_part_of_the_package_has_a_row() -> None:
    parts = {part_of(p) for p in SOURCES}
    assert parts == set(ALLOWED), "add new parts to ALLOWED and to docs/architecture.md"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_stay_within_the_layers(path: Path) -> None:
    assert violations(path) == []


@pytest.mark.parametrize(
    ("file", "line"),
    [
        # The upward imports this table exists to stop (issue 17).
        ("proxy/http.py", "from ..core import QlikSSO"),
        ("proxy/http.py", "from ..auth._proxy_login import session_cookie_from"),
        ("proxy/websocket.py", "from ..sessions import UserSession"),
        ("proxy/reqwest_engine.py", "from ..target import Timeouts"),
        ("proxy/request.py", "from ..upstream import Upstream"),
        ("sessions/user.py", "from ..core import QlikSSO"),
        ("target.py", "from .sessions import SessionManager"),
        ("auth/header.py", "from ..proxy.headers import normalise_header_name"),
        ("testing/engine.py", "from ..middleware import QlikSSOMiddleware"),
        ("serve/handoff.py", "from ..cli import main"),
    ],
)
def test_an_upward_import_is_caught(file: str, line: str) -> None:
    path = PACKAGE / file
    source = f"from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    {line}\n"
    assert violations(path, source), f"{line!r} in {file} must break the layers"


def test_the_documented_table_is_this_table() -> None:
    doc = (ROOT / "docs" / "architecture.md").read_text()
    rows = dict(re.findall(r"^\| `([a-z_]+)` \|([^|]*)\|", doc, flags=re.MULTILINE))
    documented = {part: frozenset(re.findall(r"`([a-z_]+)`", cell)) for part, cell in rows.items()}
    assert documented == ALLOWED
