export { createClient, randomTraceparent, SUBPROTOCOL } from "./client.js";
export type { FabricClient } from "./client.js";
export { FabricError, ClosedError } from "./errors.js";
export { ErrorCode, CloseCode, closeCodePolicy, reconnectPolicy } from "./codes.js";
export type { ReconnectPolicy } from "./codes.js";
export type {
  ClientOptions,
  ClientState,
  CloseInfo,
  ConnectionState,
  Limits,
  Message,
  PushHandler,
  ReconnectInfo,
  SendOptions,
  StateInfo,
  StreamOptions,
  Welcome,
  WebSocketConstructor,
  WebSocketLike,
} from "./types.js";
