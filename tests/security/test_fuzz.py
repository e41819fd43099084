"""Fuzzing: the header sanitiser, path checker and identity validator as pure functions, then
random requests against the running middleware (no 500 of ours, no crash, nothing unsafe out)."""

from __future__ import annotations

import asyncio
import socket
import threading
import unicodedata
from collections.abc import Iterator
from urllib.parse import unquote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qlik_sso_middleware.errors import InvalidIdentity, RequestRefused
from qlik_sso_middleware.identity import MAX_PART_LENGTH, QlikIdentity
from qlik_sso_middleware.proxy.guards import PathPolicy
from qlik_sso_middleware.proxy.headers import RequestHeaderPolicy, normalise_header_name
from qlik_sso_middleware.target import DEFAULT_BLOCKED
from qlik_sso_middleware.testing import QlikSimulator, VirtualProxy

from ..apps import build_app
from ..servers import serve
from .helpers import build_request, parse_response

FUZZ = settings(max_examples=300, deadline=None, database=None)

# -- header sanitiser --------------------------------------------------------------------------------

DANGEROUS = [
    "hdr-usr",
    "x-qlik-user",
    "x-qlik-security",
    "x-qlik-proxysession",
    "x-qlik-session",
    "x-forwarded-for",
    "x-forwarded-host",
    "forwarded",
    "authorization",
    "proxy-authorization",
    "cookie",
    "host",
    "connection",
    "transfer-encoding",
    "te",
    "upgrade",
    "sec-websocket-key",
    "content-length",
    "x-real-ip",
]


@st.composite
def header_name(draw: st.DrawFn) -> bytes:
    base = draw(
        st.one_of(
            st.sampled_from(DANGEROUS), st.from_regex(r"[a-z][a-z0-9-]{0,12}", fullmatch=True)
        )
    )
    # Every spelling a server might fold: case per letter, `_` for `-`.
    chars = [
        (c.upper() if draw(st.booleans()) else c)
        if c.isalpha()
        else ("_" if c == "-" and draw(st.booleans()) else c)
        for c in base
    ]
    return "".join(chars).encode("latin-1")


header_value = st.one_of(
    st.sampled_from([b"ACME\\mallory", b"", b"hdr-usr, x-qlik-user", b"X-Qlik-Session-sso=evil"]),
    st.binary(max_size=40),
)
POLICY = RequestHeaderPolicy.build(["hdr-usr"], ["lang"])
OURS = b"X-Qlik-Session-sso-HTTP=our-session"


