/**
 * The Node side of the cross-language tests: reads one JSON request per line on stdin, answers
 * one JSON line on stdout. Bytes are hex strings; 64-bit integers are decimal strings.
 * Errors are answered as {"error": "<ErrorClassName>"} so pytest can compare them with Python's.
 */
import { createCommit, decodeMlsMessage, encodeMlsMessage, type Proposal } from "ts-mls";
import { serveJsonLines, type Ops } from "./jsonlines.js";
import { Context } from "../../src/sframe.js";
import * as framing from "../../src/framing.js";
import * as delivery from "../../src/delivery.js";
import { safetyNumber } from "../../src/safety.js";
import { KeyRing, KidLayout, type KeyOp } from "../../src/keys.js";
import { WireDecoder, encodeBody } from "../../src/wire.js";
import { MLSGroupOps, checkKeyPackage, suiteImpl } from "../../src/mlsops.js";
import { Committer, GroupOpsError, refKey, type Action, type Body, type Event, type MemberRef, type View } from "../../src/committer.js";

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

const ops: Ops = {
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
    return { hex: sn.hex, text: sn.text, short: sn.short };
  },
};

// ----------------------------------------------------------------------------- committer replay

/** Raised when the machine asks the MLS layer for something the Python machine did not. */
class Divergence extends Error {}

/** GroupOps that replays the Python machine's recorded MLS calls, checking each call's arguments. */
class ScriptedOps {
  epoch: number | null = null;
  private i = 0;
  constructor(private readonly trace: any[]) {}
  private call(name: string, args: unknown): any {
    const t = this.trace[this.i++];
    if (t === undefined) throw new Divergence(`unexpected call ${name} ${JSON.stringify(args)}`);
    if (t.name !== name || JSON.stringify(t.args) !== JSON.stringify(args)) {
      throw new Divergence(`call ${this.i - 1}: Python ${t.name} ${JSON.stringify(t.args)}, Node ${name} ${JSON.stringify(args)}`);
    }
    this.epoch = t.epoch;
    if (t.error) throw new GroupOpsError(t.error);
    return t.result;
  }
  get calls(): number { return this.i; }
  newKeyPackage(): [string, Uint8Array] { const r = this.call("new_key_package", []); return [r[0], hex(r[1])]; }
  create(kpId: string): void { this.call("create", [kpId]); }
  commit(adds: Uint8Array[], removes: MemberRef[]): [Uint8Array, Uint8Array | null] {
    const r = this.call("commit", [adds.map(toHex), removes.map((m) => [m.client, m.kpId])]);
    return [hex(r[0]), r[1] === null ? null : hex(r[1])];
  }
  mergePending(): void { this.call("merge_pending", []); }
  clearPending(): void { this.call("clear_pending", []); }
  process(commit: Uint8Array): void { this.call("process", [toHex(commit)]); }
  join(welcome: Uint8Array, kpId: string): void { this.call("join", [toHex(welcome), kpId]); }
  reset(): void { this.call("reset", []); }
  proposeUpdate(): Uint8Array { return hex(this.call("propose_update", [])); }
  processProposal(p: Uint8Array): void { this.call("process_proposal", [toHex(p)]); }
}

function bodyFromJson(b: any): Body {
  switch (b.type) {
    case "kp": return { type: "kp", kpId: b.kpId, keyPackage: hex(b.keyPackage) };
    case "commit":
      return {
        type: "commit", gen: b.gen, epoch: b.epoch,
        adds: b.adds.map((a: any) => ({ ref: { client: a.client, kpId: a.kpId }, keyPackage: hex(a.keyPackage) })),
        removes: b.removes.map((r: any) => ({ client: r.client, kpId: r.kpId })),
        commit: hex(b.commit), welcome: b.welcome === null ? null : hex(b.welcome),
      };
    case "update": return { type: "update", gen: b.gen, epoch: b.epoch, proposal: hex(b.proposal) };
    default: return b as Body;
  }
}

function bodyToJson(b: Body): unknown {
  switch (b.type) {
    case "kp": return { type: "kp", kpId: b.kpId, keyPackage: toHex(b.keyPackage) };
    case "commit":
      return {
        type: "commit", gen: b.gen, epoch: b.epoch,
        adds: b.adds.map((a) => ({ client: a.ref.client, kpId: a.ref.kpId, keyPackage: toHex(a.keyPackage) })),
        removes: b.removes.map((r) => ({ client: r.client, kpId: r.kpId })),
        commit: toHex(b.commit), welcome: b.welcome === null ? null : toHex(b.welcome),
      };
    case "update": return { type: "update", gen: b.gen, epoch: b.epoch, proposal: toHex(b.proposal) };
    default: return b;
  }
}

function eventFromJson(e: any): Event {
  if (e.type === "delivered") return { type: "delivered", entry: { seq: e.entry.seq, sender: e.entry.sender, body: bodyFromJson(e.entry.body) } };
  return e as Event;
}

function actionToJson(a: Action): unknown {
  return a.type === "append" ? { type: "append", requestId: a.requestId, expectedSeq: a.expectedSeq, body: bodyToJson(a.body) } : a;
}

export function viewSummary(v: View): unknown {
  const pair = (m: MemberRef) => [m.client, m.kpId];
  const sortKeys = (s: ReadonlySet<string>) => [...s].sort().map((k) => k.split("\u0000"));
  return {
    gen: v.gen, epoch: v.epoch, members: v.members.map(pair), stale: sortKeys(v.stale),
    waiting: v.waiting.map((w) => pair(w.ref)), updates: sortKeys(v.updates),
    committer: v.committer(), creator: v.creator(), idle: v.idle(),
  };
}
void refKey;

