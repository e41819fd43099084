"""docs/cli.md stays in step with the code: every configuration key and variable is documented."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

from qlik_sso_middleware.config import QlikSSOConfig

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def test_every_configuration_key_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    sections = typing.get_type_hints(QlikSSOConfig)
    sections.pop("raw")
    assert len(sections) == 11
    for name, cls in sections.items():
        for field in dataclasses.fields(cls):
            assert f"`{name}.{field.name}`" in text, f"{name}.{field.name}"
            assert f"`QLIK_SSO_{name.upper()}_{field.name.upper()}`" in text
