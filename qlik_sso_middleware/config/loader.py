"""Reading a TOML file and `QLIK_SSO_*` variables into typed, frozen section dataclasses.

The schema *is* the dataclasses of `config/schema.py`: field names are the keys, type hints the types,
defaults the defaults, `metadata={"choices": (...)}` the allowed values. Every error is a
`ConfigurationError` whose message starts with where the bad value came from
(`qlik-sso.toml:12: qlik.prefx: unknown key; did you mean 'prefix'?` or
`$QLIK_SSO_QLIK_URL: ...`), never a traceback for the user. Secret values are wrapped in `Secret`
so that no `repr`, log line or error message shows them.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar, Union

from ..errors import ConfigurationError
from ..secret import Secret

__all__ = ["ENV_PREFIX", "RawConfig", "Secret", "config_error", "read_sources", "to_section"]

ENV_PREFIX = "QLIK_SSO_"
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
S = TypeVar("S")


def config_error(
    where: str | None,
    key: str,
    message: str,
    kind: type[ConfigurationError] = ConfigurationError,
) -> ConfigurationError:
    """An error (of `kind`) naming the source (`file:line` or `$VARIABLE`) and the dotted key."""
    error = kind(f"{where}: {key}: {message}" if where else f"{key}: {message}")
    error.field = key
    return error


@dataclasses.dataclass
class RawConfig:
    """Untyped values per section and key, plus where each came from (for messages)."""

    values: dict[str, dict[str, Any]]
    where: dict[str, str]  # "section.key" -> "file:line" | "$VAR"
    path: Path | None

    def location(self, key: str) -> str | None:
        return self.where.get(key) or (str(self.path) if self.path else None)


def _suggest(word: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(sorted(candidates))}"


def _key_line(lines: list[str], section: str, key: str) -> int | None:
    """1-based line of `key` in `[section]` (or of `section.key = ` at top level)."""
    table: str | None = None
    header = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(#.*)?$")
    assign = re.compile(r"^\s*([\"']?)(.+?)\1\s*=")
    for number, line in enumerate(lines, start=1):
        found = header.match(line)
        if found:
            table = found.group(1).replace('"', "").replace("'", "").replace(" ", "")
            continue
        found = assign.match(line)
        if not found:
            continue
        name = found.group(2).replace(" ", "")
        if (table == section and name == key) or (table is None and name == f"{section}.{key}"):
            return number
    return None


def _section_line(lines: list[str], section: str) -> int | None:
    pattern = re.compile(rf"^\s*\[\s*[\"']?{re.escape(section)}[\"']?\s*\]")
    return next((n for n, line in enumerate(lines, start=1) if pattern.match(line)), None)


def read_sources(
    path: str | os.PathLike[str] | None, env: Mapping[str, str], schema: Mapping[str, type[Any]]
) -> RawConfig:
    """Merge the TOML file (optional) and `QLIK_SSO_<SECTION>_<KEY>` variables; env wins."""
    values: dict[str, dict[str, Any]] = {name: {} for name in schema}
    where: dict[str, str] = {}
    file_path = Path(path) if path is not None else None
    if file_path is not None:
        _read_file(file_path, schema, values, where)
    _read_env(env, schema, values, where)
    return RawConfig(values, where, file_path)


def _read_file(
    path: Path,
    schema: Mapping[str, type[Any]],
    values: dict[str, dict[str, Any]],
    where: dict[str, str],
) -> None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigurationError(f"{path}: configuration file not found") from None
    except IsADirectoryError:
        raise ConfigurationError(f"{path}: is a directory, not a TOML file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{path}: cannot read the configuration file ({exc})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{path}: invalid TOML: {exc}") from None
    lines = text.splitlines()
    for section, content in data.items():
        line = _section_line(lines, section)
        spot = f"{path}:{line}" if line else str(path)
        if section not in schema:
            raise config_error(spot, section, "unknown section" + _suggest(section, list(schema)))
        if not isinstance(content, dict):
            raise config_error(spot, section, "must be a table ([section])")
        known = [f.name for f in dataclasses.fields(schema[section])]
        for key, value in content.items():
            key_line = _key_line(lines, section, key)
            spot = f"{path}:{key_line}" if key_line else str(path)
            if key not in known:
                raise config_error(spot, f"{section}.{key}", "unknown key" + _suggest(key, known))
            values[section][key] = value
            where[f"{section}.{key}"] = spot


def _read_env(
    env: Mapping[str, str],
    schema: Mapping[str, type[Any]],
    values: dict[str, dict[str, Any]],
    where: dict[str, str],
) -> None:
    names = {
        f"{ENV_PREFIX}{section}_{f.name}".upper(): (section, f.name)
        for section, cls in schema.items()
        for f in dataclasses.fields(cls)
    }
    for variable in sorted(env):
        if not variable.startswith(ENV_PREFIX) or variable == f"{ENV_PREFIX}CONFIG":
            continue
        target = names.get(variable)
        if target is None:
            raise ConfigurationError(
                f"${variable}: unknown configuration variable" + _suggest(variable, list(names))
            )
        section, key = target
        values[section][key] = _EnvText(env[variable])
        where[f"{section}.{key}"] = f"${variable}"


class _EnvText(str):
    """A value from the environment: text to be converted to the field's type."""


