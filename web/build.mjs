// Bundles the library (dist/orange-fast.js) and, with --tests / --bench, the Node tests and tools (dist-test/).
import { build } from "esbuild";
import { copyFileSync, readdirSync, rmSync } from "node:fs";

const args = new Set(process.argv.slice(2));
const common = { bundle: true, format: "esm", target: "es2022", logLevel: "warning" };

await build({ ...common, entryPoints: ["src/index.ts"], outfile: "dist/orange-fast.js", platform: "browser", minify: true, sourcemap: true });
// the call page (page/call.html + its module + the media worker), shipped next to orange-fast.js
await build({ ...common, entryPoints: { call: "page/call.ts", "call-worker": "page/worker.ts" }, outdir: "dist", platform: "browser", minify: true });
copyFileSync("page/call.html", "dist/call.html");

if (args.has("--tests") || args.has("--bench")) {
  rmSync("dist-test", { recursive: true, force: true });
  const tests = readdirSync("test").filter((f) => f.endsWith(".test.ts")).map((f) => `test/${f}`);
  const tools = readdirSync("test/tools").filter((f) => f.endsWith(".ts")).map((f) => `test/tools/${f}`);
  const bench = ["bench/sframe.bench.ts"];
  await build({
    ...common,
    entryPoints: [...tests, ...tools, ...bench],
    outdir: "dist-test",
    outbase: ".",
    platform: "node",
    packages: "external",
    outExtension: { ".js": ".js" },
  });
  // the same benchmark as one browser ESM file (web/bench/chromium.py serves it)
  await build({ ...common, entryPoints: ["bench/browser.ts"], outfile: "dist-test/bench/browser.js", platform: "browser" });
}
