/**
 * The committer's GroupOps over ts-mls (mirrors `orange_fast.session.mlsops`).
 *
 * Members are identified by their MLS leaf index. A MemberRef (client and KeyPackage) is bound
 * to a leaf when the commit that adds it is applied (the new leaf carries the KeyPackage's
 * signature key, unique in the room: the WireDecoder refuses a reused key), or, for a joiner,
 * once from the Welcome's tree; the binding ends when the leaf is removed. A member without a
 * leaf in our tree has nothing to remove: a commit skips it and every member expects exactly
 * that, so a stale member never makes a committer fail.
 *
 * Handshake messages are PrivateMessages; Welcomes carry the ratchet tree extension (the
 * Python side joins from the Welcome alone). A member that is not the committer refreshes its
 * leaf with an Update proposal (`proposeUpdate`); the new leaf's HPKE private key is kept until
 * the epoch ends and installed when the commit that includes the proposal is processed. The
 * group state is only replaced after an operation succeeded.
 */
import {
  createCommit,
  createGroup,
  decodeMlsMessage,
  defaultCapabilities,
  emptyPskIndex,
  encodeMlsMessage,
  generateKeyPackage,
  getCiphersuiteFromName,
  getCiphersuiteImpl,
  joinGroup,
  mlsExporter,
  processMessage,
  type CiphersuiteImpl,
  type ClientState,
  type IncomingMessageCallback,
  type KeyPackage,
  type PrivateKeyPackage,
  type Proposal,
} from "ts-mls";
import { createProposal } from "ts-mls/createMessage.js";
import { signLeafNodeCommit, type LeafNodeTBSCommit } from "ts-mls/leafNode.js";
import { updateLeafKey } from "ts-mls/privateKeyPath.js";
import { makeKeyPackageRef, verifyKeyPackage } from "ts-mls/keyPackage.js";
import { GroupOpsError, type GroupOps, type MemberRef } from "./committer.js";
import { constantTimeEqual } from "./sframe.js";
import { WireError, toHex, type CheckedKeyPackage, type WireDecoder } from "./wire.js";

/** MLS cipher suites this client supports, by IANA id. */
export const MLS_SUITES: Readonly<Record<number, string>> = Object.freeze({
  1: "MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519",
});

/** An MLS operation of the session failed (bad Welcome or commit, fork, unknown member). */
export class MLSOpsError extends GroupOpsError {
  constructor(message: string) {
    super(message);
    this.name = "MLSOpsError";
  }
}

/** The ts-mls implementation of an MLS cipher suite (1 = X25519/AES-128-GCM/SHA-256/Ed25519). */
export async function suiteImpl(suite: number): Promise<CiphersuiteImpl> {
  const name = MLS_SUITES[suite];
  if (name === undefined) throw new RangeError(`unsupported MLS cipher suite ${suite}`);
  return getCiphersuiteImpl(getCiphersuiteFromName(name as Parameters<typeof getCiphersuiteFromName>[0]));
}

const ascii = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));
const bytesEqual = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && constantTimeEqual(a, b);

/** From one hour ago to 90 days from now, as the Python side's KeyPackages. */
export function keyPackageLifetime(nowSeconds = Math.floor(Date.now() / 1000)): { notBefore: bigint; notAfter: bigint } {
  return { notBefore: BigInt(Math.max(0, nowSeconds - 3600)), notAfter: BigInt(nowSeconds + 90 * 86400) };
}

/** A member as MLS says: identity, signature key, leaf index. */
export interface Member { identity: Uint8Array; signatureKey: Uint8Array; leafIndex: number }

/** Members of a ts-mls group state, in leaf order. */
export function membersOf(state: ClientState): Member[] {
  const out: Member[] = [];
  state.ratchetTree.forEach((node, i) => {
    if (i % 2 === 0 && node !== undefined && node.nodeType === "leaf") {
      const cred = node.leaf.credential as { credentialType: string; identity?: Uint8Array };
      out.push({ identity: cred.identity ?? new Uint8Array(0), signatureKey: node.leaf.signaturePublicKey, leafIndex: i / 2 });
    }
  });
  return out;
}

