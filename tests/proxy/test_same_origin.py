"""`check_same_origin`: the rule for answers that are credentials (the Qlik Cloud token broker)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qlik_sso_middleware.errors import RequestRefused
from qlik_sso_middleware.proxy.guards import check_same_origin
from qlik_sso_middleware.proxy.request import ProxiedRequest

APP = "app.example:8443"
PORTAL = "https://portal.example"


def request(method: str = "POST", **headers: str) -> ProxiedRequest:
    raw = [(b"host", APP.encode())]
    raw += [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
    scope = {"type": "http", "method": method, "headers": raw, "query_string": b""}
    return ProxiedRequest(scope, "access-token")


def verdict(req: ProxiedRequest) -> int:
    try:
        check_same_origin(req, frozenset({PORTAL}))
    except RequestRefused as exc:
        return exc.status_code
    return 200


@pytest.mark.parametrize(
    ("method", "headers", "status"),
    [
        ("POST", {"origin": f"https://{APP}", "sec_fetch_site": "same-origin"}, 200),
        ("POST", {"origin": f"http://{APP}"}, 200),  # TLS ended in front of the app
        ("POST", {}, 200),  # no browser sent it
        ("POST", {"origin": PORTAL, "sec_fetch_site": "cross-site"}, 200),  # listed
        ("POST", {"origin": "https://evil.example"}, 403),
        ("POST", {"origin": "null"}, 403),
        ("POST", {"sec_fetch_site": "cross-site"}, 403),
        ("POST", {"sec_fetch_site": "same-site"}, 403),
        ("POST", {"sec_fetch_site": "none"}, 403),
        ("POST", {"origin": f"https://{APP}", "sec_fetch_site": "cross-site"}, 403),
        ("GET", {"origin": f"https://{APP}", "sec_fetch_site": "same-origin"}, 405),
        ("HEAD", {}, 405),
        ("OPTIONS", {"origin": "https://evil.example"}, 405),
    ],
)
def test_only_a_same_origin_post_passes(method: str, headers: dict[str, str], status: int) -> None:
    assert verdict(request(method, **headers)) == status


def test_two_origins_are_refused() -> None:
    scope = {
        "type": "http",
        "method": "POST",
        "headers": [(b"host", APP.encode()), *[(b"origin", b"https://" + APP.encode())] * 2],
    }
    assert verdict(ProxiedRequest(scope, "access-token")) == 403


@given(
    origin=st.one_of(st.none(), st.sampled_from([f"https://{APP}", PORTAL]), st.text(max_size=40)),
    site=st.one_of(
        st.none(), st.sampled_from(["same-origin", "cross-site", "same-site", "none", "x"])
    ),
)
def test_only_the_apps_own_or_a_listed_origin_passes(origin: str | None, site: str | None) -> None:
    headers = {}
    if origin is not None:
        headers["origin"] = origin.encode("latin-1", "replace").decode("latin-1")
    if site is not None:
        headers["sec_fetch_site"] = site
    folded = headers.get("origin", "").strip().lower()
    listed = folded == PORTAL
    own = folded in (f"https://{APP}", f"http://{APP}")
    passes = (origin is None or own or listed) and (site in (None, "same-origin") or listed)
    assert verdict(request(**headers)) == (200 if passes else 403)
