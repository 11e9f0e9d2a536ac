/**
 * SFrame (RFC 9605) on WebCrypto: the same semantics and typed errors as the Python
 * core (`orange_fast.sframe`).
 *
 * ```ts
 * const ctx = new Context(4, { replayWindow: 128 });
 * await ctx.addSendKey(kid, baseKey);
 * const ct = await ctx.encrypt(kid, frame, metadata);
 * ```
 *
 * KIDs and counters are 64-bit: they are accepted as `number` (safe integers) or
 * `bigint` and reported as `bigint`. Error messages name KIDs and counters, never
 * key material.
 */

export const MAX_U64 = (1n << 64n) - 1n;
/** Longest SFrame header: a config byte and two 8-byte fields. */
export const MAX_HEADER_SIZE = 17;

/** Base class of every SFrame failure. */
export class SFrameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}
/** The header is truncated, non-minimal, or the ciphertext is shorter than the tag. */
export class MalformedHeaderError extends SFrameError {}
/** No key of the needed direction is installed for the KID. */
export class UnknownKeyError extends SFrameError {}
/** The authentication tag did not verify (wrong key, metadata, or tampered data). */
export class AuthenticationError extends SFrameError {}
/** The counter was already accepted, or lies below the replay window. */
export class ReplayError extends SFrameError {}
/** The send counter of a KID is exhausted; install a new key. */
export class CounterExhaustedError extends SFrameError {}

/** Sizes of a suite, with the RFC's names (bytes). */
export interface SuiteParams {
  readonly hash: "SHA-256" | "SHA-512";
  readonly Nh: number;
  readonly Nka: number;
  readonly Nk: number;
  readonly Nn: number;
  readonly Nt: number;
  readonly gcm: boolean;
}

/** RFC 9605 suites 1-5 and draft-barnes-sframe-iana-256 suites 6-8. */
export const SUITES: Readonly<Record<number, SuiteParams>> = Object.freeze({
  1: { hash: "SHA-256", Nh: 32, Nka: 16, Nk: 48, Nn: 12, Nt: 10, gcm: false },
  2: { hash: "SHA-256", Nh: 32, Nka: 16, Nk: 48, Nn: 12, Nt: 8, gcm: false },
  3: { hash: "SHA-256", Nh: 32, Nka: 16, Nk: 48, Nn: 12, Nt: 4, gcm: false },
  4: { hash: "SHA-256", Nh: 32, Nka: 0, Nk: 16, Nn: 12, Nt: 16, gcm: true },
  5: { hash: "SHA-512", Nh: 64, Nka: 0, Nk: 32, Nn: 12, Nt: 16, gcm: true },
  6: { hash: "SHA-512", Nh: 64, Nka: 32, Nk: 96, Nn: 12, Nt: 10, gcm: false },
  7: { hash: "SHA-512", Nh: 64, Nka: 32, Nk: 96, Nn: 12, Nt: 8, gcm: false },
  8: { hash: "SHA-512", Nh: 64, Nka: 32, Nk: 96, Nn: 12, Nt: 4, gcm: false },
} as Record<number, SuiteParams>);

const subtle: SubtleCrypto = globalThis.crypto.subtle;
const EMPTY = new Uint8Array(0);

/** A 64-bit unsigned value as bigint; TypeError/RangeError for anything else. */
export function toU64(value: unknown, what: string): bigint {
  if (typeof value === "bigint") {
    if (value < 0n || value > MAX_U64) throw new RangeError(`${what} must be in [0, 2**64)`);
    return value;
  }
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) throw new TypeError(`${what} must be a safe integer or a bigint`);
    if (value < 0) throw new RangeError(`${what} must be in [0, 2**64)`);
    return BigInt(value);
  }
  throw new TypeError(`${what} must be a number or a bigint, not ${typeof value}`);
}

function asBytes(value: unknown, what: string): Uint8Array {
  if (value instanceof Uint8Array) return value;
  throw new TypeError(`${what} must be a Uint8Array`);
}

// ----------------------------------------------------------------------------- header

function fieldLen(v: bigint): number {
  let n = 0;
  while (v > 0n) {
    n += 1;
    v >>= 8n;
  }
  return n;
}

