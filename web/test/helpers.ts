/** Shared helpers of the Node tests. */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export function hex(s: string): Uint8Array {
  return Uint8Array.from(Buffer.from(s, "hex"));
}
export function toHex(b: Uint8Array): string {
  return Buffer.from(b).toString("hex");
}

/** The shared vectors directory ($ORANGE_FAST_VECTORS, else ../shared/vectors beside the repository), or null. */
export function vectorsDir(): string | null {
  const env = process.env.ORANGE_FAST_VECTORS;
  if (env && existsSync(env)) return env;
  const here = dirname(fileURLToPath(import.meta.url));
  for (const up of ["../../../../shared/vectors", "../../../shared/vectors"]) {
    const p = resolve(here, up);
    if (existsSync(p)) return p;
  }
  return null;
}

export function readVectors(name: string): any | null {
  const dir = vectorsDir();
  if (dir === null) return null;
  const p = join(dir, name);
  if (!existsSync(p)) return null;
  // integers beyond 2**53 would lose precision as numbers: keep them as strings (BigInt() takes both)
  return JSON.parse(readFileSync(p, "utf8").replace(/:\s*(\d{16,})/g, ': "$1"'));
}

/** A small deterministic PRNG (xorshift32) for random cases that replay. */
export function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2 ** 32;
  };
}

export function randomBytes(next: () => number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(next() * 256);
  return out;
}
