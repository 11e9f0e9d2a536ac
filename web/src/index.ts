/** orange-fast-web: the browser half of orange_fast (one ESM bundle). See docs/protocol.md. */
export * as sframe from "./sframe.js";
export * as framing from "./framing.js";
export * as delivery from "./delivery.js";
export * as committer from "./committer.js";
export * as wire from "./wire.js";
export * as keys from "./keys.js";
export * as safety from "./safety.js";
export * as mlsops from "./mlsops.js";
export {
  Context,
  SFrameError,
  MalformedHeaderError,
  UnknownKeyError,
  AuthenticationError,
  ReplayError,
  CounterExhaustedError,
  encodeHeader,
  decodeHeader,
} from "./sframe.js";
export { transformFor, FramingError, UnsupportedCodecError } from "./framing.js";
export { DeliveryClient } from "./delivery.js";
export { SessionClient, EVENT_KINDS, type SessionConfig, type SessionEvent, type RosterEntry } from "./session.js";
export { safetyNumber, SafetyNumber } from "./safety.js";