/** Encode `(kid, ctr)` minimally (RFC 9605 §4.3). */
export function encodeHeader(kid: number | bigint, ctr: number | bigint): Uint8Array {
  const k = toU64(kid, "kid");
  const c = toU64(ctr, "ctr");
  const kn = k < 8n ? 0 : fieldLen(k);
  const cn = c < 8n ? 0 : fieldLen(c);
  const out = new Uint8Array(1 + kn + cn);
  writeHeader(out, k, kn, c, cn);
  return out;
}

function writeHeader(out: Uint8Array, k: bigint, kn: number, c: bigint, cn: number): void {
  const kNib = kn === 0 ? Number(k) : 0x8 | (kn - 1);
  const cNib = cn === 0 ? Number(c) : 0x8 | (cn - 1);
  out[0] = (kNib << 4) | cNib;
  for (let i = kn; i >= 1; i--, k >>= 8n) out[i] = Number(k & 0xffn);
  for (let i = kn + cn; i > kn; i--, c >>= 8n) out[i] = Number(c & 0xffn);
}

function readField(nib: number, buf: Uint8Array, pos: number): [bigint, number] {
  if (!(nib & 0x8)) return [BigInt(nib), pos];
  const n = (nib & 0x7) + 1;
  if (buf.length < pos + n) throw new MalformedHeaderError("SFrame header is truncated");
  if (buf[pos] === 0) throw new MalformedHeaderError("SFrame header field has a leading zero byte (non-minimal)");
  let v = 0n;
  for (let i = 0; i < n; i++) v = (v << 8n) | BigInt(buf[pos + i]!);
  if (v < 8n) throw new MalformedHeaderError("SFrame header field extended for a value below 8 (non-minimal)");
  return [v, pos + n];
}

/** Strictly decode the header at the start of `buf`: `[kid, ctr, headerLength]`. */
export function decodeHeader(buf: Uint8Array): [bigint, bigint, number] {
  const data = asBytes(buf, "buf");
  if (data.length === 0) throw new MalformedHeaderError("empty SFrame ciphertext");
  const config = data[0]!;
  const [kid, p1] = readField(config >> 4, data, 1);
  const [ctr, p2] = readField(config & 0xf, data, p1);
  return [kid, ctr, p2];
}

// ----------------------------------------------------------------------------- keys

const enc = new TextEncoder();
const KEY_LABEL = enc.encode("SFrame 1.0 Secret key ");
const SALT_LABEL = enc.encode("SFrame 1.0 Secret salt ");

function labelInfo(label: Uint8Array, kid: bigint, suite: number): Uint8Array {
  const info = new Uint8Array(label.length + 10);
  info.set(label);
  const dv = new DataView(info.buffer);
  dv.setBigUint64(label.length, kid);
  dv.setUint16(label.length + 8, suite);
  return info;
}

/** RFC 9605 §4.4.2: the raw `(sframeKey, sframeSalt)` of `kid` under `baseKey`. */
export async function deriveKeySalt(
  suite: number,
  kid: number | bigint,
  baseKey: Uint8Array,
): Promise<[Uint8Array, Uint8Array]> {
  const p = suiteParams(suite);
  const k = toU64(kid, "kid");
  const ikm = await subtle.importKey("raw", baseKey, "HKDF", false, ["deriveBits"]);
  const hkdf = (info: Uint8Array, len: number) =>
    subtle.deriveBits({ name: "HKDF", hash: p.hash, salt: EMPTY, info }, ikm, len * 8);
  const [key, salt] = await Promise.all([
    hkdf(labelInfo(KEY_LABEL, k, suite), p.Nk),
    hkdf(labelInfo(SALT_LABEL, k, suite), p.Nn),
  ]);
  return [new Uint8Array(key), new Uint8Array(salt)];
}

function suiteParams(suite: number): SuiteParams {
  const p = typeof suite === "number" ? SUITES[suite] : undefined;
  if (p === undefined) throw new RangeError(`unknown SFrame cipher suite ${String(suite)}`);
  return p;
}

