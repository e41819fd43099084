"""The Caddy configuration of offload mode (`qlik-sso front-config --server caddy`).

A site block with one `route` for the mount path: the auth sub-request (Caddy's `forward_auth`
pattern, written out so that refusals can go through the app), the browser's headers cut down to
an allow-list, the request to Qlik, and the round trip through the app for Qlik's redirects.

Caddy before 2.7 (Debian ships 2.6) cannot clear a request's headers ahead of setting others
(`header_up -*` came in 2.7), so the allow-list is built on the request itself: the allowed values
are put aside under private names (`~…`, after any browser header of that form is dropped), every
other header is deleted by its first character, and the allowed ones are restored when present.
Works unchanged on later versions. Caddy has no cache for auth answers: the app is asked on every
request.
"""

from __future__ import annotations

import re
import string

from .front_config import BROWSER_HEADERS, FrontPlan

__all__ = ["render_caddy"]

# What the app's in-process path reads besides the allow-list, for the round trips through it.
_APP_HEADERS = ("Cookie", "Authorization", "Sec-Fetch-Site", "Sec-Fetch-Mode")
# The first characters a header name can have (RFC 9110 tchar), lower case, except `~`, `*`.
_FIRST = sorted(set(string.ascii_lowercase + string.digits + "!#$%&'+-.^_`|"))


def _stash(name: str) -> str:
    return "~" + name.lower()


def _secret_headers(plan: FrontPlan) -> list[str]:
    return [f"header_up X-Qlik-SSO-Secret {plan.secret}"]


def _timeouts(plan: FrontPlan) -> list[str]:
    return [
        "transport http {",
        f"\tdial_timeout {max(1, round(plan.connect_timeout))}s",
        f"\tresponse_header_timeout {max(1, round(plan.read_timeout))}s",
        *(f"\t{line}" for line in _tls(plan)),
        "}",
    ]


def _tls(plan: FrontPlan) -> list[str]:
    if not plan.qlik_https:
        return []
    host = plan.qlik_hostport.rsplit(":", 1)[0]
    lines = ["tls", f"tls_server_name {host}"]
    if plan.qlik_verify is False:
        return [*lines, "tls_insecure_skip_verify    # [qlik] verify = false: NEVER in production"]
    if isinstance(plan.qlik_verify, str):
        lines.append(f"tls_trusted_ca_certs {plan.qlik_verify}")
    return lines


def _to_app(plan: FrontPlan, extra: list[str]) -> list[str]:
    """A `reverse_proxy` to the app's in-process path with the browser's headers put back."""
    restore = [f"header_up {h} {{http.request.header.{_stash(h)}}}" for h in _APP_HEADERS]
    return [
        f"reverse_proxy {plan.app_hostport} {{",
        "\theader_up Host {http.request.header.~host}",
        *(f"\t{line}" for line in restore),
        *(f"\t{line}" for line in extra),
        "\theader_up -~*",
        "\tflush_interval -1",
        "}",
    ]


def _location_rules(plan: FrontPlan) -> list[str]:
    if not plan.rewrites_locations:
        return []
    hosts = "|".join(re.escape(h) for h in plan.qlik_internal_hosts)
    base = re.escape(plan.qlik_base)
    return [
        f'header_down Location "^(?:https?://(?:{hosts}))?{base}(.*)$" "{plan.mount}$1"',
        f'header_down Location "^https?://(?:{hosts})/(.*)$" "/$1"',
    ]


