/**
 * The Node side of the cross-language tests: reads one JSON request per line on stdin, answers
 * one JSON line on stdout. Bytes are hex strings; 64-bit integers are decimal strings.
 * Errors are answered as {"error": "<ErrorClassName>"} so pytest can compare them with Python's.
 */
import { createInterface } from "node:readline";
import { Context } from "../../src/sframe.js";
import * as framing from "../../src/framing.js";
import * as delivery from "../../src/delivery.js";
import { safetyNumber } from "../../src/safety.js";

const hex = (s: string) => Uint8Array.from(Buffer.from(s, "hex"));
const toHex = (b: Uint8Array) => Buffer.from(b).toString("hex");

async function context(r: any, send: boolean): Promise<Context> {
  const ctx = new Context(r.suite, { replayWindow: r.window ?? 128 });
  if (send) await ctx.addSendKey(BigInt(r.kid), hex(r.base_key), BigInt(r.ctr ?? 0));
  else await ctx.addReceiveKey(BigInt(r.kid), hex(r.base_key));
  return ctx;
}

function frameToJson(f: delivery.Frame): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(f)) {
    out[k] = typeof v === "bigint" ? v.toString() : v instanceof Uint8Array ? toHex(v) : v;
  }
  return out;
}

const ops: Record<string, (r: any) => Promise<unknown> | unknown> = {
  async sframe_encrypt(r) {
    const ctx = await context(r, true);
    return { ct: toHex(await ctx.encrypt(BigInt(r.kid), hex(r.pt), hex(r.meta))) };
  },
  async sframe_decrypt(r) {
    const ctx = await context(r, false);
    const d = await ctx.decryptWithKid(hex(r.ct), hex(r.meta));
    return { kid: d.kid.toString(), ctr: d.ctr.toString(), pt: toHex(d.plaintext) };
  },
  async protect(r) {
    const ctx = await context(r, true);
    const t = framing.transformFor(r.mime, { vp8ClearHeader: r.clear });
    return { wire: toHex(await t.protect(ctx, BigInt(r.kid), hex(r.frame))) };
  },
  async unprotect(r) {
    const ctx = await context(r, false);
    const t = framing.transformFor(r.mime, { vp8ClearHeader: r.clear });
    const [kid, frame] = await t.unprotect(ctx, hex(r.wire));
    return { kid: kid.toString(), frame: toHex(frame) };
  },
  h264_escape: (r) => ({ out: toHex(framing.escape(hex(r.data))) }),
  h264_unescape: (r) => ({ out: toHex(framing.unescape(hex(r.data))) }),
  h264_split: (r) => ({ out: framing.splitAnnexB(hex(r.data)).map(toHex) }),
  h264_parse_wire: (r) => ({ out: framing.parseWire(hex(r.data)).map(toHex) }),
  delivery_decode(r) {
    const f = delivery.decode(hex(r.data));
    return { frame: frameToJson(f), encoded: toHex(delivery.encode(f)) };
  },
  async safety(r) {
    const sn = await safetyNumber(hex(r.auth), r.members.map((m: [string, string]) => [hex(m[0]), hex(m[1])] as const));
    return { hex: sn.hex, text: sn.text };
  },
};

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