/** Imported WebCrypto keys of one KID (never exposed). */
interface Material {
  readonly aead: CryptoKey; // AES-GCM key, or the AES-CTR key of a CTR+HMAC suite
  readonly mac: CryptoKey | null; // HMAC key of a CTR+HMAC suite
  readonly salt: Uint8Array; // Nn bytes
}

async function importMaterial(p: SuiteParams, key: Uint8Array, salt: Uint8Array): Promise<Material> {
  if (p.gcm) {
    const aead = await subtle.importKey("raw", key, "AES-GCM", false, ["encrypt", "decrypt"]);
    return { aead, mac: null, salt };
  }
  const [aead, mac] = await Promise.all([
    subtle.importKey("raw", key.subarray(0, p.Nka), "AES-CTR", false, ["encrypt", "decrypt"]),
    subtle.importKey("raw", key.subarray(p.Nka), { name: "HMAC", hash: p.hash }, false, ["sign"]),
  ]);
  return { aead, mac, salt };
}

/** `salt XOR ctr` (the counter big-endian in the last 8 bytes). */
function makeNonce(salt: Uint8Array, ctr: bigint): Uint8Array {
  const nonce = salt.slice();
  const dv = new DataView(nonce.buffer);
  const off = nonce.length - 8;
  dv.setBigUint64(off, dv.getBigUint64(off) ^ ctr);
  return nonce;
}

// ----------------------------------------------------------------------------- replay

/** SRTP-style window (RFC 3711 §3.3.2) over counters; size 0 disables it. */
class ReplayWindow {
  private top: bigint | null = null;
  private readonly seen: Uint8Array;
  constructor(private readonly size: number) {
    this.seen = new Uint8Array(size);
  }
  /** Throws ReplayError if `ctr` may not be accepted; changes nothing. */
  check(ctr: bigint): void {
    if (this.size === 0 || this.top === null || ctr > this.top) return;
    if (this.top - ctr >= BigInt(this.size)) throw new ReplayError(`counter ${ctr} is below the replay window`);
    if (this.seen[Number(ctr % BigInt(this.size))]) throw new ReplayError(`counter ${ctr} was already accepted`);
  }
  /** Record `ctr` as accepted (only after its tag verified). */
  accept(ctr: bigint): void {
    if (this.size === 0) return;
    const size = BigInt(this.size);
    if (this.top === null || ctr > this.top) {
      if (this.top === null || ctr - this.top >= size) this.seen.fill(0);
      else for (let c = this.top + 1n; c < ctr; c++) this.seen[Number(c % size)] = 0;
      this.top = ctr;
    }
    this.seen[Number(ctr % size)] = 1;
  }
}

interface SendKey {
  readonly send: true;
  readonly m: Material;
  nextCtr: bigint; // MAX_U64 + 1 once exhausted
}
interface ReceiveKey {
  readonly send: false;
  readonly m: Material;
  readonly window: ReplayWindow;
}

/** Options of a {@link Context}. */
export interface ContextOptions {
  /** Counters tracked per receive KID (0 disables replay protection); default 128. */
  replayWindow?: number;
}

/** Result of {@link Context.decryptWithKid}. */
export interface Decrypted {
  kid: bigint;
  ctr: bigint;
  plaintext: Uint8Array;
}

/**
 * An SFrame context: one cipher suite and a map KID -> key (send or receive).
 *
 * Keys are derived once when installed. A send KID's counter never repeats in one
 * Context, even if the KID is removed and added again. A receive KID's replay window
 * advances only after the tag verified. A failed call changes no state.
 */
export class Context {
  readonly suite: number;
  readonly params: SuiteParams;
  readonly replayWindow: number;
  private readonly keys = new Map<bigint, SendKey | ReceiveKey>();
  private readonly pending = new Set<bigint>();
  private readonly retired = new Map<bigint, bigint>();

  constructor(suite: number, options: ContextOptions = {}) {
    this.params = suiteParams(suite);
    this.suite = suite;
    const w = options.replayWindow ?? 128;
    if (!Number.isSafeInteger(w)) throw new TypeError("replayWindow must be an integer");
    if (w < 0 || w > 1 << 20) throw new RangeError("replayWindow must be in [0, 2**20]");
    this.replayWindow = w;
  }

