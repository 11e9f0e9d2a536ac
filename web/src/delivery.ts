/**
 * The delivery-service wire protocol (version 1) and its client, mirroring
 * `orange_fast.delivery.protocol` and `orange_fast.delivery.client`.
 *
 * One protocol frame per binary WebSocket message; integers unsigned big-endian; strict
 * parsing (known type, every field in range, nothing after the last field); canonical
 * encoding (`encode(decode(b))` equals `b`). Sequence numbers, nonces and times are bigint.
 */

export const PROTOCOL_VERSION = 1;
export const MAX_ID_LENGTH = 64;
export const MAX_KIND_LENGTH = 64;
export const MAX_TOKEN_LENGTH = 255;
export const MAX_DETAIL_LENGTH = 1024;
export const MAX_SEQ = (1n << 63n) - 1n;
const U64 = (1n << 64n) - 1n;

export const FrameType = Object.freeze({
  HELLO: 0x01, APPEND: 0x02, BYE: 0x03, PING: 0x10, PONG: 0x11, READY: 0x81, ENTRY: 0x82, APPEND_OK: 0x83, ERROR: 0x84,
});
export const EntryType = Object.freeze({ MESSAGE: 0, JOINED: 1, LEFT: 2, EVICTED: 3 });
export const FLAG_CREATOR = 0x01;
/** ERROR codes (u16), as in `orange_fast.delivery.errors.ErrorCode`. */
export const ErrorCode = Object.freeze({
  MALFORMED_FRAME: 1, UNSUPPORTED_VERSION: 2, NOT_AUTHENTICATED: 3, AUTH_FAILED: 4, ROOM_NOT_ALLOWED: 5,
  MESSAGE_TOO_LARGE: 6, RATE_LIMITED: 7, SEQUENCE_CONFLICT: 8, BAD_RESUME: 9, SUPERSEDED: 10, EVICTED: 11,
  ABUSE: 12, INTERNAL_ERROR: 13, SHUTTING_DOWN: 14, UNEXPECTED_FRAME: 15, SERVER_BUSY: 16,
});
const ERROR_CODES = new Set<number>(Object.values(ErrorCode));
const ERROR_NAMES = new Map<number, string>(Object.entries(ErrorCode).map(([k, v]) => [v, k]));
/** Refusals after which reconnecting cannot help. */
const FINAL = new Set<number>([
  ErrorCode.AUTH_FAILED, ErrorCode.ROOM_NOT_ALLOWED, ErrorCode.BAD_RESUME, ErrorCode.UNSUPPORTED_VERSION,
  ErrorCode.SUPERSEDED, ErrorCode.ABUSE, ErrorCode.MALFORMED_FRAME, ErrorCode.NOT_AUTHENTICATED,
  ErrorCode.UNEXPECTED_FRAME, ErrorCode.MESSAGE_TOO_LARGE,
]);
/** Refusals of a full or overloaded server: final on the first connection, retried later. */
const BUSY = new Set<number>([ErrorCode.SERVER_BUSY, ErrorCode.RATE_LIMITED]);

/** A room token, or a function giving a fresh (signed, short-lived) access token before every HELLO. */
export type TokenSource = Uint8Array | (() => Uint8Array | Promise<Uint8Array>);

/** A frame does not parse, or a field is out of range. */
export class MalformedFrameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MalformedFrameError";
  }
}
/** The server broke the protocol (malformed frame, gap in the log, unexpected frame): fatal. */
export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProtocolError";
  }
}
/** The server answered with an ERROR frame. */
export class ServerError extends Error {
  constructor(readonly code: number, readonly detail: string, readonly fatal: boolean, readonly seq: bigint) {
    super(`${ERROR_NAMES.get(code) ?? code}: ${detail}`);
    this.name = "ServerError";
  }
  get codeName(): string {
    return ERROR_NAMES.get(this.code) ?? String(this.code);
  }
}
/** The connection dropped: an append in flight has an unknown outcome. */
export class ConnectionLostError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConnectionLostError";
  }
}
/** An append got no answer in time: the connection is presumably stuck (outcome unknown). */
export class AppendTimeoutError extends ConnectionLostError {
  constructor(message = "append timed out") {
    super(message);
    this.name = "AppendTimeoutError";
  }
}
/** The client was closed. */
export class ClientClosedError extends Error {
  constructor(message = "client closed") {
    super(message);
    this.name = "ClientClosedError";
  }
}

