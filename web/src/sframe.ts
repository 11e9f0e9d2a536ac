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

/** A 64-bit value inside the context: a number when it is a safe integer, else a bigint. */
type U64 = number | bigint;
const SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** Normalise: bigint values up to 2**53-1 become numbers (fast paths, one Map key per value). */
function norm(v: bigint): U64 {
  return v <= SAFE ? Number(v) : v;
}

function fieldLen(v: U64): number {
  if (typeof v === "number") {
    if (v < 8) return 0;
    let n = 1;
    for (let x = Math.floor(v / 256); x > 0; x = Math.floor(x / 256)) n++;
    return n;
  }
  let n = 0;
  for (let x = v; x > 0n; x >>= 8n) n++;
  return n;
}

function writeField(out: Uint8Array, pos: number, v: U64, n: number): void {
  if (typeof v === "number") {
    for (let i = pos + n - 1; i >= pos; i--) {
      out[i] = v % 256;
      v = Math.floor(v / 256);
    }
    return;
  }
  for (let i = pos + n - 1; i >= pos; i--, v >>= 8n) out[i] = Number(v & 0xffn);
}

/** The minimal header of (kid, ctr), with room for `extra` bytes after it. */
function buildHeader(kid: U64, ctr: U64, extra = 0): [Uint8Array, number] {
  const kn = fieldLen(kid);
  const cn = fieldLen(ctr);
  const hlen = 1 + kn + cn;
  const out = new Uint8Array(hlen + extra);
  out[0] = ((kn === 0 ? Number(kid) : 0x8 | (kn - 1)) << 4) | (cn === 0 ? Number(ctr) : 0x8 | (cn - 1));
  if (kn) writeField(out, 1, kid, kn);
  if (cn) writeField(out, 1 + kn, ctr, cn);
  return [out, hlen];
}

/** Encode `(kid, ctr)` minimally (RFC 9605 §4.3). */
export function encodeHeader(kid: number | bigint, ctr: number | bigint): Uint8Array {
  return buildHeader(norm(toU64(kid, "kid")), norm(toU64(ctr, "ctr")))[0];
}

function readField(nib: number, buf: Uint8Array, pos: number): [U64, number] {
  if (!(nib & 0x8)) return [nib, pos];
  const n = (nib & 0x7) + 1;
  if (buf.length < pos + n) throw new MalformedHeaderError("SFrame header is truncated");
  if (buf[pos] === 0) throw new MalformedHeaderError("SFrame header field has a leading zero byte (non-minimal)");
  let v: U64;
  if (n <= 6) {
    v = 0;
    for (let i = 0; i < n; i++) v = v * 256 + buf[pos + i]!;
  } else {
    let b = 0n;
    for (let i = 0; i < n; i++) b = (b << 8n) | BigInt(buf[pos + i]!);
    v = norm(b);
  }
  if (v < 8) throw new MalformedHeaderError("SFrame header field extended for a value below 8 (non-minimal)");
  return [v, pos + n];
}

function parseHeader(data: Uint8Array): [U64, U64, number] {
  if (data.length === 0) throw new MalformedHeaderError("empty SFrame ciphertext");
  const config = data[0]!;
  const [kid, p1] = readField(config >> 4, data, 1);
  const [ctr, p2] = readField(config & 0xf, data, p1);
  return [kid, ctr, p2];
}

