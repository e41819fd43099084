"""examples/starlette_app, started as its README says, driven through a login and Qlik."""

from __future__ import annotations

from qlik_sso_middleware.testing import QlikSimulator

from .driver import assert_embed_snippets, assert_visit, running, visit


async def test_starlette_example_end_to_end(simulator: QlikSimulator, asgi_server: str) -> None:
    async with running(
        ["examples/starlette_app/app.py"], {"QLIK_URL": simulator.proxy_url}, server=asgi_server
    ) as url:
        result = await visit(url, user="bob")
        await assert_embed_snippets(url, result.embed_html)
    assert_visit(result, simulator, user="bob")