export interface Hello { type: "hello"; version: number; room: string; token: Uint8Array; clientId: string; resumeFrom: bigint; joinPayload: Uint8Array }
export interface Append { type: "append"; requestId: number; expectedSeq: bigint; kind: string; payload: Uint8Array }
export interface Bye { type: "bye" }
export interface Ping { type: "ping"; nonce: bigint }
export interface Pong { type: "pong"; nonce: bigint }
export interface Ready {
  type: "ready"; version: number; headSeq: bigint; joinSeq: bigint; serverTimeMs: bigint;
  heartbeatIntervalMs: number; evictionTimeoutMs: number; maxMessageSize: number;
}
export interface LogEntry {
  type: "entry"; seq: bigint; timestampMs: bigint; entryType: number; flags: number; sender: string; kind: string; payload: Uint8Array;
}
export interface AppendOk { type: "append_ok"; requestId: number; seq: bigint }
export interface ErrorFrame { type: "error"; code: number; requestId: number; fatal: boolean; seq: bigint; detail: string }
export type ClientFrame = Hello | Append | Bye | Ping | Pong;
export type ServerFrame = Ready | LogEntry | AppendOk | ErrorFrame | Ping | Pong;
export type Frame = ClientFrame | ServerFrame;

const ID_RE = /^[A-Za-z0-9._~:@+-]{1,64}$/;
const KIND_RE = /^[\x21-\x7e]{1,64}$/;
const DETAIL_RE = /^[\x20-\x7e]*$/;

function check(ok: boolean, what: string): void {
  if (!ok) throw new MalformedFrameError(`invalid ${what}`);
}
function checkUint(v: number, bits: 8 | 16 | 32, what: string): void {
  check(Number.isInteger(v) && v >= 0 && v < 2 ** bits, what);
}
function checkSeq(v: bigint, what: string, min = 0n): void {
  check(typeof v === "bigint" && v >= min && v <= MAX_SEQ, what);
}
function checkBytes(v: Uint8Array, max: number, what: string): void {
  check(v instanceof Uint8Array && v.length <= max, what);
}

/** Validate a frame's fields exactly as the Python dataclasses do; MalformedFrameError otherwise. */
export function validate(f: Frame): void {
  switch (f.type) {
    case "hello":
      check(ID_RE.test(f.room), "room id");
      check(ID_RE.test(f.clientId), "client id");
      checkBytes(f.token, MAX_TOKEN_LENGTH, "token");
      check(f.token.length > 0, "token: empty");
      checkSeq(f.resumeFrom, "resume_from");
      checkBytes(f.joinPayload, 0xffffffff, "join payload");
      checkUint(f.version, 8, "version");
      return;
    case "append":
      checkUint(f.requestId, 32, "request id");
      check(KIND_RE.test(f.kind), "kind");
      checkBytes(f.payload, 0xffffffff, "payload");
      checkSeq(f.expectedSeq, "expected_seq");
      return;
    case "bye":
      return;
    case "ping":
    case "pong":
      check(typeof f.nonce === "bigint" && f.nonce >= 0n && f.nonce <= U64, "nonce");
      return;
    case "ready":
      checkSeq(f.headSeq, "head_seq");
      checkSeq(f.joinSeq, "join_seq");
      check(typeof f.serverTimeMs === "bigint" && f.serverTimeMs >= 0n && f.serverTimeMs <= U64, "server time");
      checkUint(f.heartbeatIntervalMs, 32, "heartbeat interval");
      checkUint(f.evictionTimeoutMs, 32, "eviction timeout");
      checkUint(f.maxMessageSize, 32, "max message size");
      checkUint(f.version, 8, "version");
      check(f.joinSeq <= f.headSeq, "join_seq beyond head_seq");
      return;
    case "entry":
      checkSeq(f.seq, "seq", 1n);
      checkSeq(f.timestampMs, "timestamp");
      check(ID_RE.test(f.sender), "sender");
      check(f.entryType >= 0 && f.entryType <= 3 && Number.isInteger(f.entryType), "entry type");
      if (f.entryType === EntryType.MESSAGE) check(KIND_RE.test(f.kind), "kind");
      else check(f.kind === "", "kind: notices carry no kind");
      if (f.entryType === EntryType.LEFT || f.entryType === EntryType.EVICTED) check(f.payload.length === 0, "payload: leave notices carry none");
      checkUint(f.flags, 8, "flags");
      check((f.flags & ~FLAG_CREATOR) === 0, "flags: unknown");
      check(!(f.flags & FLAG_CREATOR) || f.entryType === EntryType.JOINED, "flags: creator only on JOINED");
      return;
    case "append_ok":
      checkUint(f.requestId, 32, "request id");
      checkSeq(f.seq, "seq", 1n);
      return;
    case "error":
      check(ERROR_CODES.has(f.code), "error code");
      check(f.detail.length <= MAX_DETAIL_LENGTH && DETAIL_RE.test(f.detail), "detail");
      checkUint(f.requestId, 32, "request id");
      checkSeq(f.seq, "seq");
      return;
  }
}

