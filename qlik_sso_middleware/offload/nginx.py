"""The nginx configuration of offload mode (`qlik-sso front-config --server nginx`).

One snippet for nginx's `http { }` context: two upstreams (Qlik, the app), the mount path behind
`auth_request`, the internal auth location, the two round trips through the app (refusals, Qlik's
redirects) and the app's own pages. Every line carries its reason as a comment, so the generated
file is its own documentation (README "Deploying behind nginx or Caddy" walks through it).
Needs nginx >= 1.7.3 built with `http_auth_request_module` (Debian's and the official packages
are).
"""

from __future__ import annotations

import re

from .front_config import BROWSER_HEADERS, FrontPlan

__all__ = ["render_nginx"]


def _variable(header: str) -> str:
    return "$http_" + header.lower().replace("-", "_")


def _seconds(value: float) -> str:
    return f"{max(1, round(value))}s"


def _redirect_rules(plan: FrontPlan) -> list[str]:
    """`proxy_redirect` lines pointing Qlik's redirects back at the app, as the in-process path
    rewrites them: Qlik's own host names dropped, its prefix replaced by the mount path."""
    if not plan.rewrites_locations:
        return [
            "proxy_redirect off;                                 # Qlik already sees our host and path"
        ]
    hosts = "|".join(re.escape(h) for h in plan.qlik_internal_hosts)
    base, mount = re.escape(plan.qlik_base), plan.mount
    return [
        f"proxy_redirect ~^https?://(?:{hosts}){base}(.*)$ {mount}$1;   # Qlik's host and prefix",
        f"proxy_redirect ~^{base}(.*)$ {mount}$1;                      # Qlik's prefix",
        f"proxy_redirect ~^https?://(?:{hosts})/(.*)$ /$1;              # Qlik's host",
    ]


def _tls(plan: FrontPlan) -> list[str]:
    if not plan.qlik_https:
        return []
    host = plan.qlik_hostport.rsplit(":", 1)[0]
    lines = [
        "proxy_ssl_server_name on;                              # SNI: Qlik's certificate name",
        f"proxy_ssl_name {host};",
    ]
    if plan.qlik_verify is False:
        lines.append(
            "proxy_ssl_verify off;                  # [qlik] verify = false: NEVER in production"
        )
        return lines
    lines.append(
        "proxy_ssl_verify on;                                   # Qlik must prove it is Qlik"
    )
    ca = (
        plan.qlik_verify
        if isinstance(plan.qlik_verify, str)
        else "/etc/ssl/certs/ca-certificates.crt"
    )
    lines.append(f"proxy_ssl_trusted_certificate {ca};")
    return lines


def _cache(plan: FrontPlan) -> tuple[list[str], list[str]]:
    """(http-context lines, auth-location lines) of the auth answer cache, when enabled."""
    if plan.auth_cache_seconds <= 0:
        return [], [
            "# No auth cache ([offload] auth_cache_seconds = 0): the app is asked every time."
        ]
    ttl = _seconds(plan.auth_cache_seconds)
    inactive = _seconds(max(60.0, plan.auth_cache_seconds * 4))
    http = [
        "# Auth answers reused for the same request line, Host, Origin, Sec-Fetch-Site and cookies.",
        "# They hold Qlik session cookies: this directory must be private to nginx (tmpfs is best).",
        f"proxy_cache_path {plan.auth_cache_dir} levels=1:2 keys_zone=qlik_sso_auth:10m "
        f"max_size=64m inactive={inactive} use_temp_path=off;",
    ]
    location = [
        "proxy_cache qlik_sso_auth;",
        "# Everything the app's decision reads is in the key, so no answer crosses users, paths,",
        "# methods or origins; a resolver that reads other headers must not use this cache.",
        'proxy_cache_key "$request_method $http_host $request_uri|$http_origin|'
        '$http_sec_fetch_site|$http_upgrade|$http_cookie|$http_authorization";',
        f"proxy_cache_valid 200 {ttl};                              # grants only, briefly",
        "proxy_ignore_headers Cache-Control Expires Set-Cookie Vary X-Accel-Expires;",
        "proxy_no_cache $http_upgrade;                            # engine WebSockets ask every time",
        "proxy_cache_bypass $http_upgrade;",
    ]
    return http, location


