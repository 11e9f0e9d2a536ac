/** Chromium run of the SFrame benchmark: the page's result lands in `globalThis.benchResult`. */
import { runSframeBench, table } from "./core.js";

(globalThis as { benchResult?: unknown }).benchResult = runSframeBench().then(
  (results) => ({ runtime: navigator.userAgent, suite: 4, results, table: table(results) }),
  (e: unknown) => ({ error: String(e) }),
);
