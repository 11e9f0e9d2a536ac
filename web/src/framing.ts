/**
 * Per-codec E2EE framing, bit-compatible with `orange_fast.rtc.framing` and `orange_fast.rtc.h264`.
 *
 * Every rule binds, as SFrame metadata, `[FRAMING_VERSION, codec id]` and every byte that travels
 * in the clear. Opus and the other audio codecs: the whole frame is one ciphertext. VP8: fully
 * encrypted, or (`vp8ClearHeader`) with the 10-byte keyframe / 3-byte interframe payload header
 * clear. H.264: NAL headers clear, ciphertext cut per NAL unit and escaped (see docs/protocol.md).
 */
import { type Context, decodeHeader, concat } from "./sframe.js";

export const FRAMING_VERSION = 1;
export const CODEC_ID = Object.freeze({ opus: 1, vp8: 2, vp8Clear: 3, h264: 4, pcmu: 5, pcma: 6, g722: 7 });
export const VP8_KEYFRAME_HEADER = 10;
export const VP8_INTERFRAME_HEADER = 3;

/** A frame that does not fit its codec's framing rule. */
export class FramingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FramingError";
  }
}
/** A codec without a framing rule (never sent in clear). */
export class UnsupportedCodecError extends FramingError {
  constructor(message: string) {
    super(message);
    this.name = "UnsupportedCodecError";
  }
}

/** Turns a plaintext encoded frame into its protected wire form and back. */
export interface FrameTransform {
  readonly codecId: number;
  readonly name: string;
  protect(context: Context, kid: number | bigint, frame: Uint8Array): Promise<Uint8Array>;
  /** `[kid, plaintext frame]`. */
  unprotect(context: Context, wire: Uint8Array): Promise<[bigint, Uint8Array]>;
}

function metadata(codecId: number, extra?: Uint8Array): Uint8Array {
  const out = new Uint8Array(2 + (extra?.length ?? 0));
  out[0] = FRAMING_VERSION;
  out[1] = codecId;
  if (extra) out.set(extra, 2);
  return out;
}

/** The whole frame is one SFrame ciphertext (Opus, G.711, G.722; VP8 fully encrypted). */
export class OpaqueTransform implements FrameTransform {
  private readonly meta: Uint8Array;
  constructor(readonly codecId: number, readonly name: string) {
    this.meta = metadata(codecId);
  }
  protect(context: Context, kid: number | bigint, frame: Uint8Array): Promise<Uint8Array> {
    return context.encrypt(kid, frame, this.meta);
  }
  async unprotect(context: Context, wire: Uint8Array): Promise<[bigint, Uint8Array]> {
    const d = await context.decryptWithKid(wire, this.meta);
    return [d.kid, d.plaintext];
  }
}

/** Size of the VP8 payload header kept clear: 10 on keyframes (P bit 0), 3 otherwise. */
export function vp8HeaderSize(firstByte: number): number {
  return firstByte & 1 ? VP8_INTERFRAME_HEADER : VP8_KEYFRAME_HEADER;
}

/** VP8 with the payload header clear and bound into the AEAD. */
export class Vp8ClearHeaderTransform implements FrameTransform {
  readonly codecId = CODEC_ID.vp8Clear;
  readonly name = "VP8";
  private split(frame: Uint8Array): [Uint8Array, Uint8Array] {
    if (frame.length === 0) throw new FramingError("empty VP8 frame");
    const n = vp8HeaderSize(frame[0]!);
    if (frame.length <= n) throw new FramingError("VP8 frame shorter than its payload header");
    return [frame.slice(0, n), frame.subarray(n)];
  }
  async protect(context: Context, kid: number | bigint, frame: Uint8Array): Promise<Uint8Array> {
    const [clear, rest] = this.split(frame);
    return concat(clear, await context.encrypt(kid, rest, metadata(this.codecId, clear)));
  }
  async unprotect(context: Context, wire: Uint8Array): Promise<[bigint, Uint8Array]> {
    const [clear, rest] = this.split(wire);
    const d = await context.decryptWithKid(rest, metadata(this.codecId, clear));
    return [d.kid, concat(clear, d.plaintext)];
  }
}

// ----------------------------------------------------------------------------- H.264

const START_CODE = Uint8Array.of(0, 0, 0, 1);

