/**
 * Handshake messages of the session layer as delivery-log entries (mirrors
 * `orange_fast.session.wire`; see docs/protocol.md):
 *
 *   of.kp      u8 version=1 | opaque32 key_package        (an MLSMessage(KeyPackage))
 *   of.create  u8 version=1 | opaque8 kp_id
 *   of.commit  u8 version=1 | u32 gen | u64 epoch
 *              | u16 n_adds { opaque8 client | opaque8 kp_id } | u16 n_removes { opaque8 client | opaque8 kp_id }
 *              | opaque32 commit | u8 has_welcome | [opaque32 welcome]
 *   of.update  u8 version=1 | u32 gen | u64 epoch | opaque32 proposal
 *
 * kp_id is the KeyPackageRef, recomputed by every reader. A rejected message becomes a no-op
 * entry (a `rejected` body with its sender and why).
 */
import type { Body, LogEntry as CommitterEntry, MemberRef, Waiting } from "./committer.js";
import { EntryType, type LogEntry as DeliveryEntry } from "./delivery.js";

export const WIRE_VERSION = 1;
export const KIND_KEY_PACKAGE = "of.kp";
export const KIND_CREATE = "of.create";
export const KIND_COMMIT = "of.commit";
export const KIND_UPDATE = "of.update";
export const MAX_PAYLOAD = 1 << 20;
export const MAX_REFS = 4096;

/** A handshake payload is malformed or not acceptable (the message is ignored by everyone). */
export class WireError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WireError";
  }
}

export const toHex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
export const fromHex = (s: string): Uint8Array => Uint8Array.from(s.match(/../g) ?? [], (h) => parseInt(h, 16));