/** Replays install/expire/clear steps on a KeyRing; answers the key operations of each step. */
ops.keyring = (r) => {
  const ring = new KeyRing(new KidLayout(r.epoch_bits, r.sender_bits), r.key_size, r.grace);
  const show = (o: KeyOp) => [o.op, o.kid.toString()];
  return {
    steps: r.steps.map((st: any) => {
      try {
        if (st.op === "install") return ring.install(st.epoch, hex(st.key), st.own, st.members, st.now).map(show);
        if (st.op === "expire") return ring.expire(st.now).map(show);
        return ring.clear().map(show);
      } catch (e) {
        return { error: (e as Error).name };
      }
    }),
  };
};

const impl = suiteImpl(1);

/** A fresh KeyPackage (MLSMessage) made by ts-mls for `identity`. */
ops.new_kp = async (r) => {
  const mls = new MLSGroupOps(await impl, r.identity, new WireDecoder(async () => { throw new Error("unused"); }));
  const [kpId, kp] = await mls.newKeyPackage();
  return { kpId, kp: toHex(kp) };
};

/** Decode a room's log from seq 1 with a fresh WireDecoder: per entry the body it becomes. */
ops.wire_decode = async (r) => {
  const cs = await impl;
  const dec = new WireDecoder((kp) => checkKeyPackage(cs, kp));
  const out: unknown[] = [];
  for (const e of r.entries) {
    const d = await dec.decode({
      type: "entry", seq: BigInt(e.seq), timestampMs: BigInt(e.ts), entryType: e.entry_type, flags: 0,
      sender: e.sender, kind: e.kind, payload: hex(e.payload),
    });
    out.push(d.rejected !== null ? { type: "rejected" } : bodyToJson(d.entry.body));
  }
  return { bodies: out };
};

/** `[kind, payload]` of a body, for the encode direction. */
ops.wire_encode = (r) => {
  const [kind, payload] = encodeBody(bodyFromJson(r.body));
  return { kind, payload: toHex(payload) };
};

/** Stateful MLS members driven step by step (one MLSGroupOps and WireDecoder each, by name). */
const members = new Map<string, { ops: MLSGroupOps; decoder: WireDecoder }>();
const refOf = (r: [string, string]): MemberRef => ({ client: r[0], kpId: r[1] });

ops.mls_open = async (r) => {
  const cs = await impl;
  const decoder = new WireDecoder((kp) => checkKeyPackage(cs, kp));
  members.set(r.name, { ops: new MLSGroupOps(cs, r.identity, decoder), decoder });
  return { ok: true };
};

/** Feed log entries to the member's decoder; the body types (or "rejected"). */
ops.mls_decode = async (r) => {
  const m = members.get(r.name)!;
  const out: string[] = [];
  for (const e of r.entries) {
    const d = await m.decoder.decode({
      type: "entry", seq: BigInt(e.seq), timestampMs: BigInt(e.ts), entryType: e.entry_type, flags: 0,
      sender: e.sender, kind: e.kind, payload: hex(e.payload),
    });
    out.push(d.rejected !== null ? "rejected" : d.entry.body.type);
  }
  return { bodies: out };
};

/** One MLSGroupOps call; refs are [client, kpId hex], bytes hex. The result plus epoch and authenticator. */
ops.mls_do = async (r) => {
  const m = members.get(r.name)!;
  const a = r.args ?? {};
  let result: unknown = null;
  try {
    switch (r.call) {
      case "new_kp": result = (await m.ops.newKeyPackage()).map((x) => (typeof x === "string" ? x : toHex(x))); break;
      case "create": await m.ops.create(a.kpId); break;
      case "commit": result = (await m.ops.commit(a.adds.map(hex), a.removes.map(refOf))).map((x) => (x === null ? null : toHex(x))); break;
      case "merge": m.ops.mergePending(); break;
      case "join": await m.ops.join(hex(a.welcome), a.kpId); break;
      case "expect": m.ops.expect(hex(a.commit), a.adds.map(refOf), a.removes.map(refOf)); break;
      case "process": await m.ops.process(hex(a.commit)); break;
      case "commit_unchecked": { // a hostile committer: Adds straight to ts-mls, no §7.3 check of ours
        const adds = a.adds.map((b: string) => {
          const msg = decodeMlsMessage(hex(b), 0)?.[0];
          if (msg === undefined || msg.wireformat !== "mls_key_package") throw new Error("not a KeyPackage");
          return { proposalType: "add", add: { keyPackage: msg.keyPackage } } as Proposal;
        });
        const out = await createCommit({ state: m.ops.state!, cipherSuite: m.ops.impl }, { extraProposals: adds, ratchetTreeExtension: true });
        result = [toHex(encodeMlsMessage(out.commit))];
        break;
      }
      case "leaf_of": result = a.refs.map((x: [string, string]) => m.ops.leafOf(refOf(x))); break;
      default: throw new Error(`unknown call ${r.call}`);
    }
  } catch (e) {
    if (!(e instanceof GroupOpsError)) throw e;
    return { error: e.message };
  }
  const st = m.ops.state;
  return { result, epoch: m.ops.epoch, auth: st === null ? null : toHex(m.ops.epochAuthenticator) };
};

ops.committer_replay = async (r) => {
  const scripted = new ScriptedOps(r.trace);
  const machine = new Committer(r.client, scripted, r.update_interval);
  const steps: unknown[] = [];
  for (const e of r.events) {
    try {
      const actions = await machine.handle(eventFromJson(e));
      steps.push({ actions: actions.map(actionToJson), view: viewSummary(machine.view) });
    } catch (err) {
      if (err instanceof Divergence) return { steps, divergence: err.message };
      throw err;
    }
  }
  return { steps, calls: scripted.calls, notes: machine.notes };
};

serveJsonLines(ops);