function findStart(buf: Uint8Array, from: number): number {
  for (let i = from; i + 2 < buf.length; i++) {
    if (buf[i] === 0 && buf[i + 1] === 0 && buf[i + 2] === 1) return i;
  }
  return -1;
}

function hasDoubleZero(data: Uint8Array): boolean {
  for (let i = 0; i + 1 < data.length; i++) if (data[i] === 0 && data[i + 1] === 0) return true;
  return false;
}

/** Split an Annex B byte stream into NAL units (without start codes). */
export function splitAnnexB(buf: Uint8Array): Uint8Array[] {
  const first = findStart(buf, 0);
  if (first === -1) throw new FramingError("no start code in the H.264 access unit");
  for (let i = 0; i < first; i++) if (buf[i] !== 0) throw new FramingError("bytes before the first start code");
  const nals: Uint8Array[] = [];
  let pos = first + 3;
  for (;;) {
    const nxt = findStart(buf, pos);
    let end = nxt === -1 ? buf.length : nxt;
    if (nxt !== -1) while (end > pos && buf[end - 1] === 0) end--;
    if (end > pos) nals.push(buf.slice(pos, end));
    if (nxt === -1) break;
    pos = nxt + 3;
  }
  if (nals.length === 0) throw new FramingError("empty H.264 access unit");
  return nals;
}

/** Concatenate NAL units with 4-byte start codes. */
export function joinAnnexB(nals: Uint8Array[]): Uint8Array {
  return concat(...nals.flatMap((n) => [START_CODE, n]));
}

/** Insert `03` after every `00 00` followed by a byte `<= 03`. */
export function escape(data: Uint8Array): Uint8Array {
  if (!hasDoubleZero(data)) return data;
  const out: number[] = [];
  let zeros = 0;
  for (const byte of data) {
    if (zeros >= 2 && byte <= 3) {
      out.push(3);
      zeros = 0;
    }
    out.push(byte);
    zeros = byte === 0 ? zeros + 1 : 0;
  }
  return Uint8Array.from(out);
}

/** Invert {@link escape}; FramingError on input `escape` cannot produce. */
export function unescape(data: Uint8Array): Uint8Array {
  if (!hasDoubleZero(data)) return data;
  const out: number[] = [];
  let zeros = 0;
  for (let i = 0; i < data.length; i++) {
    const byte = data[i]!;
    if (zeros >= 2) {
      if (byte === 3) {
        if (i + 1 >= data.length || data[i + 1]! > 3) throw new FramingError("stray emulation-prevention byte");
        zeros = 0;
        continue;
      }
      if (byte <= 2) throw new FramingError("start-code emulation inside a NAL unit");
    }
    out.push(byte);
    zeros = byte === 0 ? zeros + 1 : 0;
  }
  return Uint8Array.from(out);
}

/** Split a received access unit (every NAL unit after `00 00 00 01`) into its still-escaped NAL units. */
export function parseWire(buf: Uint8Array): Uint8Array[] {
  if (buf.length < 4 || buf[0] !== 0 || buf[1] !== 0 || buf[2] !== 0 || buf[3] !== 1) {
    throw new FramingError("received H.264 frame does not start with a start code");
  }
  const nals: Uint8Array[] = [];
  let pos = 4;
  const n = buf.length;
  while (pos <= n) {
    const nxt = findStart(buf, pos);
    let nal: Uint8Array;
    if (nxt === -1) {
      nal = buf.subarray(pos);
      pos = n + 1;
    } else {
      if (nxt - 1 < pos || buf[nxt - 1] !== 0) throw new FramingError("malformed start code in received H.264 frame");
      nal = buf.subarray(pos, nxt - 1);
      pos = nxt + 3;
    }
    if (nal.length === 0) throw new FramingError("empty NAL unit in received H.264 frame");
    nals.push(nal);
  }
  return nals;
}

/** H.264 with intact NAL headers and escaped ciphertext. */
export class H264Transform implements FrameTransform {
  readonly codecId = CODEC_ID.h264;
  readonly name = "H264";

  private static splitNal(nal: Uint8Array): [number, Uint8Array] {
    const header = nal[0]!;
    if (header & 0x80) throw new FramingError("H.264 NAL unit with the forbidden bit set");
    const t = header & 0x1f;
    if (t < 1 || t > 23) throw new FramingError(`H.264 NAL unit type ${t} cannot be protected`);
    return [header, nal.subarray(1)];
  }

