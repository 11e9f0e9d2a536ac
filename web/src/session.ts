/**
 * The session client: one participant of one room, from the delivery log to SFrame keys
 * (mirrors `orange_fast.session.client`).
 *
 * A DeliveryClient reads the room's ordered log; every entry is decoded (wire.ts) and fed to the
 * designated-committer machine (committer.ts), whose MLS work runs on ts-mls (mlsops.ts); the
 * machine's actions are performed (appends, resyncs) and the SFrame Context follows the MLS
 * epoch (keys.ts). Everything that touches the machine runs on one serial queue, one event at
 * a time. Events: see {@link SessionEvent}.
 */
import { Committer, type Action, type Event as CommitterEvent } from "./committer.js";
import { AppendTimeoutError, DeliveryClient, ServerError, ErrorCode, type DeliveryClientOptions, type LogEntry as DeliveryEntry, type TokenSource } from "./delivery.js";
import { EXPORTER_LABEL, EpochKeys } from "./keys.js";
import { MLSGroupOps, checkKeyPackage, membersOf, suiteImpl } from "./mlsops.js";
import { compareBytes, safetyNumber, type SafetyNumber } from "./safety.js";
import { Context } from "./sframe.js";
import { WireDecoder, WireError, encodeBody } from "./wire.js";

export interface SessionConfig {
  /** MLS cipher suite of the room (1). */
  mlsSuite?: number;
  /** SFrame cipher suite of the media (4 = AES_128_GCM_SHA256_128). */
  sframeSuite?: number;
  tickIntervalMs?: number;
  /**
   * Self-update (post-compromise security) every N ticks; 0 = never. The default, 600 ticks of
   * 0.5 s, refreshes each member's leaf every 5 minutes (as the Python client).
   */
  updateInterval?: number;
  gracePeriodMs?: number;
  appendTimeoutMs?: number;
  replayWindow?: number;
}

/** Every {@link SessionEvent} kind (the Python client's `EVENT_KINDS`). */
export const EVENT_KINDS = ["epoch", "roster", "joined", "left", "duplicate", "safety", "lost", "rejected", "superseded", "failed"] as const;

/**
 * Something the application may show:
 * - `epoch`: new keys installed (gen, epoch);
 * - `roster`: the roster changed (`detail` = the identities, comma-separated, leaf order);
 *   followed by one `joined`/`left` per member that came or went;
 * - `joined`/`left`: a member, by `identity` and `leaf`; members are told apart by (identity,
 *   signature key), so a rejoin is a `left` plus a `joined`;
 * - `duplicate`: `identity` is held by more than one leaf (see {@link RosterEntry});
 * - `safety`: `detail` = the new safety number (compare it again);
 * - `lost`: `detail` = why the group state was dropped (the client rejoins by itself);
 * - `rejected`: `detail` = why a log entry was ignored;
 * - `superseded`: another connection with this client id took over; the session is over (keys
 *   dropped) and no `failed` follows;
 * - `failed`: the delivery connection ended for good (`detail` = the error's name).
 */
export interface SessionEvent {
  kind: (typeof EVENT_KINDS)[number];
  gen: number;
  epoch: number;
  identity?: string;
  detail?: string;
  leaf?: number;
}

/**
 * A member as MLS says. `duplicate` flags an identity held by more than one leaf: normal for one
 * epoch while a client rejoins, a sign of trouble if it lasts.
 */
export interface RosterEntry { identity: string; signatureKey: Uint8Array; leafIndex: number; duplicate: boolean }

const now = (): number => (globalThis.performance ? globalThis.performance.now() : Date.now());

/** One participant in one room. */
export class SessionClient {
  readonly config: Required<SessionConfig>;
  readonly delivery: DeliveryClient;
  readonly context: Context;
  readonly keys: EpochKeys;
  readonly events: SessionEvent[] = [];
  committer!: Committer;
  ops!: MLSGroupOps;
  private decoder!: WireDecoder;
  private queue: Promise<void> = Promise.resolve();
  private timer: ReturnType<typeof setInterval> | null = null;
  private closed = false;
  private seenConnections = 0;
  private disconnectedFed = false;
  private catchupTarget: number | null = null;
  private rosterValue: RosterEntry[] = [];
  private genValue = 0;
  private epochValue: number | null = null;
  private authenticator: Uint8Array | null = null;
  private safetyValue: SafetyNumber | null = null;
  private listeners = new Set<() => void>();
  /** Counters for tests and monitoring (no secrets). */
  readonly stats = { appends: 0, entries: 0, rejected: 0, resyncs: 0, groupLosses: 0, internalErrors: 0, lostReasons: [] as string[] };

