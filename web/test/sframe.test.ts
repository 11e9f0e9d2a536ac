import { test } from "node:test";
import assert from "node:assert/strict";
import {
  AuthenticationError,
  Context,
  CounterExhaustedError,
  MalformedHeaderError,
  MAX_U64,
  ReplayError,
  SUITES,
  UnknownKeyError,
  decodeHeader,
  deriveKeySalt,
  encodeHeader,
} from "../src/sframe.js";
import { hex, randomBytes, readVectors, rng, toHex } from "./helpers.js";

const rfc = readVectors("sframe/rfc9605.json");
const draft = readVectors("sframe/draft-aes256-ctr-hmac.json");
const noVectors = rfc === null ? "shared vectors not found (set ORANGE_FAST_VECTORS)" : false;

test("RFC 9605 header vectors encode and decode", { skip: noVectors }, () => {
  for (const v of rfc.header) {
    const kid = BigInt(v.kid), ctr = BigInt(v.ctr);
    assert.equal(toHex(encodeHeader(kid, ctr)), v.encoded);
    assert.deepEqual(decodeHeader(hex(v.encoded)), [kid, ctr, v.encoded.length / 2]);
  }
});

test("RFC 9605 and draft SFrame vectors through the public Context API", { skip: noVectors }, async () => {
  const cases = [...rfc.sframe, ...(draft?.sframe_aes_256_ctr_hmac ?? [])];
  assert.ok(cases.length >= 5);
  for (const v of cases) {
    const kid = BigInt(v.kid), ctr = BigInt(v.ctr);
    const [key, salt] = await deriveKeySalt(v.cipher_suite, kid, hex(v.base_key));
    assert.equal(toHex(key), v.sframe_key);
    assert.equal(toHex(salt), v.sframe_salt);
    const tx = new Context(v.cipher_suite);
    await tx.addSendKey(kid, hex(v.base_key), ctr);
    const ct = await tx.encrypt(kid, hex(v.pt), hex(v.metadata));
    assert.equal(toHex(ct), v.ct, `suite ${v.cipher_suite}`);
    assert.equal(tx.nextCounter(kid), ctr + 1n);
    const rx = new Context(v.cipher_suite);
    await rx.addReceiveKey(kid, hex(v.base_key));
    assert.equal(toHex(await rx.decrypt(hex(v.ct), hex(v.metadata))), v.pt);
  }
});

test("header codec: strict decoding rejects truncated and non-minimal headers", () => {
  assert.throws(() => decodeHeader(new Uint8Array(0)), MalformedHeaderError);
  assert.throws(() => decodeHeader(hex("08")), MalformedHeaderError); // CTR byte missing
  assert.throws(() => decodeHeader(hex("9901")), MalformedHeaderError); // truncated
  assert.throws(() => decodeHeader(hex("0900ff")), MalformedHeaderError); // leading zero
  assert.throws(() => decodeHeader(hex("0807")), MalformedHeaderError); // extended value < 8
  assert.throws(() => encodeHeader(-1, 0), RangeError);
  assert.throws(() => encodeHeader(0, MAX_U64 + 1n), RangeError);
  assert.throws(() => encodeHeader(1.5, 0), TypeError);
  assert.equal(toHex(encodeHeader(MAX_U64, MAX_U64)), "ff" + "ff".repeat(16));
  const next = rng(7);
  for (let i = 0; i < 2000; i++) {
    const kid = BigInt(Math.floor(next() * 2 ** 32)) << BigInt(Math.floor(next() * 33));
    const ctr = BigInt(Math.floor(next() * 2 ** 32)) >> BigInt(Math.floor(next() * 33));
    const h = encodeHeader(kid, ctr);
    assert.deepEqual(decodeHeader(h), [kid, ctr, h.length]);
  }
});

test("every bad input gets its typed error and changes no state", async () => {
  for (const suite of Object.keys(SUITES).map(Number)) {
    const base = randomBytes(rng(suite), 16);
    const tx = new Context(suite);
    const rx = new Context(suite, { replayWindow: 4 });
    await tx.addSendKey(5, base);
    await rx.addReceiveKey(5, base);
    const meta = hex("0102");
    const ct = await tx.encrypt(5, hex("00112233445566"), meta);
    const nt = SUITES[suite]!.Nt;
    // truncations: every prefix fails (malformed below header+tag, else authentication)
    for (let n = 0; n < ct.length; n++) {
      await assert.rejects(rx.decrypt(ct.subarray(0, n), meta), n < 1 + nt ? MalformedHeaderError : AuthenticationError);
    }
    // bit flips anywhere
    for (let i = 0; i < ct.length; i++) {
      const bad = ct.slice();
      bad[i]! ^= 1 << (i % 8);
      await assert.rejects(rx.decrypt(bad, meta), SFrameErrorLike);
    }
    await assert.rejects(rx.decrypt(ct, hex("0103")), AuthenticationError); // wrong metadata
    const wrong = new Context(suite);
    await wrong.addReceiveKey(5, randomBytes(rng(99), 16));
    await assert.rejects(wrong.decrypt(ct, meta), AuthenticationError); // wrong key
    const stranger = new Context(suite);
    await assert.rejects(stranger.decrypt(ct, meta), UnknownKeyError);
    // none of the failures advanced the window: the genuine frame still decrypts once
    assert.equal(toHex(await rx.decrypt(ct, meta)), "00112233445566");
    await assert.rejects(rx.decrypt(ct, meta), ReplayError);
    // a send KID is not a receive key, and vice versa
    await assert.rejects(tx.decrypt(ct, meta), UnknownKeyError);
    await assert.rejects(rx.encrypt(5, hex("00")), UnknownKeyError);
  }
});

