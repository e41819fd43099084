"""`TicketAuth`: a Qlik session from a QPS ticket, redeemed server-side through the proxy port.

`POST ticket` (with the user's attributes) on the QPS API, then one GET of `<prefix>/qps/user`
with `qlikTicket=<ticket>` through the proxy port; Qlik answers with the session cookie, which we
keep server-side. The ticket never reaches the browser.

Tickets are single use and expire after one minute. A redemption that Qlik refuses (the ticket was
used or had expired, e.g. after a slow hop) is retried once with a fresh ticket; a refusal of the
*user* (too many sessions, no access pass) is not retried.

Hazard: a ticket is a credential for a minute and travels in a URL. httpx logs full URLs at INFO,
so constructing a `TicketAuth` installs a filter on the `httpx` logger that masks `qlikTicket`
values; our own messages never carry it.
"""

from __future__ import annotations

import logging
import re

from ..errors import QlikAccessDenied, QlikRejected
from ..identity import QlikIdentity
from ..stores.base import QlikSession
from ._proxy_login import login_via_proxy
from ._qps import QPSClient, QPSSettings
from ._qps_strategy import LogoutScope, QPSStrategy
from .base import LoginContext

__all__ = ["TicketAuth"]

logger = logging.getLogger("qlik_sso_middleware.auth")

_TICKET_IN_TEXT = re.compile(r"(qlikticket=)[^&\s\"'>]+", re.IGNORECASE)


class _MaskTickets(logging.Filter):
    """Replace `qlikTicket=<value>` in a log record by `qlikTicket=***`."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "qlikticket=" in message.lower():
            record.msg = _TICKET_IN_TEXT.sub(r"\1***", message)
            record.args = ()
        return True


#: The request loggers of the httpx line: httpx2 logs as "httpx2", an app's own httpx as "httpx".
HTTPX_LOGGERS = ("httpx", "httpx2")


def mask_tickets_in_httpx_logs() -> None:
    """Install (once) the filter that masks tickets in httpx's request log lines."""
    for name in HTTPX_LOGGERS:
        httpx_logger = logging.getLogger(name)
        if not any(isinstance(f, _MaskTickets) for f in httpx_logger.filters):
            httpx_logger.addFilter(_MaskTickets())


class TicketAuth(QPSStrategy):
    """Log users in with a QPS ticket redeemed server-side (`qlikTicket=` on `qps/user`).

    `qps`: `QPSSettings` (certificate problems raise `CertificateError` here) or a shared
    `QPSClient`; `logout_scope` as for `SessionApiAuth`. The virtual proxy must use ticket
    authentication (or accept tickets) and be the one `qps.prefix` names.
    """

    def __init__(self, qps: QPSSettings | QPSClient, *, logout_scope: LogoutScope = "user") -> None:
        super().__init__(qps, logout_scope=logout_scope)
        mask_tickets_in_httpx_logs()

    async def login(self, identity: QlikIdentity, ctx: LoginContext) -> QlikSession:
        """Get a ticket, redeem it through the proxy port, return the session Qlik set.

        Raises `QPSError` (ticket call), `QlikRejected` (Qlik refused the ticket twice, or the
        virtual proxy is misconfigured), `QlikAccessDenied`, `QlikUnavailable` or `QlikTimeout`.
        """
        self._check_prefix(ctx.prefix)
        for attempt in (1, 2):
            ticket = await self.qps.create_ticket(identity)
            try:
                return await login_via_proxy(
                    identity,
                    ctx,
                    headers={},
                    query={"qlikTicket": ticket.ticket},
                    how="the ticket",
                )
            except QlikAccessDenied:
                raise
            except QlikRejected as exc:
                if attempt == 2:
                    raise
                # Most often the ticket expired or was already used; a fresh one costs one call.
                logger.warning(
                    "Qlik did not accept the ticket for %s (%s); retrying once with a new ticket",
                    identity,
                    exc.message,
                )
        raise AssertionError("unreachable")  # pragma: no cover