def render_caddy(plan: FrontPlan) -> str:
    """A Caddyfile site block (merge its `route` into your site)."""
    host, _, port = plan.listen.rpartition(":")
    site = f"http://:{port}" if port else f"http://:{plan.listen}"
    bind = [f"\tbind {host}"] if host else []
    # Connection and Upgrade: Caddy strips them (hop-by-hop) and sets its own for an upgrade.
    allowed = (*BROWSER_HEADERS, "Connection", "Upgrade")
    stashed = (*allowed, *_APP_HEADERS)
    auth = [
        f"reverse_proxy {plan.app_hostport} {{",
        "\tmethod GET",
        f"\trewrite {plan.auth_path}",
        "\theader_up X-Original-URI {http.request.orig_uri}   # exactly as the browser sent it",
        "\theader_up X-Original-Method {http.request.orig_method}",
        "\theader_up X-Original-Upgrade {http.request.header.Upgrade}",
        "\theader_up X-Original-Host {http.request.hostport}   # empty stays empty",
        "\theader_up X-Original-Proto {http.request.scheme}",
        *(f"\t{line}" for line in _secret_headers(plan)),
        "\theader_up -Connection                 # the sub-request itself is never an upgrade",
        "\theader_up -Upgrade",
        "\t@granted status 2xx",
        "\thandle_response @granted {",
        "\t\trequest_header ~qlik-sso-cookie {rp.header.X-Qlik-Sso-Cookie}",
        "\t\trequest_header ~qlik-sso-uri {rp.header.X-Qlik-Sso-Decoded-Uri}",
        "\t\trequest_header ~qlik-sso-host {rp.header.X-Qlik-Sso-Host}",
        "\t\trequest_header ~qlik-sso-xrfkey {rp.header.X-Qlik-Sso-Xrfkey}",
        "\t}",
        "\t# Refused: the app answers exactly (login redirect, 403, 503, WebSocket close code).",
        "\t@refused status 401 403",
        "\thandle_response @refused {",
        f"\t\treverse_proxy {plan.app_hostport} {{",
        "\t\t\theader_up -X-Qlik-SSO-*",
        "\t\t\tflush_interval -1",
        "\t\t}",
        "\t}",
        "}",
    ]
    clear = [f"request_header -{c}*" for c in _FIRST] + ["request_header -***"]
    stash = [f"request_header {_stash(h)} {{http.request.header.{h}}}" for h in stashed]
    restore: list[str] = []
    for index, name in enumerate(allowed):
        matcher = f"@qlik_sso_has_{index}"
        restore.append(f"{matcher} header_regexp {_stash(name)} .")
        restore.append(f"request_header {matcher} {name} {{http.request.header.{_stash(name)}}}")
    report = [
        *_secret_headers(plan),
        "header_up X-Qlik-SSO-Redirected {http.request.header.~qlik-sso-cookie}",
        "header_up X-Qlik-SSO-Location {rp.header.Location}",
    ]
    # A request with a body cannot be sent again (Qlik has it): a GET stands in for it, the app
    # renews the session and asks the browser to retry.
    stand_in = _to_app(
        plan, ["method GET", "header_up X-Qlik-SSO-Method {http.request.method}", *report]
    )
    stand_in[0] = stand_in[0].replace("reverse_proxy ", "reverse_proxy @qlik_sso_unsafe ", 1)
    redirected = [
        "@qlik_sso_unsafe not method GET HEAD OPTIONS",
        *stand_in,
        *_to_app(plan, report),
    ]
    qlik = [
        "# The trailing '?' makes rewrite replace the query too (Caddy 2.6 keeps the browser's",
        "# otherwise); the app's decoded path is re-encoded by Caddy as it sends it.",
        "rewrite * {http.request.header.~qlik-sso-uri}?",
        f"reverse_proxy {'https://' if plan.qlik_https else ''}{plan.qlik_hostport} {{",
        "\theader_up Host {http.request.header.~qlik-sso-host}   # the Host Qlik must see",
        "\theader_up Cookie {http.request.header.~qlik-sso-cookie}   # the user's Qlik session",
        "\theader_up X-Forwarded-Host {http.request.header.~qlik-sso-host}",
        "\theader_up -~*",
        "\theader_down -Set-Cookie                  # Qlik's cookies stay with the app",
        *(f"\t{line}" for line in _location_rules(plan)),
        "\tflush_interval -1                        # stream answers as they come",
        *(f"\t{line}" for line in _timeouts(plan)),
        "\t# Qlik's redirects go through the app (its login redirect: the session is gone).",
        "\t@redirected status 302",
        "\thandle_response @redirected {",
        *(f"\t\t{line}" for line in redirected),
        "\t}",
        "}",
    ]
    lines = [
        f"# qlik-sso front-config --server caddy: offload mode for Qlik at {plan.mount}",
        "# This file holds the auth endpoint's secret: make it readable by root only.",
        "# Replace the site address with yours (a host name gets Caddy's automatic HTTPS).",
        f"{site} {{",
        *bind,
        f"\thandle {plan.mount}* {{",
        "\troute {",
        "\t\t# 0. No Host, no request: Caddy's client would put the app's own on the sub-request.",
        "\t\t@qlik_sso_no_host vars_regexp {http.request.hostport} ^$",
        '\t\trespond @qlik_sso_no_host "Invalid Host header" 400',
        "\t\t# Headers only the front proxy may set never come from a browser.",
        "\t\trequest_header -X-Qlik-SSO-*",
        "\t\trequest_header -~*",
        "\t\t# Caddy drops the headers a browser names in Connection (cookies too): keep only",
        "\t\t# what an upgrade needs, so the app sees what the browser sent.",
        "\t\t@qlik_sso_upgrade header_regexp Upgrade .",
        "\t\trequest_header -Connection",
        "\t\trequest_header @qlik_sso_upgrade Connection Upgrade",
        "\t\t# 1. Ask the app: who is this, may this request pass, with which Qlik session?",
        *(f"\t\t{line}" for line in auth),
        "\t\t# 2. Only the allow-listed browser headers go on: put them aside, clear the rest,",
        "\t\t#    put back those present. No cookie, Authorization, Forwarded, X-Forwarded-*,",
        "\t\t#    X-Qlik-* or identity header in any spelling reaches Qlik.",
        "\t\trequest_header ~host {http.request.hostport}",
        *(f"\t\t{line}" for line in stash),
        *(f"\t\t{line}" for line in clear),
        *(f"\t\t{line}" for line in restore),
        "\t\t# Qlik's API paths: the xrfkey pair's header, with the key the app put in the URI.",
        "\t\t@qlik_sso_xrfkey header_regexp ~qlik-sso-xrfkey .",
        "\t\trequest_header @qlik_sso_xrfkey X-Qlik-Xrfkey {http.request.header.~qlik-sso-xrfkey}",
        "\t\t# 3. To Qlik: the path and query the app checked, its session, streamed.",
        *(f"\t\t{line}" for line in qlik),
        "\t}",
        "\t}",
        "\t# The app's own pages (merge with your existing handler): no browser may pose as",
        "\t# this front proxy.",
        "\thandle {",
        f"\t\treverse_proxy {plan.app_hostport} {{",
        "\t\t\theader_up -X-Qlik-SSO-*",
        "\t\t}",
        "\t}",
        "}",
        "",
    ]
    return "\n".join(lines)