class Writer {
  private parts: number[] = [];
  private blobs: [number, Uint8Array][] = [];
  private len = 0;
  u8(v: number): void {
    this.parts.push(v & 0xff);
    this.len++;
  }
  u16(v: number): void {
    this.u8(v >>> 8);
    this.u8(v);
  }
  u32(v: number): void {
    this.u16(Math.floor(v / 65536));
    this.u16(v & 0xffff);
  }
  u64(v: bigint): void {
    this.u32(Number(v >> 32n));
    this.u32(Number(v & 0xffffffffn));
  }
  bytes(b: Uint8Array): void {
    this.blobs.push([this.len, b]);
    this.len += b.length;
  }
  ascii(s: string): void {
    this.bytes(Uint8Array.from(s, (c) => c.charCodeAt(0)));
  }
  finish(): Uint8Array {
    const out = new Uint8Array(this.len);
    let pos = 0;
    let bi = 0;
    for (const v of this.parts) {
      while (bi < this.blobs.length && this.blobs[bi]![0] === pos) {
        out.set(this.blobs[bi]![1], pos);
        pos += this.blobs[bi]![1].length;
        bi++;
      }
      out[pos++] = v;
    }
    for (; bi < this.blobs.length; bi++) out.set(this.blobs[bi]![1], this.blobs[bi]![0]);
    return out;
  }
}

/** Serialise a frame (validated first). */
export function encode(f: Frame): Uint8Array {
  validate(f);
  const w = new Writer();
  switch (f.type) {
    case "hello":
      w.u8(FrameType.HELLO); w.u8(f.version);
      w.u8(f.room.length); w.ascii(f.room);
      w.u8(f.token.length); w.bytes(f.token);
      w.u8(f.clientId.length); w.ascii(f.clientId);
      w.u64(f.resumeFrom);
      w.u32(f.joinPayload.length); w.bytes(f.joinPayload);
      break;
    case "append":
      w.u8(FrameType.APPEND); w.u32(f.requestId); w.u64(f.expectedSeq);
      w.u8(f.kind.length); w.ascii(f.kind);
      w.u32(f.payload.length); w.bytes(f.payload);
      break;
    case "bye":
      w.u8(FrameType.BYE);
      break;
    case "ping":
    case "pong":
      w.u8(f.type === "ping" ? FrameType.PING : FrameType.PONG); w.u64(f.nonce);
      break;
    case "ready":
      w.u8(FrameType.READY); w.u8(f.version); w.u64(f.headSeq); w.u64(f.joinSeq); w.u64(f.serverTimeMs);
      w.u32(f.heartbeatIntervalMs); w.u32(f.evictionTimeoutMs); w.u32(f.maxMessageSize);
      break;
    case "entry":
      w.u8(FrameType.ENTRY); w.u64(f.seq); w.u64(f.timestampMs); w.u8(f.entryType); w.u8(f.flags);
      w.u8(f.sender.length); w.ascii(f.sender);
      w.u8(f.kind.length); w.ascii(f.kind);
      w.u32(f.payload.length); w.bytes(f.payload);
      break;
    case "append_ok":
      w.u8(FrameType.APPEND_OK); w.u32(f.requestId); w.u64(f.seq);
      break;
    case "error":
      w.u8(FrameType.ERROR); w.u16(f.code); w.u32(f.requestId); w.u8(f.fatal ? 1 : 0); w.u64(f.seq);
      w.u16(f.detail.length); w.ascii(f.detail);
      break;
  }
  return w.finish();
}

