/**
 * Safety number, digit for digit the same as `orange_fast.session.safety`:
 *
 *   input  = "orange_fast safety number v1" || u32(len(auth)) || auth || u32(n)
 *            || for each (identity, signature_key) sorted bytewise: u32(len) || identity || u32(len) || key
 *   digest = SHA-256(input); shown = the first 12 big-endian 16-bit groups, each as 5 zero-padded digits;
 *   short = the first 5 of those groups (80 bits, to read aloud).
 */
import { concat, constantTimeEqual } from "./sframe.js";

const LABEL = new TextEncoder().encode("orange_fast safety number v1");
export const GROUPS = 12;
export const DIGITS_PER_GROUP = 5;
/** Groups of the short number (80 bits, the first 5 groups of the full text), for reading aloud. */
export const SHORT_GROUPS = 5;
const MAX_FIELD = 1 << 16;

/** A safety number: the 32-byte digest and its renderings. */
export class SafetyNumber {
  constructor(readonly digest: Uint8Array) {}
  /** 64 hex digits. */
  get hex(): string {
    return Array.from(this.digest, (b) => b.toString(16).padStart(2, "0")).join("");
  }
  /** 12 groups of 5 digits separated by spaces. */
  get text(): string {
    return renderDigits(this.digest);
  }
  /** 5 groups of 5 digits (80 bits) to read aloud: the first 5 groups of {@link text}. */
  get short(): string {
    return renderDigits(this.digest, SHORT_GROUPS);
  }
  /** Constant-time comparison of the digests. */
  matches(other: SafetyNumber): boolean {
    return constantTimeEqual(this.digest, other.digest);
  }
  toString(): string {
    return this.text;
  }
}

/** Bytewise lexicographic order (Python's bytes order). */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

function field(value: Uint8Array, what: string): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new TypeError(`${what} must be a Uint8Array`);
  if (value.length >= MAX_FIELD) throw new RangeError(`${what} is too long (${value.length} bytes)`);
  return value;
}

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}

/** The safety number of a group epoch: `members` are `[identity, signatureKey]` in any order. */
export async function safetyNumber(
  epochAuthenticator: Uint8Array,
  members: Iterable<readonly [Uint8Array, Uint8Array]>,
): Promise<SafetyNumber> {
  const auth = field(epochAuthenticator, "epochAuthenticator");
  if (auth.length < 16) throw new RangeError("epochAuthenticator must be at least 16 bytes");
  const roster: [Uint8Array, Uint8Array][] = [];
  for (const m of members) {
    if (!Array.isArray(m) || m.length !== 2) throw new TypeError("each member must be an [identity, signatureKey] pair");
    roster.push([field(m[0], "identity"), field(m[1], "signatureKey")]);
  }
  if (roster.length === 0) throw new RangeError("a group has at least one member");
  roster.sort((a, b) => compareBytes(a[0], b[0]) || compareBytes(a[1], b[1]));
  const parts: Uint8Array[] = [LABEL, u32(auth.length), auth, u32(roster.length)];
  for (const [ident, key] of roster) parts.push(u32(ident.length), ident, u32(key.length), key);
  const input = concat(...parts);
  return new SafetyNumber(new Uint8Array(await globalThis.crypto.subtle.digest("SHA-256", input)));
}

/** The first `groups` 16-bit big-endian chunks of `digest` as 5-digit groups. */
export function renderDigits(digest: Uint8Array, groups: number = GROUPS): string {
  if (!Number.isInteger(groups) || groups < 1) throw new RangeError("groups must be a positive integer");
  if (digest.length * 8 < groups * 16) throw new RangeError(`digest too short for ${groups} groups`);
  const out: string[] = [];
  for (let i = 0; i < groups; i++) out.push(String((digest[2 * i]! << 8) | digest[2 * i + 1]!).padStart(DIGITS_PER_GROUP, "0"));
  return out.join(" ");
}
