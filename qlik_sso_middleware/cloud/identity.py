"""`CloudIdentity`: the app user as a Qlik Cloud user (subject, name, email, groups).

Qlik Cloud identifies a user by `subject` (the IdP's identifier, e.g. `auth0|a08D…` or
`ACME\\alice`), not by `DIRECTORY\\user`. The resolvers still produce a `QlikIdentity`;
`CloudIdentityMapping` turns it into a `CloudIdentity`, so the same resolvers and tenant mapping
serve Qlik Sense and Qlik Cloud targets. Validation happens here, once, like `QlikIdentity`'s.
"""

from __future__ import annotations

import string
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..errors import ConfigurationError, InvalidIdentity
from ..identity import MAX_PART_LENGTH, QlikIdentity, _check_text

__all__ = ["CloudIdentity", "CloudIdentityMapping"]

_MAX_GROUPS = 64
_MAX_EMAIL = 320
_FIELDS = frozenset({"user_directory", "user_id"})


@dataclass(frozen=True, slots=True)
class CloudIdentity:
    """A validated Qlik Cloud user.

    - `subject`: the user's unique, stable id in the app's IdP (Qlik's `sub` / `user_lookup`).
    - `name`, `email`: shown in Qlik; a JWT login must carry both.
    - `groups`: group names a JWT login assigns (impersonation cannot change groups).
    - `email_verified`: tells Qlik the app verified the address. Hazard: only set it when the app
      really did, since Qlik may trust a verified address to identify the user.
    """

    subject: str
    name: str = ""
    email: str = ""
    groups: tuple[str, ...] = field(default=())
    email_verified: bool = False

    def __init__(
        self,
        subject: str,
        name: str = "",
        email: str = "",
        groups: Iterable[str] = (),
        *,
        email_verified: bool = False,
    ) -> None:
        object.__setattr__(self, "subject", _check_text("subject", subject, limit=MAX_PART_LENGTH))
        object.__setattr__(
            self, "name", _check_text("name", name, limit=MAX_PART_LENGTH, allow_empty=True)
        )
        email = _check_text("email", email, limit=_MAX_EMAIL, allow_empty=True)
        if email and (email.count("@") != 1 or any(c in email for c in string.whitespace)):
            raise InvalidIdentity("email is not an e-mail address")
        object.__setattr__(self, "email", email)
        if isinstance(groups, str):
            raise InvalidIdentity("groups must be a list of names, not one string")
        names = tuple(dict.fromkeys(groups))
        if len(names) > _MAX_GROUPS:
            raise InvalidIdentity(f"more than {_MAX_GROUPS} groups")
        for name_ in names:
            _check_text("group", name_, limit=MAX_PART_LENGTH)
        object.__setattr__(self, "groups", names)
        if not isinstance(email_verified, bool):
            raise InvalidIdentity("email_verified must be a boolean")
        object.__setattr__(self, "email_verified", email_verified)

    def display_name(self) -> str:
        """`name`, or the subject when the app gave none (Qlik needs a name)."""
        return self.name or self.subject


@dataclass(frozen=True)
class CloudIdentityMapping:
    """How a resolver's `QlikIdentity` becomes a `CloudIdentity`.

    - `subject`: a template over `{user_directory}` and `{user_id}`; the default keeps the Qlik
      Sense form (`ACME\\alice`), so users moving from Qlik Sense keep one identifier.
    - `name_attribute`, `email_attribute`, `group_attribute`: attribute names (compared without
      case) that carry the name, the e-mail and the groups (every value of the group attribute).
    - `emails_verified`: the app verified every e-mail address it gives (see `CloudIdentity`).
    """

    subject: str = "{user_directory}\\{user_id}"
    name_attribute: str = "name"
    email_attribute: str = "email"
    group_attribute: str = "group"
    emails_verified: bool = False

    def __post_init__(self) -> None:
        try:
            names = {f for _, f, _, _ in string.Formatter().parse(self.subject) if f is not None}
        except ValueError as exc:
            raise ConfigurationError("is not a valid template", field="subject") from exc
        if not names or not names <= _FIELDS:
            raise ConfigurationError(
                "a template over {user_directory} and {user_id} only", field="subject"
            )

    def to_cloud(self, identity: QlikIdentity) -> CloudIdentity:
        """The Cloud user for `identity` (raises `InvalidIdentity` when it cannot be one)."""

        def values(attribute: str) -> list[str]:
            wanted = attribute.lower()
            return [v for n, v in identity.attributes if n.lower() == wanted and v]

        subject = self.subject.format(
            user_directory=identity.user_directory, user_id=identity.user_id
        )
        names, emails = values(self.name_attribute), values(self.email_attribute)
        return CloudIdentity(
            subject,
            name=names[0] if names else identity.user_id,
            email=emails[0] if emails else "",
            groups=values(self.group_attribute),
            email_verified=self.emails_verified and bool(emails),
        )
