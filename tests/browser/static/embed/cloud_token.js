// The page's getAccessToken, as qlik.dev's OAuth impersonation guide has it: ask the app's own
// backend (the middleware's token broker) for the logged-in user's token. window.brokerCalls
// counts the asks.
window.brokerCalls = 0;
window.getAccessToken = async function getAccessToken() {
  window.brokerCalls += 1;
  const response = await fetch("/qlik-cloud/access-token", { method: "POST", credentials: "same-origin" });
  if (!response.ok) throw new Error("token broker: HTTP " + response.status);
  return (await response.json()).access_token;
};
