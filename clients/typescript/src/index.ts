export { createClient, randomTraceparent, SUBPROTOCOL } from "./client.js";
export type { FabricClient } from "./client.js";
export { FabricError, ClosedError } from "./errors.js";
export { ErrorCode, CloseCode, closeCodePolicy, reconnectPolicy } from "./codes.js";
export type { ReconnectPolicy } from "./codes.js";
export type {
  AnyRoutes,
  ClientOptions,
  ClientState,
  CloseInfo,
  ConnectionState,
  ErrorPayload,
  Limits,
  Message,
  PayloadArgs,
  PushHandler,
  ReconnectInfo,
  RequestArgs,
  RouteEvents,
  RouteMap,
  RouteMapOf,
  RouteMessage,
  RouteName,
  RouteParams,
  RouteSpec,
  SendOptions,
  StateInfo,
  StreamOptions,
  TokenProvider,
  Welcome,
  WebSocketConstructor,
  WebSocketLike,
} from "./types.js";
// The demo routes' map, generated from the Go routes by `fabric gen ts`: createClient<DemoRoutes>(…).
export * from "./demo-routes.js";