/** Strictly decode the header at the start of `buf`: `[kid, ctr, headerLength]`. */
export function decodeHeader(buf: Uint8Array): [bigint, bigint, number] {
  const [kid, ctr, n] = parseHeader(asBytes(buf, "buf"));
  return [BigInt(kid), BigInt(ctr), n];
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
function makeNonce(salt: Uint8Array, ctr: U64): Uint8Array {
  const nonce = salt.slice();
  const dv = new DataView(nonce.buffer);
  const off = nonce.length - 8;
  if (typeof ctr === "number") {
    dv.setUint32(off, dv.getUint32(off) ^ Math.floor(ctr / 0x100000000));
    dv.setUint32(off + 4, dv.getUint32(off + 4) ^ (ctr >>> 0));
  } else {
    dv.setBigUint64(off, dv.getBigUint64(off) ^ ctr);
  }
  return nonce;
}

// ----------------------------------------------------------------------------- replay

/** SRTP-style window (RFC 3711 §3.3.2) over counters; size 0 disables it. */
class ReplayWindow {
  private top: U64 | null = null;
  private readonly seen: Uint8Array;
  constructor(private readonly size: number) {
    this.seen = new Uint8Array(size);
  }
  private slot(ctr: U64): number {
    return typeof ctr === "number" ? ctr % this.size : Number(ctr % BigInt(this.size));
  }
  /** Throws ReplayError if `ctr` may not be accepted; changes nothing. */
  check(ctr: U64): void {
    if (this.size === 0 || this.top === null || ctr > this.top) return;
    const behind = typeof ctr === "number" && typeof this.top === "number" ? this.top - ctr : BigInt(this.top) - BigInt(ctr);
    if (behind >= this.size) throw new ReplayError(`counter ${ctr} is below the replay window`);
    if (this.seen[this.slot(ctr)]) throw new ReplayError(`counter ${ctr} was already accepted`);
  }
  /** Record `ctr` as accepted (only after its tag verified). */
  accept(ctr: U64): void {
    if (this.size === 0) return;
    if (this.top === null || ctr > this.top) {
      const ahead =
        this.top === null ? Infinity : typeof ctr === "number" && typeof this.top === "number" ? ctr - this.top : Number(BigInt(ctr) - BigInt(this.top));
      if (ahead >= this.size) this.seen.fill(0);
      else for (let i = 1; i < ahead; i++) this.seen[(this.slot(this.top!) + i) % this.size] = 0;
      this.top = ctr;
    }
    this.seen[this.slot(ctr)] = 1;
  }
}

interface SendKey {
  readonly send: true;
  readonly m: Material;
  nextCtr: U64; // MAX_U64 + 1n once exhausted
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

const EXHAUSTED = MAX_U64 + 1n;
const increment = (c: U64): U64 => (typeof c === "number" ? (c < Number.MAX_SAFE_INTEGER ? c + 1 : BigInt(c) + 1n) : c + 1n);
const ascending = (a: U64, b: U64): number => (a < b ? -1 : a > b ? 1 : 0);

/** A KID argument as the internal map key (TypeError/RangeError if it is not a u64). */
function kidArg(kid: unknown): U64 {
  if (typeof kid === "number" && Number.isSafeInteger(kid) && kid >= 0) return kid;
  return norm(toU64(kid, "kid"));
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
  private readonly keys = new Map<U64, SendKey | ReceiveKey>();
  private readonly pending = new Set<U64>();
  private readonly retired = new Map<U64, U64>();

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

  private async material(kid: U64, baseKey: unknown): Promise<Material> {
    const raw = asBytes(baseKey, "baseKey");
    if (raw.length === 0) throw new RangeError("baseKey must not be empty");
    const [key, salt] = await deriveKeySalt(this.suite, kid, raw);
    return importMaterial(this.params, key, salt);
  }

  /** Install the send key of `kid`; its counter resumes where this KID stopped (or at `startCounter`). */
  async addSendKey(kid: number | bigint, baseKey: Uint8Array, startCounter?: number | bigint): Promise<void> {
    const k = kidArg(kid);
    if (this.keys.has(k) || this.pending.has(k)) throw new RangeError(`KID ${k} already has a key`);
    let floor: U64 = this.retired.get(k) ?? 0;
    if (startCounter !== undefined) {
      const start = norm(toU64(startCounter, "startCounter"));
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
    const k = kidArg(kid);
    const old = this.keys.get(k);
    if ((old !== undefined && old.send) || this.pending.has(k)) throw new RangeError(`KID ${k} is a send key`);
    const m = await this.material(k, baseKey);
    const again = this.keys.get(k);
    if (again !== undefined && again.send) throw new RangeError(`KID ${k} is a send key`);
    this.keys.set(k, { send: false, m, window: new ReplayWindow(this.replayWindow) });
  }

  /** Forget `kid`'s key (either direction); a send KID's counter position is remembered. */
  removeKey(kid: number | bigint): void {
    const k = kidArg(kid);
    const entry = this.keys.get(k);
    if (entry === undefined) throw new UnknownKeyError(`no key for KID ${k}`);
    this.keys.delete(k);
    if (entry.send) this.retired.set(k, entry.nextCtr);
  }

  /** True if `kid` has a key of either direction. */
  hasKey(kid: number | bigint): boolean {
    return this.keys.has(kidArg(kid));
  }

  /** The KIDs with send keys, ascending. */
  sendKids(): bigint[] {
    return [...this.keys].filter(([, v]) => v.send).map(([k]) => k).sort(ascending).map((k) => BigInt(k));
  }

  /** The KIDs with receive keys, ascending. */
  receiveKids(): bigint[] {
    return [...this.keys].filter(([, v]) => !v.send).map(([k]) => k).sort(ascending).map((k) => BigInt(k));
  }

  private sendKey(k: U64): SendKey {
    const entry = this.keys.get(k);
    if (entry === undefined || !entry.send) throw new UnknownKeyError(`no send key for KID ${k}`);
    return entry;
  }

  /** The counter the next frame of `kid` will use. */
  nextCounter(kid: number | bigint): bigint {
    const k = kidArg(kid);
    const entry = this.sendKey(k);
    if (entry.nextCtr === EXHAUSTED) throw new CounterExhaustedError(`send counter of KID ${k} is exhausted`);
    return BigInt(entry.nextCtr);
  }

  /** `header || AEAD(key, nonce, header || metadata, frame)`; uses one counter. */
  encrypt(kid: number | bigint, frame: Uint8Array, metadata: Uint8Array = EMPTY): Promise<Uint8Array> {
    try {
      return this.seal(kid, frame, metadata);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  private seal(kid: number | bigint, frame: Uint8Array, metadata: Uint8Array): Promise<Uint8Array> {
    const k = kidArg(kid);
    const entry = this.sendKey(k);
    const pt = asBytes(frame, "frame");
    const meta = asBytes(metadata, "metadata");
    const ctr = entry.nextCtr;
    if (ctr === EXHAUSTED) throw new CounterExhaustedError(`send counter of KID ${k} is exhausted`);
    entry.nextCtr = increment(ctr); // reserved before any await: never reused
    const [hdr, hlen] = buildHeader(k, ctr, meta.length);
    if (meta.length) hdr.set(meta, hlen);
    const aad = hdr; // header || metadata
    const nonce = makeNonce(entry.m.salt, ctr);
    const p = this.params;
    if (p.gcm) {
      return subtle.encrypt({ name: "AES-GCM", iv: nonce, additionalData: aad, tagLength: 128 }, entry.m.aead, pt).then((ct) => {
        const out = new Uint8Array(hlen + ct.byteLength);
        out.set(aad.subarray(0, hlen));
        out.set(new Uint8Array(ct), hlen);
        return out;
      });
    }
    return subtle.encrypt({ name: "AES-CTR", counter: ctrBlock(nonce), length: 32 }, entry.m.aead, pt).then(async (buf) => {
      const ct = new Uint8Array(buf);
      const tag = await macTag(p, entry.m.mac!, nonce, aad, ct);
      const out = new Uint8Array(hlen + ct.length + p.Nt);
      out.set(aad.subarray(0, hlen));
      out.set(ct, hlen);
      out.set(tag, hlen + ct.length);
      return out;
    });
  }

  /** Decrypt one ciphertext (KID from its header). */
  async decrypt(ciphertext: Uint8Array, metadata: Uint8Array = EMPTY): Promise<Uint8Array> {
    return (await this.decryptWithKid(ciphertext, metadata)).plaintext;
  }

  /** Parse, look up, replay-check, authenticate, decrypt, then advance the window. */
  async decryptWithKid(ciphertext: Uint8Array, metadata: Uint8Array = EMPTY): Promise<Decrypted> {
    const data = asBytes(ciphertext, "ciphertext");
    const meta = asBytes(metadata, "metadata");
    const [kid, ctr, hlen] = parseHeader(data);
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
    return { kid: BigInt(kid), ctr: BigInt(ctr), plaintext: pt };
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
