"""The hot path's shortcuts give exactly what the straightforward code gave, for any input.

Header verdicts are cached per name, the path canonicalisation skips NFKC/unquoting for plain ASCII,
plain paths pass the trick checks with one regex, and query stripping returns early when no stripped name can be present. Each is checked here against
the plain implementation it replaced (kept below as the reference), with generated inputs biased
towards the tricky cases (case, `_` spellings, Connection tokens, escapes, non-ASCII).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from urllib.parse import unquote, unquote_to_bytes

from hypothesis import given, settings
from hypothesis import strategies as st

from qlik_sso_middleware.errors import RequestRefused
from qlik_sso_middleware.proxy import guards as paths
from qlik_sso_middleware.proxy.headers import (
    _ALWAYS_STRIPPED,
    HOP_BY_HOP,
    WEBSOCKET_HANDSHAKE,
    RequestHeaderPolicy,
    normalise_header_name,
    response_headers,
)
from qlik_sso_middleware.proxy.request import strip_query_params
from qlik_sso_middleware.target import DEFAULT_BLOCKED

Headers = list[tuple[bytes, bytes]]


def _tokens(headers: Iterable[tuple[bytes, bytes]]) -> set[bytes]:
    tokens: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            tokens.update(normalise_header_name(t) for t in value.split(b",") if t.strip())
    return tokens


def reference_upstream_headers(
    policy: RequestHeaderPolicy,
    browser_headers: Sequence[tuple[bytes, bytes]],
    keep_content_length: bool,
) -> Headers:
    tokens = _tokens(browser_headers)
    out: Headers = [(b"host", b"h")]
    cookies: list[bytes] = []
    for name, value in browser_headers:
        norm = normalise_header_name(name)
        if norm == b"cookie":
            if policy.forward_cookies:
                cookies.extend(policy._allowed_cookies(value))
            continue
        if norm == b"content-length" and keep_content_length:
            out.append((b"content-length", value))
            continue
        stripped = (
            norm in HOP_BY_HOP
            or norm in _ALWAYS_STRIPPED
            or norm in WEBSOCKET_HANDSHAKE
            or norm in policy.identity_headers
            or norm.startswith((b"x-qlik-", b"x-forwarded-", b"proxy-"))
            or norm in tokens
        )
        if not stripped:
            out.append((name.lower(), value))
    if cookies:
        out.append((b"cookie", b"; ".join(cookies)))
    out.extend([(b"x-forwarded-for", b"f"), (b"x-forwarded-proto", b"p")])
    out.append((b"x-forwarded-host", b"h"))
    return out


def reference_response_headers(upstream: Headers) -> Headers:
    tokens = _tokens(upstream)
    return [
        (name.lower(), value)
        for name, value in upstream
        if not (
            name.lower() in HOP_BY_HOP or name.lower() == b"set-cookie" or name.lower() in tokens
        )
    ]


def reference_canonical(sub: str) -> str:
    text = unicodedata.normalize("NFKC", unquote(sub, errors="replace")).casefold()
    segments = text.replace("\\", "/").split("/")
    return "/".join(segment.rstrip(". ") for segment in segments)


def reference_strip(query: bytes, names: frozenset[bytes]) -> bytes:
    if not query:
        return query
    kept = []
    for part in query.split(b"&"):
        name = part.split(b"=", 1)[0]
        if unquote_to_bytes(name.replace(b"+", b" ")).lower() in names:
            continue
        kept.append(part)
    return b"&".join(kept)


_NAMES = st.sampled_from(
    [
        b"accept",
        b"Accept",
        b"cookie",
        b"Cookie",
        b"content-length",
        b"connection",
        b"Connection",
        b"keep-alive",
        b"hdr-usr",
        b"HDR_USR",
        b"x-qlik-user",
        b"X-Forwarded-For",
        b"x_forwarded_host",
        b"proxy-authorization",
        b"upgrade",
        b"te",
        b"x-custom",
        b"X-Custom",
        b"x_custom",
        b"sec-websocket-key",
        b"set-cookie",
        b"authorization",
        b"user-agent",
    ]
)
_VALUES = st.one_of(
    st.sampled_from(
        [
            b"keep-alive",
            b"close",
            b"x-custom",
            b"X_Custom, accept",
            b"upgrade, keep-alive",
            b"host, content-length, cookie",
            b"a=1; b=2",
            b"user-agent",
            b"",
        ]
    ),
    st.binary(max_size=12),
)
_HEADERS = st.lists(st.tuples(_NAMES, _VALUES), max_size=12)


@settings(max_examples=400, deadline=None)
@given(headers=_HEADERS, keep=st.booleans(), forward=st.sampled_from([(), ("a",)]))
def test_upstream_headers_match_the_reference(
    headers: Headers, keep: bool, forward: tuple[str, ...]
) -> None:
    policy = RequestHeaderPolicy.build(["hdr-usr"], forward)
    for _ in range(2):  # the second round runs on cached verdicts
        got = policy.upstream_headers(
            headers,
            host=b"h",
            added=[],
            session_cookie=None,
            forwarded_for=b"f",
            forwarded_proto=b"p",
            keep_content_length=keep,
        )
        assert got == reference_upstream_headers(policy, headers, keep)


@settings(max_examples=400, deadline=None)
@given(headers=_HEADERS)
def test_response_headers_match_the_reference(headers: Headers) -> None:
    assert response_headers(headers) == reference_response_headers(headers)
    assert response_headers(headers) == reference_response_headers(headers)


_PATH_TEXT = st.text(alphabet=st.sampled_from(list("abqrsQRS/._-%2e5cABﬀｑ／．é ")), max_size=16)


@settings(max_examples=500, deadline=None)
@given(sub=_PATH_TEXT)
def test_canonical_path_matches_the_reference(sub: str) -> None:
    try:
        got = paths._canonical(sub)
    except Exception as exc:  # the refusal of '.'/'..' segments must match too
        refused = exc
        got = None
    else:
        refused = None
    expected = reference_canonical(sub)
    segments = (
        unicodedata.normalize("NFKC", unquote(sub, errors="replace"))
        .casefold()
        .replace("\\", "/")
        .split("/")
    )
    if any(s in (".", "..") for s in segments):
        assert refused is not None
    else:
        assert got == expected


_QUERY = st.lists(
    st.sampled_from(
        [b"qlikTicket=abc", b"QLIKTICKET", b"q%6Cikticket=1", b"a=1", b"qlik+ticket=2", b"b", b""]
    ),
    max_size=5,
).map(b"&".join)


@settings(max_examples=300, deadline=None)
@given(query=_QUERY)
def test_strip_query_params_matches_the_reference(query: bytes) -> None:
    names = frozenset({b"qlikticket", b"qlik-csrf-token"})
    assert strip_query_params(query, names) == reference_strip(query, names)


def reference_refuse_tricks(raw_path: bytes) -> str | None:
    """The six scans `PathPolicy.check` ran on every path before its one-regex shortcut."""
    if re.search(rb"[^\x21-\x7e]", raw_path):
        return "Path contains characters that must be percent-encoded"
    if re.search(rb"%(2e|2f|5c|25|3b|[01][0-9a-f]|7f)", raw_path, re.IGNORECASE) or re.search(
        rb"%(?![0-9a-fA-F]{2})", raw_path
    ):
        return "Path contains encoded separators or dots"
    if b"\\" in raw_path or b";" in raw_path or b"//" in raw_path:
        return "Path contains a backslash, ';' or an empty segment"
    probe = b"/" + raw_path + b"/"
    if b"/./" in probe or b"/../" in probe:
        return "Path contains '.' or '..' segments"
    return None


_RAW_PATH = st.lists(
    st.sampled_from(
        [
            *(b"/", b"sso", b"qrs", b"a", b".", b"..", b".x", b"x.", b"%2e", b"%41", b"%", b";"),
            *(b"\\", b"~", b"'", b"(", b"@", b"=", b"+", b" ", b"\x00", b"\x7f", b"\xc3\xa9", b"-"),
        ]
    ),
    max_size=12,
).map(lambda parts: b"/sso/" + b"".join(parts))


@settings(max_examples=1000, deadline=None)
@given(raw_path=_RAW_PATH)
def test_path_check_matches_the_reference(raw_path: bytes) -> None:
    policy = paths.PathPolicy.build("/sso/", DEFAULT_BLOCKED, ())
    expected = reference_refuse_tricks(raw_path)
    try:
        policy.check(raw_path)
    except RequestRefused as exc:
        refused: str | None = str(exc)
    else:
        refused = None
    if expected is not None:
        assert refused == expected
    else:  # past the trick checks, only the mount and blocked surfaces can refuse
        assert refused in (None, "This Qlik surface is not available through the embedding proxy")
