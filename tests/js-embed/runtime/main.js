// The simulator's stand-in for Qlik's embed runtime, served as `<host>/qlik-embed/main.js`.
//
// A real Qlik (client-managed since May 2024) serves its own runtime there; @qlik/api and
// @qlik/embed-web-components only load it and call `QlikMain.import(<module>)`. This stand-in is
// built (build.mjs) from @qlik/api's own runtime modules -- auth@v1, qix@v1, invoke-fetch@v1, the
// code @qlik/api runs under Node.js -- plus small stand-ins of the UIs (embed-vanilla@v1) drawn
// from the same qix API. What differs from Qlik's runtime: see docs/qlik-clients.md.
import * as authModule from "qlik-api-chunk:auth";
import * as qixChunk from "qlik-api-chunk:qix";
import * as invokeFetchModule from "qlik-api-chunk:invoke-fetch";
import { embedVanilla } from "./embed-vanilla.js";

/* global QIX_EXPORT */
const qix = qixChunk[QIX_EXPORT];
const script = document.currentScript;
const rootUrl = script && script.src ? new URL("..", script.src).href : location.origin + "/";

const modules = {
  "auth@v1": authModule,
  "qix@v1": qix,
  "invoke-fetch@v1": invokeFetchModule,
  "embed-vanilla@v1": embedVanilla(qix),
  "initial-app-state@v1": {
    setInitialAppState() {
      throw new Error("qlik-embed stand-in: initial app state is not simulated");
    },
    addOnAppOpenCallback() {
      throw new Error("qlik-embed stand-in: app open actions are not simulated");
    },
  },
};

window.QlikMain = {
  async import(name) {
    const module = modules[name];
    if (!module) throw new Error(`qlik-embed stand-in: no runtime module "${name}"`);
    return module;
  },
  getRootUrl() {
    return rootUrl;
  },
  // Credentials are needed only for a host on another origin than the page.
  resourceNeedsCredentials(url) {
    return new URL(url, location.href).origin !== location.origin;
  },
};
