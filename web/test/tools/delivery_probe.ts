/**
 * Drives the TypeScript DeliveryClient against a server for the pytest tests; argv[2] is a JSON
 * object {url, room, token (hex), client, idleMs}. Prints one JSON line with what it saw.
 */
import WebSocket from "ws";
import { DeliveryClient, ServerError, type LogEntry, type WebSocketConstructor } from "../../src/delivery.js";

const args = JSON.parse(process.argv[2]!);
const entries: [string, number, string, string][] = [];
let ended: string | null = null;
const client = new DeliveryClient(args.url, args.room, Uint8Array.from(Buffer.from(args.token, "hex")), args.client, {
  WebSocket: WebSocket as unknown as WebSocketConstructor,
  backoffInitialMs: 20,
  backoffMaxMs: 200,
  connectTimeoutMs: 3000,
  joinPayload: Uint8Array.of(1, 2, 3),
  onEntry: (e: LogEntry) => entries.push([e.seq.toString(), e.entryType, e.sender, e.kind]),
  onEnd: (f) => { ended = f === null ? "closed" : f.name; },
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const out: Record<string, unknown> = {};
try {
  const ready = await client.connect();
  out.joinSeq = ready.joinSeq.toString();
  if (args.scenario === "gap") {
    for (let i = 0; i < 100 && ended === null; i++) await sleep(20);
  } else {
    const s1 = await client.append("t.a", Uint8Array.of(1), ready.headSeq + 1n);
    try {
      await client.append("t.b", Uint8Array.of(2), s1); // the slot is taken: conflict
      out.conflict = "none";
    } catch (e) {
      out.conflict = e instanceof ServerError ? e.codeName : (e as Error).name;
    }
    client.abortConnection();
    const s2 = await client.append("t.c", Uint8Array.of(3)); // waits for the reconnection
    out.seqs = [s1.toString(), s2.toString()];
    await sleep(args.idleMs); // silent beyond the eviction timeout: only PONGs keep us present
    const s3 = await client.append("t.d", Uint8Array.of(4));
    out.seqs = [s1.toString(), s2.toString(), s3.toString()];
    out.connections = client.connections;
    await client.close(true);
  }
} catch (e) {
  out.error = (e as Error).name;
}
out.entries = entries;
out.ended = ended;
out.failure = client.failure?.name ?? null;
console.log(JSON.stringify(out));
process.exit(0);
