"""Sealing: authenticated encryption of stored values under a rotating key list.

A shared store (Redis) is read by more people and tools than the app: backups, `MONITOR`, a
co-tenant with a broad ACL. Whatever is sealed here is useless to them: AES-256-GCM hides it and
authenticates it, and the *binding* (the store key the value lives under) is associated data, so a
value copied to another user's key does not open there.

Blob layout (version 1)::

    0x01 | key id (4 bytes) | nonce (12 bytes) | ciphertext + GCM tag (16 bytes)

The key id is the first 4 bytes of SHA-256 over a label and the key; it says which key to try
without revealing anything usable about it. Rotation follows itsdangerous: the newest key (first in
the list) seals, every key in the list opens. To rotate, prepend a new key everywhere, wait one
session TTL, then drop the old key.

Hazard: nonces are random (96 bits), and NIST SP 800-38D allows at most 2**32 seals per key with
random nonces; rotate keys long before any one key has sealed billions of values.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
from collections.abc import Iterable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors import ConfigurationError

__all__ = ["KEY_LENGTH", "Sealer"]

logger = logging.getLogger(__name__)

#: Length of a sealing key in bytes (AES-256).
KEY_LENGTH = 32
_VERSION = b"\x01"
_KEY_ID_LENGTH = 4
_NONCE_LENGTH = 12
_TAG_LENGTH = 16
_HEADER_LENGTH = len(_VERSION) + _KEY_ID_LENGTH + _NONCE_LENGTH
_KEY_ID_LABEL = b"qlik-sso-middleware sealing key id\x00"

# Causes of a value that does not open; each is logged once per Sealer, at WARNING.
_MALFORMED = "malformed (not a sealed value, or sealed by an incompatible version)"
_UNKNOWN_KEY = "sealed by a key that is not in the key list (removed, or never configured here)"
_NOT_AUTHENTIC = "does not authenticate (tampered with, or copied from another store key)"


def _decode_key(value: bytes | str, field: str) -> bytes:
    if isinstance(value, bytes):
        raw = value
    elif isinstance(value, str):
        text = value.strip().replace("+", "-").replace("/", "_")
        try:
            raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
        except (binascii.Error, ValueError):
            # The message must not echo the value: it is (meant to be) a secret.
            raise ConfigurationError(
                "is not valid base64; generate a key with Sealer.generate_key()", field=field
            ) from None
    else:
        raise ConfigurationError(
            f"must be bytes or a base64 string, not {type(value).__name__}", field=field
        )
    if len(raw) != KEY_LENGTH:
        raise ConfigurationError(
            f"must be {KEY_LENGTH} random bytes (got {len(raw)}); "
            "generate a key with Sealer.generate_key()",
            field=field,
        )
    return raw


def _key_id(key: bytes) -> bytes:
    return hashlib.sha256(_KEY_ID_LABEL + key).digest()[:_KEY_ID_LENGTH]


def _binding(value: bytes | str) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value


class Sealer:
    """Seal and open byte strings with AES-256-GCM under a rotating key list.

    `keys` is newest first: `keys[0]` seals, all of them open. Each key is 32 bytes, given as
    `bytes` or as a base64 string (standard or URL-safe alphabet, padding optional). An empty list,
    a key of the wrong length and a repeated key raise `ConfigurationError` naming `field[i]`.

    `open` never raises on bad input: a value that is malformed, sealed by an unknown key, tampered
    with or bound to another key returns `None`, and each of these causes is logged once per
    `Sealer` at WARNING (without key material or the value), so a misconfigured rotation is visible
    without flooding the log.
    """

    __slots__ = ("_aeads", "_logged", "_sealing_id")

    def __init__(self, keys: Iterable[bytes | str], *, field: str = "sealing_keys") -> None:
        if isinstance(keys, bytes | str):
            raise ConfigurationError("must be a list of keys, not a single key", field=field)
        decoded = [_decode_key(key, f"{field}[{i}]") for i, key in enumerate(keys)]
        if not decoded:
            raise ConfigurationError(
                "at least one key is required; generate one with Sealer.generate_key()",
                field=field,
            )
        self._aeads: dict[bytes, list[AESGCM]] = {}
        seen: set[bytes] = set()
        for i, key in enumerate(decoded):
            if key in seen:
                raise ConfigurationError("repeats an earlier key", field=f"{field}[{i}]")
            seen.add(key)
            # Distinct keys may share a 4-byte id (p ~ n**2 / 2**33); open tries each of them.
            self._aeads.setdefault(_key_id(key), []).append(AESGCM(key))
        self._sealing_id = _key_id(decoded[0])
        self._logged: set[str] = set()

    def __repr__(self) -> str:
        ids = ", ".join(kid.hex() for kid in self._aeads)
        return f"Sealer(key_ids=[{ids}])"

    @staticmethod
    def generate_key() -> str:
        """A new random key, URL-safe base64 (44 characters), for configuration files."""
        return base64.urlsafe_b64encode(os.urandom(KEY_LENGTH)).decode("ascii")

    def seal(self, binding: bytes | str, data: bytes) -> bytes:
        """Encrypt `data` with the newest key; it opens only under the same `binding`."""
        header = _VERSION + self._sealing_id + os.urandom(_NONCE_LENGTH)
        aead = self._aeads[self._sealing_id][0]
        nonce = header[-_NONCE_LENGTH:]
        return header + aead.encrypt(nonce, data, header[:-_NONCE_LENGTH] + _binding(binding))

    def open(self, binding: bytes | str, blob: bytes) -> bytes | None:
        """The data sealed under `binding`, or `None` if `blob` does not open (see class doc)."""
        if len(blob) < _HEADER_LENGTH + _TAG_LENGTH or blob[:1] != _VERSION:
            self._miss(_MALFORMED)
            return None
        key_id = blob[1 : 1 + _KEY_ID_LENGTH]
        aeads = self._aeads.get(key_id)
        if aeads is None:
            self._miss(_UNKNOWN_KEY)
            return None
        nonce = blob[_HEADER_LENGTH - _NONCE_LENGTH : _HEADER_LENGTH]
        associated = blob[: 1 + _KEY_ID_LENGTH] + _binding(binding)
        for aead in aeads:
            try:
                return aead.decrypt(nonce, blob[_HEADER_LENGTH:], associated)
            except InvalidTag:
                continue
        self._miss(_NOT_AUTHENTIC)
        return None

    def _miss(self, cause: str) -> None:
        if cause not in self._logged:
            self._logged.add(cause)
            logger.warning(
                "a stored value was ignored: %s; further values with this cause are ignored "
                "silently",
                cause,
            )
