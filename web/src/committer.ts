/**
 * The designated-committer protocol as a pure, deterministic state machine: a line-by-line
 * port of `orange_fast.session.committer` (the rules are written down in docs/protocol.md).
 *
 * Inputs are events (delivered log entries, caught-up, disconnected, append results, ticks,
 * leave); outputs are actions (append, request resync, epoch changed, group lost). MLS work
 * goes through {@link GroupOps}, whose methods may be async (ts-mls is): `handle` is async and the
 * caller feeds one event at a time, awaiting each.
 */

/** A member as admitted by the log: the client and the KeyPackage (ref) that admitted it. */
export interface MemberRef { readonly client: string; readonly kpId: string /* hex */ }
export interface Waiting { readonly ref: MemberRef; readonly keyPackage: Uint8Array }

export type Body =
  | { readonly type: "joined"; readonly client: string }
  | { readonly type: "left"; readonly client: string }
  | { readonly type: "evicted"; readonly client: string }
  | { readonly type: "kp"; readonly kpId: string; readonly keyPackage: Uint8Array }
  | { readonly type: "create"; readonly kpId: string }
  | {
      readonly type: "commit"; readonly gen: number; readonly epoch: number; readonly adds: readonly Waiting[];
      readonly removes: readonly MemberRef[]; readonly commit: Uint8Array; readonly welcome: Uint8Array | null;
    }
  | { readonly type: "update"; readonly gen: number; readonly epoch: number; readonly proposal: Uint8Array }
  | { readonly type: "rejected"; readonly client: string; readonly reason: string };

export interface LogEntry { readonly seq: number; readonly body: Body; readonly sender: string | null }

export type Event =
  | { type: "delivered"; entry: LogEntry }
  | { type: "caught_up"; head: number }
  | { type: "disconnected" }
  | { type: "append_result"; requestId: number; accepted: boolean; seq: number }
  | { type: "tick" }
  | { type: "leave" };

export type Action =
  | { type: "append"; requestId: number; body: Body; expectedSeq: number | null }
  | { type: "resync"; fromSeq: number }
  | { type: "epoch_changed"; gen: number; epoch: number }
  | { type: "group_lost"; reason: string };

/** An MLS operation failed because of received data; the committer resynchronises. */
export class GroupOpsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "GroupOpsError";
  }
}

/** The MLS operations the committer needs (one client's view of one group). */
export interface GroupOps {
  readonly epoch: number | null;
  newKeyPackage(): Awaitable<[string, Uint8Array]>;
  create(kpId: string): Awaitable<void>;
  commit(adds: Uint8Array[], removes: MemberRef[]): Awaitable<[Uint8Array, Uint8Array | null]>;
  mergePending(): Awaitable<void>;
  clearPending(): Awaitable<void>;
  process(commit: Uint8Array): Awaitable<void>;
  join(welcome: Uint8Array, kpId: string): Awaitable<void>;
  reset(): Awaitable<void>;
  proposeUpdate?(): Awaitable<Uint8Array>;
  processProposal?(proposal: Uint8Array): Awaitable<void>;
}
type Awaitable<T> = T | Promise<T>;

export const refKey = (r: MemberRef): string => `${r.client}\u0000${r.kpId}`;
const sameRef = (a: MemberRef | null, b: MemberRef | null): boolean =>
  a !== null && b !== null && a.client === b.client && a.kpId === b.kpId;
