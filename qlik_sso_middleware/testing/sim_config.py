"""The simulator's TOML file (`qlik-sso simulate --config`): a simulated site as one text.

    https = false                      # site: port, api_port, https, api, cert_dir, host,
    unknown_prefix = "bad_request"     #   unknown_prefix, windows_auth_port, qrs, embed_runtime
    [[virtual_proxy]]                  # one table per VP; keys are `VirtualProxy`'s options
    prefix = "A_"                      # typed as in the QMC: stored as "a_"
    header_name = "CMI_Header"
    dynamic_pattern = '$ud\\$id'       # pasted from the QMC (a literal string keeps the \\)
    [access]                           # `AccessPasses`: who holds an access pass
    default = "allocated"
    users = { 'CMI\\Me' = "none" }
    directories = { CMI = "not_synced" }

Every mistake is a `ConfigurationError` naming the file, the line and the key, in the style of the
middleware's own loader (`sim.toml:7: virtual_proxy[1].header_name: must be a string`), never a
traceback.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError
from .access import AccessPasses
from .virtual_proxy import VirtualProxy

__all__ = ["SITE_KEYS", "load_simulator_config"]

#: Top-level keys and their types (the simulator's site settings).
SITE_KEYS: dict[str, Any] = {
    "port": int,
    "api_port": int,
    "https": bool,
    "api": bool,
    "cert_dir": str,
    "host": str,
    "unknown_prefix": str,
    "windows_auth_port": bool,
    "qrs": bool,
    "embed_runtime": str,
}
_ACCESS_KEYS = ("default", "users", "directories")
_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\[\]]+?)\s*\]\]?\s*(#.*)?$")
_ASSIGN = re.compile(r"^\s*([\"']?)(.+?)\1\s*=")


def config_error(where: str, key: str, message: str) -> ConfigurationError:
    """`site.toml:7: virtual_proxy[1].header_name: message`, the middleware loader's style."""
    error = ConfigurationError(f"{where}: {key}: {message}")
    error.field = key
    return error


class _Lines:
    """Where each key was written: (table, index of an array table, key) -> 1-based line."""

    def __init__(self, text: str) -> None:
        self.found: dict[tuple[str, int, str], int] = {}
        self.tables: dict[tuple[str, int], int] = {}
        table, counts = "", {"": 1}
        for number, line in enumerate(text.splitlines(), start=1):
            header = _HEADER.match(line)
            if header:
                table = header.group(2).replace(" ", "")
                is_array = header.group(1) == "[["
                counts[table] = counts.get(table, 0) + 1 if is_array else 1
                self.tables.setdefault((table, counts[table]), number)
                continue
            assign = _ASSIGN.match(line)
            if assign:
                key = (table, counts.get(table, 1), assign.group(2).replace(" ", ""))
                self.found.setdefault(key, number)

    def at(self, path: Path, table: str, key: str | None, index: int = 1) -> str:
        line = self.found.get((table, index, key)) if key else None
        line = line or self.tables.get((table, index))
        return f"{path}:{line}" if line else str(path)


