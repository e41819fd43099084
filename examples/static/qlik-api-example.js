// @qlik/api through the middleware: open an app, read its layout, create a hypercube, read it.
// In an app built with a bundler this line is `import { qix } from "@qlik/api";`.
import { qix } from "/static/vendor/qlik-api.mjs";

// The app's own origin plus the middleware's prefix; "windowscookie" or "none".
const hostConfig = { host: `${location.origin}/sso`, authType: "windowscookie" };
const appId = "4f1c2d3e-5a6b-4c7d-8e9f-0a1b2c3d4e5f"; // the simulator's "Sales" app

const status = document.getElementById("qlik-api-status");
try {
  const session = qix.openAppSession({ appId, hostConfig });
  const doc = await session.getDoc();
  const layout = await doc.getAppLayout();
  const cube = await doc.createSessionObject({
    qInfo: { qType: "example-cube" },
    qHyperCubeDef: {
      qDimensions: [{ qDef: { qFieldDefs: ["Region"] } }],
      qMeasures: [{ qDef: { qDef: "Sum(Revenue)", qLabel: "Revenue" } }],
      qInitialDataFetch: [{ qTop: 0, qLeft: 0, qWidth: 2, qHeight: 100 }],
    },
  });
  const { qHyperCube } = await cube.getLayout();
  const table = document.getElementById("qlik-api-table");
  for (const row of qHyperCube.qDataPages[0].qMatrix) {
    const tr = table.insertRow();
    for (const cell of row) tr.insertCell().textContent = cell.qText;
  }
  status.textContent = `${layout.qTitle}, as ${await doc.global.getAuthenticatedUser()}`;
} catch (error) {
  status.textContent = String(error && error.message ? error.message : error);
}