const eqBytes = (a: Uint8Array | null, b: Uint8Array | null): boolean => {
  if (a === null || b === null || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
};

/** The public state every client folds from the log (identical for all clients). */
export class View {
  constructor(
    readonly gen = 0,
    readonly epoch = 0,
    readonly members: readonly MemberRef[] = [],
    readonly stale: ReadonlySet<string> = new Set(),
    readonly waiting: readonly Waiting[] = [],
    readonly updates: ReadonlySet<string> = new Set(),
  ) {}

  isStale(m: MemberRef): boolean { return this.stale.has(refKey(m)); }
  /** The designated committer: the earliest-admitted member that is not stale. */
  committer(): string | null { return this.committerRef()?.client ?? null; }
  committerRef(): MemberRef | null {
    for (const m of this.members) if (!this.isStale(m)) return m;
    return null;
  }
  /** The client that must (re)create the group: first waiting one while no live member exists. */
  creator(): string | null {
    return this.committer() === null && this.waiting.length > 0 ? this.waiting[0]!.ref.client : null;
  }
  liveMembers(): MemberRef[] { return this.members.filter((m) => !this.isStale(m)); }
  idle(): boolean { return this.waiting.length === 0 && this.stale.size === 0 && this.updates.size === 0; }
  isWaiting(ref: MemberRef): boolean { return this.waiting.some((w) => sameRef(w.ref, ref)); }
  private isMember(ref: MemberRef): boolean { return this.members.some((m) => sameRef(m, ref)); }

  /** Fold one entry: the new view and an outcome code ("applied", "noop:...", "ignored:..."). */
  apply(entry: LogEntry): [View, string] {
    const body = entry.body;
    if (body.type === "joined") return [this, "noop:presence"];
    if (body.type === "left" || body.type === "evicted") {
      const client = body.client;
      const waiting = this.waiting.filter((w) => w.ref.client !== client);
      const stale = new Set(this.stale);
      for (const m of this.members) if (m.client === client) stale.add(refKey(m));
      if (waiting.length === this.waiting.length && stale.size === this.stale.size) return [this, "noop:not-a-member"];
      return [new View(this.gen, this.epoch, this.members, stale, waiting, this.updates), "applied"];
    }
    if (body.type === "rejected") return [this, "ignored:rejected"];
    const sender = entry.sender;
    if (sender === null) return [this, "ignored:no-sender"];
    if (body.type === "kp") {
      const ref = { client: sender, kpId: body.kpId };
      if (this.isMember(ref) || this.isWaiting(ref)) return [this, "ignored:duplicate-keypackage"];
      const waiting = [...this.waiting.filter((w) => w.ref.client !== sender), { ref, keyPackage: body.keyPackage }];
      const stale = new Set(this.stale);
      for (const m of this.members) if (m.client === sender) stale.add(refKey(m));
      return [new View(this.gen, this.epoch, this.members, stale, waiting, this.updates), "applied"];
    }
    if (body.type === "update") {
      if (body.gen !== this.gen || body.epoch !== this.epoch) return [this, "ignored:wrong-epoch"];
      const mine = this.liveMembers().filter((m) => m.client === sender);
      if (mine.length === 0 || sameRef(mine[0]!, this.committerRef())) return [this, "ignored:proposal-not-from-member"];
      if (this.updates.has(refKey(mine[0]!))) return [this, "ignored:duplicate-proposal"];
      const updates = new Set(this.updates).add(refKey(mine[0]!));
      return [new View(this.gen, this.epoch, this.members, this.stale, this.waiting, updates), "applied"];
    }
    if (body.type === "create") {
      if (this.committer() !== null) return [this, "ignored:group-alive"];
      if (this.waiting.length === 0 || !sameRef(this.waiting[0]!.ref, { client: sender, kpId: body.kpId })) {
        return [this, "ignored:not-designated-creator"];
      }
      return [new View(this.gen + 1, 0, [this.waiting[0]!.ref], new Set(), this.waiting.slice(1), new Set()), "applied"];
    }
    // commit
    if (body.gen !== this.gen || body.epoch !== this.epoch) return [this, "ignored:wrong-epoch"];
    const committer = this.committer();
    if (committer === null) return [this, "ignored:no-group"];
    if (sender !== committer) return [this, "ignored:not-designated-committer"];
    const { adds, removes } = body;
    if (adds.length > 0 || removes.length > 0) {
      const addKeys = adds.map((w) => refKey(w.ref));
      if (new Set(addKeys).size !== addKeys.length || new Set(adds.map((w) => w.ref.client)).size !== adds.length) {
        return [this, "ignored:duplicate-add"];
      }
      // a Waiting is equal to another if ref and KeyPackage bytes are equal
      if (adds.some((a) => !this.waiting.some((w) => sameRef(w.ref, a.ref) && eqBytes(w.keyPackage, a.keyPackage)))) {
        return [this, "ignored:add-not-waiting"];
      }
      const remKeys = removes.map(refKey);
      if (new Set(remKeys).size !== remKeys.length || removes.some((r) => !this.isStale(r) || !this.isMember(r))) {
        return [this, "ignored:remove-not-stale"];
      }
    }
    const rem = new Set(removes.map(refKey));
    const members = [...this.members.filter((m) => !rem.has(refKey(m))), ...adds.map((w) => w.ref)];
    const waiting = this.waiting.filter((w) => !adds.some((a) => sameRef(a.ref, w.ref) && eqBytes(a.keyPackage, w.keyPackage)));
    const stale = new Set([...this.stale].filter((k) => !rem.has(k)));
    return [new View(this.gen, this.epoch + 1, members, stale, waiting, new Set()), "applied"];
  }
}

interface Inflight {
  readonly requestId: number;
  readonly kind: "kp" | "create" | "commit" | "proposal" | "orphan";
  readonly expectedSeq: number | null;
  readonly kpId: string | null;
  readonly acceptedSeq: number | null;
  readonly commit: Uint8Array | null;
}

/** The designated-committer state machine of one client in one room. */
export class Committer {
  view = new View();
  /** (seq, outcome) of no-op/ignored entries, bounded. */
  notes: [number, string][] = [];
  private caughtUp = false;
  private stoppedFlag = false;
  private lastSeqValue = 0;
  private inGroupFlag = false;
  private myGen = 0;
  private myRef: MemberRef | null = null;
  private myKps = new Set<string>();
  private currentKp: string | null = null;
  private inflight: Inflight | null = null;
  private nextRequest = 1;
  private ticks = 0;
  private waitSeq = 0;
  /** Waiting KeyPackages our MLS group refused to add (passed over while they wait). */
  private refused = new Set<string>();

  constructor(readonly client: string, readonly ops: GroupOps, readonly updateInterval = 0) {
    if (typeof client !== "string" || client.length === 0) throw new TypeError("client must be a non-empty string");
    if (!Number.isInteger(updateInterval) || updateInterval < 0) throw new RangeError("updateInterval must be an integer >= 0");
  }

  get lastSeq(): number { return this.lastSeqValue; }
  get inGroup(): boolean { return this.inGroupFlag; }
  get stopped(): boolean { return this.stoppedFlag; }
  get isCaughtUp(): boolean { return this.caughtUp; }
  get ownRef(): MemberRef | null { return this.inGroupFlag ? this.myRef : null; }
  get hasInflight(): boolean { return this.inflight !== null; }

  /** Process one event; return the actions to perform, in order. */
  async handle(event: Event): Promise<Action[]> {
    if (event.type === "delivered") checkEntry(event.entry);
    else if (event.type === "caught_up" && (!Number.isInteger(event.head) || event.head < 0)) throw new TypeError("caught_up.head must be an integer >= 0");
    const out: Action[] = [];
    if (this.stoppedFlag) return out;
    switch (event.type) {
      case "delivered": await this.onEntry(event.entry, out); break;
      case "caught_up": await this.onCaughtUp(event.head, out); break;
      case "disconnected": this.caughtUp = false; break;
      case "append_result": await this.onResult(event, out); break;
      case "tick": this.ticks += 1; this.waitSeq = 0; break;
      case "leave":
        this.stoppedFlag = true;
        if (this.inGroupFlag) await this.dropGroup("left", out);
        return out;
      default: throw new TypeError("unknown event type");
    }
    await this.decide(out);
    return out;
  }

  private note(seq: number, outcome: string): void {
    if (this.notes.length < 256) this.notes.push([seq, outcome]);
  }

  private async onEntry(entry: LogEntry, out: Action[]): Promise<void> {
    if (entry.seq <= this.lastSeqValue) return;
    if (entry.seq !== this.lastSeqValue + 1) {
      out.push({ type: "resync", fromSeq: this.lastSeqValue + 1 });
      return;
    }
    const old = this.view;
    const [next, outcome] = old.apply(entry);
    if (outcome !== "applied") this.note(entry.seq, outcome);
    this.lastSeqValue = entry.seq;
    const body = entry.body;
    const mine = entry.sender === this.client;
    const inf = this.inflight;
    let ownCreate = false;
    let ownCommit = false;
    if (inf !== null) {
      if (inf.kind === "kp") {
        if ((mine && body.type === "kp" && body.kpId === inf.kpId) || entry.seq === inf.acceptedSeq) this.inflight = null;
      } else if (inf.kind === "proposal") {
        if ((mine && body.type === "update" && eqBytes(body.proposal, inf.commit)) || entry.seq === inf.acceptedSeq) this.inflight = null;
      } else if (entry.seq === inf.expectedSeq) {
        this.inflight = null;
        if (mine && outcome === "applied" && inf.kind === "create" && body.type === "create") ownCreate = true;
        else if (mine && outcome === "applied" && inf.kind === "commit" && body.type === "commit" && eqBytes(body.commit, inf.commit)) ownCommit = true;
        else await this.abandon(inf);
      }
    }
    this.view = next;
    if (outcome !== "applied") return;
    if (body.type === "update") {
      if (mine && this.inGroupFlag) this.ticks = 0; // our refresh is in the view: the next one is due an interval later
      if (this.inGroupFlag && !mine && this.myGen === next.gen && this.ops.processProposal) {
        try {
          await this.ops.processProposal(body.proposal);
        } catch (e) {
          if (!(e instanceof GroupOpsError)) throw e;
          this.note(entry.seq, "proposal-invalid");
        }
      }
    } else if (body.type === "create") {
      if (ownCreate) {
        this.inGroupFlag = true;
        this.myGen = next.gen;
        this.myRef = next.members[0]!;
        this.myKps.delete(body.kpId);
        this.ticks = 0;
        out.push({ type: "epoch_changed", gen: next.gen, epoch: 0 });
      } else if (this.inGroupFlag) {
        await this.dropGroup("group-recreated", out);
      }
    } else if (body.type === "commit") {
      if (ownCommit) {
        await this.guard(() => this.ops.mergePending(), next, out, "merge-failed", body.adds.length === 0 && body.removes.length === 0);
      } else if (this.inGroupFlag) {
        if (this.myGen !== old.gen || this.ops.epoch !== old.epoch) await this.dropGroup("missed-epoch", out);
        else if (body.removes.some((r) => sameRef(r, this.myRef))) await this.dropGroup("removed", out);
        else await this.guard(() => this.ops.process(body.commit), next, out, "fork");
      } else {
        const mineAdd = body.adds.filter((w) => w.ref.client === this.client && this.myKps.has(w.ref.kpId));
        if (mineAdd.length > 0) {
          const ref = mineAdd[0]!.ref;
          this.myKps.delete(ref.kpId);
          if (body.welcome === null) {
            this.note(entry.seq, "welcome-missing");
          } else {
            let ok = true;
            try {
              await this.ops.join(body.welcome, ref.kpId);
            } catch (e) {
              if (!(e instanceof GroupOpsError)) throw e;
              ok = false;
              this.note(entry.seq, "welcome-failed");
              await this.safeReset();
            }
            if (ok) {
              if (this.ops.epoch === next.epoch) {
                this.inGroupFlag = true;
                this.myGen = next.gen;
                this.myRef = ref;
                this.ticks = 0;
                out.push({ type: "epoch_changed", gen: next.gen, epoch: next.epoch });
              } else {
                this.note(entry.seq, "welcome-wrong-epoch");
                await this.safeReset();
              }
            }
          }
        }
      }
    }
    if (
      this.inGroupFlag &&
      (this.myGen !== next.gen || this.myRef === null || !next.members.some((m) => sameRef(m, this.myRef)) || next.isStale(this.myRef))
    ) {
      await this.dropGroup("not-a-live-member", out);
    }
  }

  private async guard(fn: () => Awaitable<void>, next: View, out: Action[], reason: string, selfUpdate = false): Promise<void> {
    try {
      await fn();
    } catch (e) {
      if (!(e instanceof GroupOpsError)) throw e;
      await this.dropGroup(reason, out);
      return;
    }
    if (this.ops.epoch !== next.epoch) {
      await this.dropGroup("epoch-mismatch", out);
      return;
    }
    if (selfUpdate && sameRef(this.myRef, next.committerRef())) this.ticks = 0;
    out.push({ type: "epoch_changed", gen: next.gen, epoch: next.epoch });
  }

  private async abandon(inf: Inflight): Promise<void> {
    if (inf.kind === "commit") {
      try { await this.ops.clearPending(); } catch (e) { if (!(e instanceof GroupOpsError)) throw e; }
    } else if (inf.kind === "create") {
      await this.safeReset();
    }
  }

  private async safeReset(): Promise<void> {
    try { await this.ops.reset(); } catch (e) { if (!(e instanceof GroupOpsError)) throw e; }
  }

  private async dropGroup(reason: string, out: Action[]): Promise<void> {
    if (this.inflight !== null && this.inflight.kind === "commit") this.inflight = { ...this.inflight, kind: "orphan" };
    await this.safeReset();
    this.inGroupFlag = false;
    this.myRef = null;
    out.push({ type: "group_lost", reason });
  }

  private async onCaughtUp(head: number, out: Action[]): Promise<void> {
    if (head > this.lastSeqValue) {
      out.push({ type: "resync", fromSeq: this.lastSeqValue + 1 });
      return;
    }
    this.caughtUp = true;
    const inf = this.inflight;
    if (inf !== null) {
      if (inf.acceptedSeq !== null) {
        if (inf.acceptedSeq <= head) this.inflight = null;
      } else if (inf.kind === "kp" || inf.kind === "proposal" || (inf.expectedSeq !== null && inf.expectedSeq > head)) {
        this.inflight = null;
        await this.abandon(inf);
      }
    }
  }

  private async onResult(res: { requestId: number; accepted: boolean; seq: number }, _out: Action[]): Promise<void> {
    const inf = this.inflight;
    if (inf === null || res.requestId !== inf.requestId) return;
    if (res.accepted) {
      if (res.seq > this.lastSeqValue) this.inflight = { ...inf, acceptedSeq: res.seq };
    } else {
      this.inflight = null;
      await this.abandon(inf);
      this.waitSeq = Math.max(res.seq, inf.expectedSeq ?? 0, this.lastSeqValue + 1);
    }
  }

  private append(kind: Inflight["kind"], body: Body, expected: number | null, out: Action[], kpId: string | null = null): void {
    const rid = this.nextRequest++;
    const commit = body.type === "commit" ? body.commit : null;
    this.inflight = { requestId: rid, kind, expectedSeq: expected, kpId, acceptedSeq: null, commit };
    out.push({ type: "append", requestId: rid, body, expectedSeq: expected });
  }

  private async decide(out: Action[]): Promise<void> {
    if (!this.caughtUp || this.stoppedFlag || this.inflight !== null || this.lastSeqValue < this.waitSeq) return;
    const v = this.view;
    const nxt = this.lastSeqValue + 1;
    if (!this.inGroupFlag) {
      const cur = this.currentKp;
      const ref = cur !== null ? { client: this.client, kpId: cur } : null;
      if (ref !== null && cur !== null && this.myKps.has(cur) && v.isWaiting(ref)) {
        if (!(v.creator() === this.client && sameRef(v.waiting[0]!.ref, ref))) return;
        let created = true;
        try {
          await this.ops.create(cur);
        } catch (e) {
          if (!(e instanceof GroupOpsError)) throw e;
          created = false;
          await this.safeReset();
          this.myKps.delete(cur);
          this.currentKp = null;
        }
        if (created) {
          this.append("create", { type: "create", kpId: cur }, nxt, out);
          return;
        }
      }
      const [kpId, kp] = await this.ops.newKeyPackage();
      this.myKps.add(kpId);
      this.currentKp = kpId;
      this.append("kp", { type: "kp", kpId, keyPackage: kp }, null, out, kpId);
      return;
    }
    const due = this.updateInterval > 0 && this.ticks >= this.updateInterval;
    if (sameRef(v.committerRef(), this.myRef)) {
      // A KeyPackage our group refused to add is passed over while it waits.
      this.refused = new Set([...this.refused].filter((k) => v.waiting.some((w) => refKey(w.ref) === k)));
      const waiting = v.waiting.filter((w) => !this.refused.has(refKey(w.ref)));
      let adds: readonly Waiting[] = [];
      let removes: MemberRef[] = [];
      if (waiting.length > 0) adds = waiting;
      else removes = v.members.filter((m) => v.isStale(m));
      if (adds.length > 0 || removes.length > 0 || v.updates.size > 0 || due) await this.commit(adds, removes, nxt, out);
      return;
    }
    if (due && this.ops.proposeUpdate && !(this.myRef !== null && v.updates.has(refKey(this.myRef)))) {
      let proposal: Uint8Array;
      try {
        proposal = await this.ops.proposeUpdate();
      } catch (e) {
        if (!(e instanceof GroupOpsError)) throw e;
        await this.dropGroup("propose-failed", out);
        return;
      }
      // `ticks` is reset when the proposal lands in the view: one that lost the race with a
      // commit (ignored: wrong epoch) or was lost is made again for the new epoch at once
      const rid = this.nextRequest++;
      this.inflight = { requestId: rid, kind: "proposal", expectedSeq: null, kpId: null, acceptedSeq: null, commit: proposal };
      out.push({ type: "append", requestId: rid, body: { type: "update", gen: v.gen, epoch: v.epoch, proposal }, expectedSeq: null });
    }
  }

  /** The adds our group refuses one by one (each tried in a commit that is discarded). */
  private async refusedAdds(adds: readonly Waiting[]): Promise<MemberRef[]> {
    const refused: MemberRef[] = [];
    for (const w of adds) {
      try {
        await this.ops.commit([w.keyPackage], []);
      } catch (e) {
        if (!(e instanceof GroupOpsError)) throw e;
        refused.push(w.ref);
        continue;
      }
      await this.ops.clearPending();
    }
    return refused;
  }

  private async commit(adds: readonly Waiting[], removes: MemberRef[], nxt: number, out: Action[]): Promise<void> {
    const v = this.view;
    let result: [Uint8Array, Uint8Array | null];
    try {
      result = await this.ops.commit(adds.map((w) => w.keyPackage), removes);
    } catch (e) {
      if (!(e instanceof GroupOpsError)) throw e;
      const refused = await this.refusedAdds(adds);
      if (refused.length > 0) {
        // A waiting KeyPackage that MLS will not add (hostile or stale): pass it over and act
        // again at the next event, instead of dropping the group (every committer in turn
        // would fail on it the same way).
        refused.sort((a, b) => (a.client < b.client ? -1 : a.client > b.client ? 1 : a.kpId < b.kpId ? -1 : a.kpId > b.kpId ? 1 : 0));
        for (const ref of refused) {
          this.refused.add(refKey(ref));
          this.note(this.lastSeqValue, `refused:keypackage:${ref.client}`);
        }
        return;
      }
      await this.dropGroup("commit-failed", out);
      return;
    }
    const [commit, welcome] = result;
    this.append("commit", { type: "commit", gen: v.gen, epoch: v.epoch, adds: [...adds], removes, commit, welcome }, nxt, out);
  }
}

function checkEntry(entry: LogEntry): void {
  if (!Number.isInteger(entry.seq) || entry.seq < 1) throw new TypeError("LogEntry.seq must be an integer >= 1");
  if (entry.sender !== null && typeof entry.sender !== "string") throw new TypeError("LogEntry.sender must be a string or null");
}
