"""`owned_xrfkey`: the browser's xrfkey pair checked, and replaced by the middleware's own."""

from __future__ import annotations

import pytest

from qlik_sso_middleware.errors import RequestRefused
from qlik_sso_middleware.proxy.xrfkey import new_xrfkey, owned_xrfkey

KEY = b"abcdefghij012345"


def test_fresh_keys_are_16_of_qliks_alphabet() -> None:
    keys = {new_xrfkey() for _ in range(50)}
    assert len(keys) == 50
    assert all(len(k) == 16 and k.isascii() and k.isalnum() for k in keys)


@pytest.mark.parametrize("name", [b"xrfkey", b"Xrfkey", b"XRFKEY", b"%78rfkey", b"xrf%4Bey"])
def test_the_browser_key_is_replaced_in_place(name: bytes) -> None:
    query = b"a=1&" + name + b"=" + KEY + b"&b=%2F"
    upstream, key = owned_xrfkey("qps/csrftoken", query, [(b"X_Qlik_XrfKey", KEY)])
    assert key is not None and key != KEY and len(key) == 16
    assert upstream == b"a=1&xrfkey=" + key + b"&b=%2F"


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("content/x", b"xrfkey=" + KEY),
        ("sense/app/1", b"xrfkey=bad"),
        ("qps/user", b""),
        ("qps/user", b"a=1"),
    ],
)
def test_other_paths_and_keyless_queries_pass_as_they_are(path: str, query: bytes) -> None:
    assert owned_xrfkey(path, query, []) == (query, None)


@pytest.mark.parametrize(
    ("query", "headers"),
    [
        (b"xrfkey=" + KEY, []),
        (b"xrfkey=" + KEY, [(b"x-qlik-xrfkey", KEY.upper())]),
        (b"xrfkey=" + KEY, [(b"x-qlik-xrfkey", KEY), (b"X-Qlik-Xrfkey", KEY)]),
        (b"xrfkey=" + KEY + b"&xrfkey=" + KEY, [(b"x-qlik-xrfkey", KEY)]),
        (b"xrfkey=short", [(b"x-qlik-xrfkey", b"short")]),
        (b"xrfkey=abcdefghij01234%21", [(b"x-qlik-xrfkey", b"abcdefghij01234!")]),
    ],
)
def test_a_key_without_its_matching_header_is_refused(
    query: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    with pytest.raises(RequestRefused) as info:
        owned_xrfkey("qrs/about", query, headers)
    assert info.value.status_code == 403
    assert "XSRF prevention check failed" in info.value.public_message
