/**
 * Per-frame SFrame cost next to raw WebCrypto AES-GCM of the same sizes (reported, not asserted),
 * shared by the Node (`sframe.bench.ts`) and Chromium (`browser.ts`, `chromium.py`) runs.
 * Batches of frames are timed (never single frames: worker and page timers are coarse); the
 * three measurements interleave round by round; each figure is the median of 9 batches.
 */
import { Context } from "../src/sframe.js";

const subtle = globalThis.crypto.subtle;

async function batch(n: number, fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await fn();
  return ((performance.now() - t0) * 1000) / n;
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export const SIZES = [64, 1024, 16 * 1024, 64 * 1024];

/** Run the benchmark; return one row per frame size. */
export async function runSframeBench(): Promise<Record<string, number>[]> {
  const results: Record<string, number>[] = [];
  const key = new Uint8Array(16).fill(3);
  const raw = await subtle.importKey("raw", key, "AES-GCM", false, ["encrypt", "decrypt"]);
  for (const size of SIZES) {
    const frame = new Uint8Array(size).fill(9);
    const meta = Uint8Array.of(1, 2);
    const n = size >= 16384 ? 300 : 1500;
    const iv = new Uint8Array(12);
    const tx = new Context(4);
    const rx = new Context(4, { replayWindow: 0 });
    await tx.addSendKey(1, key);
    await rx.addReceiveKey(1, key);
    const sample = await tx.encrypt(1, frame, meta);
    const rawFn = () => subtle.encrypt({ name: "AES-GCM", iv, additionalData: meta }, raw, frame);
    const encFn = () => tx.encrypt(1, frame, meta);
    const decFn = () => rx.decrypt(sample, meta);
  // raw AES-GCM plus the one copy any header-prefixed format needs (WebCrypto cannot write in place)
  const copyFn = () =>
    rawFn().then((ct) => {
      const out = new Uint8Array(ct.byteLength + 3);
      out.set(new Uint8Array(ct), 3);
      return out;
    });
    for (const fn of [rawFn, copyFn, encFn, decFn]) await batch(n, fn); // warm-up
    // rounds interleave the three so that machine noise hits them alike
    const r: number[] = [], c: number[] = [], e: number[] = [], d: number[] = [];
    for (let round = 0; round < 9; round++) {
      r.push(await batch(n, rawFn));
      c.push(await batch(n, copyFn));
      e.push(await batch(n, encFn));
      d.push(await batch(n, decFn));
    }
    const rawUs = median(r), copyUs = median(c), encUs = median(e), decUs = median(d);
    results.push({
      size, raw_gcm_us: rawUs, raw_gcm_copy_us: copyUs, sframe_encrypt_us: encUs, sframe_decrypt_us: decUs,
      ratio_encrypt: median(e.map((x, i) => x / r[i]!)), ratio_decrypt: median(d.map((x, i) => x / r[i]!)),
    });
  }
  return results;
}

/** The rows as a Markdown table. */
export function table(results: Record<string, number>[]): string {
  const lines = [
    "| frame | raw AES-GCM (µs) | raw + output copy (µs) | SFrame encrypt (µs) | SFrame decrypt (µs) | encrypt / raw | decrypt / raw |",
    "|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const r of results) {
    lines.push(`| ${r.size} B | ${r.raw_gcm_us!.toFixed(1)} | ${r.raw_gcm_copy_us!.toFixed(1)} | ${r.sframe_encrypt_us!.toFixed(1)} | ${r.sframe_decrypt_us!.toFixed(1)} | ${r.ratio_encrypt!.toFixed(2)} | ${r.ratio_decrypt!.toFixed(2)} |`);
  }
  return lines.join("\n");
}
