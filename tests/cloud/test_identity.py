"""`CloudIdentity` and `CloudIdentityMapping`: a resolver's QlikIdentity as a Qlik Cloud user."""

from __future__ import annotations

from typing import Any

import pytest

from qlik_sso_middleware.cloud import CloudIdentity, CloudIdentityMapping
from qlik_sso_middleware.errors import ConfigurationError, InvalidIdentity
from qlik_sso_middleware.identity import QlikIdentity


def test_the_default_mapping_keeps_the_qlik_sense_identifier() -> None:
    identity = QlikIdentity(
        "ACME",
        "alice",
        [
            ("Name", "Alice Doe"),
            ("EMAIL", "alice@acme.com"),
            ("Group", "Sales"),
            ("group", "EMEA"),
            ("Group", "Sales"),
        ],
    )
    cloud = CloudIdentityMapping().to_cloud(identity)
    assert cloud == CloudIdentity("ACME\\alice", "Alice Doe", "alice@acme.com", ("Sales", "EMEA"))
    assert cloud.email_verified is False


def test_mapping_options() -> None:
    mapping = CloudIdentityMapping(
        subject="{user_id}",
        name_attribute="displayName",
        email_attribute="mail",
        group_attribute="role",
        emails_verified=True,
    )
    with_mail = mapping.to_cloud(
        QlikIdentity("ACME", "alice", {"mail": "a@acme.com", "role": ["x", "y"]})
    )
    without = mapping.to_cloud(QlikIdentity("ACME", "bob"))
    assert (with_mail.subject, with_mail.name, with_mail.groups, with_mail.email_verified) == (
        "alice",
        "alice",
        ("x", "y"),
        True,
    )
    assert (without.email, without.email_verified, without.display_name()) == ("", False, "bob")


@pytest.mark.parametrize("template", ["{user_id}{tenant}", "plain", "{user_id", "{0}"])
def test_subject_templates_use_known_fields_only(template: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        CloudIdentityMapping(subject=template)
    assert refused.value.field == "subject"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"subject": ""},
        {"subject": " padded"},
        {"subject": "a\nb"},
        {"subject": "x" * 257},
        {"subject": "s", "email": "no-at-sign"},
        {"subject": "s", "email": "a b@c"},
        {"subject": "s", "groups": "Sales"},
        {"subject": "s", "groups": ["ok", ""]},
        {"subject": "s", "groups": [f"g{i}" for i in range(65)]},
        {"subject": "s", "name": "\u202eevil"},
        {"subject": "s", "email_verified": "yes"},
    ],
)
def test_invalid_cloud_identities(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidIdentity):
        CloudIdentity(**kwargs)
