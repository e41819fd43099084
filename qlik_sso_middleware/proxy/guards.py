"""The checks every request under a mount path passes before anything else, shared by HTTP and
WebSocket so the two cannot drift apart.

Paths: the raw path is checked *as received* (percent-encoding kept) and forwarded byte for byte, so
what we checked is exactly what Qlik parses: no decode-then-forward gap for `%2e%2e` or `%2f` to slip
through. Admin surfaces are matched on the *canonical* path, the most a lenient server could read
into it (percent-decoded, NFKC, case-folded, trailing dots and spaces dropped as Windows does):
`%71rs/`, `qrs./` and a full-width `ｑrs/` all name `qrs/` to some server between us and QRS.

Cross-site: the WebSocket check runs before anything else (cross-site WebSocket hijacking, as in
jupyter-server-proxy CVE-2024-28179); unsafe HTTP methods get the same origin rule. An answer that
*is* a credential (the Qlik Cloud token broker) gets the strictest rule, `check_same_origin`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from ..errors import RequestRefused
from .request import ProxiedRequest

__all__ = ["PathPolicy", "check_cross_site", "check_same_origin"]

# Encoded `.`, `/`, `\` and `%` let a path say one thing to us and another to Qlik; nothing under
# a Qlik prefix needs them. NUL, CR, LF and the other controls are refused outright.
_ENCODED_TRICK = re.compile(rb"%(2e|2f|5c|25|3b|[01][0-9a-f]|7f)", re.IGNORECASE)
_PERCENT_VALID = re.compile(rb"%(?![0-9a-fA-F]{2})")
_NOT_VISIBLE_ASCII = re.compile(rb"[^\x21-\x7e]")
_MAX_PATH = 8192
# Non-empty segments of unreserved and sub-delimiter characters, none starting with a dot: such a
# path passes every trick check (no escapes, controls, `;`, backslash, `//`, `.` or `..` segments),
# so one regex replaces six scans on the common path.
_PLAIN_PATH = re.compile(rb"(?:/[A-Za-z0-9_~!$&'()*+,=:@-][A-Za-z0-9._~!$&'()*+,=:@-]*)+/?")


@dataclass(frozen=True, slots=True)
class PathPolicy:
    """Checks a request path under a mount prefix.

    `blocked` and `allowed` are prefixes relative to the mount path (`qrs/`), compared
    case-insensitively because Qlik routes `QRS/` like `qrs/`. `allowed` wins over `blocked`.
    """

    mount: str
    blocked: tuple[str, ...]
    allowed: tuple[str, ...] = ()

    @classmethod
    def build(cls, mount: str, blocked: Iterable[str], allowed: Iterable[str]) -> PathPolicy:
        return cls(
            mount,
            tuple(b.lower().lstrip("/") for b in blocked),
            tuple(a.lower().lstrip("/") for a in allowed),
        )

    def check(self, raw_path: bytes) -> str:
        """Validate `raw_path` (which starts with the mount); return the sub-path after the mount.

        Raises `RequestRefused` (400 for malformed or tricky paths, 403 for blocked surfaces).
        """
        if len(raw_path) > _MAX_PATH:
            raise RequestRefused("Path too long", status_code=414)
        if not _PLAIN_PATH.fullmatch(raw_path):
            _refuse_tricks(raw_path)
        path = raw_path.decode("ascii")
        if not path.startswith(self.mount):
            raise RequestRefused("Path is outside the Qlik prefix")
        sub = path[len(self.mount) :]
        folded = _canonical(sub)
        if not any(folded.startswith(a) for a in self.allowed):
            for blocked in self.blocked:
                if folded.startswith(blocked) or folded + "/" == blocked:
                    raise RequestRefused(
                        "This Qlik surface is not available through the embedding proxy",
                        status_code=403,
                    )
        return sub


def _refuse_tricks(raw_path: bytes) -> None:
    """Raise `RequestRefused` (400) if `raw_path` could mean one thing to us and another to Qlik."""
    if _NOT_VISIBLE_ASCII.search(raw_path):
        raise RequestRefused("Path contains characters that must be percent-encoded")
    if _ENCODED_TRICK.search(raw_path) or _PERCENT_VALID.search(raw_path):
        raise RequestRefused("Path contains encoded separators or dots")
    if b"\\" in raw_path or b";" in raw_path or b"//" in raw_path:
        raise RequestRefused("Path contains a backslash, ';' or an empty segment")
    probe = b"/" + raw_path + b"/"  # a segment is '.' or '..' iff '/./' or '/../' occurs
    if b"/./" in probe or b"/../" in probe:
        raise RequestRefused("Path contains '.' or '..' segments")


def _canonical(sub: str) -> str:
    """`sub` as the most lenient server could read it, for comparing against blocked prefixes."""
    if sub.isascii() and "%" not in sub:
        # Same result, 10x cheaper: nothing to unquote, NFKC leaves ASCII alone, and ASCII
        # casefolds to its lower case.
        text = sub.lower()
    else:
        text = unicodedata.normalize("NFKC", unquote(sub, errors="replace")).casefold()
    # NFKC turns full-width `／` and `．` into `/` and `.`, so segments are split after it.
    text = text.replace("\\", "/")
    probe = "/" + text + "/"
    if "/./" in probe or "/../" in probe:
        raise RequestRefused("Path contains '.' or '..' segments")
    if "./" not in probe and " /" not in probe:
        return text  # no segment ends in '.' or ' ': nothing to strip
    return "/".join(segment.rstrip(". ") for segment in text.split("/"))


_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _origin_allowed(origin: str, req: ProxiedRequest, allowed: frozenset[str]) -> bool:
    folded = origin.strip().lower()
    if folded in allowed:
        return True
    parts = urlsplit(folded)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False  # "null" (sandboxed or file pages) and anything malformed
    # Same host and port as the request: the app's own origin. The scheme is not compared because
    # TLS is often terminated in front of the app; a different scheme on the same host and port
    # is not something a third-party site can present.
    return bool(parts.netloc == req.host.lower())


def check_cross_site(
    req: ProxiedRequest,
    allowed_origins: frozenset[str],
    *,
    websocket: bool,
    allow_missing_origin: bool = False,
) -> None:
    """Raise `RequestRefused` (403) for a cross-site WebSocket or unsafe request."""
    origins = [v for k, v in req.headers if k == b"origin"]
    if len(origins) > 1:
        raise RequestRefused("More than one Origin header", status_code=403)
    origin = origins[0].decode("latin-1") if origins else None
    if websocket:
        if origin is None:
            if allow_missing_origin:
                return
            raise RequestRefused("WebSocket without Origin refused", status_code=403)
        if not _origin_allowed(origin, req, allowed_origins):
            raise RequestRefused("WebSocket from a foreign origin refused", status_code=403)
        return
    if req.method in _SAFE_METHODS:
        return
    site = req.header(b"sec-fetch-site")
    if origin is not None:
        if not _origin_allowed(origin, req, allowed_origins):
            raise RequestRefused("Cross-site request refused", status_code=403)
        return
    if site is not None and site.lower() not in (b"same-origin", b"none"):
        raise RequestRefused("Cross-site request refused", status_code=403)


def check_same_origin(req: ProxiedRequest, allowed_origins: frozenset[str]) -> None:
    """Raise `RequestRefused` unless `req` is a POST that no other site's page could have sent.

    For answers whose body is a credential (an access token): a cross-site page must not even be
    able to *trigger* one, whatever the method. A browser always names the page's origin on a
    POST (`Origin`) and modern ones the relation (`Sec-Fetch-Site`): the origin must be the
    app's own (or listed in `allowed_origins`) and the relation `same-origin` (or the origin
    listed). A request with neither header comes from no browser (a server-side client holding
    the app's session), which no other site can make a browser send.
    """
    if req.method != "POST":
        raise RequestRefused("Ask for an access token with POST", status_code=405)
    origins = [v for k, v in req.headers if k == b"origin"]
    if len(origins) > 1:
        raise RequestRefused("More than one Origin header", status_code=403)
    origin = origins[0].decode("latin-1") if origins else None
    if origin is not None and not _origin_allowed(origin, req, allowed_origins):
        raise RequestRefused("Cross-site request refused", status_code=403)
    site = req.header(b"sec-fetch-site")
    listed = origin is not None and origin.strip().lower() in allowed_origins
    if site is not None and site.lower() != b"same-origin" and not listed:
        raise RequestRefused("Cross-site request refused", status_code=403)
