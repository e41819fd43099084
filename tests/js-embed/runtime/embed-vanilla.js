// Stand-ins of qlik-embed's UIs (`embed-vanilla@v1`): what `<qlik-embed ui="...">` mounts.
//   classic/app    an iframe of the Sense client: <host>/sense/app/<app>[/sheet/<sheet>/state/analysis]
//   classic/chart  an iframe of the single integration: <host>/single/?appid=<app>&obj=<object>
//   analytics/chart, analytics/sheet  drawn from the engine with @qlik/api's qix (a table with
//                  bars), instead of Qlik's nebula.js charts
// Each mount renders into one <div class="qlik-embed-standin" data-ui data-state>, data-state
// being loading | rendered | error (with data-error).

function hostUrl(hostConfig) {
  let url = (hostConfig && hostConfig.host) || location.origin;
  if (!/^https?:\/\//i.test(url)) url = `https://${url}`;
  return url.replace(/\/+$/, "");
}

function frame(root, src) {
  const iframe = document.createElement("iframe");
  iframe.title = "Qlik Sense";
  iframe.src = src;
  iframe.style.cssText = "width:100%;height:100%;min-height:240px;border:0";
  root.appendChild(iframe);
  return new Promise((resolve) => iframe.addEventListener("load", resolve, { once: true }));
}

function chartProperties(props) {
  const dimensions = props.dimensions || [];
  const measures = props.measures || [];
  return {
    qInfo: { qType: props.type || "table" },
    visualization: props.type || "table",
    qHyperCubeDef: {
      qDimensions: dimensions.map((field) => ({ qDef: { qFieldDefs: [field] } })),
      qMeasures: measures.map((expression) => ({ qDef: { qDef: expression } })),
      qInitialDataFetch: [{ qTop: 0, qLeft: 0, qWidth: dimensions.length + measures.length, qHeight: 500 }],
    },
  };
}

function draw(root, layout) {
  const cube = layout.qHyperCube || {};
  const section = document.createElement("figure");
  section.className = "qlik-embed-standin-chart";
  section.dataset.objectId = (layout.qInfo && layout.qInfo.qId) || "";
  const caption = document.createElement("figcaption");
  caption.textContent = layout.title || (layout.qMeta && layout.qMeta.title) || "";
  section.appendChild(caption);
  const titles = [...(cube.qDimensionInfo || []), ...(cube.qMeasureInfo || [])].map((c) => c.qFallbackTitle);
  const measureInfo = (cube.qMeasureInfo || [])[0];
  const firstMeasure = (cube.qDimensionInfo || []).length;
  const table = document.createElement("table");
  const head = table.createTHead().insertRow();
  for (const title of titles) head.insertCell().textContent = title;
  const body = table.createTBody();
  const page = (cube.qDataPages || [])[0] || { qMatrix: [] };
  for (const row of page.qMatrix) {
    const tr = body.insertRow();
    row.forEach((cell, index) => {
      const td = tr.insertCell();
      td.textContent = cell.qText;
      if (index === firstMeasure && measureInfo && measureInfo.qMax > 0 && typeof cell.qNum === "number") {
        const bar = document.createElement("span");
        bar.className = "bar";
        bar.style.cssText = `display:inline-block;height:.7em;margin-left:.4em;background:#009845;width:${Math.round((60 * cell.qNum) / measureInfo.qMax)}px`;
        td.appendChild(bar);
      }
    });
  }
  section.appendChild(table);
  root.appendChild(section);
}

async function openDoc(qix, props, sessions) {
  const session = qix.openAppSession({ appId: props.appId, identity: props.identity, hostConfig: props.hostConfig });
  sessions.push(session);
  return session.getDoc();
}

const renderers = {
  async "classic/app"(root, props) {
    const app = props.app || props.appId;
    const sheet = props.sheet || props.sheetId;
    let path = `/sense/app/${encodeURIComponent(app)}`;
    if (sheet) path += `/sheet/${encodeURIComponent(sheet)}/state/analysis`;
    await frame(root, hostUrl(props.hostConfig) + path);
  },
  async "classic/chart"(root, props) {
    const query = `appid=${encodeURIComponent(props.appId)}&obj=${encodeURIComponent(props.objectId)}`;
    await frame(root, `${hostUrl(props.hostConfig)}/single/?${query}`);
  },
  async "analytics/chart"(root, props, qix, sessions) {
    const doc = await openDoc(qix, props, sessions);
    const model = props.objectId ? await doc.getObject(props.objectId) : await doc.createSessionObject(chartProperties(props));
    draw(root, await model.getLayout());
    if (props.exposeRefApi) {
      props.exposeRefApi({ getDoc: async () => doc, getObject: async () => model, getChartRefApi: async () => ({}) });
    }
  },
  async "analytics/sheet"(root, props, qix, sessions) {
    const doc = await openDoc(qix, props, sessions);
    const sheet = await doc.getObject(props.sheetId || props.objectId);
    const layout = await sheet.getLayout();
    const heading = document.createElement("h3");
    heading.textContent = layout.title || (layout.qMeta && layout.qMeta.title) || "";
    root.appendChild(heading);
    for (const cell of layout.cells || []) {
      const model = await doc.getObject(cell.name);
      draw(root, await model.getLayout());
    }
    if (props.exposeRefApi) props.exposeRefApi({});
  },
};

export function embedVanilla(qix) {
  function mountVanillaEmbedComponent({ target, props }) {
    const root = document.createElement("div");
    root.className = "qlik-embed-standin";
    target.appendChild(root);
    let current = props;
    let generation = 0;
    let sessions = [];

    function closeSessions() {
      for (const session of sessions) session.close().catch(() => {});
      sessions = [];
    }

    async function render() {
      const mine = ++generation;
      closeSessions();
      root.textContent = "";
      root.dataset.ui = current.ui;
      root.dataset.state = "loading";
      delete root.dataset.error;
      const renderer = renderers[current.ui];
      try {
        if (!renderer) throw new Error(`ui "${current.ui}" is not simulated`);
        await renderer(root, current, qix, sessions);
        if (mine === generation) root.dataset.state = "rendered";
      } catch (error) {
        if (mine !== generation) return;
        root.dataset.state = "error";
        root.dataset.error = String((error && error.message) || error);
        root.textContent = `qlik-embed: ${root.dataset.error}`;
      }
    }

    render();
    return {
      $set(next) {
        current = next;
        render();
      },
      $destroy() {
        generation += 1;
        closeSessions();
        root.remove();
      },
    };
  }
  return { mountVanillaEmbedComponent };
}