  toString(): string {
    return `Context(suite=${this.suite}, keys=${this.keys.size})`;
  }

  private async material(kid: bigint, baseKey: unknown): Promise<Material> {
    const raw = asBytes(baseKey, "baseKey");
    if (raw.length === 0) throw new RangeError("baseKey must not be empty");
    const [key, salt] = await deriveKeySalt(this.suite, kid, raw);
    return importMaterial(this.params, key, salt);
  }

  /** Install the send key of `kid`; its counter resumes where this KID stopped (or at `startCounter`). */
  async addSendKey(kid: number | bigint, baseKey: Uint8Array, startCounter?: number | bigint): Promise<void> {
    const k = toU64(kid, "kid");
    if (this.keys.has(k) || this.pending.has(k)) throw new RangeError(`KID ${k} already has a key`);
    let floor = this.retired.get(k) ?? 0n;
    if (startCounter !== undefined) {
      const start = toU64(startCounter, "startCounter");
      if (start < floor) throw new RangeError(`startCounter would reuse counters of KID ${k}`);
      floor = start;
    }
    this.pending.add(k);
    try {
      const m = await this.material(k, baseKey);
      this.keys.set(k, { send: true, m, nextCtr: floor });
    } finally {
      this.pending.delete(k);
    }
  }

  /** Install or replace the receive key of `kid` (a replacement starts a fresh window). */
  async addReceiveKey(kid: number | bigint, baseKey: Uint8Array): Promise<void> {
    const k = toU64(kid, "kid");
    const old = this.keys.get(k);
    if ((old !== undefined && old.send) || this.pending.has(k)) throw new RangeError(`KID ${k} is a send key`);
    const m = await this.material(k, baseKey);
    const again = this.keys.get(k);
    if (again !== undefined && again.send) throw new RangeError(`KID ${k} is a send key`);
    this.keys.set(k, { send: false, m, window: new ReplayWindow(this.replayWindow) });
  }

  /** Forget `kid`'s key (either direction); a send KID's counter position is remembered. */
  removeKey(kid: number | bigint): void {
    const k = toU64(kid, "kid");
    const entry = this.keys.get(k);
    if (entry === undefined) throw new UnknownKeyError(`no key for KID ${k}`);
    this.keys.delete(k);
    if (entry.send) this.retired.set(k, entry.nextCtr);
  }

  /** True if `kid` has a key of either direction. */
  hasKey(kid: number | bigint): boolean {
    return this.keys.has(toU64(kid, "kid"));
  }

  /** The KIDs with send keys, ascending. */
  sendKids(): bigint[] {
    return [...this.keys].filter(([, v]) => v.send).map(([k]) => k).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }

  /** The KIDs with receive keys, ascending. */
  receiveKids(): bigint[] {
    return [...this.keys].filter(([, v]) => !v.send).map(([k]) => k).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }

  private sendKey(k: bigint): SendKey {
    const entry = this.keys.get(k);
    if (entry === undefined || !entry.send) throw new UnknownKeyError(`no send key for KID ${k}`);
    return entry;
  }

  /** The counter the next frame of `kid` will use. */
  nextCounter(kid: number | bigint): bigint {
    const k = toU64(kid, "kid");
    const entry = this.sendKey(k);
    if (entry.nextCtr > MAX_U64) throw new CounterExhaustedError(`send counter of KID ${k} is exhausted`);
    return entry.nextCtr;
  }

