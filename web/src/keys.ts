/**
 * SFrame keys from MLS epochs (RFC 9605 §5.2), mirroring `orange_fast.session.keys`:
 *
 *   base_key = MLS-Exporter("SFrame 1.0 Base Key", "", Nk)
 *   KID      = (context << (S + E)) | (sender_index << E) | (epoch mod 2**E)      E = 8, S = 16, context = 0
 *
 * Our send key under our own KID, a receive key for every other member's KID. The previous
 * epochs' keys stay for `gracePeriod` (caller's time units; no clock is read here), and are
 * dropped at once when a new epoch has the same low E bits or overlapping KIDs.
 */
import type { Context } from "./sframe.js";

export const EXPORTER_LABEL = "SFrame 1.0 Base Key";

/** Bad input to the key schedule; no state was changed. */
export class KeyScheduleError extends RangeError {
  constructor(message: string) {
    super(message);
    this.name = "KeyScheduleError";
  }
}

/** The RFC 9605 §5.2 KID layout: E epoch bits, S sender bits, a context value. */
export class KidLayout {
  constructor(readonly epochBits = 8, readonly senderBits = 16, readonly context = 0n) {
    if (!Number.isInteger(epochBits) || epochBits < 1 || epochBits > 32) throw new KeyScheduleError("epochBits must be in 1..32");
    if (!Number.isInteger(senderBits) || senderBits < 1 || senderBits > 32) throw new KeyScheduleError("senderBits must be in 1..32");
    if (context < 0n || context >> BigInt(64 - senderBits - epochBits) !== 0n) throw new KeyScheduleError("context does not fit in the remaining KID bits");
  }
  kid(senderIndex: number, epoch: number): bigint {
    if (!Number.isInteger(senderIndex) || senderIndex < 0 || senderIndex >= 2 ** this.senderBits) {
      throw new KeyScheduleError(`sender index ${senderIndex} does not fit in ${this.senderBits} bits`);
    }
    if (!Number.isInteger(epoch) || epoch < 0) throw new KeyScheduleError("epoch must be >= 0");
    const e = BigInt(this.epochBits), s = BigInt(this.senderBits);
    return (this.context << (s + e)) | (BigInt(senderIndex) << e) | BigInt(this.lowBits(epoch));
  }
  lowBits(epoch: number): number {
    return Number(BigInt(epoch) & ((1n << BigInt(this.epochBits)) - 1n));
  }
}

export type KeyOp = { op: "send" | "recv"; kid: bigint; key: Uint8Array } | { op: "remove"; kid: bigint };

interface Epoch {
  readonly epoch: number;
  readonly key: Uint8Array;
  readonly sendKid: bigint;
  readonly recvKids: readonly bigint[];
  readonly expires: number | null; // null: current epoch
}
const kidsOf = (e: Epoch): bigint[] => [...e.recvKids, e.sendKid];
const sorted = (xs: Iterable<bigint>): bigint[] => [...xs].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

