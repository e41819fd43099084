"""The simulator speaks enough of the engine protocol for the real enigma.js (npm) client.

Needs `node` and `npm ci --prefix tests/js`. Skips when either is missing, except with `CI` set,
where a missing tool is a failure.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

from qlik_sso_middleware.testing import QlikSimulator

from ..needs import unavailable
from .conftest import APP, login, ws_url

JS_DIR = Path(__file__).resolve().parents[1] / "js"


def _node() -> str:
    node = shutil.which("node")
    missing = None
    if node is None:
        missing = "node is not installed"
    elif not (JS_DIR / "node_modules" / "enigma.js").is_dir():
        missing = "tests/js/node_modules is missing (run `npm ci --prefix tests/js`)"
    if missing is not None:
        unavailable(missing)
    assert node is not None
    return node


async def test_enigma_js_opens_a_doc_and_reads_a_layout(sim: QlikSimulator) -> None:
    node = _node()
    _, cookie, token = await login(sim)
    url = ws_url(sim, f"/sso/app/{APP}?qlik-csrf-token={token}")
    process = await asyncio.create_subprocess_exec(
        node,
        str(JS_DIR / "enigma_check.mjs"),
        url,
        cookie,
        APP,
        "sales-bar",
        cwd=JS_DIR,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, stderr.decode()
    result = json.loads(stdout)
    assert result["title"] == "Sales"
    assert result["version"]["qComponentVersion"]
    cube = result["layout"]["qHyperCube"]
    assert [row[0]["qText"] for row in cube["qDataPages"][0]["qMatrix"]] == ["Q1", "Q2", "Q3", "Q4"]
    assert "OnConnected" in result["notices"]
    methods = [
        json.loads(f.data)["method"]
        for f in sim.frames
        if f.direction == "in" and isinstance(f.data, str)
    ]
    assert methods[:5] == ["EngineVersion", "OpenDoc", "GetAppLayout", "GetObject", "GetLayout"]
