"""The corpus of real setups (`corpus.py`): for each case, `qlik-sso check --json` runs as a
subprocess, as a user runs it; every expected failure must be the first failing step, naming its
cause; the fix it printed is applied (`action`: to the middleware's TOML, or to the simulated site
as the QMC would change it), and after the last one check must pass with exit status 0.

Simulators are shared (one per kind of site, started once for the module); cases add their own
virtual proxies and users, so nothing of one case reaches another.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from qlik_sso_middleware.auth._qps import QPSClient, QPSSettings
from qlik_sso_middleware.identity import QlikIdentity
from qlik_sso_middleware.testing import (
    AccessPasses,
    CertificateFiles,
    SimulatorThread,
    VirtualProxy,
    generate_certificates,
)
from tests.diagnostics.corpus import CASES, Case

#: A site's default virtual proxy, as Qlik installs it: no prefix, Windows/form login.
DEFAULT_VP = VirtualProxy(prefix="", auth="ticket", cookie_name="X-Qlik-Session")
_PLACEHOLDER = re.compile(r"<[^<>]+>")


@dataclass
class Site:
    sim: SimulatorThread
    certs: CertificateFiles
    values: dict[str, str] = field(default_factory=dict)


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Site]]:
    base = tmp_path_factory.mktemp("corpus")
    other = generate_certificates(base / "other", client_signed_by_other_root=True)
    generate_certificates(base / "shortname", server_names=("qlikserver1",))
    kinds: dict[str, dict[str, Any]] = {
        "main": {"windows_auth_port": True, "qrs": True},
        "https": {"https": True},
        "fallback": {"api": False, "unknown_prefix": "default_vp"},
        "shortname": {"cert_dir": base / "shortname"},
    }
    started: dict[str, Site] = {}
    try:
        for name, options in kinds.items():
            options.setdefault("cert_dir", base / name)
            sim = SimulatorThread([DEFAULT_VP], **options)
            sim.start()
            certs = sim.certificates or other  # a site without TLS has none of its own
            url = sim.proxy_url
            other_scheme = (
                url.replace("https://", "http://")
                if sim.https
                else url.replace("http://", "https://")
            )
            values = {
                "proxy_url": url,
                "proxy_url_other_scheme": other_scheme,
                "api_url": sim.api_url or "",
                "windows_auth_url": sim.windows_auth_url or "",
                "qrs_url": getattr(sim, "qrs_url", None) or "",
                "root": str(certs.root),  # the site's root.pem
                "client_cert": str(certs.client),
                "client_key": str(certs.client_key),
                "other_client_cert": str(other.client),
                "other_client_key": str(other.client_key),
            }
            started[name] = Site(sim, certs, values)
        yield started
    finally:
        for site in started.values():
            site.sim.stop()


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    text = str(value)
    if "'" not in text and "\n" not in text:
        return f"'{text}'"  # literal: backslashes as written (the QMC's $ud\\$id, DIR\user)
    return json.dumps(text)


def _write(path: Path, config: dict[str, dict[str, Any]]) -> None:
    lines = []
    for section, values in config.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in values.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _config(case: Case, site: Site) -> dict[str, dict[str, Any]]:
    config: dict[str, dict[str, Any]] = {
        "qlik": {"url": "{proxy_url}"},
        "check": {"test_user": case.user},
    }
    if case.qps:
        config["qps"] = {
            "api_url": "{api_url}",
            "root": "{root}",
            "client_cert": "{client_cert}",
            "client_key": "{client_key}",
        }
    for section, values in case.config.items():
        config.setdefault(section, {}).update(values)
    return {
        section: {
            k: v.format_map(site.values) if isinstance(v, str) else v for k, v in values.items()
        }
        for section, values in config.items()
    }


def _check(path: Path) -> tuple[int, dict[str, Any], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QLIK_SSO_")}
    done = subprocess.run(
        [sys.executable, "-m", "qlik_sso_middleware.cli", "check", "--config", str(path), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout), done.stderr


def _resolve(value: Any, site: Site) -> Any:
    """A fix's value as the user would fill it in: `<placeholders>` are files only the user knows
    (here: the site's own export); port 4243 stands for QPS's API port (here: the simulator's)."""
    if not isinstance(value, str):
        return value
    known = {
        "<root.pem exported from this Qlik site>": site.values["root"],
        "<client.pem exported from this Qlik site>": site.values["client_cert"],
        "<client_key.pem exported from this Qlik site>": site.values["client_key"],
    }
    value = known.get(value, value)
    assert not _PLACEHOLDER.search(value), f"a fix check could not state: {value}"
    api = site.values["api_url"]
    if api and value.endswith(":4243"):
        value = value.rsplit(":", 1)[0] + ":" + api.rsplit(":", 1)[1]
    return value


def _apply(action: dict[str, Any] | None, case: Case, site: Site, config: dict[str, Any]) -> None:
    assert action, f"{case}: the failing step gave no machine-readable fix"
    ((kind, what),) = action.items()
    if kind == "config":
        for key, value in what.items():
            section, option = key.split(".", 1)
            if value is None:
                config.get(section, {}).pop(option, None)
            else:
                config.setdefault(section, {})[option] = _resolve(value, site)
    elif kind == "virtual_proxy":
        current = {vp.prefix: vp for vp in site.sim.virtual_proxies}.get(what["prefix"])
        changes = dict(what.get("set", {}))
        for option, item in what.get("add", {}).items():
            changes[option] = (*getattr(current, option, ()), item)
        site.sim.configure_virtual_proxy(what["prefix"], **changes)
    elif kind == "access_pass":
        site.sim.set_access(site.sim.access.allocate(what))
    elif kind == "end_sessions":
        _end_sessions(site, case, what)
    elif kind == "front_end":
        _undo_setup(case, site)
    else:
        raise AssertionError(f"{case}: unknown fix kind {kind}")


def _qps(site: Site, prefix: str) -> QPSClient:
    assert site.sim.api_url is not None
    return QPSClient(
        QPSSettings(
            api_url=site.sim.api_url,
            root=site.certs.root,
            prefix=prefix,
            client_cert=site.certs.client,
            client_key=site.certs.client_key,
        )
    )


def _end_sessions(site: Site, case: Case, user: str) -> None:
    async def end() -> None:
        async with _qps(site, case.config["qlik"]["prefix"]) as client:
            await client.delete_user_sessions(QlikIdentity.parse(user))

    asyncio.run(end())


def _setup(case: Case, site: Site) -> None:
    prefix = case.config["qlik"]["prefix"]
    faults = site.sim.faults
    if case.setup == "block_csrftoken":
        faults.fail_next(404, count=1000, path_contains=f"/{prefix}/qps/csrftoken")
    elif case.setup == "drop_xrfkey_header":
        faults.api_drop_headers = {"x-qlik-xrfkey"}
    elif case.setup == "drop_xrfkey_query":
        faults.api_drop_query = {"xrfkey"}
    elif case.setup == "five_sessions":

        async def log_in_five_times() -> None:
            async with _qps(site, prefix) as client:
                for number in range(5):
                    await client.create_session(QlikIdentity.parse(case.user), f"cap-{number}")

        asyncio.run(log_in_five_times())
    else:
        assert case.setup is None, case.setup


def _undo_setup(case: Case, site: Site) -> None:
    faults = site.sim.faults
    faults.clear(f"/{case.config['qlik']['prefix']}/qps/csrftoken")
    faults.api_drop_headers = set()
    faults.api_drop_query = set()


def test_the_corpus_is_large_and_cited() -> None:
    assert len(CASES) >= 25
    assert CASES[0].id == "classic-header-sso"
    assert len({case.id for case in CASES}) == len(CASES)
    prefixes = [p for case in CASES for p in [case.config["qlik"].get("prefix")]]
    assert len(set(prefixes)) == len(prefixes)  # cases never share a virtual proxy
    assert all("." in case.source and "/" in case.source for case in CASES)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_check_finds_the_cause_and_its_fix_works(
    case: Case, sites: dict[str, Site], tmp_path: Path
) -> None:
    site = sites[case.site]
    for vp in case.vps:
        options = {f: getattr(vp, f) for f in vp.__dataclass_fields__ if not f.startswith("_")}
        site.sim.configure_virtual_proxy(options.pop("prefix"), **options)
    site.sim.set_access(case.access)
    config = _config(case, site)
    path = tmp_path / "qlik-sso.toml"
    _setup(case, site)
    try:
        for step_id, cause in case.expect:
            _write(path, config)
            status, result, stderr = _check(path)
            failures = [s for s in result["steps"] if s["status"] == "fail"]
            shown = "\n".join(
                f"{s['status']} {s['id']}: {s['detail']} | {s['fix']}" for s in result["steps"]
            )
            assert status == 1 and not result["ok"] and failures, shown
            first = failures[0]
            assert first["id"] == step_id, shown
            assert cause in f"{first['detail']} {first['fix']}", shown
            _apply(first.get("action"), case, site, config)
        _write(path, config)
        status, result, stderr = _check(path)
        shown = "\n".join(
            f"{s['status']} {s['id']}: {s['detail']} | {s['fix']}" for s in result["steps"]
        )
        assert status == 0 and result["ok"], shown
        assert "Traceback" not in stderr
    finally:
        _undo_setup(case, site)
        site.sim.set_access(AccessPasses())