/** Pure bookkeeping of which KIDs are installed, per epoch, and when they expire. */
export class KeyRing {
  current: Epoch | null = null;
  previous: Epoch[] = [];
  constructor(readonly layout: KidLayout, readonly keySize: number, readonly gracePeriod: number) {
    if (!(keySize > 0)) throw new KeyScheduleError("keySize must be positive");
    if (!(gracePeriod >= 0)) throw new KeyScheduleError("gracePeriod must be >= 0");
  }
  get sendKid(): bigint | null {
    return this.current?.sendKid ?? null;
  }
  /** KID -> "send"/"recv" of everything installed now. */
  installed(): Map<bigint, "send" | "recv"> {
    const out = new Map<bigint, "send" | "recv">();
    for (const ep of [...this.previous, ...(this.current ? [this.current] : [])]) {
      out.set(ep.sendKid, "send");
      for (const k of ep.recvKids) out.set(k, "recv");
    }
    return out;
  }
  /** Make `epoch` current; the operations to perform, in order. Throws without changing anything. */
  install(epoch: number, baseKey: Uint8Array, ownIndex: number, memberIndices: Iterable<number>, now: number): KeyOp[] {
    if (baseKey.length !== this.keySize) throw new KeyScheduleError(`baseKey must be ${this.keySize} bytes`);
    if (!Number.isInteger(epoch) || epoch < 0) throw new KeyScheduleError("epoch must be >= 0");
    if (this.current !== null && epoch === this.current.epoch) throw new KeyScheduleError(`epoch ${epoch} is already installed`);
    const idxs = new Set(memberIndices);
    idxs.delete(ownIndex);
    const sendKid = this.layout.kid(ownIndex, epoch);
    const recv = sorted([...idxs].map((i) => this.layout.kid(i, epoch)));
    const newKids = new Set([...recv, sendKid]);
    const low = this.layout.lowBits(epoch);
    const ops: KeyOp[] = [];
    const keep: Epoch[] = [];
    for (const old of [...this.previous, ...(this.current ? [this.current] : [])]) {
      if (this.layout.lowBits(old.epoch) === low || kidsOf(old).some((k) => newKids.has(k))) {
        for (const k of sorted(kidsOf(old))) ops.push({ op: "remove", kid: k });
      } else if (old.expires === null) {
        keep.push({ ...old, expires: now + this.gracePeriod });
      } else {
        keep.push(old);
      }
    }
    ops.push({ op: "send", kid: sendKid, key: baseKey });
    for (const k of recv) ops.push({ op: "recv", kid: k, key: baseKey });
    this.previous = keep;
    this.current = { epoch, key: baseKey, sendKid, recvKids: recv, expires: null };
    return ops;
  }
  /** Drop previous epochs whose grace period ended at or before `now`. */
  expire(now: number): KeyOp[] {
    const ops: KeyOp[] = [];
    const keep: Epoch[] = [];
    for (const old of this.previous) {
      if (old.expires !== null && old.expires <= now) for (const k of sorted(kidsOf(old))) ops.push({ op: "remove", kid: k });
      else keep.push(old);
    }
    this.previous = keep;
    return ops;
  }
  /** Drop every key now. */
  clear(): KeyOp[] {
    const ops: KeyOp[] = sorted(this.installed().keys()).map((kid) => ({ op: "remove", kid }));
    this.current = null;
    this.previous = [];
    return ops;
  }
}

/** Keeps an SFrame Context in step with the MLS epochs. */
export class EpochKeys {
  readonly ring: KeyRing;
  /** Counts key changes (install, clear): media code compares it to notice a switch. */
  generation = 0;
  constructor(readonly context: Context, layout: KidLayout = new KidLayout(), gracePeriod = 2000) {
    this.ring = new KeyRing(layout, context.params.Nk, gracePeriod);
  }
  get sendKid(): bigint | null {
    return this.ring.sendKid;
  }
  get epoch(): number | null {
    return this.ring.current?.epoch ?? null;
  }
  /** Install an epoch's keys; return our send KID. */
  async installEpoch(epoch: number, baseKey: Uint8Array, ownIndex: number, memberIndices: Iterable<number>, now: number): Promise<bigint> {
    await this.apply(this.ring.install(epoch, baseKey, ownIndex, memberIndices, now));
    this.generation += 1;
    return this.ring.sendKid!;
  }
  async expire(now: number): Promise<void> {
    await this.apply(this.ring.expire(now));
  }
  async clear(): Promise<void> {
    await this.apply(this.ring.clear());
    this.generation += 1;
  }
  private async apply(ops: KeyOp[]): Promise<void> {
    const ctx = this.context;
    for (const op of ops) {
      if (op.op === "remove") {
        if (ctx.hasKey(op.kid)) ctx.removeKey(op.kid);
      } else if (op.op === "send") {
        if (ctx.hasKey(op.kid)) ctx.removeKey(op.kid);
        await ctx.addSendKey(op.kid, op.key);
      } else {
        await ctx.addReceiveKey(op.kid, op.key);
      }
    }
  }
}