def to_section(cls: type[S], section: str, raw: RawConfig) -> S:
    """Build the dataclass `cls` for `section`, converting and checking every value."""
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        key = f"{section}.{f.name}"
        if f.name not in raw.values.get(section, {}):
            no_default = f.default is dataclasses.MISSING
            if no_default and f.default_factory is dataclasses.MISSING:
                kwargs[f.name] = None  # required-ness is decided by the builders that need it
            continue
        value = raw.values[section][f.name]
        converted = _convert(value, hints[f.name], key, raw.location(key))
        choices = f.metadata.get("choices")
        if choices is not None and converted not in choices:
            raise config_error(
                raw.location(key), key, f"{converted!r} is not one of {', '.join(choices)}"
            )
        kwargs[f.name] = converted
    return cls(**kwargs)


def _type_name(hint: Any) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
    if hint in names:
        return names[hint]
    if hint is Secret:
        return "a string"
    origin = typing.get_origin(hint)
    if origin is list:
        return "a list of strings"
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(hint) if a is not type(None))
    return str(hint)


def _convert(value: Any, hint: Any, key: str, where: str | None) -> Any:
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if (
            isinstance(value, _EnvText)
            and value == ""
            and len(options) < len(typing.get_args(hint))
        ):
            return None
        for option in sorted(options, key=lambda a: a is str or a is Secret):  # text last
            try:
                return _convert(value, option, key, where)
            except ConfigurationError:
                continue
        raise config_error(where, key, f"must be {_type_name(hint)}")
    if origin is list:
        (item,) = typing.get_args(hint)
        if isinstance(value, _EnvText):
            items: list[Any] = [_EnvText(v.strip()) for v in value.split(",") if v.strip()]
        elif isinstance(value, list):
            items = value
        else:
            raise config_error(where, key, f"must be {_type_name(hint)}")
        return [_convert(v, item, key, where) for v in items]
    if hint is bool:
        if isinstance(value, _EnvText) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, _EnvText) and re.fullmatch(r"\s*-?\d+\s*", value):
            return int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, _EnvText):
            try:
                return float(value)
            except ValueError:
                pass
        elif isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif (hint is str or hint is Secret) and isinstance(value, str):
        return Secret(str(value)) if hint is Secret else str(value)
    raise config_error(where, key, f"must be {_type_name(hint)}, not {_shown(value, hint)}")


def _shown(value: Any, hint: Any) -> str:
    if hint is Secret:
        return type(value).__name__  # never echo what might be a secret
    if isinstance(value, _EnvText):
        return repr(str(value))[:60]
    return f"{type(value).__name__} {value!r}"[:60]
