// @qlik/api (npm) in the browser against a Qlik Cloud tenant, authType "oauth2", its access token
// from the app's token broker, the way qlik.dev's OAuth impersonation guide wires it.
// Query: host=<tenant URL>, client=<OAuth client id>, app=<id>, obj=<object id>.
// getAccessToken comes from cloud_token.js. Result: body[data-state=connected|error], #result.
import { auth, qix } from "/embed-test/vendor/qlik-api.mjs";

const query = new URLSearchParams(location.search);
const hostConfig = {
  authType: "oauth2",
  host: query.get("host"),
  clientId: query.get("client"),
  getAccessToken: window.getAccessToken,
};
auth.setDefaultHostConfig(hostConfig);

(async () => {
  const status = document.getElementById("status");
  try {
    const doc = await qix.openAppSession({ appId: query.get("app"), hostConfig }).getDoc();
    const appLayout = await doc.getAppLayout();
    const user = await doc.global.getAuthenticatedUser();
    const object = await doc.getObject(query.get("obj"));
    const layout = await object.getLayout();
    const result = {
      title: appLayout.qTitle,
      user,
      objectId: layout.qInfo.qId,
      matrix: layout.qHyperCube.qDataPages[0].qMatrix.map((row) => row.map((cell) => cell.qText)),
    };
    document.getElementById("user").textContent = user;
    document.getElementById("result").textContent = JSON.stringify(result);
    status.textContent = "connected";
    document.body.dataset.state = "connected";
  } catch (error) {
    status.textContent = String((error && error.message) || error);
    document.body.dataset.state = "error";
  }
})();