  constructor(
    url: string,
    readonly room: string,
    token: TokenSource,
    readonly clientId: string,
    config: SessionConfig = {},
    deliveryOptions: DeliveryClientOptions = {},
    private readonly onEvent?: (e: SessionEvent) => void,
  ) {
    this.config = {
      mlsSuite: config.mlsSuite ?? 1,
      sframeSuite: config.sframeSuite ?? 4,
      tickIntervalMs: config.tickIntervalMs ?? 500,
      updateInterval: config.updateInterval ?? 600,
      gracePeriodMs: config.gracePeriodMs ?? 2000,
      appendTimeoutMs: config.appendTimeoutMs ?? 10000,
      replayWindow: config.replayWindow ?? 128,
    };
    this.context = new Context(this.config.sframeSuite, { replayWindow: this.config.replayWindow });
    this.keys = new EpochKeys(this.context, undefined, this.config.gracePeriodMs);
    this.delivery = new DeliveryClient(url, room, token, clientId, {
      ...deliveryOptions,
      onEntry: (e) => this.enqueue(() => this.onDeliveryEntry(e)),
      onEnd: (failure) => {
        if (failure !== null && !this.closed) {
          if (this.timer) clearInterval(this.timer); // the delivery client ended for good
          this.enqueue(async () => {
            await this.feed({ type: "leave" });
            // another connection with our client id took over: the session is over
            if (failure instanceof ServerError && failure.code === ErrorCode.SUPERSEDED) this.emit({ kind: "superseded", gen: 0, epoch: 0, detail: "SupersededError" });
            else this.emit({ kind: "failed", gen: this.genValue, epoch: this.epochValue ?? 0, detail: failure.name });
          });
        }
      },
    });
  }

  // ------------------------------------------------------------------ state
  get gen(): number { return this.genValue; }
  /** The MLS epoch whose keys are current, or null outside a group. */
  get epoch(): number | null { return this.epochValue; }
  get inGroup(): boolean { return this.epochValue !== null; }
  get epochAuthenticator(): Uint8Array | null { return this.authenticator; }
  /** Members from MLS state (leaf order). */
  get roster(): readonly RosterEntry[] { return this.rosterValue; }
  get safety(): SafetyNumber | null { return this.safetyValue; }
  /** The safety number to compare out of band (12 groups of 5 digits). */
  get safetyNumber(): string | null { return this.safetyValue?.text ?? null; }
  get sendKid(): bigint | null { return this.keys.sendKid; }
  get keyGeneration(): number { return this.keys.generation; }
  get lastSeq(): number { return this.committer?.lastSeq ?? 0; }

  /** A JSON-friendly summary (no secrets). */
  status(): Record<string, unknown> {
    return {
      client: this.clientId,
      gen: this.genValue,
      epoch: this.epochValue,
      auth: this.authenticator === null ? null : toHex(this.authenticator),
      safety: this.safetyNumber,
      safety_short: this.safetyValue?.short ?? null,
      roster: this.rosterValue.map((r) => r.identity),
      duplicates: [...new Set(this.rosterValue.filter((r) => r.duplicate).map((r) => r.identity))].sort(),
      seq: this.lastSeq,
      committer: this.committer?.view.committer() ?? null,
      idle: this.committer?.view.idle() ?? true,
      kid: this.sendKid === null ? null : this.sendKid.toString(),
    };
  }

  /** MLS-Exporter of the current epoch (for tests and applications). */
  exportSecret(label: string, context: Uint8Array, length: number): Promise<Uint8Array> {
    return this.ops.exportSecret(label, context, length);
  }

  // ------------------------------------------------------------------ lifecycle
  /** Connect and start reading the room's log. */
  async start(): Promise<void> {
    const impl = await suiteImpl(this.config.mlsSuite);
    this.decoder = new WireDecoder((kp) => checkKeyPackage(impl, kp));
    this.ops = new MLSGroupOps(impl, this.clientId, this.decoder);
    this.committer = new Committer(this.clientId, this.ops, this.config.updateInterval);
    await this.delivery.connect();
    this.enqueue(() => this.checkConnection());
    this.timer = setInterval(() => {
      this.enqueue(async () => {
        await this.checkConnection();
        await this.keys.expire(now());
        await this.feed({ type: "tick" });
      });
    }, this.config.tickIntervalMs);
  }

  /** Hang up: stop acting, drop the keys, say BYE (the server logs LEFT). */
  async leave(timeoutMs = 5000): Promise<void> {
    if (this.closed) return;
    this.enqueue(() => this.feed({ type: "leave" }));
    await this.queue;
    await this.shutdown(true, timeoutMs);
  }