  /** `header || AEAD(key, nonce, header || metadata, frame)`; uses one counter. */
  async encrypt(kid: number | bigint, frame: Uint8Array, metadata: Uint8Array = EMPTY): Promise<Uint8Array> {
    const k = toU64(kid, "kid");
    const entry = this.sendKey(k);
    const pt = asBytes(frame, "frame");
    const meta = asBytes(metadata, "metadata");
    const ctr = entry.nextCtr;
    if (ctr > MAX_U64) throw new CounterExhaustedError(`send counter of KID ${k} is exhausted`);
    entry.nextCtr = ctr + 1n; // reserved before any await: never reused
    const hdr = encodeHeader(k, ctr);
    const aad = meta.length === 0 ? hdr : concat(hdr, meta);
    const nonce = makeNonce(entry.m.salt, ctr);
    const p = this.params;
    if (p.gcm) {
      const ct = await subtle.encrypt({ name: "AES-GCM", iv: nonce, additionalData: aad, tagLength: 128 }, entry.m.aead, pt);
      return concat(hdr, new Uint8Array(ct));
    }
    const ct = new Uint8Array(await subtle.encrypt({ name: "AES-CTR", counter: ctrBlock(nonce), length: 32 }, entry.m.aead, pt));
    const tag = await macTag(p, entry.m.mac!, nonce, aad, ct);
    const out = new Uint8Array(hdr.length + ct.length + p.Nt);
    out.set(hdr);
    out.set(ct, hdr.length);
    out.set(tag, hdr.length + ct.length);
    return out;
  }

  /** Decrypt one ciphertext (KID from its header). */
  async decrypt(ciphertext: Uint8Array, metadata: Uint8Array = EMPTY): Promise<Uint8Array> {
    return (await this.decryptWithKid(ciphertext, metadata)).plaintext;
  }

  /** Parse, look up, replay-check, authenticate, decrypt, then advance the window. */
  async decryptWithKid(ciphertext: Uint8Array, metadata: Uint8Array = EMPTY): Promise<Decrypted> {
    const data = asBytes(ciphertext, "ciphertext");
    const meta = asBytes(metadata, "metadata");
    const [kid, ctr, hlen] = decodeHeader(data);
    const p = this.params;
    if (data.length - hlen < p.Nt) throw new MalformedHeaderError("ciphertext is shorter than the authentication tag");
    const entry = this.keys.get(kid);
    if (entry === undefined || entry.send) throw new UnknownKeyError(`no receive key for KID ${kid}`);
    entry.window.check(ctr);
    const hdr = data.subarray(0, hlen);
    const aad = meta.length === 0 ? hdr : concat(hdr, meta);
    const nonce = makeNonce(entry.m.salt, ctr);
    const body = data.subarray(hlen);
    let pt: Uint8Array;
    if (p.gcm) {
      try {
        pt = new Uint8Array(
          await subtle.decrypt({ name: "AES-GCM", iv: nonce, additionalData: aad, tagLength: 128 }, entry.m.aead, body),
        );
      } catch {
        throw new AuthenticationError("authentication failed");
      }
    } else {
      const ct = body.subarray(0, body.length - p.Nt);
      const tag = await macTag(p, entry.m.mac!, nonce, aad, ct);
      if (!constantTimeEqual(tag, body.subarray(body.length - p.Nt))) throw new AuthenticationError("authentication failed");
      pt = new Uint8Array(await subtle.decrypt({ name: "AES-CTR", counter: ctrBlock(nonce), length: 32 }, entry.m.aead, ct));
    }
    // Another decrypt of the same counter may have finished while this one awaited.
    entry.window.check(ctr);
    entry.window.accept(ctr);
    return { kid, ctr, plaintext: pt };
  }
}

function ctrBlock(nonce: Uint8Array): Uint8Array {
  const block = new Uint8Array(16);
  block.set(nonce);
  return block;
}

async function macTag(p: SuiteParams, key: CryptoKey, nonce: Uint8Array, aad: Uint8Array, ct: Uint8Array): Promise<Uint8Array> {
  const input = new Uint8Array(24 + nonce.length + aad.length + ct.length);
  const dv = new DataView(input.buffer);
  dv.setBigUint64(0, BigInt(aad.length));
  dv.setBigUint64(8, BigInt(ct.length));
  dv.setBigUint64(16, BigInt(p.Nt));
  input.set(nonce, 24);
  input.set(aad, 24 + nonce.length);
  input.set(ct, 24 + nonce.length + aad.length);
  return new Uint8Array(await subtle.sign("HMAC", key, input)).subarray(0, p.Nt);
}

/** Constant-time comparison of two byte strings of public length. */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/** Concatenate byte strings. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
