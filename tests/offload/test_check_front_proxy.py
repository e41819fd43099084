"""`qlik-sso check`'s front proxy steps: they pass behind a front proxy configured by
`front-config`, and fail where Qlik itself answers the public address (the negative control)."""

from __future__ import annotations

from pathlib import Path

import pytest

from qlik_sso_middleware import FrontProxy
from qlik_sso_middleware.config import QlikSSOConfig, load_config
from qlik_sso_middleware.diagnostics.front_proxy import check_front_proxy
from qlik_sso_middleware.diagnostics.report import Report
from qlik_sso_middleware.testing import QlikSimulator, VirtualProxy

from ..apps import build_app
from ..servers import serve
from .front import SECRET, front_proxy


def config_for(tmp_path: Path, qlik_url: str, origin: str) -> QlikSSOConfig:
    path = tmp_path / "qlik-sso.toml"
    path.write_text(
        f'[qlik]\nurl = "{qlik_url}"\n[app]\norigin = "{origin}"\n[offload]\nsecret = "{SECRET}"\n'
    )
    return load_config(path, env={})


@pytest.mark.parametrize("server", ["nginx", "caddy"])
async def test_the_front_proxy_steps_pass_behind_the_generated_configuration(
    server: str, tmp_path: Path
) -> None:
    async with QlikSimulator([VirtualProxy(prefix="sso", header_name="hdr-usr")]) as sim:
        app, _ = build_app(sim, front_proxy=FrontProxy(SECRET))
        async with serve(app) as app_url:
            async with front_proxy(server, qlik_url=sim.proxy_url, app_url=app_url) as url:
                report = Report()
                await check_front_proxy(config_for(tmp_path, sim.proxy_url, url), report)
        assert sim.requests == []  # nothing the check sent reached Qlik
    assert [(s.id, s.status) for s in report.steps] == [
        ("front.spoofing", "pass"),
        ("front.auth_endpoint", "pass"),
    ]


async def test_the_spoofing_step_fails_when_qlik_answers_the_public_address(
    tmp_path: Path,
) -> None:
    async with QlikSimulator([VirtualProxy(prefix="sso", header_name="hdr-usr")]) as sim:
        report = Report()
        # A front proxy that forwards everything to Qlik looks like this from outside.
        await check_front_proxy(config_for(tmp_path, sim.proxy_url, sim.proxy_url), report)
    (spoofing,) = [s for s in report.steps if s.id == "front.spoofing"]
    assert spoofing.status == "fail"
    assert "front-config" in (spoofing.fix or "")


async def test_no_front_proxy_steps_without_offload(tmp_path: Path) -> None:
    path = tmp_path / "qlik-sso.toml"
    path.write_text('[qlik]\nurl = "http://127.0.0.1:1"\n')
    report = Report()
    await check_front_proxy(load_config(path, env={}), report)
    assert report.steps == []
