"""The QPS REST API client (port 4243): tickets, sessions, and a user's sessions.

    QPSSettings   what to connect to and with which certificate (`_qps_settings.py`)
    QPSClient     one mutual-TLS connection pool, one method per QPS call

Every call carries a fresh xrfkey (16 of `[0-9a-zA-Z]` from `secrets`) in the `xrfkey` query
parameter and in the `X-Qlik-Xrfkey` header, as QPS requires. Failures are translated at this
boundary into the project's errors, in Qlik's terms:

    403 "XSRF prevention check failed"       -> XrfkeyRejected
    TLS closed/alerted after our certificate -> ClientCertificateRejected
    400                                      -> QPSError naming the field QPS rejected
    connection refused / server cert refused -> QlikUnavailable
    timeout                                  -> QlikTimeout
    non-JSON or unexpected JSON shape        -> QPSError

Hazards: session ids are live cookie values and tickets are one-minute credentials; both travel in
URLs here. Requests go straight to the httpx *transport* because `httpx.AsyncClient` logs every
full URL at INFO; our own log lines and messages name the operation (`DELETE session/{id}`), never
the id.

Longer than most modules on purpose: every QPS call and its error translation in Qlik's terms
stay side by side, so no call can drift from the rules above.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
import ssl
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx2 as httpx

from ..errors import (
    ClientCertificateRejected,
    QlikAccessDenied,
    QlikError,
    QlikTimeout,
    QlikUnavailable,
    QPSError,
    XrfkeyRejected,
)
from ..identity import QlikIdentity
from ._qps_settings import QPSSettings
from ._raw_http import exception_chain, read_capped
from .certificates import client_ssl_context, load_client_credentials

__all__ = ["QPSClient", "QPSSettings", "QPSTicket", "field_of", "new_xrfkey"]

logger = logging.getLogger("qlik_sso_middleware.qps")

_XRF_ALPHABET = string.ascii_letters + string.digits
_MAX_BODY = 4 * 1024 * 1024
_FIELDS = ("UserDirectory", "UserId", "Attributes", "SessionId", "TargetId")


def new_xrfkey() -> str:
    """A fresh 16-character xrfkey from `secrets` (QPS accepts `[0-9a-zA-Z]` only)."""
    return "".join(secrets.choice(_XRF_ALPHABET) for _ in range(16))


@dataclass(frozen=True)
class QPSTicket:
    """A QPS ticket: single use, valid for about one minute. `repr` hides the ticket."""

    ticket: str = field(repr=False)
    target_uri: str | None = None


def _segment(value: str) -> str:
    return quote(value, safe="")


def field_of(body: dict[str, Any], name: str) -> Any:
    """`body[name]`, key matched case-insensitively (QPS answers PascalCase, docs camelCase)."""
    lowered = name.lower()
    for key, value in body.items():
        if isinstance(key, str) and key.lower() == lowered:
            return value
    return None


class QPSClient:
    """Mutual-TLS client for the QPS API of one virtual proxy.

    Construction loads and checks the certificate files (`CertificateError` on any problem) and
    builds the connection pool once. `aclose()` closes the pooled connections; the client stays
    usable (the next call opens new ones), so an app whose lifespan runs twice, or on a new event
    loop, keeps working. Safe for concurrent use within one event loop.
    `now` (aware datetimes) is injectable for the certificate validity checks.
    """

    def __init__(
        self, settings: QPSSettings, *, now: Callable[[], dt.datetime] | None = None
    ) -> None:
        self.settings = settings
        credentials = load_client_credentials(
            root=settings.root,
            client_cert=settings.client_cert,
            client_key=settings.client_key,
            client_key_password=settings.client_key_password,
            pfx=settings.pfx,
            pfx_password=settings.pfx_password,
            now=now,
        )
        if not settings.verify:
            logger.warning(
                "TLS verification of the QPS API at %s:%d is OFF: anyone on the path can "
                "impersonate QPS and collect tickets and session ids",
                settings.host,
                settings.port,
            )
        context = client_ssl_context(credentials, verify=settings.verify)
        self._base_url = settings.base_url
        self._where = f"{settings.host}:{settings.port}"
        self._timeout = httpx.Timeout(settings.timeout).as_dict()
        self._sni = settings.server_name
        self._transport = httpx.AsyncHTTPTransport(verify=context, retries=0)

    @property
    def base_url(self) -> str:
        return self._base_url

    async def aclose(self) -> None:
        await self._transport.aclose()

    async def __aenter__(self) -> QPSClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- calls --------------------------------------------------------------------------------

    async def create_ticket(
        self, identity: QlikIdentity, *, target_id: str | None = None
    ) -> QPSTicket:
        """`POST ticket` for `identity` with its attributes; the ticket is good once, ~1 minute."""
        body: dict[str, Any] = self._identity_body(identity)
        if target_id is not None:
            body["TargetId"] = target_id
        answer = await self._call("POST", "ticket", "POST ticket", body)
        ticket = field_of(answer, "Ticket") if isinstance(answer, dict) else None
        if not isinstance(ticket, str) or not ticket:
            raise QPSError("QPS answered POST ticket without a Ticket in its JSON")
        target = field_of(answer, "TargetUri")
        return QPSTicket(ticket, target if isinstance(target, str) else None)

    async def create_session(self, identity: QlikIdentity, session_id: str) -> dict[str, Any]:
        """`POST session` with our `session_id` (the future cookie value); returns QPS's struct."""
        body = self._identity_body(identity)
        body["SessionId"] = session_id
        answer = await self._call("POST", "session", "POST session", body)
        if not isinstance(answer, dict):
            raise QPSError("QPS answered POST session with an unexpected JSON shape")
        returned = field_of(answer, "SessionId")
        if returned is not None and returned != session_id:
            # The cookie we would hand out is not the session QPS created.
            raise QPSError("QPS answered POST session with a different SessionId")
        return answer

    async def get_session(self, session_id: str) -> dict[str, Any] | None:
        """`GET session/{id}`; None when QPS does not know the session."""
        path = "session/" + _segment(session_id)
        answer = await self._call("GET", path, "GET session/{id}", missing_ok=True)
        if answer is None or isinstance(answer, dict):
            return answer
        raise QPSError("QPS answered GET session/{id} with an unexpected JSON shape")

    async def delete_session(self, session_id: str) -> dict[str, Any] | None:
        """`DELETE session/{id}`: ends it and its WebSockets; None when it was already gone."""
        path = "session/" + _segment(session_id)
        answer = await self._call("DELETE", path, "DELETE session/{id}", missing_ok=True)
        if answer is None or isinstance(answer, dict):
            return answer
        raise QPSError("QPS answered DELETE session/{id} with an unexpected JSON shape")

    async def get_user_sessions(self, identity: QlikIdentity) -> list[dict[str, Any]]:
        """`GET user/{directory}/{id}`: every session of the user on this virtual proxy."""
        return await self._user_call("GET", identity)

    async def delete_user_sessions(self, identity: QlikIdentity) -> list[dict[str, Any]]:
        """`DELETE user/{directory}/{id}` (Qlik's logout API); returns the sessions it ended."""
        return await self._user_call("DELETE", identity)

    async def probe(self) -> None:
        """Check reachability, both TLS directions and the xrfkey rule with one harmless call.

        Looks up a random, nonexistent session (`GET session/{id}`): only QPS's API answers that
        with a plain 404. Raises what any call raises (`QlikUnavailable`,
        `ClientCertificateRejected`, `XrfkeyRejected`, ...), and `QPSError` for any other answer
        (another port of Qlik's: the proxy's 443, the Windows authentication 4244). Meant for
        start-up checks, health endpoints and `qlik-sso check`.
        """
        operation = "GET session/{id}"
        path = "session/probe-" + secrets.token_hex(8)
        status, content, headers = await self._send(self._request("GET", path), operation)
        text = content[:2048].decode("utf-8", "replace")
        if status == 404 and self._not_the_api(status, text, headers) is None:
            return
        if status < 300:
            raise QPSError(
                f"{self._where} answered {operation} for a session that cannot exist with "
                f"{status}: it is not the QPS API (4243)",
                status=status,
            )
        raise self._status_error(status, content, operation, headers)

    # -- plumbing -----------------------------------------------------------------------------

    @staticmethod
    def _identity_body(identity: QlikIdentity) -> dict[str, Any]:
        return {
            "UserDirectory": identity.user_directory,
            "UserId": identity.user_id,
            "Attributes": identity.attribute_list(),
        }

    async def _user_call(self, method: str, identity: QlikIdentity) -> list[dict[str, Any]]:
        path = f"user/{_segment(identity.user_directory)}/{_segment(identity.user_id)}"
        operation = f"{method} user/{{directory}}/{{id}}"
        answer = await self._call(method, path, operation, missing_ok=True)
        if answer is None:
            return []
        if isinstance(answer, list) and all(isinstance(item, dict) for item in answer):
            return answer
        raise QPSError(f"QPS answered {operation} with an unexpected JSON shape")

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Request:
        xrfkey = new_xrfkey()
        extensions: dict[str, Any] = {"timeout": self._timeout}
        if self._sni is not None:
            extensions["sni_hostname"] = self._sni
        return httpx.Request(
            method,
            self._base_url + path,
            params={"xrfkey": xrfkey},
            headers={
                "X-Qlik-Xrfkey": xrfkey,
                "Accept": "application/json",
                "User-Agent": "qlik-sso-middleware",
            },
            json=body,
            extensions=extensions,
        )

    async def _call(
        self,
        method: str,
        path: str,
        operation: str,
        body: dict[str, Any] | None = None,
        *,
        missing_ok: bool = False,
    ) -> Any:
        request = self._request(method, path, body)
        status, content, headers = await self._send(request, operation)
        logger.debug("QPS %s -> %d", operation, status)
        if status == 404 and missing_ok:
            return None
        if status >= 300:
            raise self._status_error(status, content, operation, headers)
        if not content.strip():
            return None
        try:
            return json.loads(content)
        except ValueError as exc:
            raise QPSError(
                f"QPS answered {operation} with {status} but not with JSON", status=status
            ) from exc

    async def _send(
        self, request: httpx.Request, operation: str
    ) -> tuple[int, bytes, httpx.Headers]:
        response: httpx.Response | None = None
        try:
            response = await self._transport.handle_async_request(request)
            body = await read_capped(response, _MAX_BODY)
            if body is None:
                raise QPSError(f"QPS answered {operation} with more than {_MAX_BODY} bytes")
            return response.status_code, body, response.headers
        except httpx.TimeoutException as exc:
            raise QlikTimeout(
                f"QPS at {self._where} did not answer {operation} within "
                f"{self.settings.timeout:g} s"
            ) from exc
        except httpx.TransportError as exc:
            raise self._transport_error(exc, operation, got_headers=response is not None) from exc
        finally:
            if response is not None:
                await response.aclose()

    def _transport_error(
        self, exc: httpx.TransportError, operation: str, *, got_headers: bool
    ) -> Exception:
        chain = exception_chain(exc)
        verify_failure = next(
            (e for e in chain if isinstance(e, ssl.SSLCertVerificationError)), None
        )
        if verify_failure is not None:
            reason = str(getattr(verify_failure, "verify_message", "") or "")
            if "hostname" in reason.lower() or "mismatch" in reason.lower():
                return QlikUnavailable(
                    f"QPS at {self._where} presented a certificate that does not name "
                    f"{self._sni or self.settings.host!r}; set server_name to the name in its "
                    "certificate (often the short host name)"
                )
            return QlikUnavailable(
                f"QPS at {self._where} presented a certificate not signed by the configured "
                f"root ({reason or 'verification failed'})"
            )
        tls_error = next((e for e in chain if isinstance(e, ssl.SSLError)), None)
        reason = str(getattr(tls_error, "reason", "") or "").upper()
        if tls_error is not None and "ALERT" not in reason:
            # Not QPS refusing us but no TLS peer at all (e.g. a plain-http port).
            return QlikUnavailable(
                f"TLS with QPS at {self._where} failed ({reason or type(tls_error).__name__}): "
                "is api_url the QPS API port (4243)?"
            )
        if tls_error is None and isinstance(exc, httpx.ConnectError):
            return QlikUnavailable(f"QPS unreachable at {self._where}")
        if got_headers:
            return QPSError(f"QPS at {self._where} broke off its answer to {operation}")
        # TLS 1.3 finishes the client's side of the handshake before the server checks our
        # certificate, so a rejected certificate shows up as an alert or a reset on first read.
        how = f"TLS alert {reason}" if tls_error is not None else "connection closed"
        return ClientCertificateRejected(
            f"client certificate not accepted by QPS at {self._where} ({how} during "
            f"{operation}): is client.pem from this Qlik site's export?"
        )

    def _status_error(
        self, status: int, content: bytes, operation: str, headers: httpx.Headers
    ) -> QlikError:
        text = content[:2048].decode("utf-8", "replace")
        not_api = self._not_the_api(status, text, headers)
        if not_api is not None:
            return QPSError(
                f"{self._where} answered {operation} {not_api}: it is not the QPS API (4243)",
                status=status,
            )
        if status == 403 and "xsrf" in text.lower():
            return XrfkeyRejected(
                f"QPS refused {operation}: xrfkey check failed (403 'XSRF prevention check "
                "failed'); the xrfkey query parameter and X-Qlik-Xrfkey header must carry the "
                "same 16 characters: does something between us and QPS drop the header?",
                status=status,
            )
        if status == 400:
            lowered = text.lower()
            named = [name for name in _FIELDS if name.lower() in lowered]
            what = f"the field {named[0]}" if named else "the request body"
            return QPSError(f"QPS rejected {operation} (400): {what} was not accepted", status=400)
        if status == 403 and "too many sessions" in text.lower():
            return QlikAccessDenied(
                f"QPS refused {operation}: too many sessions active in parallel for this user "
                "(limit 5 per user and virtual proxy)"
            )
        if status == 403 and "access pass" in text.lower():
            return QlikAccessDenied(f"QPS refused {operation}: the user has no access pass")
        if status in (401, 403):
            return QPSError(
                f"QPS refused {operation} with {status} (is this client certificate allowed to "
                "use the QPS API?)",
                status=status,
            )
        return QPSError(f"QPS answered {operation} with {status}", status=status)

    @staticmethod
    def _not_the_api(status: int, text: str, headers: httpx.Headers) -> str | None:
        """How an answer shows another port of Qlik's (None: it may be QPS's API)."""
        challenge = " ".join(headers.get_list("www-authenticate")).lower()
        if status == 401 and ("negotiate" in challenge or "ntlm" in challenge):
            return (
                "with a Windows authentication challenge (401 Negotiate/NTLM), like QPS's "
                "Windows authentication port (4244)"
            )
        if 300 <= status < 400:
            return f"with a redirect ({status}) to a login page, like the Qlik proxy port (443)"
        if "text/html" in headers.get("content-type", "") and status in (400, 404):
            return f"with an HTML page ({status}), like the Qlik proxy port (443)"
        return None