@FUZZ
@given(headers=st.lists(st.tuples(header_name(), header_value), max_size=12))
def test_sanitiser_never_lets_a_credential_through(headers: list[tuple[bytes, bytes]]) -> None:
    out = POLICY.upstream_headers(
        headers,
        host=b"app.example",
        added=[(b"hdr-usr", b"ACME\\alice")],
        session_cookie=OURS,
        forwarded_for=b"10.0.0.1",
        forwarded_proto=b"https",
    )
    names = [normalise_header_name(k) for k, _ in out]
    assert out[0] == (b"host", b"app.example")
    assert names.count(b"host") == 1
    assert [v for k, v in out if normalise_header_name(k) == b"hdr-usr"] == [b"ACME\\alice"]
    assert [v for k, v in out if normalise_header_name(k) == b"x-forwarded-for"] == [b"10.0.0.1"]
    assert names.count(b"cookie") == 1
    cookie = dict(out)[b"cookie"]
    assert cookie.lower().count(b"x-qlik-session") == 1 and cookie.endswith(OURS)
    for part in cookie.split(b";"):
        assert part.strip().split(b"=", 1)[0] in (b"lang", b"X-Qlik-Session-sso-HTTP")
    for name in names:
        assert not name.startswith((b"x-qlik-", b"proxy-", b"sec-websocket-"))
        assert name not in (b"authorization", b"forwarded", b"x-real-ip", b"transfer-encoding")
        assert name not in (b"connection", b"te", b"upgrade", b"keep-alive")
    forwarded = {n for n in names if n.startswith(b"x-forwarded-")}
    assert forwarded <= {b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host"}
    assert len(names) - len(set(names)) <= sum(
        1 for k, _ in headers if k.lower() == b"content-length"
    ) + len(headers)


# -- path checker ------------------------------------------------------------------------------------

PIECES = [
    "/",
    ".",
    "..",
    "%2e",
    "%2E",
    "%2f",
    "%5c",
    "%25",
    "%00",
    "%0a",
    "%3b",
    ";",
    "\\",
    "//",
    "q",
    "r",
    "s",
    "Q",
    "R",
    "S",
    "m",
    "c",
    "%71",
    "%72",
    "%73",
    "%51",
    "%4d",
    "%43",
    "qrs",
    "QMC",
    "dev-hub",
    "hub",
    "app",
    "a",
    "~",
    "-",
    "_",
    "%",
    "%2",
    "%ef%bc%8e",
    "%ef%bd%91",
    "%c0%ae",
    " ",
    "é",
    "%20",
    "?",
    "#",
]
PATHS = PathPolicy.build("/sso/", DEFAULT_BLOCKED, ())


def most_lenient_reading(sub: str) -> str:
    text = sub
    for _ in range(3):  # decode as often as any layer might
        text = unquote(text)
    text = unicodedata.normalize("NFKC", text).casefold().replace("\\", "/")
    return "/".join(s.rstrip(". ") for s in text.split("/"))


# Spellings of the admin surfaces' first segment, so the fuzz starts where the danger is.
HEADS = [
    "",
    "qrs",
    "QrS",
    "%71rs",
    "q%72s",
    "%51%52%53",
    "qrs.",
    "qrs..",
    "qrs%20",
    "qrs%2e",
    "%ef%bd%91rs",
    "%EF%BD%91%EF%BD%92%EF%BD%93",
    "qmc",
    "%51MC",
    "q%6dc",
    "dev-hub",
    "%64ev-hub",
    "dev%2dhub",
    "hub/..",
    "hub/%2e%2e",
    "%ef%bc%8e%ef%bc%8e",
]


@FUZZ
@given(
    head=st.sampled_from(HEADS),
    pieces=st.lists(st.sampled_from(PIECES), max_size=10),
    raw=st.binary(max_size=8),
)
def test_path_checker_accepts_only_confined_paths(head: str, pieces: list[str], raw: bytes) -> None:
    path = ("/sso/" + head + "".join(pieces)).encode("utf-8") + raw
    try:
        sub = PATHS.check(path)
    except RequestRefused as exc:
        refused = exc.status_code
    else:
        refused = 0
    if refused:
        assert refused in (400, 403, 414)
        return
    assert path == b"/sso/" + sub.encode("ascii")
    assert all(0x21 <= b <= 0x7E for b in path)
    lenient = most_lenient_reading(sub)
    segments = lenient.split("/")
    assert ".." not in segments and "." not in segments
    for blocked in DEFAULT_BLOCKED:
        assert not (lenient + "/").startswith(blocked), f"{path!r} reads as {lenient!r}"


# -- identity validator ------------------------------------------------------------------------------

name_text = st.one_of(
    st.text(max_size=20),
    st.text(alphabet=st.characters(codec="ascii"), max_size=20),
    st.sampled_from(["alice", "$id", "$ud", "a\\b", " x", "x\r\n", "x" * 300, "ａｄｍｉｎ"]),
)


@FUZZ
@given(ud=name_text, uid=name_text)
def test_identity_is_either_refused_or_safe_everywhere(ud: str, uid: str) -> None:
    try:
        identity = QlikIdentity(ud, uid)
    except InvalidIdentity:
        return
    for part in (identity.user_directory, identity.user_id):
        assert part and part == part.strip() and len(part) <= MAX_PART_LENGTH
        assert "\\" not in part
        assert not any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp", "Cs") for c in part)
    try:
        value = identity.header_value()
    except InvalidIdentity:
        assert not identity.is_ascii
        return
    assert value.isascii() and "\r" not in value and "\n" not in value
    # The header names exactly this user, nobody else.
    assert QlikIdentity.parse(value) == identity
    assert value.count("\\") == 1


# -- the running middleware --------------------------------------------------------------------------


class Background:
    """The simulator and the app behind the middleware, served from a thread (sync hypothesis)."""

    def __init__(self) -> None:
        self.ready = threading.Event()
        self.loop = asyncio.new_event_loop()
        self.stop: asyncio.Event | None = None
        self.url = ""
        self.sim: QlikSimulator | None = None
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self.main(),))

    async def main(self) -> None:
        self.stop = asyncio.Event()
        async with QlikSimulator([VirtualProxy(prefix="sso")], api=False) as sim:
            app, _ = build_app(sim)
            async with serve(app) as url:
                self.sim, self.url = sim, url
                self.ready.set()
                await self.stop.wait()

    def __enter__(self) -> Background:
        self.thread.start()
        assert self.ready.wait(30), "background stack did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.stop is not None
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(30)
        self.loop.close()


