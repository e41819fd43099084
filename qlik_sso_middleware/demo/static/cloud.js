// Token broker panel: what a page's getAccessToken does for qlik-embed / @qlik/api. The token is
// the user's access to the tenant: it is used, never shown. States for tests and people:
// #broker[data-state=asking|ready|error].
(function () {
  "use strict";
  const panel = document.getElementById("broker");
  if (!panel) { return; }
  const status = document.getElementById("broker-status");

  // The function a page names in data-get-access-token="getAccessToken".
  window.getAccessToken = async function () {
    const response = await fetch(panel.dataset.url, {method: "POST", credentials: "same-origin"});
    if (!response.ok) { throw new Error("access token: HTTP " + response.status); }
    return (await response.json()).access_token;
  };

  fetch(panel.dataset.url, {method: "POST", credentials: "same-origin"})
    .then(async function (response) {
      const body = await response.json();
      if (!response.ok) { throw new Error(body.error || ("HTTP " + response.status)); }
      const hours = (body.expires_in / 3600).toFixed(1);
      panel.dataset.state = "ready";
      status.textContent = "Received a " + body.token_type + " token (" +
        body.access_token.length + " characters, not shown) for scope " + body.scope +
        ", valid " + hours + " h more.";
    })
    .catch(function (e) { panel.dataset.state = "error"; status.textContent = String(e); });
})();
