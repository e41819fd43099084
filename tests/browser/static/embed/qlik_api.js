// @qlik/api (npm) in the browser, the way an app uses it, over the same-origin middleware.
// Query: app=<id>, auth=windowscookie|none|hostile (default windowscookie), host=<path or URL>
// (default /sso). Result: body[data-state=connected|error], #result (JSON).
// window.qlikTest: { session, events, read() } for tests that drive it further (resume).
import { auth, qix } from "/embed-test/vendor/qlik-api.mjs";

const query = new URLSearchParams(location.search);
const appId = query.get("app");
const authType = query.get("auth") || "windowscookie";
const host = new URL(query.get("host") || "/sso", location.href).href.replace(/\/+$/, "");
const FORGED_KEY = "ForgedXrfKey0123";

// A client that tries everything the middleware must not let through: its own identity headers,
// Authorization, a Qlik ticket, its own CSRF token and xrfkey.
const hostile = {
  async getRestCallAuthParams() {
    return {
      headers: {
        Authorization: "Bearer forged",
        "X-Qlik-User": "UserDirectory=ACME; UserId=mallory",
        "hdr-usr": "ACME\\mallory",
        "X-Qlik-Xrfkey": FORGED_KEY,
      },
      queryParams: { xrfkey: FORGED_KEY, qlikTicket: "forged-ticket" },
      credentials: "same-origin",
    };
  },
  async getWebSocketAuthParams() {
    return { queryParams: { "qlik-csrf-token": "forged-token", qlikTicket: "forged-ticket", xrfkey: FORGED_KEY } };
  },
  async handleAuthenticationError() {
    return {};
  },
};

const hostConfig = { host, authType };
if (authType === "hostile") {
  auth.registerAuthModule("hostile", hostile);
  globalThis.hostile = hostile; // found by name too, whichever registration lands first
}

const CUBE = {
  qInfo: { qType: "qlik-sso-test-cube" },
  qHyperCubeDef: {
    qDimensions: [{ qDef: { qFieldDefs: ["Region"] } }],
    qMeasures: [{ qDef: { qDef: "Sum(Revenue)", qLabel: "Revenue" } }],
    qInitialDataFetch: [{ qTop: 0, qLeft: 0, qWidth: 2, qHeight: 50 }],
  },
};

const texts = (matrix) => matrix.map((row) => row.map((cell) => cell.qText));

async function read(doc) {
  const appLayout = await doc.getAppLayout();
  const user = await doc.global.getAuthenticatedUser();
  const cube = await doc.createSessionObject(CUBE);
  const layout = await cube.getLayout();
  const pages = await cube.getHyperCubeData("/qHyperCubeDef", [{ qTop: 1, qLeft: 0, qWidth: 2, qHeight: 2 }]);
  return {
    title: appLayout.qTitle,
    user,
    objectId: layout.qInfo.qId,
    matrix: texts(layout.qHyperCube.qDataPages[0].qMatrix),
    page: texts(pages[0].qMatrix),
  };
}

async function hostileRest() {
  // Direct REST calls with what the hostile module would add: a matching forged pair (allowed,
  // re-keyed by the middleware) and a lone xrfkey without its header (refused).
  const { headers } = await hostile.getRestCallAuthParams();
  const paired = await fetch(`${host}/qps/user?xrfkey=${FORGED_KEY}&qlikTicket=forged-ticket`, { headers });
  const lone = await fetch(`${host}/qps/user?xrfkey=${FORGED_KEY}`);
  return {
    paired: { status: paired.status, body: await paired.json() },
    lone: { status: lone.status, body: await lone.text() },
  };
}

function show(result) {
  document.getElementById("user").textContent = result.user;
  const rows = document.querySelector("#cube tbody");
  rows.textContent = "";
  for (const row of result.matrix) {
    const tr = rows.insertRow();
    for (const text of row) tr.insertCell().textContent = text;
  }
}

const events = [];
window.qlikTest = { events, read };
(async () => {
  const status = document.getElementById("status");
  try {
    const session = qix.openAppSession({ appId, hostConfig });
    window.qlikTest.session = session;
    session.onWebSocketEvent((event) => events.push(event.eventType));
    const doc = await session.getDoc();
    window.qlikTest.doc = doc;
    const result = await read(doc);
    if (authType === "hostile") result.rest = await hostileRest();
    show(result);
    document.getElementById("result").textContent = JSON.stringify(result);
    status.textContent = "connected";
    document.body.dataset.state = "connected";
  } catch (error) {
    status.textContent = String((error && error.message) || error);
    document.body.dataset.state = "error";
  }
})();
