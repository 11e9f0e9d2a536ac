/**
 * The committer's GroupOps over ts-mls (mirrors `orange_fast.session.mlsops`).
 *
 * Each KeyPackage gets a fresh signature key pair, so a MemberRef maps to exactly one leaf:
 * the one whose signature key is that of the KeyPackage the ref names (from the WireDecoder).
 * Handshake messages are PrivateMessages; Welcomes carry the ratchet tree extension (the
 * Python side joins from the Welcome alone). The group state is only replaced after an
 * operation succeeded.
 */
import {
  acceptAll,
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

/** One client's MLS state in one room, driven by the committer. */
export class MLSGroupOps implements GroupOps {
  state: ClientState | null = null;
  private pending: ClientState | null = null;
  private readonly kps = new Map<string, { pub: KeyPackage; priv: PrivateKeyPackage }>();
  private expectation: { commit: Uint8Array; adds: string[]; removes: string[] } | null = null;
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
    try {
      this.state = await createGroup(globalThis.crypto.getRandomValues(new Uint8Array(16)), kp.pub, kp.priv, [], this.impl);
    } catch (e) {
      throw new MLSOpsError(`create failed: ${(e as Error).name}`);
    }
    this.pending = null;
  }

  private leafOf(ref: MemberRef): number {
    const sig = this.decoder.signatureKey(ref);
    if (sig === null) throw new MLSOpsError("unknown member");
    const m = membersOf(this.require()).find((x) => bytesEqual(x.signatureKey, sig));
    if (m === undefined) throw new MLSOpsError("member not in the group");
    return m.leafIndex;
  }

  async commit(adds: Uint8Array[], removes: MemberRef[]): Promise<[Uint8Array, Uint8Array | null]> {
    const state = this.require();
    try {
      const proposals: Proposal[] = removes.map((r) => ({ proposalType: "remove", remove: { removed: this.leafOf(r) } }) as Proposal);
      for (const b of adds) {
        const msg = decodeMlsMessage(b, 0)?.[0];
        if (msg === undefined || msg.wireformat !== "mls_key_package") throw new MLSOpsError("not a KeyPackage");
        proposals.push({ proposalType: "add", add: { keyPackage: msg.keyPackage } } as Proposal);
      }
      const result = await createCommit({ state, cipherSuite: this.impl }, { extraProposals: proposals, ratchetTreeExtension: true });
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
    this.state = this.pending;
    this.pending = null;
  }

  clearPending(): void {
    this.pending = null;
  }

  /** Announce what the next commit claims to do (from its log entry); {@link process} checks it. */
  expect(commit: Uint8Array, adds: MemberRef[], removes: MemberRef[]): void {
    const keys = (refs: MemberRef[]) => refs.map((r) => toHex(this.decoder.signatureKey(r) ?? new Uint8Array(0))).sort();
    this.expectation = { commit, adds: keys(adds), removes: keys(removes) };
  }

  async process(commit: Uint8Array): Promise<void> {
    const state = this.require();
    const expect = this.expectation;
    this.expectation = null;
    const next = await this.processHandshake(state, commit, acceptAll, "commit");
    if (next.groupContext.epoch !== state.groupContext.epoch + 1n) throw new MLSOpsError("message is not a commit of this epoch");
    if (expect !== null && bytesEqual(expect.commit, commit)) {
      const before = new Set(membersOf(state).map((m) => toHex(m.signatureKey)));
      const after = new Set(membersOf(next).map((m) => toHex(m.signatureKey)));
      const added = [...after].filter((k) => !before.has(k)).sort();
      const removed = [...before].filter((k) => !after.has(k)).sort();
      if (added.join() !== expect.adds.join() || removed.join() !== expect.removes.join()) {
        throw new MLSOpsError("message does not do what its log entry states");
      }
    }
    this.state = next;
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
      this.state = await joinGroup(msg.welcome, kp.pub, kp.priv, emptyPskIndex, this.impl);
      this.pending = null;
    } catch (e) {
      if (e instanceof MLSOpsError) throw e;
      throw new MLSOpsError(`Welcome rejected: ${(e as Error).name}`);
    }
  }

  reset(): void {
    this.state = null;
    this.pending = null;
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

