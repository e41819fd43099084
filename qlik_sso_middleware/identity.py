"""`QlikIdentity`: who the app says the user is, in Qlik's terms (`USERDIRECTORY\\userid`).

Validation happens here, once, before anything leaves the process: an identity that reaches an auth
strategy is known to be safe to put in a header, a JSON body or a cache key.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .errors import InvalidIdentity

__all__ = ["MAX_PART_LENGTH", "QlikIdentity", "literal_pattern"]

#: Upper bound for a user directory or user id; Qlik has no documented limit, but a header value
#: or cache key of many KiB is an attack, not a user.
MAX_PART_LENGTH = 256
_MAX_ATTRIBUTES = 64
_MAX_ATTRIBUTE_LENGTH = 1024
_PLACEHOLDER = re.compile(r"\$ud|\$id")


def literal_pattern(pattern: str) -> str:
    """A dynamic user-directory pattern as the text a header value must have.

    The QMC and the QRS write the pattern with the backslash escaped: `$ud\\\\$id` (what an
    administrator sees and copies) stands for one literal backslash, so the header value is
    `ACME\\alice`. The unescaped form `$ud\\$id` means the same and keeps working: every `\\\\` becomes
    one `\\`, a lone `\\` stays as it is.
    """
    return pattern.replace("\\\\", "\\")


def _check_text(name: str, value: object, *, limit: int, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise InvalidIdentity(f"{name} must be a string, not {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise InvalidIdentity(f"{name} is empty or whitespace only")
    if value != value.strip():
        raise InvalidIdentity(f"{name} has leading or trailing whitespace")
    if len(value) > limit:
        raise InvalidIdentity(f"{name} is longer than {limit} characters")
    if value.isascii() and value.isprintable():
        return value  # the common case, 10x cheaper: printable ASCII holds no control character
    for ch in value:
        # Cc covers CR, LF, NUL, DEL; Cf/Zl/Zp are invisible controls that fool log readers.
        if unicodedata.category(ch) in {"Cc", "Cf", "Zl", "Zp", "Cs"}:
            raise InvalidIdentity(f"{name} contains a control character (U+{ord(ch):04X})")
    return value


@dataclass(frozen=True, slots=True)
class QlikIdentity:
    """A validated Qlik user: directory, id and optional attributes.

    `attributes` is a tuple of `(name, value)` pairs because Qlik allows a name to repeat
    (`Group=Sales`, `Group=EMEA`). Construct it with any mapping or iterable of pairs.
    """

    user_directory: str
    user_id: str
    attributes: tuple[tuple[str, str], ...] = field(default=())

    def __init__(
        self,
        user_directory: str,
        user_id: str,
        attributes: Mapping[str, str | Iterable[str]] | Iterable[tuple[str, str]] = (),
    ) -> None:
        ud = _check_text("user_directory", user_directory, limit=MAX_PART_LENGTH)
        uid = _check_text("user_id", user_id, limit=MAX_PART_LENGTH)
        for name, value in (("user_directory", ud), ("user_id", uid)):
            if "\\" in value:
                raise InvalidIdentity(f"{name} must not contain a backslash")
        object.__setattr__(self, "user_directory", ud)
        object.__setattr__(self, "user_id", uid)
        object.__setattr__(self, "attributes", _normalise_attributes(attributes))

    @classmethod
    def parse(
        cls,
        value: str,
        attributes: Mapping[str, str | Iterable[str]] | Iterable[tuple[str, str]] = (),
    ) -> QlikIdentity:
        """Parse `DIRECTORY\\user` (exactly one backslash)."""
        if not isinstance(value, str) or value.count("\\") != 1:
            raise InvalidIdentity(
                "a Qlik identity is written DIRECTORY\\userid, with one backslash"
            )
        ud, uid = value.split("\\")
        return cls(ud, uid, attributes)

    def __str__(self) -> str:
        return f"{self.user_directory}\\{self.user_id}"

    @property
    def is_ascii(self) -> bool:
        return (self.user_directory + self.user_id).isascii()

    def header_value(self, pattern: str = "$ud\\$id") -> str:
        """The identity as a header value for a header virtual proxy.

        `pattern` is Qlik's dynamic user-directory pattern, as the QMC shows it (`$ud\\\\$id`) or
        unescaped (`$ud\\$id`), both giving `ACME\\alice` (see `literal_pattern`); or just `$id`
        for a static-directory VP. Header auth is US-ASCII only in Qlik.
        """
        if not self.is_ascii:
            raise InvalidIdentity(
                "Qlik header authentication accepts US-ASCII only; this user name is not ASCII "
                "(use the ticket or session API strategy for such users)"
            )
        pattern = literal_pattern(pattern)
        if pattern == "$ud\\$id":
            return f"{self.user_directory}\\{self.user_id}"  # the usual pattern, no regex
        # One pass: a `$id` inside the directory is text, not a placeholder to expand.
        values = {"$ud": self.user_directory, "$id": self.user_id}
        return _PLACEHOLDER.sub(lambda m: values[m.group(0)], pattern)

    def user_key(self) -> str:
        """A stable, case-preserving key for this user (Qlik compares directory and id as given)."""
        return f"{self.user_directory}\\{self.user_id}"

    @property
    def fingerprint(self) -> str:
        """A digest of the attributes, in any order (`""` without attributes).

        Qlik reads attributes (groups, roles: what section access and security rules see) only when
        a session is made, so a cached session is kept only while this stays the same.
        """
        if not self.attributes:
            return ""
        canonical = json.dumps(sorted(self.attributes), separators=(",", ":")).encode("utf-8")
        return hashlib.sha256(canonical).hexdigest()[:32]

    def attribute_list(self) -> list[dict[str, str]]:
        """Attributes in the QPS API shape: `[{"Group": "Sales"}, {"Group": "EMEA"}]`."""
        return [{name: value} for name, value in self.attributes]


def _normalise_attributes(
    attributes: Mapping[str, str | Iterable[str]] | Iterable[tuple[str, str]],
) -> tuple[tuple[str, str], ...]:
    pairs: list[tuple[str, str]] = []
    if isinstance(attributes, Mapping):
        for name, values in attributes.items():
            if isinstance(values, str):
                pairs.append((name, values))
            else:
                pairs.extend((name, v) for v in values)
    else:
        for item in attributes:
            if not isinstance(item, tuple) or len(item) != 2:
                raise InvalidIdentity("attributes must be (name, value) pairs")
            pairs.append(item)
    if len(pairs) > _MAX_ATTRIBUTES:
        raise InvalidIdentity(f"more than {_MAX_ATTRIBUTES} attributes")
    for name, value in pairs:
        _check_text("attribute name", name, limit=_MAX_ATTRIBUTE_LENGTH)
        _check_text("attribute value", value, limit=_MAX_ATTRIBUTE_LENGTH, allow_empty=True)
    return tuple(pairs)
