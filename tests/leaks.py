"""What a test counts before and after to prove nothing leaked: connections held by this process."""

from __future__ import annotations

import psutil

__all__ = ["connections_to"]


def connections_to(port: int) -> int:
    """Established TCP connections from this process to `port` (e.g. the simulator's proxy port)."""
    return sum(
        1
        for c in psutil.Process().net_connections(kind="tcp")
        if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED
    )
