"""HTML pages of the simulated Qlik client (`hub/`, `single/`, `sense/app/...`, `qmc/`, login).

The inline script does what Qlik's client does since November 2024: fetch `qps/csrftoken` relative
to the prefix taken from `location.pathname`, open the engine WebSocket under the same prefix with
`?qlik-csrf-token=`, `OpenDoc`, `GetObject`, `GetLayout`, then render the connected user
(`#qlik-user`) and the object (`<table id="qlik-object">` or an SVG bar chart). The page marks
`document.body.dataset.state` as "connected", "error" or "logged-out" (no session, or the
session ended: `OnSessionClosed` / `OnSessionTimedOut`) for browser tests; `#qlik-status` holds the
last notice.

The simulated Qlik Cloud tenant serves the same page (`cloud=True`): the token comes from
`api/v1/csrf-token` and the user from the engine's `GetAuthenticatedUser` (Qlik Cloud sends no
`OnAuthenticationInformation`).
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping

from .demo_apps import DemoApp

__all__ = ["client_page", "forms_login_page", "qmc_page"]

_SCRIPT = r"""
(function () {
  const cfg = JSON.parse(document.getElementById("qlik-config").textContent);
  const body = document.body;
  const status = document.getElementById("qlik-status");
  // The prefix is the path up to the client route, as Qlik's client derives it.
  const path = location.pathname;
  const cut = path.search(/\/(hub|single|sense)(\/|$)/);
  const prefix = cut >= 0 ? path.slice(0, cut) : "";
  const csrfPath = cfg.cloud ? "/api/v1/csrf-token" : "/qps/csrftoken";
  function fail(message) {
    body.dataset.state = "error";
    status.textContent = message;
  }
  function esc(s) {
    const d = document.createElement("div"); d.textContent = s; return d.innerHTML;
  }
  async function main() {
    const tokenResponse = await fetch(prefix + csrfPath, {credentials: "include"});
    const token = tokenResponse.headers.get("qlik-csrf-token");
    if (!token) { fail("no csrf token (" + tokenResponse.status + ")"); return; }
    if (!cfg.appId) { await hub(); return; }
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const url = scheme + "//" + location.host + prefix + "/app/" + encodeURIComponent(cfg.appId) +
      "?qlik-csrf-token=" + encodeURIComponent(token);
    const ws = new WebSocket(url);
    let nextId = 1;
    const pending = new Map();
    function call(handle, method, params) {
      const id = nextId++;
      ws.send(JSON.stringify({jsonrpc: "2.0", id, handle, method, params}));
      return new Promise((resolve, reject) => pending.set(id, {resolve, reject}));
    }
    ws.onmessage = async (event) => {
      const msg = JSON.parse(event.data);
      if (msg.id && pending.has(msg.id)) {
        const p = pending.get(msg.id); pending.delete(msg.id);
        msg.error ? p.reject(new Error(msg.error.message)) : p.resolve(msg.result);
        return;
      }
      if (msg.method === "OnAuthenticationInformation") {
        if (msg.params.mustAuthenticate) {
          body.dataset.state = "logged-out"; status.textContent = "logged out";
        }
        else { document.getElementById("qlik-user").textContent =
          "Connected as " + msg.params.userDirectory + "\\" + msg.params.userId; }
      } else if (msg.method === "OnConnected") {
        try { await render(); } catch (e) { fail(String(e)); }
      } else if (msg.params && msg.params.severity === "fatal") {
        fail(msg.method);
        // The Qlik session is gone: the page is logged out, not broken.
        if (msg.method === "OnSessionClosed" || msg.method === "OnSessionTimedOut") {
          body.dataset.state = "logged-out";
        }
      }
    };
    ws.onerror = () => fail("websocket error");
    ws.onclose = () => { if (body.dataset.state === "connected") status.textContent = "closed"; };
    async function render() {
      const doc = await call(-1, "OpenDoc", [cfg.appId]);
      const docHandle = doc.qReturn.qHandle;
      if (cfg.cloud) {
        const who = await call(-1, "GetAuthenticatedUser", []);
        document.getElementById("qlik-user").textContent = "Connected as " + who.qReturn;
      }
      const layout = await call(docHandle, "GetAppLayout", []);
      document.getElementById("qlik-app").textContent = layout.qLayout.qTitle;
      const objectId = cfg.objectId || cfg.firstObject;
      const obj = await call(docHandle, "GetObject", [objectId]);
      const objLayout = (await call(obj.qReturn.qHandle, "GetLayout", [])).qLayout;
      drawObject(objLayout);
      body.dataset.state = "connected";
      status.textContent = "connected";
    }
  }
  function drawObject(layout) {
    const cube = layout.qHyperCube;
    const rows = cube.qDataPages[0].qMatrix;
    const host = document.getElementById("qlik-render");
    if (layout.visualization === "barchart") {
      const max = Math.max.apply(null, rows.map(r => r[1].qNum));
      let svg = '<svg id="qlik-object" data-kind="barchart" width="320" height="' +
        (rows.length * 28) + '">';
      rows.forEach((r, i) => {
        const w = Math.round(220 * r[1].qNum / max);
        svg += '<text x="0" y="' + (i * 28 + 18) + '">' + esc(r[0].qText) + '</text>' +
          '<rect x="80" y="' + (i * 28 + 4) + '" width="' + w +
          '" height="20" fill="#009845"></rect>';
      });
      host.innerHTML = svg + "</svg>";
      return;
    }
    let table = '<table id="qlik-object" data-kind="table"><thead><tr>';
    cube.qDimensionInfo.concat(cube.qMeasureInfo).forEach(
      c => table += "<th>" + esc(c.qFallbackTitle) + "</th>");
    table += "</tr></thead><tbody>";
    rows.forEach(r => {
      table += "<tr>" + r.map(c => "<td>" + esc(c.qText) + "</td>").join("") + "</tr>";
    });
    host.innerHTML = table + "</tbody></table>";
  }
  async function hub() {
    const user = await (await fetch(prefix + "/qps/user", {credentials: "include"})).json();
    if (user.session === "inactive") { body.dataset.state = "logged-out"; return; }
    document.getElementById("qlik-user").textContent =
      "Connected as " + user.userDirectory + "\\" + user.userId;
    body.dataset.state = "connected";
    status.textContent = "connected";
  }
  main().catch(e => fail(String(e)));
})();
"""


def client_page(
    kind: str,
    apps: Mapping[str, DemoApp],
    app_id: str | None,
    object_id: str | None,
    *,
    cloud: bool = False,
) -> str:
    """`hub/` (kind "hub": list of apps) or an app view (`single/`, `sense/app/...`); `cloud`:
    as a Qlik Cloud tenant serves it."""
    app = apps.get(app_id) if app_id else None
    config = {
        "appId": app.id if app else None,
        "objectId": object_id,
        "firstObject": app.objects[0].id if app and app.objects else None,
        "cloud": cloud,
    }
    # "</" cannot appear in JSON produced from our ids, but escape anyway: ids come from the URL.
    config_json = json.dumps(config).replace("</", "<\\/")
    if kind == "hub":
        items = "".join(
            f'<li><a href="../sense/app/{html.escape(a.id)}">{html.escape(a.name)}</a></li>'
            for a in apps.values()
        )
        content = f'<h1>Hub</h1><ul id="qlik-apps">{items}</ul>'
    elif app is None:
        return ""
    else:
        content = f'<h1 id="qlik-app">{html.escape(app.name)}</h1>'
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Qlik Sense (simulated)</title>"
        "<style>body{font-family:sans-serif}table{border-collapse:collapse}"
        "td,th{border:1px solid #999;padding:2px 6px}</style></head>"
        f'<body data-state="loading" data-kind="{html.escape(kind)}">'
        f'<div id="qlik-user"></div><div id="qlik-status">loading</div>{content}'
        '<div id="qlik-render"></div>'
        f'<script type="application/json" id="qlik-config">{config_json}</script>'
        f"<script>{_SCRIPT}</script></body></html>"
    )


def forms_login_page(target_id: str) -> str:
    """The built-in forms login page QPS redirects to when nothing authenticated the request."""
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Qlik Sense - Log in</title></head>"
        f'<body data-state="logged-out"><h1>Log in</h1><form method="post" data-target-id='
        f'"{html.escape(target_id)}"><input name="username"><input name="pwd" type="password">'
        "<button>Log in</button></form></body></html>"
    )


def qmc_page() -> str:
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>QMC</title></head>"
        "<body><h1>QMC</h1><p>Qlik Management Console (simulated)</p></body></html>"
    )
