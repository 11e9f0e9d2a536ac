/** Serve JSON requests from stdin, one per line, answering each on stdout in order. */
import { createInterface } from "node:readline";

export type Ops = Record<string, (r: any) => Promise<unknown> | unknown>;

/** Answers `{op, ...}` with `ops[op](request)`, or `{error: <class name>, message}` if it throws. */
export function serveJsonLines(ops: Ops): void {
  const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
  let chain = Promise.resolve();
  rl.on("line", (line) => {
    chain = chain.then(async () => {
      const r = JSON.parse(line);
      let answer: unknown;
      try {
        const op = ops[r.op];
        if (op === undefined) throw new Error(`unknown op ${r.op}`);
        answer = await op(r);
      } catch (e) {
        answer = { error: (e as Error).name || "Error", message: (e as Error).message };
      }
      process.stdout.write(JSON.stringify(answer) + "\n");
    });
  });
  rl.on("close", () => {
    void chain.then(() => process.exit(0));
  });
}
