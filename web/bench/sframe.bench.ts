/** Node run of the SFrame benchmark (`npm run bench`): a Markdown table, then one JSON line. */
import { runSframeBench, table } from "./core.js";

const results = await runSframeBench();
console.log(table(results));
console.log(JSON.stringify({ runtime: `node ${process.version}`, suite: 4, results }));