/** The leaves a commit added and removed: members (leaf, signature key) only after / only before. */
export function leafChanges(before: ClientState | null, after: ClientState): { added: Member[]; removed: number[] } {
  const key = (m: Member) => `${m.leafIndex}:${toHex(m.signatureKey)}`;
  const old = before === null ? [] : membersOf(before);
  const now = membersOf(after);
  const oldKeys = new Set(old.map(key));
  const nowKeys = new Set(now.map(key));
  return {
    added: now.filter((m) => !oldKeys.has(key(m))),
    removed: old.filter((m) => !nowKeys.has(key(m))).map((m) => m.leafIndex).sort((a, b) => a - b),
  };
}

/** Decode one MLSMessage(KeyPackage) strictly: canonical bytes, our suite, valid signature. */
export async function checkKeyPackage(impl: CiphersuiteImpl, data: Uint8Array): Promise<CheckedKeyPackage> {
  let kp: KeyPackage;
  try {
    const decoded = decodeMlsMessage(data, 0);
    if (decoded === undefined || decoded[1] !== data.length) throw new WireError("KeyPackage does not parse");
    const msg = decoded[0];
    if (msg.wireformat !== "mls_key_package") throw new WireError("not a KeyPackage");
    kp = msg.keyPackage;
    if (!bytesEqual(encodeMlsMessage(msg), data)) throw new WireError("KeyPackage is not canonically encoded");
    if (kp.cipherSuite !== impl.name) throw new WireError("KeyPackage of another cipher suite");
    if (!(await verifyKeyPackage(kp, impl.signature))) throw new WireError("bad KeyPackage signature");
  } catch (e) {
    if (e instanceof WireError) throw e;
    throw new WireError(`invalid KeyPackage: ${(e as Error).name}`);
  }
  const leaf = kp.leafNode;
  const cred = leaf.credential as { credentialType: string; identity?: Uint8Array };
  if (cred.credentialType !== "basic" || cred.identity === undefined) throw new WireError("KeyPackage without a basic credential");
  if (cred.identity.some((b) => b > 0x7f)) throw new WireError("KeyPackage identity is not its sender's");
  const kpId = toHex(await makeKeyPackageRef(kp, impl.hash));
  return {
    kpId,
    identity: String.fromCharCode(...cred.identity),
    signatureKey: leaf.signaturePublicKey,
    uniqueKeys: ["s" + toHex(leaf.signaturePublicKey), "e" + toHex(leaf.hpkePublicKey), "i" + toHex(kp.initKey)],
    lifetime: [leaf.lifetime.notBefore, leaf.lifetime.notAfter],
  };
}

/**
 * RFC 9420 §7.3 for a received commit (ts-mls checks the committer's path leaf, not the added
 * leaves): an Add whose signature key is that of a leaf the commit keeps, or whose encryption key
 * is that of a node it keeps or of another new leaf of the commit, is refused with an
 * {@link MLSOpsError}, as the Python MLS (`validate_proposal_list`) refuses it. The state is untouched.
 */
export function uniqueAddKeys(state: ClientState): IncomingMessageCallback {
  return (incoming) => {
    if (incoming.kind !== "commit") return "reject";
    const removed = new Set<number>();
    for (const p of incoming.proposals) if (p.proposal.proposalType === "remove") removed.add(Number(p.proposal.remove.removed));
    const sig = new Set<string>();
    const enc = new Set<string>();
    state.ratchetTree.forEach((node, i) => {
      if (node?.nodeType === "leaf" && !removed.has(i / 2)) {
        sig.add(toHex(node.leaf.signaturePublicKey));
        enc.add(toHex(node.leaf.hpkePublicKey));
      } else if (node?.nodeType === "parent") enc.add(toHex(node.parent.hpkePublicKey));
    });
    for (const p of incoming.proposals) if (p.proposal.proposalType === "update") enc.add(toHex(p.proposal.update.leafNode.hpkePublicKey));
    for (const p of incoming.proposals) {
      if (p.proposal.proposalType !== "add") continue;
      const leaf = p.proposal.add.keyPackage.leafNode;
      const [s, e] = [toHex(leaf.signaturePublicKey), toHex(leaf.hpkePublicKey)];
      if (sig.has(s) || enc.has(e)) throw new MLSOpsError("commit adds a leaf whose keys are already in use");
      sig.add(s);
      enc.add(e);
    }
    return "accept";
  };
}

