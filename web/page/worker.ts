/**
 * The call page's media worker: SFrame-protects every encoded frame the page sends and
 * unprotects every frame it receives, with the per-codec rules of `src/framing.ts` (identical
 * to the Python hooks). Frames arrive through `RTCRtpScriptTransform` (`rtctransform` events)
 * or through streams the page took with `createEncodedStreams` and transferred here.
 *
 * Keys: the page posts the full set of installed KIDs (and their MLS base keys) after every key
 * change; this worker mirrors them into its own SFrame Context. A received frame under a KID
 * not installed yet is *held* (it and the frames behind it wait) for up to `HOLD_MS` for the next
 * key change, like `orange_fast.rtc.transition`; after that it is dropped (`hold_timeout`) and
 * unknown KIDs drop at once until the keys change again. Empty frames pass through.
 * Keyframe requests (receiver side) are rate-limited to one per `KEYFRAME_INTERVAL_MS` per track.
 */
import { Context, UnknownKeyError } from "../src/sframe.js";
import { transformFor, type FrameTransform } from "../src/framing.js";

export const HOLD_MS = 1000;
export const KEYFRAME_INTERVAL_MS = 1000;

interface KeyEntry { kid: string; key: Uint8Array; send: boolean }
interface StreamOptions { side: "send" | "recv"; kind: "audio" | "video"; id: string; e2ee: boolean; probes?: boolean }

interface StreamStats {
  id: string;
  side: string;
  kind: string;
  frames: number;
  protected: number;
  decrypted: number;
  empty: number;
  held: number;
  keyframeRequests: number;
  bySender: Record<string, number>;
  dropped: Record<string, number>;
  codec: string;
  /** Milliseconds spent protecting/unprotecting (timer resolution ~0.1 ms: meaningful over many frames). */
  busyMs: number;
  /** Of which waiting for keys (held frames). */
  heldMs: number;
  /** Test only (`?probes=1`): hex of plaintext windows (bytes 16..32) of sent frames, to search the SFU's output for. */
  probes: string[];
}

let ctx = new Context(4, { replayWindow: 128 });
let installed = new Map<string, boolean>(); // kid -> send
let sendKid: bigint | null = null;
let generation = 0;
let vp8ClearHeader = false;
let keyWaiters: (() => void)[] = [];
const streams: StreamStats[] = [];
const post = (m: unknown): void => (self as unknown as Worker).postMessage(m);

async function setKeys(keys: KeyEntry[]): Promise<void> {
  const wanted = new Map(keys.map((k) => [k.kid, k]));
  for (const [kid, send] of installed) {
    const w = wanted.get(kid);
    if (!w || w.send !== send) {
      if (ctx.hasKey(BigInt(kid))) ctx.removeKey(BigInt(kid));
      installed.delete(kid);
    }
  }
  let newSend: bigint | null = null;
  for (const k of keys) {
    if (k.send) newSend = BigInt(k.kid);
    if (installed.has(k.kid)) continue;
    if (k.send) await ctx.addSendKey(BigInt(k.kid), k.key);
    else await ctx.addReceiveKey(BigInt(k.kid), k.key);
    installed.set(k.kid, k.send);
  }
  // the current epoch's send KID is the one with the highest epoch bits among send keys: the page lists it last
  sendKid = newSend;
  generation += 1;
  const w = keyWaiters;
  keyWaiters = [];
  for (const f of w) f();
}

