/**
 * A Node session participant driven over stdin/stdout (one JSON request per line, one JSON answer
 * per line) by the cross-language pytest tests. Bytes are hex; KIDs decimal strings.
 */
import { serveJsonLines, type Ops } from "./jsonlines.js";
import WebSocket from "ws";
import { SessionClient } from "../../src/session.js";
import type { WebSocketConstructor } from "../../src/delivery.js";

const hex = (s: string) => Uint8Array.from(Buffer.from(s, "hex"));
const toHex = (b: Uint8Array) => Buffer.from(b).toString("hex");
let client: SessionClient | null = null;

const ops: Ops = {
  async start(r) {
    client = new SessionClient(r.url, r.room, hex(r.token), r.client, r.config ?? {}, {
      WebSocket: WebSocket as unknown as WebSocketConstructor,
      backoffInitialMs: 20,
      backoffMaxMs: 200,
      connectTimeoutMs: 3000,
    });
    await client.start();
    return { ok: true };
  },
  status: () => client!.status(),
  members: () => client!.roster.map((m) => [m.identity, toHex(m.signatureKey), m.leafIndex]),
  async export(r) {
    return { out: toHex(await client!.exportSecret(r.label, hex(r.context), r.length)) };
  },
  async encrypt(r) {
    const kid = client!.sendKid;
    if (kid === null) throw new Error("no send key");
    return { ct: toHex(await client!.context.encrypt(kid, hex(r.frame))), kid: kid.toString() };
  },
  async decrypt(r) {
    const d = await client!.context.decryptWithKid(hex(r.ct));
    return { pt: toHex(d.plaintext), kid: d.kid.toString() };
  },
  kids: () => ({ send: client!.context.sendKids().map(String), recv: client!.context.receiveKids().map(String) }),
  events: () => client!.events,
  stats: () => client!.stats,
  notes: () => client!.committer.notes,
  async leave() {
    await client!.leave();
    return { ok: true };
  },
  crash() {
    process.exit(0);
  },
};

serveJsonLines(ops);