/** One client's MLS state in one room, driven by the committer. */
export class MLSGroupOps implements GroupOps {
  state: ClientState | null = null;
  private pending: ClientState | null = null;
  private readonly kps = new Map<string, { pub: KeyPackage; priv: PrivateKeyPackage }>();
  private expectation: { commit: Uint8Array; adds: string[]; removes: number[] } | null = null;
  /** kpId of an admitted member -> its leaf index in our tree. */
  private leaves = new Map<string, number>();
  /** Our Update proposal of this epoch: the new leaf's HPKE key pair. */
  private ownUpdate: { epoch: bigint; publicKey: Uint8Array; privateKey: Uint8Array } | null = null;
  keyPackagesMade = 0;

  constructor(readonly impl: CiphersuiteImpl, readonly identity: string, readonly decoder: WireDecoder) {}

  get epoch(): number | null {
    return this.state === null ? null : Number(this.state.groupContext.epoch);
  }

  async newKeyPackage(): Promise<[string, Uint8Array]> {
    const kp = await generateKeyPackage({ credentialType: "basic", identity: ascii(this.identity) }, defaultCapabilities(), keyPackageLifetime(), [], this.impl);
    const ref = toHex(await makeKeyPackageRef(kp.publicPackage, this.impl.hash));
    this.kps.set(ref, { pub: kp.publicPackage, priv: kp.privatePackage });
    this.keyPackagesMade += 1;
    return [ref, encodeMlsMessage({ keyPackage: kp.publicPackage, wireformat: "mls_key_package", version: "mls10" })];
  }

  async create(kpId: string): Promise<void> {
    const kp = this.kps.get(kpId);
    if (kp === undefined) throw new MLSOpsError("unknown KeyPackage");
    let state: ClientState;
    try {
      state = await createGroup(globalThis.crypto.getRandomValues(new Uint8Array(16)), kp.pub, kp.priv, [], this.impl);
    } catch (e) {
      throw new MLSOpsError(`create failed: ${(e as Error).name}`);
    }
    this.state = state; // the KeyPackage stays usable: a lost Create race retries with it
    this.pending = null;
    this.ownUpdate = null;
    this.leaves = new Map([[kpId, state.privatePath.leafIndex]]);
  }

  /** The leaf index of member `ref` in our group, or null if it has no leaf in it. */
  leafOf(ref: MemberRef): number | null {
    if (this.decoder.signatureKey(ref) === null) return null; // unknown KeyPackage, or not the client's
    return this.leaves.get(ref.kpId) ?? null;
  }

  /** The leaves of `refs` that are in our group (sorted, each once). */
  private leavesOf(refs: readonly MemberRef[]): number[] {
    const out = new Set<number>();
    for (const r of refs) {
      const leaf = this.leafOf(r);
      if (leaf !== null) out.add(leaf);
    }
    return [...out].sort((a, b) => a - b);
  }

  /** Follow a commit from `before` to `after`: unbind removed leaves, bind each new leaf to its KeyPackage. */
  private bindLeaves(before: ClientState | null, after: ClientState): void {
    const { added, removed } = leafChanges(before, after);
    const gone = new Set(removed);
    for (const [k, leaf] of [...this.leaves]) if (gone.has(leaf)) this.leaves.delete(k);
    for (const m of added) {
      const kpId = this.decoder.keyPackageOf(m.signatureKey);
      if (kpId !== null) this.leaves.set(kpId, m.leafIndex);
    }
  }

