"""`Secret`: a string that never shows itself (keys, passwords, client secrets).

`repr` and `str` print `Secret('********')`; only `reveal()` gives the value, so a secret that ends
up in a log line, an error message or a dataclass repr stays hidden. It sits at the bottom of the
package so configuration and every target kind can use it.
"""

from __future__ import annotations

__all__ = ["Secret"]


class Secret:
    """A secret string (key, password): `repr`/`str` never show it; `reveal()` does."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)
