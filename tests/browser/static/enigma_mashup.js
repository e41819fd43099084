// The real Qlik engine client (enigma.js from npm) in the browser, over our same-origin proxy.
// `?app=<id>&obj=<id>`; the page only knows the same-origin URL: the middleware adds Qlik's
// session cookie and qlik-csrf-token. Result: body[data-state=connected|error], #enigma-result.
(async function () {
  "use strict";
  const body = document.body;
  const status = document.getElementById("enigma-status");
  const query = new URLSearchParams(location.search);
  const appId = query.get("app");
  const objectId = query.get("obj");
  try {
    const schema = await (await fetch("/enigma/vendor/schema.json")).json();
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const url = scheme + "//" + location.host + "/sso/app/" + encodeURIComponent(appId);
    const notices = [];
    const session = enigma.create({ schema, url });
    session.on("notification:*", (event) => notices.push(event));
    const global = await session.open();
    const version = await global.engineVersion();
    const doc = await global.openDoc(appId);
    const appLayout = await doc.getAppLayout();
    const object = await doc.getObject(objectId);
    const layout = await object.getLayout();
    document.getElementById("enigma-title").textContent = appLayout.qTitle;
    const rows = document.querySelector("#enigma-table tbody");
    layout.qHyperCube.qDataPages[0].qMatrix.forEach((row) => {
      const tr = document.createElement("tr");
      row.forEach((cell) => {
        const td = document.createElement("td");
        td.textContent = cell.qText;
        tr.appendChild(td);
      });
      rows.appendChild(tr);
    });
    document.getElementById("enigma-result").textContent =
      JSON.stringify({ version, title: appLayout.qTitle, layout, notices });
    await session.close();
    status.textContent = "connected";
    body.dataset.state = "connected";
  } catch (error) {
    status.textContent = String(error && error.message ? error.message : error);
    body.dataset.state = "error";
  }
})();