  async commit(adds: Uint8Array[], removes: MemberRef[]): Promise<[Uint8Array, Uint8Array | null]> {
    const state = this.require();
    try {
      // a stale member without a leaf in our tree has nothing to remove (see expect())
      const leaves = this.leavesOf(removes);
      const proposals: Proposal[] = leaves.map((leaf) => ({ proposalType: "remove", remove: { removed: leaf } }) as Proposal);
      // RFC 9420 §7.3: a new leaf's encryption and signature keys are unique in the tree (ts-mls
      // checks the tree, not the new leaf against it; the Python MLS refuses such an add too)
      const seen = new Set<string>();
      state.ratchetTree.forEach((node) => {
        if (node?.nodeType === "leaf") seen.add("e" + toHex(node.leaf.hpkePublicKey)).add("s" + toHex(node.leaf.signaturePublicKey));
        else if (node?.nodeType === "parent") seen.add("e" + toHex(node.parent.hpkePublicKey));
      });
      for (const b of adds) {
        const msg = decodeMlsMessage(b, 0)?.[0];
        if (msg === undefined || msg.wireformat !== "mls_key_package") throw new MLSOpsError("not a KeyPackage");
        const leaf = msg.keyPackage.leafNode;
        for (const k of ["e" + toHex(leaf.hpkePublicKey), "s" + toHex(leaf.signaturePublicKey)]) {
          if (seen.has(k)) throw new MLSOpsError("KeyPackage reuses a key of the group");
          seen.add(k);
        }
        proposals.push({ proposalType: "add", add: { keyPackage: msg.keyPackage } } as Proposal);
      }
      // every cached Update proposal of the epoch is committed by reference (ts-mls includes
      // them all), except our own from before we became the committer (MLS forbids it)
      const own = state.privatePath.leafIndex;
      const cached = Object.fromEntries(Object.entries(state.unappliedProposals).filter(([, p]) => p.senderLeafIndex !== own));
      const result = await createCommit({ state: { ...state, unappliedProposals: cached }, cipherSuite: this.impl }, { extraProposals: proposals, ratchetTreeExtension: true });
      this.pending = result.newState;
      const commit = encodeMlsMessage(result.commit);
      const welcome = result.welcome ? encodeMlsMessage({ welcome: result.welcome, wireformat: "mls_welcome", version: "mls10" }) : null;
      return [commit, welcome];
    } catch (e) {
      this.pending = null;
      if (e instanceof MLSOpsError) throw e;
      throw new MLSOpsError(`commit failed: ${(e as Error).name}`);
    }
  }

  mergePending(): void {
    if (this.pending === null) throw new MLSOpsError("nothing pending");
    const before = this.state;
    this.state = this.pending;
    this.pending = null;
    this.ownUpdate = null;
    this.bindLeaves(before, this.state);
  }

  clearPending(): void {
    this.pending = null;
  }

  /**
   * Announce what the next commit claims to do (from its log entry); {@link process} checks it.
   * Adds are expected by the signature keys of their KeyPackages, removes by leaf: the leaves of
   * the named members that are in our group (a member without a leaf is removed from the log's
   * view only).
   */
  expect(commit: Uint8Array, adds: MemberRef[], removes: MemberRef[]): void {
    const keys = adds.map((r) => toHex(this.decoder.signatureKey(r) ?? new Uint8Array(0))).sort();
    this.expectation = { commit, adds: keys, removes: this.leavesOf(removes) };
  }

  async process(commit: Uint8Array): Promise<void> {
    const state = this.require();
    const expect = this.expectation;
    this.expectation = null;
    const next = await this.processCommit(state, commit);
    if (next.groupContext.epoch !== state.groupContext.epoch + 1n) throw new MLSOpsError("message is not a commit of this epoch");
    if (expect !== null && bytesEqual(expect.commit, commit)) {
      const { added, removed } = leafChanges(state, next);
      const addedKeys = added.map((m) => toHex(m.signatureKey)).sort();
      if (addedKeys.join() !== expect.adds.join() || removed.join() !== expect.removes.join()) {
        throw new MLSOpsError("message does not do what its log entry states");
      }
    }
    this.state = next;
    this.ownUpdate = null;
    this.bindLeaves(state, next);
  }