class Reader {
  private pos = 0;
  private readonly dv: DataView;
  constructor(private readonly buf: Uint8Array) {
    this.dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  private need(n: number): number {
    const at = this.pos;
    if (at + n > this.buf.length) throw new MalformedFrameError("truncated frame");
    this.pos += n;
    return at;
  }
  take(n: number): Uint8Array {
    const at = this.need(n);
    return this.buf.slice(at, at + n);
  }
  u8(): number { return this.dv.getUint8(this.need(1)); }
  u16(): number { return this.dv.getUint16(this.need(2)); }
  u32(): number { return this.dv.getUint32(this.need(4)); }
  u64(): bigint { return this.dv.getBigUint64(this.need(8)); }
  ascii(n: number): string {
    const raw = this.take(n);
    for (const b of raw) if (b > 0x7f) throw new MalformedFrameError("non-ASCII text");
    return String.fromCharCode(...raw);
  }
  ident(): string {
    const n = this.u8();
    if (n < 1 || n > MAX_ID_LENGTH) throw new MalformedFrameError("bad id length");
    return this.ascii(n);
  }
  kind(): string {
    const n = this.u8();
    if (n > MAX_KIND_LENGTH) throw new MalformedFrameError("bad kind length");
    return this.ascii(n);
  }
  blob(): Uint8Array { return this.take(this.u32()); }
  end(): void {
    if (this.pos !== this.buf.length) throw new MalformedFrameError("trailing bytes after frame");
  }
}

function parse(r: Reader, t: number): Frame {
  let f: Frame;
  switch (t) {
    case FrameType.HELLO: {
      const version = r.u8(), room = r.ident(), token = r.take(r.u8()), clientId = r.ident();
      f = { type: "hello", version, room, token, clientId, resumeFrom: r.u64(), joinPayload: r.blob() };
      break;
    }
    case FrameType.APPEND: {
      const requestId = r.u32(), expectedSeq = r.u64(), kind = r.kind();
      f = { type: "append", requestId, expectedSeq, kind, payload: r.blob() };
      break;
    }
    case FrameType.BYE:
      f = { type: "bye" };
      break;
    case FrameType.PING:
      f = { type: "ping", nonce: r.u64() };
      break;
    case FrameType.PONG:
      f = { type: "pong", nonce: r.u64() };
      break;
    case FrameType.READY: {
      const version = r.u8(), headSeq = r.u64(), joinSeq = r.u64(), serverTimeMs = r.u64();
      const heartbeatIntervalMs = r.u32(), evictionTimeoutMs = r.u32(), maxMessageSize = r.u32();
      f = { type: "ready", version, headSeq, joinSeq, serverTimeMs, heartbeatIntervalMs, evictionTimeoutMs, maxMessageSize };
      break;
    }
    case FrameType.ENTRY: {
      const seq = r.u64(), timestampMs = r.u64(), entryType = r.u8(), flags = r.u8(), sender = r.ident(), kind = r.kind();
      f = { type: "entry", seq, timestampMs, entryType, flags, sender, kind, payload: r.blob() };
      break;
    }
    case FrameType.APPEND_OK:
      f = { type: "append_ok", requestId: r.u32(), seq: r.u64() };
      break;
    case FrameType.ERROR: {
      const code = r.u16(), requestId = r.u32(), fatal = r.u8(), seq = r.u64(), detail = r.ascii(r.u16());
      r.end();
      if (fatal > 1) throw new MalformedFrameError("bad fatal flag");
      if (!ERROR_CODES.has(code)) throw new MalformedFrameError("unknown error code");
      f = { type: "error", code, requestId, fatal: fatal === 1, seq, detail };
      break;
    }
    default:
      throw new MalformedFrameError("unknown frame type");
  }
  r.end();
  validate(f);
  return f;
}

/** Parse one frame strictly; MalformedFrameError on anything invalid. */
export function decode(data: Uint8Array): Frame {
  if (!(data instanceof Uint8Array)) throw new MalformedFrameError("frames are binary messages");
  if (data.length === 0) throw new MalformedFrameError("empty frame");
  const r = new Reader(data);
  return parse(r, r.u8());
}

/** Parse a frame a server may send (READY, ENTRY, APPEND_OK, ERROR, PING, PONG). */
export function decodeServerFrame(data: Uint8Array): ServerFrame {
  const f = decode(data);
  if (f.type === "hello" || f.type === "append" || f.type === "bye") throw new MalformedFrameError("frame type not allowed from a server");
  return f;
}

/** Parse a frame a client may send (HELLO, APPEND, BYE, PING, PONG). */
export function decodeClientFrame(data: Uint8Array): ClientFrame {
  const f = decode(data);
  if (f.type !== "hello" && f.type !== "append" && f.type !== "bye" && f.type !== "ping" && f.type !== "pong") {
    throw new MalformedFrameError("frame type not allowed from a client");
  }
  return f;
}

// ----------------------------------------------------------------------------- client

/** The subset of the WHATWG WebSocket the client uses (browsers' WebSocket; `ws` in Node). */
export interface WebSocketLike {
  binaryType: string;
  readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: unknown) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
}
export type WebSocketConstructor = new (url: string) => WebSocketLike;

