/**
 * The call page: one participant of an E2EE call with browsers and Python members.
 *
 * It joins the room's MLS group through the delivery service (SessionClient), publishes camera
 * and microphone to a Janus VideoRoom and subscribes to every other publisher; every encoded frame
 * goes through the media worker (`call-worker.js`, SFrame with the framing of `src/framing.ts`)
 * via `RTCRtpScriptTransform`, or `createEncodedStreams` when that is missing or `?transform=streams`.
 *
 * URL parameters: `ws` (delivery service), `room`, `id` (client id), `token` (access token text) or
 * `tokenhex` (room token bytes), `janus` (Janus HTTP API), `janusroom` (VideoRoom number),
 * `transform` (`script` | `streams`), `vp8clear=1` (VP8 payload header clear: every participant of a
 * call must agree), `e2ee=0` (send plaintext: negative tests), `keyless=1` (no MLS: decodes nothing),
 * `publish=0` (subscribe only), `probes=1` (tests: expose plaintext windows of sent frames). Missing `ws`/`janus` come from `/config.json` when the page is served
 * by `orange-fast serve --web`.
 *
 * Tests read `window.ofStats()` (a JSON object, no secrets) and the DOM (`#safety`, `.tile`).
 */
import { SessionClient } from "../src/session.js";
import { JanusSession, type JanusHandle } from "./janus.js";

type Mode = "script" | "streams";

interface WorkerStream {
  id: string; side: string; kind: string; frames: number; protected: number; decrypted: number; empty: number;
  held: number; keyframeRequests: number; bySender: Record<string, number>; dropped: Record<string, number>; codec: string;
  busyMs: number; heldMs: number;
}

interface Remote { feed: number; display: string; pc: RTCPeerConnection; tile: HTMLElement; streams: string[] }

const params = new URLSearchParams(location.search);
const log = (msg: string): void => {
  const el = document.getElementById("log");
  if (el) el.textContent = `${new Date().toISOString().slice(11, 19)} ${msg}\n` + el.textContent!.slice(0, 4000);
};

function hexBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

async function config(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  try {
    const r = await fetch("config.json");
    if (r.ok) Object.assign(out, await r.json());
  } catch { /* served elsewhere */ }
  for (const [k, v] of params) out[k] = v;
  return out;
}

function chooseMode(asked: string | undefined): Mode {
  const hasScript = typeof (globalThis as any).RTCRtpScriptTransform === "function";
  const hasStreams = typeof (RTCRtpSender.prototype as any).createEncodedStreams === "function";
  if (asked === "streams" && hasStreams) return "streams";
  if (asked === "script" && hasScript) return "script";
  if (asked && asked !== "script" && asked !== "streams") throw new Error(`unknown transform ${asked}`);
  if (hasScript) return "script";
  if (hasStreams) return "streams";
  throw new Error("this browser has no encoded-frame API (RTCRtpScriptTransform or createEncodedStreams)");
}

async function gathered(pc: RTCPeerConnection): Promise<void> {
  if (pc.iceGatheringState === "complete") return;
  await new Promise<void>((resolve) => {
    const t = setTimeout(resolve, 3000);
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") {
        clearTimeout(t);
        resolve();
      }
    });
  });
}