  /**
   * Process a commit. With an Update proposal of ours pending, the commit that includes it sets
   * our leaf to the new HPKE key: its path secret is encrypted to that key, so our state holds
   * the new private key while it is processed; if the commit did not include our proposal the
   * old key is put back (or, when it was the one needed, the commit is processed again with it).
   */
  private async processCommit(state: ClientState, commit: Uint8Array): Promise<ClientState> {
    const upd = this.ownUpdate;
    const check = uniqueAddKeys(state);
    if (upd === null || upd.epoch !== state.groupContext.epoch) return this.processHandshake(state, commit, check, "commit");
    const own = state.privatePath.leafIndex;
    const oldKey = state.privatePath.privateKeys[2 * own];
    let next: ClientState;
    try {
      next = await this.processHandshake({ ...state, privatePath: updateLeafKey(state.privatePath, upd.privateKey) }, commit, check, "commit");
    } catch (e) {
      if (!(e instanceof MLSOpsError) || oldKey === undefined) throw e;
      return this.processHandshake(state, commit, check, "commit");
    }
    const leaf = next.ratchetTree[2 * own];
    const updated = leaf !== undefined && leaf.nodeType === "leaf" && bytesEqual(leaf.leaf.hpkePublicKey, upd.publicKey);
    if (!updated && oldKey !== undefined) next = { ...next, privatePath: updateLeafKey(next.privatePath, oldKey) };
    return next;
  }

  /** An MLS Update proposal for our own leaf (post-compromise security) as a PrivateMessage, for the log. */
  async proposeUpdate(): Promise<Uint8Array> {
    const state = this.require();
    try {
      const own = state.privatePath.leafIndex;
      const node = state.ratchetTree[2 * own];
      if (node === undefined || node.nodeType !== "leaf") throw new MLSOpsError("own leaf missing");
      const { publicKey, privateKey } = await this.impl.hpke.generateKeyPair();
      const hpkePublicKey = await this.impl.hpke.exportPublicKey(publicKey);
      const leaf = node.leaf;
      // same credential, signature key, capabilities and extensions; a fresh HPKE key
      const tbs = {
        hpkePublicKey,
        signaturePublicKey: leaf.signaturePublicKey,
        credential: leaf.credential,
        capabilities: leaf.capabilities,
        leafNodeSource: "update",
        extensions: leaf.extensions,
        groupId: state.groupContext.groupId,
        leafIndex: own,
      } as unknown as LeafNodeTBSCommit;
      const signed = await signLeafNodeCommit(tbs, state.signaturePrivateKey, this.impl.signature);
      const { groupId: _g, leafIndex: _l, ...leafNode } = signed as unknown as Record<string, unknown>;
      const proposal = { proposalType: "update", update: { leafNode } } as unknown as Proposal;
      const result = await createProposal(state, false, proposal, this.impl);
      this.state = result.newState; // the handshake ratchet moved on
      this.ownUpdate = { epoch: state.groupContext.epoch, publicKey: hpkePublicKey, privateKey: await this.impl.hpke.exportPrivateKey(privateKey) };
      return encodeMlsMessage(result.message);
    } catch (e) {
      if (e instanceof MLSOpsError) throw e;
      throw new MLSOpsError(`update proposal failed: ${(e as Error).name}`);
    }
  }

