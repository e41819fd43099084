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
    assert len(sections) == 12
    for name, cls in sections.items():
        for field in dataclasses.fields(cls):
            assert f"`{name}.{field.name}`" in text, f"{name}.{field.name}"
            assert f"`QLIK_SSO_{name.upper()}_{field.name.upper()}`" in text


def test_the_simulated_site_in_the_docs_loads(tmp_path: Path) -> None:
    from qlik_sso_middleware.testing.sim_config import load_simulator_config

    text = DOC.read_text(encoding="utf-8")
    block = text.split("# site.toml: the classic case\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "site.toml"
    path.write_text(block, encoding="utf-8")
    options = load_simulator_config(path)
    classic = options["virtual_proxies"][1]
    assert (classic.prefix, classic.parse_identity("CMI\\Me")) == ("a_", ("CMI", "Me"))
    assert options["access"].state("CMI", "Me") == "none"