@pytest.fixture(scope="module")
def background() -> Iterator[Background]:
    with Background() as stack:
        yield stack


def exchange(url: str, data: bytes) -> bytes:
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


token = st.from_regex(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,16}", fullmatch=True)
field_value = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30)


@settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    method=st.sampled_from(
        ["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "PROPFIND"]
    ),
    pieces=st.lists(
        st.sampled_from(
            [p for p in PIECES if p not in ("?", "#", " ", "é")]
            + ["content/_sim/echo", "qps/user", "app/x", "hub/"]
        ),
        max_size=6,
    ),
    query=st.sampled_from(["", "?a=1", "?qlikTicket=t", "?%zz", "?a=%00", "?x=" + "y" * 100]),
    headers=st.lists(
        st.tuples(
            st.one_of(
                token,
                st.sampled_from(
                    [
                        "Origin",
                        "Sec-Fetch-Site",
                        "Cookie",
                        "hdr_usr",
                        "Upgrade",
                        "Connection",
                        "Content-Type",
                        "Accept",
                    ]
                ),
            ),
            field_value,
        ),
        max_size=6,
    ),
    user=st.sampled_from([None, "alice", "bob", "al%0aice"]),
)
def test_random_requests_never_crash_the_middleware(
    background: Background,
    method: str,
    pieces: list[str],
    query: str,
    headers: list[tuple[str, str]],
    user: str | None,
) -> None:
    all_headers = [
        (k, v)
        for k, v in headers
        if k.lower() not in ("host", "content-length", "transfer-encoding", "connection")
    ]
    if user is not None:
        all_headers.append(("Cookie", f"app_user={user}"))
    body = b"x" * 10 if method in ("POST", "PUT", "PATCH") else b""
    target = "/sso/" + "".join(pieces) + query
    host = background.url.removeprefix("http://")
    raw = exchange(background.url, build_request(method, target, all_headers, host=host, body=body))
    response = parse_response(raw)
    assert response.status is not None, raw[:200]
    assert response.status != 500 or any(
        r.status == 500 for r in (background.sim.requests if background.sim else [])
    ), (target, response.head)
    assert b"set-cookie" not in response.head.lower()


def upgrade_status(url: str, data: bytes) -> int | None:
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                break
            head += chunk
    return int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else None


@settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    pieces=st.lists(
        st.sampled_from(["app/", "_sim_echo", "x", "%2e", "#", "?", "&", "=", "%23"]), max_size=5
    ),
    query=st.sampled_from(["", "?a=1", "?a#b", "#f", "?qlik-csrf-token=x", "?qlikTicket=t&b"]),
    protocols=st.one_of(st.none(), st.sampled_from(["x", "a b", "a;b", "a, b", ""])),
    origin=st.sampled_from(["self", "https://evil.example", "null", ""]),
    user=st.sampled_from([None, "alice"]),
)
def test_random_websocket_upgrades_never_crash_the_middleware(
    background: Background,
    pieces: list[str],
    query: str,
    protocols: str | None,
    origin: str,
    user: str | None,
) -> None:
    host = background.url.removeprefix("http://")
    headers = [
        ("Upgrade", "websocket"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Sec-WebSocket-Version", "13"),
        ("Origin", background.url if origin == "self" else origin),
    ]
    if protocols is not None:
        headers.append(("Sec-WebSocket-Protocol", protocols))
    if user is not None:
        headers.append(("Cookie", f"app_user={user}"))
    data = build_request("GET", "/sso/" + "".join(pieces) + query, headers, host=host)
    # build_request closes the connection; an upgrade needs `Connection: Upgrade`.
    data = data.replace(b"Connection: close", b"Connection: Upgrade")
    status = upgrade_status(background.url, data)
    assert status is not None and status != 500, (pieces, query, status)
