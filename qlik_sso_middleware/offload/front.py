"""`FrontProxy`: what the app knows about the nginx or Caddy in front of it (offload mode).

The auth endpoint hands out Qlik session cookies, so it must answer the front proxy and nobody
else. A browser can reach it: through the front proxy's own pass-through to the app (`location /`
of most configurations), or straight at the app's port when that is exposed. The front proxy
proves itself with a shared secret header that only it sets (and that it clears on everything it
passes on from browsers); the generated configuration does both. Listening on a loopback or private
address is the second wall, not the first: a browser on the same host reaches loopback too.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..errors import ConfigurationError

__all__ = ["SECRET_HEADER", "FrontProxy"]

#: The header carrying the shared secret on requests from the front proxy to the app.
SECRET_HEADER = b"x-qlik-sso-secret"
_MIN_SECRET = 32
# Characters that need no quoting in an nginx or Caddy configuration (base64 and URL-safe tokens).
_SECRET = re.compile(r"[A-Za-z0-9._~+/=-]+")


@dataclass(frozen=True, slots=True)
class FrontProxy:
    """The front proxy of offload mode.

    - `secret`: shared with the front proxy's configuration, at least 32 characters of
      `A-Z a-z 0-9 . _ ~ + / = -` (so that it needs no quoting in either server's configuration) (`python -c "import secrets; print(secrets.token_urlsafe(32))"`); never shown in a
      `repr` or a log line.
    - `auth_path`: where the app answers the auth sub-request (not under a Qlik mount path).
    """

    secret: str = field(repr=False)
    auth_path: str = "/_qlik_sso/auth"
    _secret_bytes: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.secret) < _MIN_SECRET or not _SECRET.fullmatch(self.secret):
            raise ConfigurationError(
                f"must be at least {_MIN_SECRET} characters of A-Z a-z 0-9 . _ ~ + / = - "
                '(python -c "import secrets; print(secrets.token_urlsafe(32))")',
                field="secret",
            )
        if not self.auth_path.startswith("/") or "?" in self.auth_path:
            raise ConfigurationError("must be a path starting with '/'", field="auth_path")
        object.__setattr__(self, "_secret_bytes", self.secret.encode("ascii"))

    def sent(self, headers: Sequence[tuple[bytes, bytes]]) -> bool:
        """Did the front proxy send this request: exactly one secret header, and the right one?
        (Compared in constant time; two headers are refused, whatever they say.)"""
        values = [v for k, v in headers if k == SECRET_HEADER]
        return len(values) == 1 and hmac.compare_digest(values[0], self._secret_bytes)
