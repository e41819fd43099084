"""Resolvers: who is the app's logged-in user, as a Qlik identity?

A resolver receives the request (a Starlette `HTTPConnection`, for HTTP and WebSocket alike) and
returns a `QlikIdentity`, a `Resolved` (identity + the name of the Qlik target it must use, for
per-tenant setups), or `None` for "no logged-in user". Plain functions, sync or async, are accepted
and normalised once by `as_resolver`; sync functions run in a worker thread so they may block.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias, cast, runtime_checkable

from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from ..errors import ConfigurationError
from ..identity import QlikIdentity

__all__ = [
    "CallableResolver",
    "ChainResolver",
    "HeaderTrustingResolver",
    "Resolution",
    "Resolved",
    "Resolver",
    "ResolverLike",
    "ScopeUserResolver",
    "as_resolver",
    "trusted_headers",
]


@dataclass(frozen=True, slots=True)
class Resolved:
    """An identity bound to a named Qlik target (tenant isolation)."""

    identity: QlikIdentity
    target: str | None = None


Resolution: TypeAlias = QlikIdentity | Resolved | None


@runtime_checkable
class Resolver(Protocol):
    """Turns a request into a Qlik identity, or `None` when nobody is logged in."""

    async def resolve(self, conn: HTTPConnection) -> Resolution: ...


@runtime_checkable
class HeaderTrustingResolver(Resolver, Protocol):
    """A resolver that believes a request header (an authenticating proxy's).

    `trusted_headers` names those headers: they are Qlik's business no more than the browser's, so
    the middleware strips them, in every spelling, from every request it forwards.
    """

    trusted_headers: tuple[str, ...]


def trusted_headers(resolver: Resolver) -> tuple[str, ...]:
    """The headers `resolver` trusts for identity (none for most resolvers)."""
    return resolver.trusted_headers if isinstance(resolver, HeaderTrustingResolver) else ()


ResolverLike: TypeAlias = Resolver | Callable[[HTTPConnection], Resolution | Awaitable[Resolution]]


class CallableResolver:
    """Adapts any function `conn -> identity | None` (sync functions run off the event loop)."""

    def __init__(
        self,
        func: Callable[[HTTPConnection], Resolution | Awaitable[Resolution]],
        *,
        run_sync_in_thread: bool = True,
    ) -> None:
        if not callable(func):
            raise ConfigurationError("must be callable", field="resolver")
        self._func = func
        self._is_async = inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
            getattr(func, "__call__", None)  # noqa: B004 - callable objects with async __call__
        )
        self._thread = run_sync_in_thread

    async def resolve(self, conn: HTTPConnection) -> Resolution:
        if self._is_async:
            return await cast(Awaitable[Resolution], self._func(conn))
        if self._thread:
            result = await run_in_threadpool(self._func, conn)
        else:
            result = self._func(conn)
        if inspect.isawaitable(result):
            return await result
        return result


def as_resolver(value: ResolverLike) -> Resolver:
    """Normalise a resolver or plain callable to the `Resolver` protocol (done once, at start-up)."""
    if isinstance(value, Resolver):
        return value
    return CallableResolver(value)


class ScopeUserResolver:
    """The user Starlette's `AuthenticationMiddleware` put in `scope["user"]`.

    `to_identity(user)` maps the app's user object to a Qlik identity; the default uses
    `user_directory` and the user's `identity` (or `display_name`).
    """

    def __init__(
        self,
        user_directory: str | None = None,
        *,
        to_identity: Callable[[Any], QlikIdentity | None] | None = None,
    ) -> None:
        if to_identity is None and not user_directory:
            raise ConfigurationError(
                "give a user_directory or a to_identity function", field="user_directory"
            )
        self._to_identity = to_identity
        self._directory = user_directory

    async def resolve(self, conn: HTTPConnection) -> Resolution:
        user = conn.scope.get("user")
        if user is None or not getattr(user, "is_authenticated", False):
            return None
        if self._to_identity is not None:
            return self._to_identity(user)
        name = getattr(user, "identity", None) or getattr(user, "display_name", None)
        if not isinstance(name, str) or not name:
            return None
        assert self._directory is not None
        return QlikIdentity(self._directory, name)


class ChainResolver:
    """First resolver that finds a user wins (e.g. trusted header, then session cookie)."""

    def __init__(self, resolvers: Sequence[ResolverLike]) -> None:
        if not resolvers:
            raise ConfigurationError("needs at least one resolver", field="resolvers")
        self._resolvers = [as_resolver(r) for r in resolvers]
        self.trusted_headers: tuple[str, ...] = tuple(
            h for r in self._resolvers for h in trusted_headers(r)
        )

    async def resolve(self, conn: HTTPConnection) -> Resolution:
        for resolver in self._resolvers:
            result = await resolver.resolve(conn)
            if result is not None:
                return result
        return None
