// Connect to the Qlik simulator with the real enigma.js, open a doc and print a layout as JSON.
// usage: node enigma_check.mjs <ws url> <cookie header> <app id> <object id>
import { createRequire } from "node:module";
import enigma from "enigma.js";
import WebSocket from "ws";

const require = createRequire(import.meta.url);
const schema = require("enigma.js/schemas/12.1657.0.json");

const [url, cookie, appId, objectId] = process.argv.slice(2);
const notices = [];
const session = enigma.create({
  schema,
  url,
  createSocket: (socketUrl) => new WebSocket(socketUrl, { headers: { Cookie: cookie } }),
});
session.on("notification:*", (event, data) => notices.push(event));

try {
  const global = await session.open();
  const version = await global.engineVersion();
  const doc = await global.openDoc(appId);
  const appLayout = await doc.getAppLayout();
  const object = await doc.getObject(objectId);
  const layout = await object.getLayout();
  console.log(JSON.stringify({ version, title: appLayout.qTitle, layout, notices }));
  await session.close();
  process.exit(0);
} catch (error) {
  console.error(String(error && error.stack ? error.stack : error));
  process.exit(1);
}
