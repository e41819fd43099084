"""The wire to one Qlik Cloud tenant: bounded answers, Qlik's error shape, nothing secret leaking.

Requests go straight to an httpx transport (not `AsyncClient`, which logs every URL at INFO and
would log user look-up filters), the project's `AiohttpTransport`: httpx's own transport
(httpcore) logs every response's headers at DEBUG, the tenant's `Set-Cookie` session included.
Answers are read up to 1 MiB. Transport failures become
`QlikUnavailable` / `QlikTimeout` naming the tenant host and the operation.

Qlik answers errors as `{"errors": [{"code", "title", "detail", "status"}], "traceId"}`.
`CloudAnswer.qlik_said()` renders that for an error message after removing anything that could be
a credential: JWT-shaped strings, bearer values and the caller's own secrets, and truncating.
"""

from __future__ import annotations

import email.utils
import json
import logging
import re
import ssl
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx2 as httpx

from ..auth._raw_http import exception_chain, read_capped
from ..errors import QlikTimeout, QlikUnavailable
from ..proxy.aiohttp_transport import AiohttpTransport
from .target import CloudTarget

__all__ = ["CloudAnswer", "CloudHttp", "scrub"]

logger = logging.getLogger("qlik_sso_middleware.cloud")

_MAX_BODY = 1024 * 1024
_MAX_SAID = 300
_JWT_LIKE = re.compile(r"eyJ[\w-]*\.[\w-]*\.[\w-]*")
_BEARER = re.compile(r"(?i)(bearer\s+)\S+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` without credentials (JWTs, bearer values, `secrets`) or control characters."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "********")
    text = _JWT_LIKE.sub("<jwt>", text)
    text = _BEARER.sub(r"\1********", text)
    text = _CONTROL.sub(" ", text)
    return text if len(text) <= _MAX_SAID else text[:_MAX_SAID] + "…"


@dataclass(frozen=True)
class CloudAnswer:
    """A complete answer from the tenant."""

    status: int
    headers: httpx.Headers
    body: bytes

    def json(self) -> Any:
        """The JSON body, or None when it is not JSON."""
        try:
            return json.loads(self.body) if self.body else None
        except (ValueError, RecursionError):
            return None

    def error(self) -> dict[str, str]:
        """The first of Qlik's `errors` (code, title, detail as strings; empty when absent)."""
        data = self.json()
        errors = data.get("errors") if isinstance(data, dict) else None
        first = errors[0] if isinstance(errors, list) and errors else {}
        if not isinstance(first, dict):
            return {}
        return {k: str(first[k]) for k in ("code", "title", "detail") if first.get(k) is not None}

    def qlik_said(self, secrets: Iterable[str] = ()) -> str:
        """`HTTP 401 LOGIN-…: title (detail)`, scrubbed, for an error message."""
        error = self.error()
        parts = [f"HTTP {self.status}"]
        if error.get("code"):
            parts.append(error["code"] + ":")
        if error.get("title"):
            parts.append(error["title"])
        if error.get("detail"):
            parts.append(f"({error['detail']})")
        return scrub(" ".join(parts), secrets)

    def retry_after(self, *, default: float = 60.0) -> float | None:
        """Seconds a 429 asks to wait (`Retry-After` as seconds or HTTP date); None if not 429."""
        if self.status != 429:
            return None
        value = self.headers.get("retry-after", "").strip()
        if value.isdigit():
            return float(value)
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return default
        return max(0.0, when.timestamp() - time.time())


def _certificate_failure(exc: BaseException) -> str | None:
    found = None
    for cause in exception_chain(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            # aiohttp's wrapper is one too, without the message: the ssl module's comes later.
            message = getattr(cause, "verify_message", None)
            if message:
                return str(message)
            found = "verification failed"
    return found


class CloudHttp:
    """One pooled TLS transport to the tenant; safe for concurrent use within one event loop."""

    def __init__(self, target: CloudTarget) -> None:
        self.target = target
        self._transport = AiohttpTransport(ssl_context=target.ssl_context(), max_connections=20)
        self._timeout = httpx.Timeout(target.timeout).as_dict()

    async def aclose(self) -> None:
        await self._transport.aclose()

    async def request(
        self,
        method: str,
        path: str,
        operation: str,
        *,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> CloudAnswer:
        """Send one request; `operation` names it in logs and errors (never a value in it)."""
        request = httpx.Request(
            method,
            self.target.tenant_url + path,
            params=params,
            headers={
                "Accept": "application/json",
                "User-Agent": "qlik-sso-middleware",
                **(headers or {}),
            },
            json=json_body,
            extensions={"timeout": self._timeout},
        )
        response: httpx.Response | None = None
        try:
            response = await self._transport.handle_async_request(request)
            body = await read_capped(response, _MAX_BODY)
            if body is None:
                raise QlikUnavailable(
                    f"Qlik Cloud at {self.target.host} answered {operation} with more than "
                    f"{_MAX_BODY} bytes"
                )
            answer = CloudAnswer(response.status_code, response.headers, body)
        except httpx.TimeoutException as exc:
            raise QlikTimeout(
                f"Qlik Cloud at {self.target.host} did not answer {operation} within "
                f"{self.target.timeout:g} s"
            ) from exc
        except httpx.TransportError as exc:
            untrusted = _certificate_failure(exc)
            if untrusted is not None:
                raise QlikUnavailable(
                    f"Qlik Cloud at {self.target.host} presented a certificate this server does "
                    f"not trust ({untrusted}): for a tenant behind a private CA set verify to "
                    "that CA's file"
                ) from exc
            raise QlikUnavailable(
                f"Qlik Cloud at {self.target.host} unreachable for {operation} "
                f"({type(exc).__name__}): check tenant_url, DNS, the firewall and, for a private "
                "CA, verify"
            ) from exc
        finally:
            if response is not None:
                await response.aclose()
        logger.debug("Qlik Cloud %s -> %d", operation, answer.status)
        return answer
