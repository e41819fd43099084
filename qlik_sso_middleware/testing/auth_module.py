"""The simulated Windows authentication listener of QPS (port 4244 in production).

QPS authenticates Windows users on its own TLS port (the proxy's "Authentication listen port",
4244 by default). Whatever is asked there without Windows credentials is answered with the
`401` challenge `WWW-Authenticate: Negotiate` / `WWW-Authenticate: NTLM`; the simulator never
completes NTLM or Kerberos. It exists so that a client pointed at this port by mistake (the QPS API
is 4243) sees what it would see at a real site.
"""

from __future__ import annotations

from ._asgi import Receive, Scope, Send, drain, html_page, http_only, send_body

__all__ = ["WindowsAuthApp"]


class WindowsAuthApp:
    """ASGI app: every HTTP request gets the Windows authentication challenge."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not await http_only(scope, receive, send):
            return
        await drain(receive)
        page = html_page("401 - Unauthorized", "Windows authentication is required.")
        challenge = [("www-authenticate", "Negotiate"), ("www-authenticate", "NTLM")]
        await send_body(send, 401, page, headers=challenge)
