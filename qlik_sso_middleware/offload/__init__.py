"""Offload mode: nginx or Caddy carries Qlik's bytes; the app keeps identity and sessions.

The front proxy asks the app, for every request under a Qlik mount path, whether it may pass and
with what (its auth sub-request: nginx `auth_request`, Caddy `reverse_proxy` in the
`forward_auth` pattern). The app answers from the same admission and session code as the
in-process middleware (`QlikSSO.admit`, `UserSession`), and the front proxy sets the answer's
values on the request it sends to Qlik. Anything the app refused, and every redirect Qlik answers,
the front proxy sends through the app's in-process path instead, which answers it exactly as it
always does (and renews a session Qlik forgot).

- `front`: `FrontProxy`, what the app knows about its front proxy (the shared secret);
- `subrequest`: the auth sub-request read back into the request it stands for;
- `endpoint`: the auth endpoint and the renewal round trip the middleware serves;
- `front_config`, `nginx`, `caddy`: the generated front proxy configuration
  (`qlik-sso front-config`).
"""

from __future__ import annotations

from .front import FrontProxy

__all__ = ["FrontProxy"]