function SFrameErrorLike(e: unknown): boolean {
  return e instanceof MalformedHeaderError || e instanceof AuthenticationError || e instanceof UnknownKeyError;
}

test("replay window: out of order inside the window, too old below it", async () => {
  const base = hex("000102030405060708090a0b0c0d0e0f");
  const tx = new Context(4);
  const rx = new Context(4, { replayWindow: 4 });
  await tx.addSendKey(1, base);
  await rx.addReceiveKey(1, base);
  const cts: Uint8Array[] = [];
  for (let i = 0; i < 8; i++) cts.push(await tx.encrypt(1, Uint8Array.of(i)));
  await rx.decrypt(cts[5]!);
  await rx.decrypt(cts[3]!); // inside the window, out of order
  await assert.rejects(rx.decrypt(cts[3]!), ReplayError);
  await assert.rejects(rx.decrypt(cts[1]!), ReplayError); // 5 - 1 >= 4
  await rx.decrypt(cts[2]!);
  await rx.decrypt(cts[7]!);
  await assert.rejects(rx.decrypt(cts[2]!), ReplayError);
  await rx.decrypt(cts[4]!);
  await rx.decrypt(cts[6]!);
  const off = new Context(4, { replayWindow: 0 });
  await off.addReceiveKey(1, base);
  await off.decrypt(cts[0]!);
  await off.decrypt(cts[0]!); // window 0 disables replay checks
});

test("send counters never repeat: remove and re-add resumes; exhaustion is typed", async () => {
  const base = hex("0f0e0d0c0b0a09080706050403020100");
  const tx = new Context(4);
  await tx.addSendKey(9, base);
  await tx.encrypt(9, hex("00"));
  await tx.encrypt(9, hex("00"));
  tx.removeKey(9);
  await assert.rejects(tx.encrypt(9, hex("00")), UnknownKeyError);
  await tx.addSendKey(9, base);
  assert.equal(tx.nextCounter(9), 2n);
  tx.removeKey(9);
  await assert.rejects(tx.addSendKey(9, base, 1), RangeError);
  await tx.addSendKey(9, base, MAX_U64);
  const last = await tx.encrypt(9, hex("00"));
  assert.deepEqual(decodeHeader(last).slice(0, 2), [9n, MAX_U64]);
  await assert.rejects(tx.encrypt(9, hex("00")), CounterExhaustedError);
  assert.throws(() => tx.nextCounter(9), CounterExhaustedError);
  await assert.rejects(tx.addSendKey(9, base), RangeError); // already has a key
  assert.throws(() => tx.removeKey(10), UnknownKeyError);
  // concurrent encrypts reserve distinct counters
  await tx.addSendKey(11, base);
  const many = await Promise.all(Array.from({ length: 50 }, () => tx.encrypt(11, hex("01"))));
  assert.equal(new Set(many.map((c) => decodeHeader(c)[1])).size, 50);
});

test("bad arguments are TypeError/RangeError; nothing secret in messages", async () => {
  assert.throws(() => new Context(0), RangeError);
  assert.throws(() => new Context(9), RangeError);
  assert.throws(() => new Context(4, { replayWindow: -1 }), RangeError);
  const ctx = new Context(4);
  const base = hex("41414141414141414141414141414141");
  await assert.rejects(ctx.addSendKey(1, new Uint8Array(0)), RangeError);
  await assert.rejects(ctx.addSendKey(1, "key" as unknown as Uint8Array), TypeError);
  await assert.rejects(ctx.addSendKey(2n ** 64n, base), RangeError);
  await ctx.addSendKey(1, base);
  await assert.rejects(ctx.encrypt(1, [1, 2] as unknown as Uint8Array), TypeError);
  await assert.rejects(ctx.addReceiveKey(1, base), RangeError);
  const rx = new Context(4);
  await rx.addReceiveKey(1, base);
  try {
    await rx.decrypt(hex("11" + "00".repeat(20)));
    assert.fail("decrypted garbage");
  } catch (e) {
    assert.ok(e instanceof AuthenticationError);
    assert.ok(!String((e as Error).message).includes("4141"));
  }
  assert.ok(!ctx.toString().includes("4141"));
});

test("counters and KIDs across 2**53 (number to bigint inside the context)", async () => {
  const base = hex("00112233445566778899aabbccddeeff");
  const edge = 2n ** 53n;
  for (const kid of [5n, edge - 1n, edge, MAX_U64]) {
    const tx = new Context(1);
    const rx = new Context(1, { replayWindow: 4 });
    await tx.addSendKey(kid, base, edge - 2n);
    await rx.addReceiveKey(kid, base);
    const cts: Uint8Array[] = [];
    for (let i = 0; i < 4; i++) cts.push(await tx.encrypt(kid, Uint8Array.of(i)));
    assert.deepEqual(cts.map((c) => decodeHeader(c).slice(0, 2)), [0n, 1n, 2n, 3n].map((i) => [kid, edge - 2n + i]));
    assert.equal(tx.nextCounter(kid), edge + 2n);
    for (const i of [2, 0, 3, 1]) assert.deepEqual(await rx.decrypt(cts[i]!), Uint8Array.of(i));
    for (const c of cts) await assert.rejects(rx.decrypt(c), ReplayError);
    assert.deepEqual(rx.receiveKids(), [kid]);
    tx.removeKey(kid);
    await tx.addSendKey(kid, base);
    assert.equal(tx.nextCounter(kid), edge + 2n); // resumes past the boundary
  }
});