function keysChanged(timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), timeoutMs);
    keyWaiters.push(() => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

function codecOf(frame: RTCEncodedVideoFrame | RTCEncodedAudioFrame, kind: string): string {
  const meta = frame.getMetadata() as { mimeType?: string };
  return meta.mimeType ?? (kind === "video" ? "video/VP8" : "audio/opus");
}

const rules = new Map<string, FrameTransform>();
function ruleFor(mime: string): FrameTransform {
  let r = rules.get(mime);
  if (!r) rules.set(mime, (r = transformFor(mime, { vp8ClearHeader })));
  return r;
}

function reasonOf(e: unknown): string {
  const name = (e as Error)?.name ?? "error";
  switch (name) {
    case "AuthenticationError": return "auth_failed";
    case "UnknownKeyError": return "unknown_kid";
    case "ReplayError": return "replay";
    case "MalformedHeaderError": return "malformed";
    case "FramingError": return "malformed";
    case "UnsupportedCodecError": return "unsupported_codec";
    default: return "error";
  }
}

interface Controls { requestKeyframe?: () => void; generateKeyframe?: () => void }

function makeTransform(opts: StreamOptions, controls: Controls): TransformStream {
  const st: StreamStats = { id: opts.id, side: opts.side, kind: opts.kind, frames: 0, protected: 0, decrypted: 0, empty: 0, held: 0, keyframeRequests: 0, bySender: {}, dropped: {}, codec: "", busyMs: 0, heldMs: 0, probes: [] };
  streams.push(st);
  const drop = (reason: string): void => {
    st.dropped[reason] = (st.dropped[reason] ?? 0) + 1;
  };
  let lastKeyframeRequest = -Infinity;
  let giveUpGeneration = -1; // after a hold timeout: unknown KIDs drop at once until the keys change
  let sendGeneration = generation;
  const requestKeyframe = (): void => {
    const now = performance.now();
    if (!controls.requestKeyframe || now - lastKeyframeRequest < KEYFRAME_INTERVAL_MS) return;
    lastKeyframeRequest = now;
    st.keyframeRequests += 1;
    try { controls.requestKeyframe(); } catch { /* not supported on this path */ }
  };
  return new TransformStream({
    async transform(frame: RTCEncodedVideoFrame | RTCEncodedAudioFrame, out) {
      st.frames += 1;
      const data = new Uint8Array(frame.data);
      if (data.length === 0) {
        st.empty += 1;
        out.enqueue(frame);
        return;
      }
      const mime = codecOf(frame, opts.kind);
      st.codec = mime;
      const t0 = performance.now();
      try {
        await handle(frame, data, mime, out);
      } finally {
        st.busyMs += performance.now() - t0;
      }
    },
  });
  async function handle(frame: RTCEncodedVideoFrame | RTCEncodedAudioFrame, data: Uint8Array, mime: string,
                        out: TransformStreamDefaultController): Promise<void> {
      if (opts.side === "send") {
        if (opts.probes && data.length >= 48 && st.probes.length < 200) {
          st.probes.push(Array.from(data.subarray(16, 32), (b) => b.toString(16).padStart(2, "0")).join(""));
        }
        if (!opts.e2ee) {
          out.enqueue(frame); // E2EE off (negative tests only): plaintext on the wire
          return;
        }
        if (sendKid === null) return drop("no_key");
        if (generation !== sendGeneration) {
          sendGeneration = generation;
          if (opts.kind === "video" && controls.generateKeyframe) try { controls.generateKeyframe(); } catch { /* ignore */ }
        }
        try {
          const wire = await ruleFor(mime).protect(ctx, sendKid, data);
          frame.data = wire.slice().buffer;
          st.protected += 1;
          out.enqueue(frame);
        } catch (e) {
          drop(reasonOf(e));
        }
        return;
      }
      for (;;) {
        try {
          const [kid, plain] = await ruleFor(mime).unprotect(ctx, data);
          frame.data = plain.slice().buffer;
          st.decrypted += 1;
          const sender = String(Number((kid >> 8n) & 0xffffn));
          st.bySender[sender] = (st.bySender[sender] ?? 0) + 1;
          out.enqueue(frame);
          return;
        } catch (e) {
          if (e instanceof UnknownKeyError && giveUpGeneration !== generation) {
            st.held += 1;
            const h0 = performance.now();
            const changed = await keysChanged(HOLD_MS);
            st.heldMs += performance.now() - h0;
            if (changed) continue;
            giveUpGeneration = generation;
            drop("hold_timeout");
          } else {
            drop(reasonOf(e));
          }
          if (opts.kind === "video") requestKeyframe();
          return;
        }
      }
  }
}

function pipe(readable: ReadableStream, writable: WritableStream, opts: StreamOptions, controls: Controls): void {
  readable.pipeThrough(makeTransform(opts, controls)).pipeTo(writable).catch(() => { /* track ended */ });
}

self.addEventListener("message", (ev: MessageEvent) => {
  const m = ev.data;
  if (m.type === "config") {
    vp8ClearHeader = !!m.vp8ClearHeader;
    ctx = new Context(m.sframeSuite ?? 4, { replayWindow: 128 });
    installed = new Map();
    rules.clear();
  } else if (m.type === "keys") {
    void setKeys(m.keys as KeyEntry[]);
  } else if (m.type === "stream") {
    pipe(m.readable, m.writable, m.options as StreamOptions, {});
  }
});

// RTCRtpScriptTransform: the transformer arrives as an event in this worker
(self as any).onrtctransform = (ev: any) => {
  const t = ev.transformer;
  const opts = t.options as StreamOptions;
  pipe(t.readable, t.writable, opts, {
    requestKeyframe: () => t.sendKeyFrameRequest?.().catch?.(() => {}),
    generateKeyframe: () => t.generateKeyFrame?.().catch?.(() => {}),
  });
};

setInterval(() => post({ type: "stats", streams }), 250);