def render_nginx(plan: FrontPlan) -> str:
    """The snippet for nginx's `http { }` context."""
    cache_http, cache_location = _cache(plan)
    secret = plan.secret
    timeouts = [
        f"proxy_connect_timeout {_seconds(plan.connect_timeout)};",
        f"proxy_read_timeout {_seconds(plan.read_timeout)};      # also an idle engine WebSocket's limit",
        f"proxy_send_timeout {_seconds(plan.read_timeout)};",
    ]
    browser = [f"proxy_set_header {h} {_variable(h)};" for h in BROWSER_HEADERS]
    lines = [
        f"# qlik-sso front-config --server nginx: offload mode for Qlik at {plan.mount}",
        "# Include in nginx's http { } context. This file holds the auth endpoint's secret:",
        "# make it readable by root only.",
        "",
        "upstream qlik_sso_qlik {",
        f"    server {plan.qlik_hostport};                      # [qlik] url: the Qlik proxy",
        "    keepalive 32;                                        # reuse connections to Qlik",
        "}",
        "upstream qlik_sso_app {",
        f"    server {plan.app_hostport};                      # [offload] app_url: the app",
        "    keepalive 32;",
        "}",
        "# Upgrades pass as upgrades; everything else keeps the upstream connection alive.",
        "map $http_upgrade $qlik_sso_connection {",
        "    default upgrade;",
        '    ""      "";',
        "}",
        *cache_http,
        "",
        "server {",
        f"    listen {plan.listen};",
        "    # Any body size: Qlik decides (checked in every location, the auth sub-request's too).",
        "    client_max_body_size 0;",
        "",
        f"    location {plan.mount} {{",
        "        # 1. Ask the app: who is this, may this request pass, with which Qlik session?",
        f"        auth_request {plan.auth_path};",
        "        auth_request_set $qlik_sso_cookie $upstream_http_x_qlik_sso_cookie;",
        "        auth_request_set $qlik_sso_uri $upstream_http_x_qlik_sso_uri;",
        "        auth_request_set $qlik_sso_host $upstream_http_x_qlik_sso_host;",
        "        auth_request_set $qlik_sso_xrfkey $upstream_http_x_qlik_sso_xrfkey;",
        "",
        "        # 2. Send Qlik the path and query the app checked (qlikTicket and a browser's",
        "        #    qlik-csrf-token removed, the session's CSRF token added on WebSockets).",
        "        proxy_pass http://qlik_sso_qlik$qlik_sso_uri;",
        "        proxy_http_version 1.1;",
        "        # 3. No browser header reaches Qlik unless listed here: no cookie, no",
        "        #    Authorization, no Forwarded or X-Forwarded-*, no X-Qlik-*, no identity header.",
        "        proxy_pass_request_headers off;",
        "        proxy_set_header Host $qlik_sso_host;                  # the Host Qlik must see",
        "        proxy_set_header Cookie $qlik_sso_cookie;              # the user's Qlik session",
        "        # Qlik's API paths: the xrfkey pair's header (nginx sends no header when empty).",
        "        proxy_set_header X-Qlik-Xrfkey $qlik_sso_xrfkey;",
        "        proxy_set_header Connection $qlik_sso_connection;",
        "        proxy_set_header Upgrade $http_upgrade;",
        "        proxy_set_header X-Forwarded-For $remote_addr;",
        "        proxy_set_header X-Forwarded-Proto $scheme;",
        "        proxy_set_header X-Forwarded-Host $qlik_sso_host;",
        *(f"        {line}" for line in browser),
        "        # 4. Qlik's answer: its cookies stay with the app, redirects point at the app.",
        "        proxy_hide_header Set-Cookie;",
        *(f"        {line}" for line in _redirect_rules(plan)),
        "        # 5. Stream both ways (WebSocket messages have no size limit here).",
        "        proxy_buffering off;",
        "        proxy_request_buffering off;",
        *(f"        {line}" for line in timeouts),
        *(f"        {line}" for line in _tls(plan)),
        "        # 6. Through the app instead: what it refused (it answers exactly: login",
        "        #    redirect, 403, 503 + Retry-After, WebSocket close code), and Qlik's redirects",
        "        #    (its login redirect means the session is gone: the app renews it).",
        "        proxy_intercept_errors on;",
        "        error_page 302 = @qlik_sso_redirected;",
        "        error_page 401 403 = @qlik_sso_refused;",
        "    }",
        "",
        f"    location = {plan.auth_path} {{",
        "        internal;                                  # never reachable from a browser",
        "        proxy_pass http://qlik_sso_app;",
        "        proxy_http_version 1.1;",
        '        proxy_set_header Connection "";',
        '        proxy_set_header Upgrade "";',
        "        proxy_pass_request_body off;               # the decision reads headers only",
        '        proxy_set_header Content-Length "";',
        "        proxy_set_header Host $http_host;",
        "        proxy_set_header X-Original-URI $request_uri;        # exactly as the browser sent it",
        "        proxy_set_header X-Original-Method $request_method;",
        "        proxy_set_header X-Original-Upgrade $http_upgrade;",
        "        proxy_set_header X-Original-Host $http_host;",
        "        proxy_set_header X-Original-Proto $scheme;",
        f"        proxy_set_header X-Qlik-SSO-Secret {secret};   # proves the sub-request is ours",
        *(f"        {line}" for line in cache_location),
        "    }",
        "",
        "    location @qlik_sso_redirected {",
        "        set $qlik_sso_location $upstream_http_location;   # read before the next upstream",
        "        proxy_pass http://qlik_sso_app;",
        "        proxy_http_version 1.1;",
        '        proxy_set_header Connection "";',
        "        proxy_set_header Host $http_host;",
        f"        proxy_set_header X-Qlik-SSO-Secret {secret};",
        "        proxy_set_header X-Qlik-SSO-Redirected $qlik_sso_cookie;  # the session Qlik turned away",
        "        proxy_set_header X-Qlik-SSO-Location $qlik_sso_location;",
        "        proxy_buffering off;",
        *(f"        {line}" for line in timeouts),
        "    }",
        "",
        "    location @qlik_sso_refused {",
        "        proxy_pass http://qlik_sso_app;",
        "        proxy_http_version 1.1;",
        "        proxy_set_header Connection $qlik_sso_connection;",
        "        proxy_set_header Upgrade $http_upgrade;",
        "        proxy_set_header Host $http_host;",
        *_clear_ours(),
        "        proxy_buffering off;",
        *(f"        {line}" for line in timeouts),
        "    }",
        "",
        "    # The app's own pages (merge with your existing location): it must clear the same",
        "    # headers, so that no browser can pose as this front proxy.",
        "    location / {",
        "        proxy_pass http://qlik_sso_app;",
        "        proxy_http_version 1.1;",
        '        proxy_set_header Connection "";',
        "        proxy_set_header Host $http_host;",
        "        proxy_set_header X-Forwarded-For $remote_addr;",
        "        proxy_set_header X-Forwarded-Proto $scheme;",
        *_clear_ours(),
        "    }",
        "}",
        "",
    ]
    return "\n".join(lines)


def _clear_ours() -> list[str]:
    return [
        '        proxy_set_header X-Qlik-SSO-Secret "";      # a browser\'s never reaches the app',
        '        proxy_set_header X-Qlik-SSO-Redirected "";',
        '        proxy_set_header X-Qlik-SSO-Location "";',
    ]