def load_simulator_config(path: str | Path) -> dict[str, Any]:
    """`QlikSimulator` keyword arguments from the TOML file at `path` (only the keys it sets)."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigurationError(f"{file}: simulator configuration not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(
            f"{file}: cannot read the simulator configuration ({exc})"
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{file}: invalid TOML: {exc}") from None
    lines = _Lines(text)
    options: dict[str, Any] = {}
    for key, value in data.items():
        if key == "virtual_proxy":
            options["virtual_proxies"] = _virtual_proxies(file, lines, value)
        elif key == "access":
            options["access"] = _access(file, lines, value)
        elif key in SITE_KEYS:
            _expect(value, SITE_KEYS[key], lines.at(file, "", key), key)
            options[key] = value
        else:
            known = sorted([*SITE_KEYS, "virtual_proxy", "access"])
            raise config_error(
                lines.at(file, "", key), key, f"unknown key; known: {', '.join(known)}"
            )
    if options.get("unknown_prefix", "bad_request") not in ("bad_request", "default_vp"):
        where = lines.at(file, "", "unknown_prefix")
        raise config_error(where, "unknown_prefix", "must be 'bad_request' or 'default_vp'")
    return options


def _virtual_proxies(file: Path, lines: _Lines, tables: Any) -> list[VirtualProxy]:
    if not isinstance(tables, list) or not tables:
        raise config_error(
            lines.at(file, "", "virtual_proxy"), "virtual_proxy", "write [[virtual_proxy]] tables"
        )
    hints = typing.get_type_hints(VirtualProxy)
    fields = [f.name for f in dataclasses.fields(VirtualProxy) if f.init]
    proxies = []
    for index, table in enumerate(tables, start=1):
        name = f"virtual_proxy[{index}]"
        if not isinstance(table, dict):
            raise config_error(lines.at(file, "", "virtual_proxy"), name, "must be a table")
        options: dict[str, Any] = {}
        for key, value in table.items():
            where = lines.at(file, "virtual_proxy", key, index)
            if key not in fields:
                raise config_error(
                    where, f"{name}.{key}", f"unknown key; known: {', '.join(fields)}"
                )
            _expect(value, hints[key], where, f"{name}.{key}")
            if key == "additional_response_headers":
                value = [tuple(pair) for pair in value]
            options[key] = value
        try:
            proxies.append(VirtualProxy(**options))
        except ConfigurationError as exc:
            key = exc.field or "prefix"
            where = lines.at(file, "virtual_proxy", key, index)
            message = exc.message.split(": ", 1)[1] if exc.field else exc.message
            raise config_error(where, f"{name}.{key}", message) from None
    return proxies


def _access(file: Path, lines: _Lines, table: Any) -> AccessPasses:
    if not isinstance(table, dict):
        raise config_error(lines.at(file, "", "access"), "access", "must be a table ([access])")
    for key, value in table.items():
        where = lines.at(file, "access", key)
        if key not in _ACCESS_KEYS:
            raise config_error(
                where, f"access.{key}", f"unknown key; known: {', '.join(_ACCESS_KEYS)}"
            )
        wanted: Any = str if key == "default" else dict[str, str]
        _expect(value, wanted, where, f"access.{key}")
    try:
        return AccessPasses(**table)
    except ConfigurationError as exc:
        key = exc.field or "default"
        message = exc.message.split(": ", 1)[1] if exc.field else exc.message
        raise config_error(lines.at(file, "access", key), f"access.{key}", message) from None


def _expect(value: Any, hint: Any, where: str, key: str) -> None:
    """Raise naming `key` unless `value` fits the type `hint` (as TOML gives values)."""
    if not _fits(value, hint):
        raise config_error(
            where, key, f"must be {_describe(hint)}, not {type(value).__name__} {value!r}"[:160]
        )


def _fits(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, a) for a in args)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin is dict:
        return isinstance(value, dict) and all(
            _fits(k, args[0]) and _fits(v, args[1]) for k, v in value.items()
        )
    if origin is tuple:
        return (
            isinstance(value, list | tuple)
            and len(value) == len(args)
            and all(_fits(v, a) for v, a in zip(value, args, strict=True))
        )
    if origin in (Sequence, list):
        return isinstance(value, list) and all(_fits(v, args[0]) for v in value)
    return isinstance(value, hint) if isinstance(hint, type) else True


def _describe(hint: Any) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
    if hint in names:
        return names[hint]
    origin = typing.get_origin(hint)
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if origin is dict:
        return "a table of strings"
    if origin in (Sequence, list) and args and typing.get_origin(args[0]) is tuple:
        return 'a list of ["Name", "value"] pairs'
    if origin in (Sequence, list):
        return "a list of strings"
    if args:
        return " or ".join(_describe(a) for a in args)
    return str(hint)