  private bind(headers: number[], lengths: number[]): Uint8Array {
    const extra = new Uint8Array(2 + 5 * headers.length);
    const dv = new DataView(extra.buffer);
    dv.setUint16(0, headers.length);
    headers.forEach((h, i) => {
      dv.setUint8(2 + 5 * i, h);
      dv.setUint32(3 + 5 * i, lengths[i]!);
    });
    return metadata(this.codecId, extra);
  }

  /** Protect an Annex B access unit; return the wire NAL units (without start codes). */
  async protectNals(context: Context, kid: number | bigint, accessUnit: Uint8Array): Promise<Uint8Array[]> {
    const headers: number[] = [];
    const bodies: Uint8Array[] = [];
    for (const nal of splitAnnexB(accessUnit)) {
      const [header, body] = H264Transform.splitNal(nal);
      if (body.length > 0) {
        headers.push(header);
        bodies.push(body);
      }
    }
    if (bodies.length === 0) throw new FramingError("H.264 access unit without payload");
    if (bodies.length > 0xffff) throw new FramingError("too many NAL units in one access unit");
    const lengths = bodies.map((b) => b.length);
    const ct = await context.encrypt(kid, concat(...bodies), this.bind(headers, lengths));
    const total = lengths.reduce((a, b) => a + b, 0);
    const tag = context.params.Nt;
    const hdrLen = ct.length - total - tag;
    const out: Uint8Array[] = [];
    let pos = 0;
    lengths.forEach((n, i) => {
      const size = n + (i === 0 ? hdrLen : 0) + (i === lengths.length - 1 ? tag : 0);
      out.push(concat(Uint8Array.of(headers[i]!), escape(ct.subarray(pos, pos + size))));
      pos += size;
    });
    return out;
  }

  async protect(context: Context, kid: number | bigint, frame: Uint8Array): Promise<Uint8Array> {
    return joinAnnexB(await this.protectNals(context, kid, frame));
  }

  async unprotect(context: Context, wire: Uint8Array): Promise<[bigint, Uint8Array]> {
    const headers: number[] = [];
    const chunks: Uint8Array[] = [];
    for (const nal of parseWire(wire)) {
      const [header, escaped] = H264Transform.splitNal(nal);
      headers.push(header);
      chunks.push(unescape(escaped));
    }
    const ct = concat(...chunks);
    const [, , hdrLen] = decodeHeader(ct);
    const lengths = chunks.map((c) => c.length);
    lengths[0]! -= hdrLen;
    lengths[lengths.length - 1]! -= context.params.Nt;
    const min = Math.min(...lengths);
    const sum = lengths.reduce((a, b) => a + b, 0);
    if (min < 0 || (lengths.length > 1 && min === 0) || sum <= 0) {
      throw new FramingError("received H.264 chunks do not fit the SFrame header and tag");
    }
    const d = await context.decryptWithKid(ct, this.bind(headers, lengths));
    const nals: Uint8Array[] = [];
    let pos = 0;
    headers.forEach((h, i) => {
      nals.push(concat(Uint8Array.of(h), d.plaintext.subarray(pos, pos + lengths[i]!)));
      pos += lengths[i]!;
    });
    return [d.kid, joinAnnexB(nals)];
  }
}

/** The framing rule of a codec (`"video/VP8"`, `"video/H264"`, `"audio/opus"`, ...). */
export function transformFor(mimeType: string, options: { vp8ClearHeader?: boolean } = {}): FrameTransform {
  switch (mimeType.toLowerCase()) {
    case "video/vp8":
      return options.vp8ClearHeader ? new Vp8ClearHeaderTransform() : new OpaqueTransform(CODEC_ID.vp8, "VP8");
    case "video/h264":
      return new H264Transform();
    case "audio/opus":
      return new OpaqueTransform(CODEC_ID.opus, "opus");
    case "audio/pcmu":
      return new OpaqueTransform(CODEC_ID.pcmu, "PCMU");
    case "audio/pcma":
      return new OpaqueTransform(CODEC_ID.pcma, "PCMA");
    case "audio/g722":
      return new OpaqueTransform(CODEC_ID.g722, "G722");
    default:
      throw new UnsupportedCodecError(`no E2EE framing for codec ${JSON.stringify(mimeType)}`);
  }
}