  /** Validate and cache another member's Update proposal (the committer commits it by reference). */
  async processProposal(proposal: Uint8Array): Promise<void> {
    const state = this.require();
    let kind = "";
    const next = await this.processHandshake(state, proposal, (incoming) => {
      kind = incoming.kind === "proposal" ? String(incoming.proposal.proposal.proposalType) : incoming.kind;
      return kind === "update" ? "accept" : "reject";
    }, "proposal");
    if (kind !== "update" || next.groupContext.epoch !== state.groupContext.epoch) throw new MLSOpsError("log entry is not an Update proposal");
    // Credentials never change (as the Python MLS, which has no credential validator): an
    // Update whose leaf names another identity or signature key than its sender's leaf is refused.
    for (const [ref, p] of Object.entries(next.unappliedProposals)) {
      if (ref in state.unappliedProposals) continue;
      const node = p.senderLeafIndex === undefined ? undefined : state.ratchetTree[2 * p.senderLeafIndex];
      const leaf = p.proposal.proposalType === "update" ? p.proposal.update.leafNode : undefined;
      if (node === undefined || node.nodeType !== "leaf" || leaf === undefined) throw new MLSOpsError("log entry is not an Update proposal");
      const was = node.leaf.credential as { credentialType: string; identity?: Uint8Array };
      const now = leaf.credential as { credentialType: string; identity?: Uint8Array };
      if (
        !bytesEqual(node.leaf.signaturePublicKey, leaf.signaturePublicKey) ||
        was.credentialType !== now.credentialType ||
        was.identity === undefined || now.identity === undefined || !bytesEqual(was.identity, now.identity)
      ) {
        throw new MLSOpsError("Update proposal changes its sender's credential");
      }
    }
    this.state = next;
  }

  /** Process one Public/PrivateMessage against `state`; the new state (the old one is untouched). */
  private async processHandshake(state: ClientState, data: Uint8Array, callback: IncomingMessageCallback, what: string): Promise<ClientState> {
    try {
      const decoded = decodeMlsMessage(data, 0);
      if (decoded === undefined) throw new MLSOpsError(`${what} does not parse`);
      const msg = decoded[0];
      if (msg.wireformat !== "mls_private_message" && msg.wireformat !== "mls_public_message") throw new MLSOpsError("not a handshake message");
      const result = await processMessage(msg, state, emptyPskIndex, callback, this.impl);
      if (result.kind !== "newState") throw new MLSOpsError(`not a ${what}`);
      return result.newState;
    } catch (e) {
      if (e instanceof MLSOpsError) throw e;
      throw new MLSOpsError(`${what} rejected: ${(e as Error).name}`);
    }
  }

  async join(welcome: Uint8Array, kpId: string): Promise<void> {
    const kp = this.kps.get(kpId);
    this.kps.delete(kpId);
    if (kp === undefined) throw new MLSOpsError("unknown KeyPackage");
    try {
      const msg = decodeMlsMessage(welcome, 0)?.[0];
      if (msg === undefined || msg.wireformat !== "mls_welcome") throw new MLSOpsError("not a Welcome");
      const state = await joinGroup(msg.welcome, kp.pub, kp.priv, emptyPskIndex, this.impl);
      this.state = state;
      this.pending = null;
      this.ownUpdate = null;
      // bind every leaf to the KeyPackage that published its (never changing) key
      this.leaves = new Map();
      this.bindLeaves(null, state);
    } catch (e) {
      if (e instanceof MLSOpsError) throw e;
      throw new MLSOpsError(`Welcome rejected: ${(e as Error).name}`);
    }
  }

  reset(): void {
    this.state = null;
    this.pending = null;
    this.ownUpdate = null;
    this.leaves = new Map();
  }

  /** MLS-Exporter(label, context, length) of the current epoch. */
  exportSecret(label: string, context: Uint8Array, length: number): Promise<Uint8Array> {
    return mlsExporter(this.require().keySchedule.exporterSecret, label, context, length, this.impl);
  }

  get epochAuthenticator(): Uint8Array {
    return this.require().keySchedule.epochAuthenticator;
  }

  get ownLeafIndex(): number {
    return this.require().privatePath.leafIndex;
  }

  private require(): ClientState {
    if (this.state === null) throw new MLSOpsError("no group");
    return this.state;
  }
}

