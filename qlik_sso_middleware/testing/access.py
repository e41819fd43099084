"""Access passes of the simulated site: who may use Qlik Sense once logged in.

Qlik checks the licence when a session is used through the proxy ("The license check for
user-based licenses ... occurs when you access the hub", Qlik support article 1715138): a user
without an allocation, or whose allocation comes from a group rule of a user directory not yet
synchronised, gets "You cannot access Qlik Sense because you have no access pass" (HTTP) or
`OnLicenseAccessDenied` (engine WebSocket). Both look the same from outside; the simulator keeps
them apart so a test can say which one it set up.

    AccessPasses()                                              everyone has one (the default)
    AccessPasses(users={"CMI\\\\Me": "none"})                    one user without
    AccessPasses(directories={"CMI": "not_synced"})             a directory whose rule cannot apply
    AccessPasses(default="none", users={"ACME\\\\bob": "allocated"})

A user entry wins over a directory entry, which wins over `default`. Names compare
case-insensitively, as Qlik compares user directories and ids.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from ..errors import ConfigurationError

__all__ = ["ACCESS_STATES", "AccessPasses", "AccessState"]

AccessState = Literal["allocated", "none", "not_synced"]
ACCESS_STATES: tuple[str, ...] = ("allocated", "none", "not_synced")


@dataclass(frozen=True)
class AccessPasses:
    """Who holds an access pass: `default`, per user (`"DIR\\\\id"`), per user directory."""

    default: str = "allocated"
    users: Mapping[str, str] = field(default_factory=dict)
    directories: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.default not in ("allocated", "none"):
            raise ConfigurationError("must be 'allocated' or 'none'", field="default")
        users: dict[str, str] = {}
        for user, state in dict(self.users).items():
            if not isinstance(user, str) or user.count("\\") != 1:
                raise ConfigurationError(
                    f"{user!r} must be written DIRECTORY\\\\userid", field="users"
                )
            if state not in ("allocated", "none"):
                raise ConfigurationError(
                    f"{user!r}: {state!r} is not 'allocated' or 'none'", field="users"
                )
            users[user.lower()] = state
        directories: dict[str, str] = {}
        for directory, state in dict(self.directories).items():
            if not isinstance(directory, str) or not directory or "\\" in directory:
                raise ConfigurationError(
                    f"{directory!r} must be a user directory name", field="directories"
                )
            if state not in ACCESS_STATES:
                raise ConfigurationError(
                    f"{directory!r}: {state!r} is not one of {', '.join(ACCESS_STATES)}",
                    field="directories",
                )
            directories[directory.lower()] = state
        object.__setattr__(self, "users", users)
        object.__setattr__(self, "directories", directories)

    def state(self, user_directory: str, user_id: str) -> str:
        """ "allocated", "none" or "not_synced" for this user."""
        found = self.users.get(f"{user_directory}\\{user_id}".lower())
        if found is not None:
            return found
        return self.directories.get(user_directory.lower(), self.default)

    def allows(self, user_directory: str, user_id: str) -> bool:
        # Anonymous users (directory NONE) use the anonymous access rules Qlik sites set up for
        # them; the simulator lets them in unless a rule names them.
        if user_directory == "NONE" and f"none\\{user_id}".lower() not in self.users:
            return True
        return self.state(user_directory, user_id) == "allocated"

    def allocate(self, user: str) -> AccessPasses:
        """A copy where `user` ("DIR\\\\id") holds a pass (the QMC's allocation of access)."""
        users = dict(self.users)
        users[user.lower()] = "allocated"
        return AccessPasses(self.default, users, self.directories)
