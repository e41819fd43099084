// Mashup panel: the engine WebSocket through the middleware, as the logged-in user.
// The middleware adds Qlik's session cookie and qlik-csrf-token itself; the page only needs the
// same-origin URL. States for tests and people: #mashup[data-state=connecting|connected|error].
(function () {
  "use strict";
  const panel = document.getElementById("mashup");
  if (!panel) { return; }
  const status = document.getElementById("mashup-status");
  const appId = panel.dataset.appId;
  const objectId = panel.dataset.objectId;
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const url = scheme + "//" + location.host + panel.dataset.mount + "app/" +
    encodeURIComponent(appId);
  const ws = new WebSocket(url);
  const pending = new Map();
  let nextId = 1;

  function setState(state, text) {
    panel.dataset.state = state;
    status.textContent = text;
  }
  function call(handle, method, params) {
    const id = nextId++;
    ws.send(JSON.stringify({jsonrpc: "2.0", id: id, handle: handle, method: method, params: params}));
    return new Promise(function (resolve, reject) { pending.set(id, {resolve, reject}); });
  }
  function render(layout) {
    const cube = layout.qHyperCube;
    document.getElementById("mashup-title").textContent = layout.title || "";
    const head = document.querySelector("#mashup-table thead");
    const body = document.querySelector("#mashup-table tbody");
    const headRow = document.createElement("tr");
    cube.qDimensionInfo.concat(cube.qMeasureInfo).forEach(function (column) {
      const th = document.createElement("th");
      th.textContent = column.qFallbackTitle;
      headRow.appendChild(th);
    });
    head.replaceChildren(headRow);
    body.replaceChildren();
    cube.qDataPages[0].qMatrix.forEach(function (row) {
      const tr = document.createElement("tr");
      row.forEach(function (cell) {
        const td = document.createElement("td");
        td.textContent = cell.qText;
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
  }
  async function load() {
    const doc = await call(-1, "OpenDoc", [appId]);
    const obj = await call(doc.qReturn.qHandle, "GetObject", [objectId]);
    const layout = await call(obj.qReturn.qHandle, "GetLayout", []);
    render(layout.qLayout);
    setState("connected", "connected");
  }
  ws.onmessage = function (event) {
    const msg = JSON.parse(event.data);
    if (msg.id && pending.has(msg.id)) {
      const p = pending.get(msg.id);
      pending.delete(msg.id);
      if (msg.error) { p.reject(new Error(msg.error.message)); } else { p.resolve(msg.result); }
      return;
    }
    if (msg.method === "OnAuthenticationInformation" && !msg.params.mustAuthenticate) {
      document.getElementById("mashup-user").textContent =
        "Connected as " + msg.params.userDirectory + "\\" + msg.params.userId;
    } else if (msg.method === "OnConnected") {
      load().catch(function (e) { setState("error", String(e)); });
    } else if (msg.params && msg.params.severity === "fatal") {
      setState("error", msg.method);
    }
  };
  ws.onerror = function () { setState("error", "WebSocket error"); };
  ws.onclose = function (event) {
    if (panel.dataset.state !== "connected") {
      setState("error", "closed (" + event.code + (event.reason ? ": " + event.reason : "") + ")");
    }
  };
})();