async function main(): Promise<void> {
  const cfg = await config();
  const id = cfg.id ?? `browser-${Math.random().toString(36).slice(2, 8)}`;
  const room = cfg.room ?? "demo";
  const e2ee = cfg.e2ee !== "0";
  const keyless = cfg.keyless === "1";
  const mode = chooseMode(cfg.transform);
  const vp8ClearHeader = cfg.vp8clear === "1";
  document.getElementById("me")!.textContent = `${id} in ${room} (${mode})`;

  const worker = new Worker(new URL("call-worker.js", import.meta.url), { type: "module" });
  worker.postMessage({ type: "config", vp8ClearHeader, sframeSuite: 4 });
  let workerStreams: WorkerStream[] = [];
  worker.onmessage = (ev) => {
    if (ev.data.type === "stats") workerStreams = ev.data.streams;
  };

  // ------------------------------------------------------------------ session (MLS keys)
  let session: SessionClient | null = null;
  let keySignature = "";
  const pushKeys = (): void => {
    if (!session) return;
    const ring = session.keys.ring;
    const keys: { kid: string; key: Uint8Array; send: boolean }[] = [];
    for (const ep of [...ring.previous, ...(ring.current ? [ring.current] : [])]) {
      for (const k of ep.recvKids) keys.push({ kid: k.toString(), key: ep.key, send: false });
      keys.push({ kid: ep.sendKid.toString(), key: ep.key, send: true });
    }
    const sig = keys.map((k) => `${k.kid}${k.send ? "s" : "r"}`).join(",");
    if (sig === keySignature) return;
    keySignature = sig;
    worker.postMessage({ type: "keys", keys });
  };
  const showSession = (): void => {
    if (!session) return;
    document.getElementById("safety")!.textContent = session.safetyNumber ?? "(not in the group yet)";
    document.getElementById("epoch")!.textContent = String(session.epoch ?? "-");
    document.getElementById("roster")!.textContent = session.roster.map((r) => r.identity).join(", ");
  };
  if (!keyless) {
    const token = cfg.tokenhex ? hexBytes(cfg.tokenhex) : new TextEncoder().encode(cfg.token ?? "");
    const ws = cfg.ws ?? `ws://${location.hostname}:8765`;
    session = new SessionClient(ws, room, token, id, {}, {}, (e) => {
      log(`session: ${e.kind}${e.identity ? " " + e.identity : ""}${e.kind === "epoch" ? " " + e.epoch : ""}`);
      pushKeys();
      showSession();
    });
    await session.start();
    setInterval(pushKeys, 200); // previous epochs expire on the session's timer
  }

  // ------------------------------------------------------------------ Janus
  const janus = new JanusSession(cfg.janus ?? `http://${location.hostname}:8088/janus`);
  await janus.connect();
  const janusRoom = Number(cfg.janusroom ?? 1234);
  const pcConfig = { iceServers: [], bundlePolicy: "max-bundle", encodedInsertableStreams: mode === "streams" } as RTCConfiguration;
  let streamNo = 0;
  const attach = (endpoint: RTCRtpSender | RTCRtpReceiver, side: "send" | "recv", kind: "audio" | "video"): string => {
    const options = { side, kind, id: `${side}-${kind}-${streamNo++}`, e2ee, probes: cfg.probes === "1" };
    if (mode === "script") {
      (endpoint as any).transform = new (globalThis as any).RTCRtpScriptTransform(worker, options);
    } else {
      const { readable, writable } = (endpoint as any).createEncodedStreams();
      worker.postMessage({ type: "stream", readable, writable, options }, [readable, writable]);
    }
    return options.id;
  };

  const pub = await janus.attach();
  const [joined] = await pub.message({ request: "join", ptype: "publisher", room: janusRoom, display: id });
  (window as any).ofFeed = Number(joined.id);
  const remotes = new Map<number, Remote>();
  const sendStreams: string[] = [];
  let publisherPc: RTCPeerConnection | null = null;

  const subscribe = async (feed: number, display: string): Promise<void> => {
    if (remotes.has(feed)) return;
    const tile = document.createElement("div");
    tile.className = "tile";
    tile.dataset.feed = String(feed);
    tile.innerHTML = `<div class="name"></div><video autoplay muted playsinline></video><pre class="counts"></pre>`;
    tile.querySelector(".name")!.textContent = display;
    document.getElementById("tiles")!.append(tile);
    const pc = new RTCPeerConnection(pcConfig);
    const remote: Remote = { feed, display, pc, tile, streams: [] };
    remotes.set(feed, remote);
    pc.ontrack = (ev) => {
      remote.streams.push(attach(ev.receiver, "recv", ev.track.kind as "audio" | "video"));
      if (ev.track.kind === "video") (tile.querySelector("video") as HTMLVideoElement).srcObject = new MediaStream([ev.track]);
    };
    const handle: JanusHandle = await janus.attach();
    const [, offer] = await handle.message({ request: "join", ptype: "subscriber", room: janusRoom, streams: [{ feed }] });
    if (!offer) throw new Error(`Janus sent no offer for feed ${feed}`);
    await pc.setRemoteDescription(offer);
    await pc.setLocalDescription(await pc.createAnswer());
    await gathered(pc);
    await handle.message({ request: "start" }, { type: "answer", sdp: pc.localDescription!.sdp });
    await handle.trickleComplete();
    log(`subscribed to ${display} (feed ${feed})`);
  };
  const onPublishers = (list: unknown): void => {
    for (const p of (list as { id: number; display?: string }[]) ?? []) {
      subscribe(p.id, p.display ?? String(p.id)).catch((e) => log(`subscribe ${p.id} failed: ${e}`));
    }
  };
  janus.onEvent = (handle, e) => {
    const d = e.plugindata?.data ?? {};
    if (handle === pub.id && "publishers" in d) onPublishers(d.publishers);
    const gone = (d.unpublished ?? d.leaving) as number | undefined;
    if (handle === pub.id && typeof gone === "number" && remotes.has(gone)) {
      remotes.get(gone)!.tile.classList.add("gone");
      log(`feed ${gone} left`);
    }
  };

  if (cfg.publish !== "0") {
    const media = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 640, height: 480 } });
    const pc = new RTCPeerConnection(pcConfig);
    publisherPc = pc;
    for (const track of media.getTracks()) {
      const t = pc.addTransceiver(track, { direction: "sendonly", streams: [media] });
      if (track.kind === "video") {
        const vp8 = RTCRtpSender.getCapabilities("video")!.codecs.filter((c) => c.mimeType.toLowerCase() === "video/vp8");
        t.setCodecPreferences(vp8);
      }
      sendStreams.push(attach(t.sender, "send", track.kind as "audio" | "video"));
    }
    const local = document.querySelector("#local video") as HTMLVideoElement | null;
    if (local) local.srcObject = media;
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    const [, answer] = await pub.message({ request: "publish", display: id }, { type: "offer", sdp: pc.localDescription!.sdp });
    if (!answer) throw new Error("Janus sent no answer to the publish offer");
    await pc.setRemoteDescription(answer);
    await pub.trickleComplete();
    log("publishing");
  }
  onPublishers(joined.publishers);

  // ------------------------------------------------------------------ stats (tests and the tiles)
  // leaf -> identity of every member seen in this call (a member that left keeps its name in the counts)
  const leafNames = new Map<string, string>();
  const rosterName = (leaf: string): string => {
    for (const r of session?.roster ?? []) leafNames.set(String(r.leafIndex), r.identity);
    return leafNames.get(leaf) ?? `leaf ${leaf}`;
  };
  const stats = async (): Promise<Record<string, unknown>> => {
    const byId = new Map(workerStreams.map((s) => [s.id, s]));
    const perRemote: Record<string, { video: number; audio: number }> = {};
    const dropped: Record<string, number> = {};
    const feeds: Record<string, unknown> = {};
    for (const r of remotes.values()) {
      const senders = new Set<string>();
      const f = { feed: r.feed, cryptoMs: 0, frames: { video: 0, audio: 0 }, decrypted: { video: 0, audio: 0 }, dropped: {} as Record<string, number>, framesDecoded: 0, left: r.tile.classList.contains("gone") };
      for (const sid of r.streams) {
        const s = byId.get(sid);
        if (!s) continue;
        const k = s.kind as "video" | "audio";
        f.frames[k] += s.frames;
        f.decrypted[k] += s.decrypted;
        f.cryptoMs += s.busyMs - s.heldMs;
        for (const [reason, n] of Object.entries(s.dropped)) {
          f.dropped[reason] = (f.dropped[reason] ?? 0) + n;
          dropped[reason] = (dropped[reason] ?? 0) + n;
        }
        for (const [leaf, n] of Object.entries(s.bySender)) {
          const who = rosterName(leaf);
          senders.add(who);
          perRemote[who] ??= { video: 0, audio: 0 };
          perRemote[who][k] += n;
        }
      }
      try {
        (await r.pc.getStats()).forEach((x: any) => {
          if (x.type === "inbound-rtp" && x.kind === "video") f.framesDecoded += x.framesDecoded ?? 0;
        });
      } catch { /* closed */ }
      feeds[r.display] = { ...f, mls_identity: [...senders].sort() };
      // the tile is named by who the MLS keys say sent the frames, not by the SFU's display name
      r.tile.querySelector(".name")!.textContent = senders.size > 0 ? [...senders].sort().join(", ") : `${r.display} (no frame decrypted)`;
      r.tile.querySelector(".counts")!.textContent =
        `decrypted video ${f.decrypted.video} audio ${f.decrypted.audio}, decoded ${f.framesDecoded}\ndropped ${JSON.stringify(f.dropped)}`;
    }
    const sent = { video: 0, audio: 0 };
    const encrypted = { video: 0, audio: 0 };
    let sendCryptoMs = 0;
    for (const sid of sendStreams) {
      const s = byId.get(sid);
      if (!s) continue;
      sent[s.kind as "video" | "audio"] += s.frames;
      encrypted[s.kind as "video" | "audio"] += s.protected;
      sendCryptoMs += s.busyMs;
    }
    return {
      id, room, mode, e2ee, keyless, vp8ClearHeader,
      safety: session?.safetyNumber ?? null,
      epoch: session?.epoch ?? null,
      roster: session?.roster.map((r) => r.identity) ?? [],
      sessionStatus: session?.status() ?? null,
      publishing: publisherPc?.connectionState ?? null,
      frames_sent: sent,
      frames_encrypted: encrypted,
      send_crypto_ms: sendCryptoMs,
      uptime_ms: performance.now(),
      frames_decrypted_per_remote: perRemote,
      frames_dropped: dropped,
      feeds,
      streams: workerStreams,
    };
  };
  setInterval(() => void stats(), 1000);
  const w = window as any;
  w.ofStats = stats;
  w.ofLeave = async (): Promise<void> => {
    await session?.leave();
    for (const r of remotes.values()) r.pc.close();
    publisherPc?.close();
    await janus.close();
  };
  w.ofSession = session;
  w.ofReady = true;
  log("ready");
}

main().catch((e) => {
  (window as any).ofError = String(e?.stack ?? e);
  log(`failed: ${e}`);
  console.error(e);
});
