"""Header sanitising and rewriting: the one code path HTTP and WebSocket forwarding share.

Everything a browser sends is hostile until checked. `RequestHeaderPolicy.upstream_headers` keeps only
what Qlik may see from a browser and adds what the middleware vouches for (identity header, Qlik
session cookie, X-Forwarded-*). `response_headers` keeps only what a browser may see from Qlik.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = [
    "HOP_BY_HOP",
    "WEBSOCKET_HANDSHAKE",
    "RequestHeaderPolicy",
    "normalise_header_name",
    "response_headers",
]

Headers = list[tuple[bytes, bytes]]

#: RFC 9110 §7.6.1 connection-specific fields, plus the legacy ones proxies must not forward.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)

# WebSocket handshake fields are made by the upstream WebSocket client itself.
WEBSOCKET_HANDSHAKE = frozenset(
    {
        b"sec-websocket-key",
        b"sec-websocket-version",
        b"sec-websocket-extensions",
        b"sec-websocket-protocol",
        b"sec-websocket-accept",
    }
)

# Never from a browser: credentials for Qlik and claims about the request's path through proxies.
_ALWAYS_STRIPPED = frozenset(
    {b"authorization", b"cookie", b"forwarded", b"host", b"x-real-ip", b"content-length"}
)


# RFC 6265 §4.1.1 cookie-value. No space, comma, quote inside, semicolon or backslash: servers that
# split `Cookie` on ',' (RFC 2965, older .NET) would otherwise read `lang=de, X-Qlik-Session-x=<id>`
# as a second cookie, a Qlik session chosen by the browser.
_COOKIE_VALUE = re.compile(
    rb'[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*|"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*"'
)


# What `RequestHeaderPolicy._verdict` decides for a header name.
_KEEP, _STRIP, _COOKIE, _CONTENT_LENGTH, _CONNECTION = range(5)
_MAX_VERDICTS = 512
# `Date` and `Server` are the answering server's own (ASGI servers add theirs; two `Date` fields are
# invalid) and `Server` would advertise Qlik's internals to the browser.
_RESPONSE_DROPPED = HOP_BY_HOP | {b"set-cookie", b"date", b"server"}
_RESPONSE_NAMES: dict[bytes, bytes] = {}
# `Connection` values that name no other field (what browsers send), so there is nothing to strip.
_PLAIN_CONNECTION = frozenset({b"keep-alive", b"close"})


def normalise_header_name(name: bytes) -> bytes:
    """Fold the spellings servers treat alike: case, and `_` for `-` (CVE-2025-64484 class)."""
    return name.strip().lower().replace(b"_", b"-")


def _connection_tokens(headers: Iterable[tuple[bytes, bytes]]) -> set[bytes]:
    tokens: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            tokens.update(normalise_header_name(t) for t in value.split(b",") if t.strip())
    return tokens


@dataclass(frozen=True, slots=True)
class RequestHeaderPolicy:
    """What to strip from browser requests, built once per middleware.

    `identity_headers`: every header name any configured strategy uses for identity; stripped in
    every spelling. `forward_cookies`: app cookie names allowed through to Qlik (none by default:
    the app's own session and CSRF cookies must never reach Qlik).
    """

    identity_headers: frozenset[bytes]
    forward_cookies: frozenset[str] = frozenset()
    # Verdict per header name as received (the same few dozen names on every request), so the
    # normalising and prefix tests run once per name, not once per header. Bounded: names are
    # browser-controlled.
    _verdicts: dict[bytes, tuple[int, bytes]] = field(
        default_factory=dict, compare=False, repr=False
    )

    @classmethod
    def build(
        cls, identity_headers: Iterable[str], forward_cookies: Iterable[str] = ()
    ) -> RequestHeaderPolicy:
        return cls(
            frozenset(normalise_header_name(h.encode("latin-1")) for h in identity_headers),
            frozenset(forward_cookies),
        )

    def _is_stripped(self, norm: bytes, connection_tokens: set[bytes]) -> bool:
        return (
            norm in HOP_BY_HOP
            or norm in _ALWAYS_STRIPPED
            or norm in WEBSOCKET_HANDSHAKE
            or norm in self.identity_headers
            or norm.startswith(b"x-qlik-")
            or norm.startswith(b"x-forwarded-")
            or norm.startswith(b"proxy-")
            or norm in connection_tokens
        )

    def _verdict(self, name: bytes) -> tuple[int, bytes]:
        verdict = self._verdicts.get(name)
        if verdict is None:
            norm = normalise_header_name(name)
            if norm == b"cookie":
                verdict = (_COOKIE, norm)
            elif norm == b"content-length":
                verdict = (_CONTENT_LENGTH, norm)
            elif norm == b"connection":
                verdict = (_CONNECTION, norm)
            elif self._is_stripped(norm, set()):
                verdict = (_STRIP, norm)
            else:
                verdict = (_KEEP, name.lower())
            if len(self._verdicts) < _MAX_VERDICTS:
                self._verdicts[name] = verdict
        return verdict

    def upstream_headers(
        self,
        browser_headers: Sequence[tuple[bytes, bytes]],
        *,
        host: bytes,
        added: Sequence[tuple[bytes, bytes]],
        session_cookie: bytes | None,
        forwarded_for: bytes,
        forwarded_proto: bytes,
        keep_content_length: bool = True,
    ) -> Headers:
        """The request headers Qlik receives for a browser request."""
        out: Headers = [(b"host", host)]
        cookies: list[bytes] = []
        connection: list[tuple[bytes, bytes]] = []
        verdicts = self._verdicts
        for name, value in browser_headers:
            action, norm = verdicts.get(name) or self._verdict(name)
            if action == _KEEP:
                out.append((norm, value))
            elif action == _COOKIE:
                if self.forward_cookies:
                    cookies.extend(self._allowed_cookies(value))
            elif action == _CONTENT_LENGTH:
                if keep_content_length:
                    out.append((b"content-length", value))
            elif action == _CONNECTION:
                connection.append((name, value))
        if connection and any(v.strip().lower() not in _PLAIN_CONNECTION for _, v in connection):
            # Fields the browser named in `Connection` are hop-by-hop too (RFC 9110 §7.6.1).
            # `keep-alive`, `close` and other hop-by-hop names are stripped anyway.
            tokens = _connection_tokens(connection) - HOP_BY_HOP - {b"close"}
            if tokens:
                out[1:] = [
                    (k, v)
                    for k, v in out[1:]
                    if k == b"content-length" or normalise_header_name(k) not in tokens
                ]
        if session_cookie is not None:
            cookies.append(session_cookie)
        if cookies:
            out.append((b"cookie", b"; ".join(cookies)))
        out.extend(added)
        out.append((b"x-forwarded-for", forwarded_for))
        out.append((b"x-forwarded-proto", forwarded_proto))
        out.append((b"x-forwarded-host", host))
        return out

    def forwarded_cookies(self, browser_headers: Sequence[tuple[bytes, bytes]]) -> list[bytes]:
        """The allow-listed app cookies among `browser_headers`, as `upstream_headers` forwards
        them (for a front proxy that builds Qlik's `Cookie` from the app's answer)."""
        if not self.forward_cookies:
            return []
        kept: list[bytes] = []
        for name, value in browser_headers:
            if normalise_header_name(name) == b"cookie":
                kept.extend(self._allowed_cookies(value))
        return kept

    def _allowed_cookies(self, header: bytes) -> list[bytes]:
        kept = []
        for part in header.split(b";"):
            name, sep, value = part.strip().partition(b"=")
            if not sep or not _COOKIE_VALUE.fullmatch(value):
                continue
            text = name.decode("latin-1")
            # A browser-supplied Qlik session cookie is never forwarded, even if allow-listed.
            if text in self.forward_cookies and not text.lower().startswith("x-qlik-session"):
                kept.append(part.strip())
        return kept


def response_headers(upstream: Iterable[tuple[bytes, bytes]]) -> Headers:
    """Headers a browser may see from Qlik: no hop-by-hop fields, never a `Set-Cookie`, and not
    Qlik's `Date`/`Server` (the app's server sends its own).

    Qlik's cookies (its session above all) stay server-side; the browser only ever holds the app's
    own session.
    """
    out: Headers = []
    connection = False
    for name, value in upstream:
        norm = _RESPONSE_NAMES.get(name)
        if norm is None:
            norm = name.lower()
            if len(_RESPONSE_NAMES) < _MAX_VERDICTS:
                _RESPONSE_NAMES[name] = norm
        if norm in _RESPONSE_DROPPED:
            connection = connection or norm == b"connection"
            if norm == b"connection":
                out.append((norm, value))  # read below, then removed
            continue
        out.append((norm, value))
    if connection:
        tokens = _connection_tokens(out)
        out = [(k, v) for k, v in out if k != b"connection" and k not in tokens]
    return out