  /** Stop abruptly, without BYE (the server evicts this client after its timeout). */
  async crash(): Promise<void> {
    if (this.closed) return;
    await this.shutdown(false, 1000);
  }

  private async shutdown(leave: boolean, timeoutMs: number): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await this.delivery.close(leave, timeoutMs);
  }

  /** Resolve when `predicate()` holds (checked after every state change); reject after `timeoutMs`. */
  waitUntil(predicate: () => boolean, timeoutMs: number): Promise<void> {
    if (predicate()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (predicate()) {
          clearTimeout(t);
          this.listeners.delete(check);
          resolve();
        }
      };
      const t = setTimeout(() => {
        this.listeners.delete(check);
        reject(new Error(`timeout: ${JSON.stringify(this.status())}`));
      }, timeoutMs);
      this.listeners.add(check);
    });
  }

  // ------------------------------------------------------------------ internals
  private enqueue(fn: () => Promise<void> | void): void {
    this.queue = this.queue.then(fn).catch((e: unknown) => {
      this.stats.internalErrors += 1;
      console.error(`session ${this.clientId}: internal error: ${(e as Error)?.name}: ${(e as Error)?.message}`);
    });
  }

  private async checkConnection(): Promise<void> {
    const dc = this.delivery;
    if (dc.connections > this.seenConnections) {
      if (this.seenConnections > 0 && !this.disconnectedFed) await this.feed({ type: "disconnected" });
      this.seenConnections = dc.connections;
      this.disconnectedFed = false;
      this.catchupTarget = dc.ready !== null ? Number(dc.ready.headSeq) : Number(dc.lastSeq);
      await this.maybeCaughtUp();
    } else if (!dc.connected && this.seenConnections > 0 && !this.disconnectedFed) {
      this.disconnectedFed = true;
      this.catchupTarget = null;
      await this.feed({ type: "disconnected" });
    }
  }

  private async maybeCaughtUp(): Promise<void> {
    const target = this.catchupTarget;
    if (target !== null && this.committer.lastSeq >= target) {
      this.catchupTarget = null;
      await this.feed({ type: "caught_up", head: target });
    }
  }

  private async onDeliveryEntry(entry: DeliveryEntry): Promise<void> {
    if (this.closed) return;
    this.stats.entries += 1;
    const decoded = await this.decoder.decode(entry);
    if (decoded.rejected !== null) {
      this.stats.rejected += 1;
      this.emit({ kind: "rejected", gen: this.genValue, epoch: this.epochValue ?? 0, detail: decoded.rejected });
    }
    const body = decoded.entry.body;
    if (body.type === "commit") this.ops.expect(body.commit, body.adds.map((w) => w.ref), [...body.removes]);
    await this.feed({ type: "delivered", entry: decoded.entry });
    await this.checkConnection();
    await this.maybeCaughtUp();
  }

  private async feed(event: CommitterEvent): Promise<void> {
    let actions: Action[];
    try {
      actions = await this.committer.handle(event);
    } catch (e) {
      this.stats.internalErrors += 1;
      console.error(`session ${this.clientId}: committer failed on ${event.type}: ${(e as Error).message}`);
      return;
    }
    for (const a of actions) {
      try {
        await this.perform(a);
      } catch (e) {
        this.stats.internalErrors += 1;
        console.error(`session ${this.clientId}: action ${a.type} failed: ${(e as Error).message}`);
      }
    }
    for (const l of [...this.listeners]) l();
  }

  private async perform(a: Action): Promise<void> {
    switch (a.type) {
      case "append":
        void this.append(a);
        return;
      case "epoch_changed":
        await this.epochChanged(a.gen, a.epoch);
        return;
      case "group_lost":
        await this.groupLost(a.reason);
        return;
      case "resync":
        this.stats.resyncs += 1;
        this.delivery.abortConnection();
        return;
    }
  }

  private async append(a: Extract<Action, { type: "append" }>): Promise<void> {
    let kind: string, payload: Uint8Array;
    try {
      [kind, payload] = encodeBody(a.body);
    } catch (e) {
      if (!(e instanceof WireError)) throw e;
      this.enqueue(() => this.feed({ type: "append_result", requestId: a.requestId, accepted: false, seq: 0 }));
      return;
    }
    this.stats.appends += 1;
    const expected = a.expectedSeq === null ? undefined : BigInt(a.expectedSeq);
    try {
      const seq = await this.delivery.append(kind, payload, expected, this.config.appendTimeoutMs);
      this.enqueue(() => this.feed({ type: "append_result", requestId: a.requestId, accepted: true, seq: Number(seq) }));
    } catch (e) {
      if (e instanceof ServerError) {
        const seq = e.code === ErrorCode.SEQUENCE_CONFLICT ? Number(e.seq) : 0;
        this.enqueue(() => this.feed({ type: "append_result", requestId: a.requestId, accepted: false, seq }));
      }
      else if (e instanceof AppendTimeoutError) this.delivery.abortConnection(); // stuck: drop it and resume
      // connection lost / closed: unknown outcome, resolved once caught up again
    }
  }

  private async epochChanged(gen: number, epoch: number): Promise<void> {
    const state = this.ops.state;
    if (state === null) throw new Error("epoch changed without a group");
    const members = membersOf(state);
    const baseKey = await this.ops.exportSecret(EXPORTER_LABEL, new Uint8Array(0), this.context.params.Nk);
    await this.keys.installEpoch(epoch, baseKey, this.ops.ownLeafIndex, members.map((m) => m.leafIndex), now());
    const expireAt = this.config.gracePeriodMs + 5;
    setTimeout(() => this.enqueue(() => this.keys.expire(now())), expireAt);
    const oldRoster = this.rosterValue;
    const names = members.map((m) => String.fromCharCode(...m.identity));
    const roster = members.map((m, i) => ({
      identity: names[i]!, signatureKey: m.signatureKey, leafIndex: m.leafIndex, duplicate: names.filter((n) => n === names[i]).length > 1,
    }));
    this.rosterValue = roster;
    this.genValue = gen;
    this.epochValue = epoch;
    this.authenticator = this.ops.epochAuthenticator;
    const safety = await safetyNumber(this.authenticator, members.map((m) => [m.identity, m.signatureKey] as const));
    const changed = this.safetyValue === null || !this.safetyValue.matches(safety);
    this.safetyValue = safety;
    this.emit({ kind: "epoch", gen, epoch });
    this.emitRosterChanges(oldRoster, roster, gen, epoch);
    if (changed) this.emit({ kind: "safety", gen, epoch, detail: safety.text });
  }

  private async groupLost(reason: string): Promise<void> {
    this.stats.groupLosses += 1;
    if (this.stats.lostReasons.length < 64) this.stats.lostReasons.push(reason);
    await this.keys.clear();
    this.emitRosterChanges(this.rosterValue, [], this.genValue, this.epochValue ?? 0);
    this.rosterValue = [];
    this.epochValue = null;
    this.authenticator = null;
    this.safetyValue = null;
    this.emit({ kind: "lost", gen: this.genValue, epoch: 0, detail: reason });
  }

  /** `roster`, then `joined`/`left` by (identity, key), then new `duplicate` flags (as the Python client). */
  private emitRosterChanges(old: readonly RosterEntry[], now_: readonly RosterEntry[], gen: number, epoch: number): void {
    const key = (r: RosterEntry) => `${r.identity}\u0000${toHex(r.signatureKey)}`;
    const before = new Map(old.map((r) => [key(r), r]));
    const after = new Map(now_.map((r) => [key(r), r]));
    if (before.size === after.size && [...after.keys()].every((k) => before.has(k))) return;
    if (now_.length > 0) this.emit({ kind: "roster", gen, epoch, detail: now_.map((r) => r.identity).join(",") });
    const order = (a: RosterEntry, b: RosterEntry) => compareBytes(ascii(a.identity), ascii(b.identity)) || compareBytes(a.signatureKey, b.signatureKey);
    for (const r of [...after].filter(([k]) => !before.has(k)).map(([, r]) => r).sort(order)) {
      this.emit({ kind: "joined", gen, epoch, identity: r.identity, leaf: r.leafIndex });
    }
    for (const r of [...before].filter(([k]) => !after.has(k)).map(([, r]) => r).sort(order)) {
      if (now_.length > 0 || r.identity !== this.clientId) this.emit({ kind: "left", gen, epoch, identity: r.identity, leaf: r.leafIndex });
    }
    const flagged = new Set(old.filter((r) => r.duplicate).map((r) => r.identity));
    for (const id of [...new Set(now_.filter((r) => r.duplicate && !flagged.has(r.identity)).map((r) => r.identity))].sort()) {
      this.emit({ kind: "duplicate", gen, epoch, identity: id });
    }
  }

  private emit(e: SessionEvent): void {
    if (this.events.length < 10000) this.events.push(e);
    try {
      this.onEvent?.(e);
    } catch (err) {
      console.error(`session ${this.clientId}: onEvent failed: ${(err as Error).name}`);
    }
  }
}

function ascii(s: string): Uint8Array {
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

function toHex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}