export interface DeliveryClientOptions {
  resumeFrom?: bigint;
  joinPayload?: Uint8Array;
  reconnect?: boolean;
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  connectTimeoutMs?: number;
  /** WebSocket constructor; default `globalThis.WebSocket`. */
  WebSocket?: WebSocketConstructor;
  /** Called for each entry, in order, exactly once across reconnects. */
  onEntry?: (entry: LogEntry) => void;
  /** Called once when the client ends (null after close()). */
  onEnd?: (failure: Error | null) => void;
}

interface Pending { resolve: (seq: bigint) => void; reject: (e: Error) => void }

/**
 * One client id in one room: entries in order, each once, across reconnects (it resumes after
 * the last seq it received; a gap is a fatal ProtocolError); appends with an optional expected
 * seq; answers the server's PING; reconnects with exponential back-off and jitter.
 */
export class DeliveryClient {
  private lastSeqValue: bigint;
  private ws: WebSocketLike | null = null;
  private readonly pending = new Map<number, Pending>();
  /**
   * Request ids are the server's idempotency keys per (room, client): a client restarted with
   * the same id must not reuse its earlier incarnation's ids (its append would be answered with
   * the old entry's seq), so they start at a random u32, as the Python client's.
   */
  private nextRequest = 1 + (globalThis.crypto.getRandomValues(new Uint32Array(1))[0]! % 0xfffffffe);
  private closing = false;
  private finished = false;
  private failureValue: Error | null = null;
  private backoff: number;
  private connectedWaiters: (() => void)[] = [];
  private watchdog: ReturnType<typeof setTimeout> | null = null;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly WS: WebSocketConstructor;
  /** The last READY received. */
  ready: Ready | null = null;
  /** Sequence number of this client's latest JOINED notice (0 until one is seen). */
  joinSeq = 0n;
  /** How many connections reached READY. */
  connections = 0;

  constructor(
    readonly url: string,
    readonly room: string,
    private readonly token: TokenSource,
    readonly clientId: string,
    private readonly options: DeliveryClientOptions = {},
  ) {
    this.lastSeqValue = options.resumeFrom ?? 0n;
    const probe = typeof token === "function" ? Uint8Array.of(1) : token;
    validate({ type: "hello", version: PROTOCOL_VERSION, room, token: probe, clientId, resumeFrom: this.lastSeqValue, joinPayload: options.joinPayload ?? new Uint8Array(0) });
    this.backoff = options.backoffInitialMs ?? 50;
    const ctor = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (ctor === undefined) throw new TypeError("no WebSocket constructor: pass options.WebSocket");
    this.WS = ctor;
  }

  toString(): string {
    return `DeliveryClient(room=${this.room}, clientId=${this.clientId}, lastSeq=${this.lastSeqValue})`;
  }
  /** Sequence number of the last entry received (the resume point). */
  get lastSeq(): bigint { return this.lastSeqValue; }
  get connected(): boolean { return this.ws !== null && this.ready !== null; }
  /** The error that ended the client, if any. */
  get failure(): Error | null { return this.failureValue; }

  /** Make the first connection (rejecting with its error if it fails), then keep it alive. */
  connect(): Promise<Ready> {
    return new Promise<Ready>((resolve, reject) => this.open({ resolve, reject }));
  }