class Out {
  parts: Uint8Array[] = [];
  uint(v: number | bigint, width: number): void {
    const b = new Uint8Array(width);
    let x = BigInt(v);
    for (let i = width - 1; i >= 0; i--, x >>= 8n) b[i] = Number(x & 0xffn);
    this.parts.push(b);
  }
  opaque(data: Uint8Array, width: number): void {
    if (data.length >= 2 ** (8 * width)) throw new WireError("field too long");
    this.uint(data.length, width);
    this.parts.push(data);
  }
  ref(r: MemberRef): void {
    this.opaque(Uint8Array.from(r.client, (c) => c.charCodeAt(0)), 1);
    this.opaque(fromHex(r.kpId), 1);
  }
  bytes(): Uint8Array {
    const n = this.parts.reduce((a, p) => a + p.length, 0);
    const out = new Uint8Array(n);
    let o = 0;
    for (const p of this.parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }
}

/** `[kind, payload]` of a committer body, for `DeliveryClient.append`. */
export function encodeBody(body: Body): [string, Uint8Array] {
  const w = new Out();
  w.uint(WIRE_VERSION, 1);
  switch (body.type) {
    case "kp":
      w.opaque(body.keyPackage, 4);
      return [KIND_KEY_PACKAGE, w.bytes()];
    case "create":
      w.opaque(fromHex(body.kpId), 1);
      return [KIND_CREATE, w.bytes()];
    case "commit":
      if (body.adds.length > MAX_REFS || body.removes.length > MAX_REFS) throw new WireError("too many adds or removes");
      w.uint(body.gen, 4);
      w.uint(body.epoch, 8);
      w.uint(body.adds.length, 2);
      for (const a of body.adds) w.ref(a.ref);
      w.uint(body.removes.length, 2);
      for (const r of body.removes) w.ref(r);
      w.opaque(body.commit, 4);
      if (body.welcome === null) w.uint(0, 1);
      else {
        w.uint(1, 1);
        w.opaque(body.welcome, 4);
      }
      return [KIND_COMMIT, w.bytes()];
    case "update":
      w.uint(body.gen, 4);
      w.uint(body.epoch, 8);
      w.opaque(body.proposal, 4);
      return [KIND_UPDATE, w.bytes()];
    default:
      throw new WireError(`cannot encode ${body.type}`);
  }
}

class In {
  pos = 0;
  constructor(readonly data: Uint8Array) {}
  take(n: number): Uint8Array {
    if (n < 0 || this.pos + n > this.data.length) throw new WireError("truncated payload");
    const out = this.data.slice(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  uint(width: number): number {
    let v = 0n;
    for (const b of this.take(width)) v = (v << 8n) | BigInt(b);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new WireError("integer too large");
    return Number(v);
  }
  opaque(width: number): Uint8Array {
    return this.take(this.uint(width));
  }
  ref(): [string, string] {
    const raw = this.opaque(1);
    if (raw.some((b) => b > 0x7f)) throw new WireError("client id is not ASCII");
    if (raw.length === 0) throw new WireError("empty client id");
    const kpId = this.opaque(1);
    if (kpId.length === 0) throw new WireError("empty kp_id");
    return [String.fromCharCode(...raw), toHex(kpId)];
  }
  finish(): void {
    if (this.pos !== this.data.length) throw new WireError("trailing bytes");
  }
}

export interface ParsedCommit {
  type: "parsed_commit"; gen: number; epoch: number; adds: [string, string][]; removes: [string, string][];
  commit: Uint8Array; welcome: Uint8Array | null;
}
export type Parsed =
  | { type: "kp"; keyPackage: Uint8Array }
  | { type: "create"; kpId: string }
  | ParsedCommit
  | { type: "update"; gen: number; epoch: number; proposal: Uint8Array };

/** Parse one handshake payload (WireError on anything not acceptable). */
export function parsePayload(kind: string, payload: Uint8Array): Parsed {
  if (payload.length > MAX_PAYLOAD) throw new WireError("payload too large");
  if (![KIND_KEY_PACKAGE, KIND_CREATE, KIND_COMMIT, KIND_UPDATE].includes(kind)) throw new WireError("unknown kind");
  const r = new In(payload);
  if (r.uint(1) !== WIRE_VERSION) throw new WireError("unsupported wire version");
  if (kind === KIND_KEY_PACKAGE) {
    const kp = r.opaque(4);
    r.finish();
    if (kp.length === 0) throw new WireError("empty KeyPackage");
    return { type: "kp", keyPackage: kp };
  }
  if (kind === KIND_CREATE) {
    const kpId = r.opaque(1);
    r.finish();
    if (kpId.length === 0) throw new WireError("empty kp_id");
    return { type: "create", kpId: toHex(kpId) };
  }
  if (kind === KIND_UPDATE) {
    const gen = r.uint(4), epoch = r.uint(8), proposal = r.opaque(4);
    r.finish();
    if (proposal.length === 0) throw new WireError("empty proposal");
    return { type: "update", gen, epoch, proposal };
  }
  const gen = r.uint(4), epoch = r.uint(8);
  const adds = Array.from({ length: r.uint(2) }, () => r.ref());
  const removes = Array.from({ length: r.uint(2) }, () => r.ref());
  const commit = r.opaque(4);
  const flag = r.uint(1);
  if (flag !== 0 && flag !== 1) throw new WireError("bad welcome flag");
  const welcome = flag ? r.opaque(4) : null;
  r.finish();
  if (commit.length === 0) throw new WireError("empty commit");
  if (adds.length > MAX_REFS || removes.length > MAX_REFS) throw new WireError("too many adds or removes");
  return { type: "parsed_commit", gen, epoch, adds, removes, commit, welcome };
}

/** A KeyPackage must be valid since this many seconds before its entry's timestamp... */
export const LIFETIME_BEFORE = 300;
/** ...and stay valid this many seconds after it (the server's clock, the same for every reader). */
export const LIFETIME_AFTER = 86400;

/** What a KeyPackage checker reports: its ref, identity, lifetime and the keys that must be unique. */
export interface CheckedKeyPackage {
  kpId: string;
  identity: string;
  signatureKey: Uint8Array;
  uniqueKeys: string[];
  /** [notBefore, notAfter] in seconds since the epoch. */
  lifetime: [bigint, bigint];
}
/** Validates one KeyPackage (MLS-specific; see mlsops.ts); throws WireError if invalid. */
export type KeyPackageChecker = (keyPackage: Uint8Array) => Promise<CheckedKeyPackage>;

/** A delivery entry turned into a committer entry; `rejected` is a reason or null. */
export interface Decoded { entry: CommitterEntry; rejected: string | null }

/** Stateful decoder of one room's log (feed every entry in order, from seq 1). */
export class WireDecoder {
  private readonly kps = new Map<string, { client: string; keyPackage: Uint8Array; signatureKey: Uint8Array }>();
  private readonly seenKeys = new Set<string>();
  /** hex signature key -> kpId of the KeyPackage that published it (keys are unique in a room). */
  private readonly bySignatureKey = new Map<string, string>();
  constructor(private readonly check: KeyPackageChecker) {}

  /** The ref (kpId) of the KeyPackage that published `signatureKey` in this room, or null. */
  keyPackageOf(signatureKey: Uint8Array): string | null {
    return this.bySignatureKey.get(toHex(signatureKey)) ?? null;
  }

  /** The signature key of the KeyPackage `ref` names (null if unknown or not the client's). */
  signatureKey(ref: MemberRef): Uint8Array | null {
    const known = this.kps.get(ref.kpId);
    return known === undefined || known.client !== ref.client ? null : known.signatureKey;
  }

  async decode(d: DeliveryEntry): Promise<Decoded> {
    const seq = Number(d.seq);
    if (d.entryType === EntryType.JOINED) return { entry: { seq, body: { type: "joined", client: d.sender }, sender: null }, rejected: null };
    if (d.entryType === EntryType.LEFT) return { entry: { seq, body: { type: "left", client: d.sender }, sender: null }, rejected: null };
    if (d.entryType === EntryType.EVICTED) return { entry: { seq, body: { type: "evicted", client: d.sender }, sender: null }, rejected: null };
    try {
      const body = await this.message(d.sender, d.kind, d.payload, d.timestampMs / 1000n);
      return { entry: { seq, body, sender: d.sender }, rejected: null };
    } catch (e) {
      if (!(e instanceof WireError)) throw e;
      return { entry: { seq, body: { type: "rejected", client: d.sender, reason: e.message }, sender: d.sender }, rejected: e.message };
    }
  }

  private async message(sender: string, kind: string, payload: Uint8Array, now: bigint): Promise<Body> {
    const p = parsePayload(kind, payload);
    if (p.type === "kp") {
      const c = await this.check(p.keyPackage);
      if (c.identity !== sender) throw new WireError("KeyPackage identity is not its sender's");
      const [notBefore, notAfter] = c.lifetime;
      if (!(notBefore <= now - BigInt(LIFETIME_BEFORE) && now + BigInt(LIFETIME_AFTER) <= notAfter)) {
        throw new WireError("KeyPackage lifetime does not cover its publication");
      }
      if (c.uniqueKeys.some((k) => this.seenKeys.has(k)) || this.kps.has(c.kpId)) throw new WireError("KeyPackage reuses a key seen before in this room");
      for (const k of c.uniqueKeys) this.seenKeys.add(k);
      this.kps.set(c.kpId, { client: sender, keyPackage: p.keyPackage, signatureKey: c.signatureKey });
      this.bySignatureKey.set(toHex(c.signatureKey), c.kpId);
      return { type: "kp", kpId: c.kpId, keyPackage: p.keyPackage };
    }
    if (p.type === "create") return { type: "create", kpId: p.kpId };
    if (p.type === "update") return { type: "update", gen: p.gen, epoch: p.epoch, proposal: p.proposal };
    const adds: Waiting[] = p.adds.map(([client, kpId]) => {
      const known = this.kps.get(kpId);
      if (known === undefined || known.client !== client) throw new WireError("commit adds an unknown KeyPackage");
      return { ref: { client, kpId }, keyPackage: known.keyPackage };
    });
    const removes = p.removes.map(([client, kpId]) => ({ client, kpId }));
    return { type: "commit", gen: p.gen, epoch: p.epoch, adds, removes, commit: p.commit, welcome: p.welcome };
  }
}
