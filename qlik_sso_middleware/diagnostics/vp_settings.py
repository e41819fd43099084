"""Read a virtual proxy's settings from the QRS API, for what no request to the proxy can reveal.

The session inactivity timeout is such a setting: Qlik ends an idle session after it, silently, so
a middleware that reuses sessions for longer (`qlik.session_ttl`) hands out dead ones. With
`qps.qrs_url` set, `qlik-sso check` asks QRS (`GET /qrs/virtualproxyconfig/full?filter=prefix eq
'<prefix>'`) with the certificate exported from the QMC, as `INTERNAL\\sa_repository` (what that
certificate is for: help.qlik.com, QRS API "Authenticating with the server certificate"). It only
reads. Requests go straight to the httpx transport, so no URL is logged (the xrfkey is in it).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx2 as httpx

from ..auth._qps import new_xrfkey
from ..auth.certificates import client_ssl_context, load_client_credentials
from ..config import QlikSSOConfig
from ..errors import QPSError

__all__ = ["read_virtual_proxy"]

_ADMIN = "UserDirectory=INTERNAL; UserId=sa_repository"


async def read_virtual_proxy(config: QlikSSOConfig, prefix: str) -> dict[str, Any] | None:
    """QRS's `VirtualProxyConfig` of `prefix`; None when QRS lists none. Raises `QPSError` for an
    answer that is not QRS's, `CertificateError`/`ConfigurationError` for unusable certificate
    files, `httpx.HTTPError` when QRS cannot be reached."""
    qps = config.qps
    assert qps.qrs_url is not None
    credentials = load_client_credentials(
        root=qps.root,
        client_cert=qps.client_cert,
        client_key=qps.client_key,
        client_key_password=qps.client_key_password.reveal() if qps.client_key_password else None,
        pfx=qps.pfx,
        pfx_password=qps.pfx_password.reveal() if qps.pfx_password else None,
    )
    context = client_ssl_context(credentials, verify=True)
    xrfkey = new_xrfkey()
    filter_text = quote(f"prefix eq '{prefix}'", safe="")
    url = f"{qps.qrs_url.rstrip('/')}/qrs/virtualproxyconfig/full?filter={filter_text}&xrfkey={xrfkey}"
    extensions: dict[str, Any] = {"timeout": httpx.Timeout(qps.timeout).as_dict()}
    if qps.server_name:
        extensions["sni_hostname"] = qps.server_name
    request = httpx.Request(
        "GET",
        url,
        headers={"X-Qlik-Xrfkey": xrfkey, "X-Qlik-User": _ADMIN, "Accept": "application/json"},
        extensions=extensions,
    )
    async with httpx.AsyncHTTPTransport(verify=context, retries=0) as transport:
        response = await transport.handle_async_request(request)
        content = await response.aread()
    if response.status_code != 200:
        raise QPSError(f"QRS answered {response.status_code}", status=response.status_code)
    try:
        answer = json.loads(content)
    except ValueError:
        raise QPSError("QRS answered with something that is not JSON") from None
    if not isinstance(answer, list):
        raise QPSError("QRS answered with an unexpected JSON shape")
    found = [vp for vp in answer if isinstance(vp, dict) and vp.get("prefix") == prefix]
    return found[0] if found else None
