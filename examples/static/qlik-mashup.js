// A mashup on the engine WebSocket, in plain JavaScript, as seen from the app's own origin.
//
// The page opens ws(s)://<this host>/<prefix>/app/<appId> and nothing else: the middleware adds
// the user's Qlik session cookie, the identity and the `qlik-csrf-token` Qlik requires, so no Qlik
// script, ticket or token ever reaches the browser. Then: OpenDoc -> GetObject -> GetLayout, and
// the hypercube's rows are rendered as a table.
//
// Markup it expects:
//   <div id="mashup" data-prefix="sso" data-app-id="..." data-object-id="..." data-state="connecting">
//     <p id="mashup-user"></p><table id="mashup-table"></table><p id="mashup-error"></p>
//   </div>
// `data-state` becomes "connected" (rows rendered) or "error", for people and for browser tests.
(function () {
  "use strict";
  const root = document.getElementById("mashup");
  if (!root) return;
  const { prefix, appId, objectId } = root.dataset;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/${prefix}/app/${encodeURIComponent(appId)}`);
  const pending = new Map();
  let nextId = 1;

  function fail(message) {
    root.dataset.state = "error";
    document.getElementById("mashup-error").textContent = message;
  }

  function call(method, handle, params) {
    const id = nextId++;
    socket.send(JSON.stringify({ jsonrpc: "2.0", id, method, handle, params }));
    return new Promise((resolve, reject) => pending.set(id, { resolve, reject }));
  }

  function render(layout) {
    const cube = layout.qHyperCube;
    const table = document.getElementById("mashup-table");
    const head = table.createTHead().insertRow();
    for (const info of [...cube.qDimensionInfo, ...cube.qMeasureInfo]) {
      head.insertCell().textContent = info.qFallbackTitle;
    }
    const body = table.createTBody();
    for (const row of cube.qDataPages[0].qMatrix) {
      const tr = body.insertRow();
      for (const cell of row) tr.insertCell().textContent = cell.qText;
    }
    const caption = table.createCaption();
    caption.textContent = layout.title || "";
    root.dataset.state = "connected";
  }

  async function load() {
    const doc = await call("OpenDoc", -1, [appId]);
    const object = await call("GetObject", doc.qReturn.qHandle, [objectId]);
    const layout = await call("GetLayout", object.qReturn.qHandle, []);
    render(layout.qLayout);
  }

  socket.addEventListener("message", (event) => {
    const message = JSON.parse(event.data);
    if (message.method === "OnAuthenticationInformation") {
      if (message.params.mustAuthenticate) return fail("Qlik asks for a login: session lost");
      const who = `${message.params.userDirectory}\\${message.params.userId}`;
      document.getElementById("mashup-user").textContent = `Connected as ${who}`;
      return;
    }
    if (message.method === "OnConnected") {
      load().catch((error) => fail(String(error.message || error)));
      return;
    }
    if (message.params && message.params.severity === "fatal") return fail(message.method);
    const waiter = pending.get(message.id);
    if (!waiter) return;
    pending.delete(message.id);
    if (message.error) waiter.reject(new Error(message.error.message));
    else waiter.resolve(message.result);
  });
  socket.addEventListener("close", (event) => {
    if (root.dataset.state !== "connected") fail(`WebSocket closed (${event.code}) ${event.reason}`);
  });
})();