  /** Stop; with `leave` (default) send BYE first so a LEFT notice is appended. */
  async close(leave = true, timeoutMs = 5000): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    const ws = this.ws;
    if (ws !== null) {
      const closed = new Promise<void>((res) => {
        const t = setTimeout(res, timeoutMs);
        ws.onclose = () => { clearTimeout(t); res(); };
      });
      try {
        if (leave) ws.send(encode({ type: "bye" }));
        else ws.close(1000);
      } catch { /* already closing */ }
      await closed;
      try { ws.close(1000); } catch { /* ignore */ }
    }
    this.finish(null);
  }

  /** Drop the connection abruptly (as a network failure would); the client reconnects and resumes. */
  abortConnection(): void {
    const ws = this.ws;
    if (ws === null) return;
    this.ws = null; // appends from now on wait for the next connection
    const raw = ws as unknown as { terminate?: () => void };
    if (typeof raw.terminate === "function") raw.terminate();
    else ws.close(4000, "abort");
  }

  /** Wait until a connection is READY. */
  waitConnected(timeoutMs = 10000): Promise<void> {
    if (this.failureValue) return Promise.reject(this.failureValue);
    if (this.finished) return Promise.reject(new ClientClosedError());
    if (this.connected) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new ConnectionLostError("not connected in time")), timeoutMs);
      this.connectedWaiters.push(() => {
        clearTimeout(t);
        if (this.connected) resolve();
        else reject(this.failureValue ?? new ClientClosedError());
      });
    });
  }

  /** Append `payload` under `kind`; resolves with its seq. `expectedSeq` makes it compare-and-append. */
  async append(kind: string, payload: Uint8Array, expectedSeq?: bigint, timeoutMs = 10000): Promise<bigint> {
    if (expectedSeq !== undefined) checkSeq(expectedSeq, "expected_seq", 1n);
    const requestId = this.requestId();
    const frame = encode({ type: "append", requestId, expectedSeq: expectedSeq ?? 0n, kind, payload });
    await this.waitConnected(timeoutMs);
    const ws = this.ws;
    if (ws === null) throw new ConnectionLostError("connection lost before the append was sent");
    return new Promise<bigint>((resolve, reject) => {
      const t = setTimeout(() => {
        this.pending.delete(requestId);
        reject(new AppendTimeoutError());
      }, timeoutMs);
      this.pending.set(requestId, {
        resolve: (s) => { clearTimeout(t); this.pending.delete(requestId); resolve(s); },
        reject: (e) => { clearTimeout(t); this.pending.delete(requestId); reject(e); },
      });
      ws.send(frame);
    });
  }

  private requestId(): number {
    for (;;) {
      const rid = this.nextRequest;
      this.nextRequest = (this.nextRequest % 0xffffffff) + 1;
      if (!this.pending.has(rid)) return rid;
    }
  }

  private finish(failure: Error | null): void {
    if (this.finished) return;
    this.finished = true;
    if (failure !== null && this.failureValue === null) this.failureValue = failure;
    this.failPending(failure ?? new ClientClosedError());
    if (this.watchdog) clearTimeout(this.watchdog);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    for (const w of this.connectedWaiters.splice(0)) w();
    this.options.onEnd?.(failure);
  }

  private failPending(e: Error): void {
    for (const p of [...this.pending.values()]) p.reject(e);
    this.pending.clear();
  }

  private open(first: { resolve: (r: Ready) => void; reject: (e: Error) => void } | null): void {
    if (this.closing || this.finished) return;
    let ws: WebSocketLike;
    try {
      ws = new this.WS(this.url);
    } catch (e) {
      const err = new TypeError(`invalid URL: ${(e as Error).message}`);
      first?.reject(err);
      this.finish(err);
      return;
    }
    ws.binaryType = "arraybuffer";
    let gotReady = false;
    let ended = false;
    const connectTimer = setTimeout(() => fail(new ConnectionLostError("no READY in time"), false), this.options.connectTimeoutMs ?? 5000);
    const silence = () => {
      if (this.watchdog) clearTimeout(this.watchdog);
      const r = this.ready;
      if (r === null) return;
      const limit = Math.max(r.evictionTimeoutMs, r.heartbeatIntervalMs * 2, 1);
      this.watchdog = setTimeout(() => fail(new ConnectionLostError("server silent"), false), limit);
    };
    const fail = (error: Error, final: boolean) => {
      if (ended) return;
      ended = true;
      clearTimeout(connectTimer);
      if (this.watchdog) clearTimeout(this.watchdog);
      if (this.ws === ws) this.ws = null;
      ws.onmessage = null;
      try { ws.close(1000); } catch { /* ignore */ }
      this.failPending(error instanceof ServerError ? error : new ConnectionLostError("connection lost"));
      if (!gotReady && first !== null) {
        first.reject(error);
        this.finish(final ? error : null);
        return;
      }
      if (final) return this.finish(error);
      if (this.closing) return this.finish(null);
      if (this.options.reconnect === false) return this.finish(new ConnectionLostError("connection lost and reconnect is off"));
      const delay = this.backoff * (0.5 + Math.random() / 2);
      this.backoff = Math.min(this.backoff * 2, this.options.backoffMaxMs ?? 2000);
      this.retryTimer = setTimeout(() => this.open(null), delay);
    };
    ws.onopen = async () => {
      try {
        const token = typeof this.token === "function" ? await this.token() : this.token;
        if (ended) return;
        ws.send(encode({
          type: "hello", version: PROTOCOL_VERSION, room: this.room, token, clientId: this.clientId,
          resumeFrom: this.lastSeqValue, joinPayload: this.options.joinPayload ?? new Uint8Array(0),
        }));
      } catch (e) {
        fail(e instanceof Error ? e : new Error("token source failed"), first !== null);
      }
    };
    ws.onerror = () => fail(new ConnectionLostError("cannot connect"), false);
    ws.onclose = () => fail(new ConnectionLostError("connection closed"), false);
    ws.onmessage = (ev) => {
      try {
        if (!(ev.data instanceof ArrayBuffer)) throw new ProtocolError("text message from server");
        let frame: ServerFrame;
        try {
          frame = decodeServerFrame(new Uint8Array(ev.data));
        } catch (e) {
          throw new ProtocolError(`malformed frame from server: ${(e as Error).message}`);
        }
        if (!gotReady) {
          if (frame.type === "error") throw new ServerError(frame.code, frame.detail, frame.fatal, frame.seq);
          if (frame.type !== "ready") throw new ProtocolError("expected READY");
          if (this.closing || this.finished) {
            ended = true; // close() ran while this connection was being made
            ws.close(1000);
            return;
          }
          if (frame.headSeq < this.lastSeqValue) throw new ProtocolError("server log is behind this client's resume point");
          gotReady = true;
          clearTimeout(connectTimer);
          this.ready = frame;
          this.ws = ws;
          this.connections += 1;
          this.backoff = this.options.backoffInitialMs ?? 50;
          silence();
          for (const w of this.connectedWaiters.splice(0)) w();
          first?.resolve(frame);
          return;
        }
        silence();
        switch (frame.type) {
          case "entry":
            this.deliver(frame);
            break;
          case "append_ok":
            this.pending.get(frame.requestId)?.resolve(frame.seq);
            break;
          case "error": {
            const err = new ServerError(frame.code, frame.detail, frame.fatal, frame.seq);
            if (frame.requestId) this.pending.get(frame.requestId)?.reject(err);
            if (frame.fatal) throw err;
            break;
          }
          case "ping":
            ws.send(encode({ type: "pong", nonce: frame.nonce }));
            break;
          case "pong":
            break;
          default:
            throw new ProtocolError("unexpected READY");
        }
      } catch (e) {
        const err = e as Error;
        const final =
          err instanceof ProtocolError ||
          (err instanceof ServerError && (FINAL.has(err.code) || (BUSY.has(err.code) && !gotReady && first !== null)));
        fail(err, final);
      }
    };
  }

  private deliver(entry: LogEntry): void {
    if (entry.seq <= this.lastSeqValue) return;
    if (entry.seq !== this.lastSeqValue + 1n) throw new ProtocolError(`gap in the log: got seq ${entry.seq} after ${this.lastSeqValue}`);
    this.lastSeqValue = entry.seq;
    if (entry.entryType === EntryType.JOINED && entry.sender === this.clientId) this.joinSeq = entry.seq;
    try {
      this.options.onEntry?.(entry);
    } catch (e) {
      console.error(`onEntry failed at seq ${entry.seq}: ${(e as Error).name}`);
    }
  }
}
