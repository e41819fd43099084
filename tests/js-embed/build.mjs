// Build what the browser tests serve, from the packages pinned in package-lock.json (no network):
//   <out>/runtime/main.js              the simulator's stand-in for Qlik's `qlik-embed/main.js`
//   <out>/page/qlik-api.mjs            @qlik/api as an app bundles it (qix, auth), for test pages
//   <out>/page/embed-web-components.js @qlik/embed-web-components as published (a classic script)
// usage: node build.mjs <out dir>
//
// Qlik's runtime is not on npm. @qlik/api carries the runtime modules it loads through it
// (`auth@v1`, `qix@v1`, `invoke-fetch@v1`) as the chunks it uses under Node.js; the stand-in
// serves exactly those, found by reading the package's own loader, so a new @qlik/api version
// either builds from its own modules or fails here, loudly.
import { copyFile, mkdir, readdir, readFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const out = resolve(process.argv[2] || join(here, "dist"));
const apiDir = join(here, "node_modules", "@qlik", "api");
const chunksDir = join(apiDir, "chunks");

async function runtimeChunks() {
  const loader = (await readdir(chunksDir)).find((name) => /^public-runtime-modules-.*\.js$/.test(name));
  if (!loader) throw new Error("@qlik/api: no chunks/public-runtime-modules-*.js (layout changed)");
  const text = await readFile(join(chunksDir, loader), "utf8");
  const find = (pattern, what) => {
    const match = text.match(pattern);
    if (!match) throw new Error(`@qlik/api: cannot find the ${what} runtime module in ${loader}`);
    return match;
  };
  const auth = find(/import\("\.\/(auth-[\w-]+\.js)"\)/, "auth@v1");
  const qix = find(/import\("\.\/(qix-[\w-]+\.js)"\)\.then\(\((\w+)\) => \2\.(\w+)\)/, "qix@v1");
  const invokeFetch = find(/import\("\.\/(invoke-fetch-[\w-]+\.js)"\)/, "invoke-fetch@v1");
  return {
    "qlik-api-chunk:auth": join(chunksDir, auth[1]),
    "qlik-api-chunk:qix": join(chunksDir, qix[1]),
    "qlik-api-chunk:invoke-fetch": join(chunksDir, invokeFetch[1]),
    qixExport: qix[3],
  };
}

const chunks = await runtimeChunks();
const chunkPlugin = {
  name: "qlik-api-chunks",
  setup(build) {
    build.onResolve({ filter: /^qlik-api-chunk:/ }, (args) => ({ path: chunks[args.path] }));
  },
};
// Node-only branches of @qlik/api (the `ws` WebSocket, `fs` downloads) never run in a browser.
const common = { bundle: true, platform: "browser", target: "es2020", external: ["ws", "fs"], logLevel: "warning" };

await mkdir(join(out, "runtime"), { recursive: true });
await mkdir(join(out, "page"), { recursive: true });
await esbuild.build({
  ...common,
  entryPoints: [join(here, "runtime", "main.js")],
  outfile: join(out, "runtime", "main.js"),
  format: "iife",
  define: { QIX_EXPORT: JSON.stringify(chunks.qixExport) },
  plugins: [chunkPlugin],
});
await esbuild.build({
  ...common,
  stdin: {
    contents: 'export { default as qix } from "@qlik/api/qix";\nexport { default as auth } from "@qlik/api/auth";\n',
    resolveDir: here,
    sourcefile: "qlik-api-entry.js",
  },
  outfile: join(out, "page", "qlik-api.mjs"),
  format: "esm",
});
await copyFile(
  join(here, "node_modules", "@qlik", "embed-web-components", "dist", "index.js"),
  join(out, "page", "embed-web-components.js"),
);
console.log(out);
