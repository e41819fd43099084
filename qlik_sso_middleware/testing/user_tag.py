"""Who each answer was for: the simulator's optional user tag (`QlikSimulator(tag_user=True)`).

With the option on, every HTTP answer of the proxy port that ran on a session carries the
session's user in `X-Qlik-Sim-User` (`DIRECTORY\\id`, percent-encoded outside ASCII), and every
text frame an engine WebSocket sends that is a JSON object (answers and notifications) carries it
in a `qlikSimUser` field. A client that knows who it is can then check each answer it gets, end to
end through anything in between: an answer meant for someone else is a cross-user leak.

Answers that ran on no session (the login redirect, injected failures, refusals) carry no tag. Real
Qlik sends neither, so the option is off by default; a proxy in front must pass both through
unchanged (`X-Qlik-*` response headers are not among those it drops).
"""

from __future__ import annotations

import json
from urllib.parse import quote

__all__ = ["USER_TAG_FIELD", "USER_TAG_HEADER", "tag_frame", "tag_header"]

USER_TAG_HEADER = "x-qlik-sim-user"
USER_TAG_FIELD = "qlikSimUser"


def tag_header(user: str) -> tuple[bytes, bytes]:
    """The response header naming `user` (ASCII, as HTTP wants)."""
    return USER_TAG_HEADER.encode(), quote(user, safe="\\").encode("ascii")


def tag_frame(text: str, user: str) -> str:
    """`text` with the user field added, if it is a JSON object; anything else unchanged."""
    if not text.startswith("{"):
        return text
    try:
        message = json.loads(text)
    except ValueError:
        return text
    if not isinstance(message, dict):
        return text
    message[USER_TAG_FIELD] = user
    return json.dumps(message)
