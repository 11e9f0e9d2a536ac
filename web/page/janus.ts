/** A minimal Janus HTTP API client for the call page (create, attach, message, long poll). */

export interface JanusEvent {
  janus: string;
  sender?: number;
  plugindata?: { data: Record<string, unknown> };
  jsep?: RTCSessionDescriptionInit;
}

/** A Janus error answer or an HTTP failure. */
export class JanusError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "JanusError";
  }
}

const tx = (): string => Math.random().toString(36).slice(2, 12);

/** One Janus session with a long-poll loop dispatching events per handle. */
export class JanusSession {
  id = 0;
  private queues = new Map<number, { events: JanusEvent[]; waiters: ((e: JanusEvent) => void)[] }>();
  private closed = false;
  /** Called for events nobody waits for (e.g. new publishers). */
  onEvent: ((handle: number, e: JanusEvent) => void) | null = null;

  constructor(readonly url: string) {}

  async request(body: Record<string, unknown>, path = ""): Promise<Record<string, any>> {
    const r = await fetch(this.url + path, { method: "POST", body: JSON.stringify({ ...body, transaction: tx() }) });
    if (!r.ok) throw new JanusError(`HTTP ${r.status} from Janus`);
    const reply = await r.json();
    if (reply.janus === "error") throw new JanusError(`Janus error ${reply.error?.code}: ${reply.error?.reason}`);
    return reply;
  }

  async connect(): Promise<void> {
    const reply = await this.request({ janus: "create" });
    this.id = reply.data.id;
    void this.poll();
  }

  private async poll(): Promise<void> {
    while (!this.closed) {
      try {
        const r = await fetch(`${this.url}/${this.id}?maxev=10&rid=${tx()}`);
        const body = await r.json();
        for (const e of (Array.isArray(body) ? body : [body]) as JanusEvent[]) {
          if (e.janus !== "event" || e.sender === undefined) continue;
          const q = this.queue(e.sender);
          const w = q.waiters.shift();
          if (w) w(e);
          else if (this.onEvent && isUnsolicited(e)) this.onEvent(e.sender, e);
          else q.events.push(e);
        }
      } catch {
        if (this.closed) return;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  private queue(handle: number) {
    let q = this.queues.get(handle);
    if (!q) this.queues.set(handle, (q = { events: [], waiters: [] }));
    return q;
  }

  nextEvent(handle: number, timeoutMs = 15000): Promise<JanusEvent> {
    const q = this.queue(handle);
    const e = q.events.shift();
    if (e) return Promise.resolve(e);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new JanusError("no answer from Janus")), timeoutMs);
      q.waiters.push((ev) => {
        clearTimeout(t);
        resolve(ev);
      });
    });
  }

  async attach(): Promise<JanusHandle> {
    const reply = await this.request({ janus: "attach", plugin: "janus.plugin.videoroom" }, `/${this.id}`);
    return new JanusHandle(this, reply.data.id);
  }

  async close(): Promise<void> {
    this.closed = true;
    try {
      await this.request({ janus: "destroy" }, `/${this.id}`);
    } catch {
      /* best effort */
    }
  }
}

/** A VideoRoom event nobody asked for: publishers joining or leaving. */
function isUnsolicited(e: JanusEvent): boolean {
  const d = e.plugindata?.data ?? {};
  return d.videoroom === "event" && ("publishers" in d || "unpublished" in d || "leaving" in d) && !e.jsep;
}

/** A VideoRoom plugin handle. */
export class JanusHandle {
  constructor(readonly session: JanusSession, readonly id: number) {}

  async message(body: Record<string, unknown>, jsep?: RTCSessionDescriptionInit): Promise<[Record<string, any>, RTCSessionDescriptionInit | undefined]> {
    const req: Record<string, unknown> = { janus: "message", body };
    if (jsep) req.jsep = jsep;
    const reply = await this.session.request(req, `/${this.session.id}/${this.id}`);
    let data: Record<string, any>;
    let answer: RTCSessionDescriptionInit | undefined;
    if (reply.janus === "success") data = reply.plugindata?.data ?? {};
    else {
      const e = await this.session.nextEvent(this.id);
      data = e.plugindata?.data ?? {};
      answer = e.jsep;
    }
    if ("error" in data) throw new JanusError(`VideoRoom error ${data.error_code}: ${data.error}`);
    return [data, answer];
  }

  trickleComplete(): Promise<unknown> {
    return this.session.request({ janus: "trickle", candidate: { completed: true } }, `/${this.session.id}/${this.id}`);
  }
}
