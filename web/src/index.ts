/** orange-fast-web: the browser half of orange_fast (one ESM bundle). */
export * as sframe from "./sframe.js";
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
