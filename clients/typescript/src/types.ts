/** A frame from the gateway: an event of a request (with id and seq), or a push (no id). */
export interface Message {
  /** An event type ("demo/count:progress"), a push type, or a sys/… type. */
  type: string;
  /** The request's id, on every event of a request. Pushes have none. */
  id?: string;
  /** 1 for a request's first event, +1 for each next one; the :finish carries the last. */
  seq?: number;
  /** The event's payload, if it has one. A :finish never has one. */
  payload?: unknown;
  /** The request's trace id (32 hex digits) when it is traced: paste it into Jaeger. */
  trace?: string;
}

/** The limits in sys/welcome. */
export interface Limits {
  /** The largest message the gateway reads, in bytes. */
  maxFrameBytes: number;
  /** Requests in flight per connection. */
  maxInFlight: number;
}

/** The payload of sys/welcome, the gateway's answer to sys/hello. */
export interface Welcome {
  sessionId: string;
  resumeToken: string;
  /** True only when the hello's resume was accepted. */
  resumed: boolean;
  /** The gateway instance's id. */
  gateway: string;
  pingIntervalMs: number;
  limits: Limits;
  /** The authenticated user's id; absent on an anonymous session. */
  user?: string;
  /**
   * How long the token stays valid, in ms from when the gateway sent the
   * welcome; absent when it does not expire. The client refreshes it before
   * then when its token option is a provider.
   */
  expiresInMs?: number;
  /** How long after the token's expiry the gateway waits for a refresh before it closes with 4504. */
  refreshGraceMs?: number;
}

/** The states a connection goes through, as reported to onState. */
export type ConnectionState = "connecting" | "open" | "reconnecting" | "closed";

/** The client's state: "idle" until connect() or the first request, then a ConnectionState. */
export type ClientState = "idle" | ConnectionState;

/** What caused a state change: the close code and reason, when a close did. */
export interface StateInfo {
  code?: number;
  reason?: string;
}

/** The close that ended the last connection. */
export interface CloseInfo {
  code: number;
  reason: string;
}

/** Given to onReconnect after a new connection's sys/welcome, before unfinished requests are re-sent. */
export interface ReconnectInfo {
  /** The new connection's welcome. */
  welcome: Welcome;
  /** welcome.resumed: true when the session (and so its unfinished requests) was resumed. */
  resumed: boolean;
  /** The session id before the disconnect (equal to welcome.sessionId when resumed). */
  previousSessionId: string;
  /** The close that ended the previous connection. */
  close: CloseInfo;
  /** How many connection attempts failed before this one. */
  failedAttempts: number;
  /** Requests that are unfinished: re-sent with "after" if resumed, ended as interrupted if not. */
  unfinished: number;
}

/**
 * The minimum of the WebSocket API the client uses: the browser's WebSocket
 * and the `ws` package's both have it.
 */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: string, listener: (event: any) => void): void;
}

/** A WebSocket class: globalThis.WebSocket in browsers, `WebSocket` from the `ws` package in Node. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/**
 * Returns a token: the current one if it is still good for a while, or a new
 * one (from the application's auth server, say). Called before every connect
 * and for every refresh.
 */
export type TokenProvider = () => string | Promise<string>;

/** Options of createClient. */
export interface ClientOptions {
  /** The gateway's WebSocket URL, e.g. "ws://localhost:8080/ws". */
  url: string;
  /**
   * The credentials sent in sys/hello. Omitted (or "") means anonymous.
   *
   * A string is used as is, on every connect, until refreshToken(token)
   * replaces it. A gateway's close 4502 (unauthorized) or 4504 (token
   * expired) then ends the client, as every 4500–4999 close does.
   *
   * A provider is called before every connect (the first, each reconnect and
   * resume) and for every refresh. When the welcome says the token expires
   * (expiresInMs), the client refreshes it on its own at
   * expiresInMs − min(60 s, expiresInMs / 5), retrying with backoff until the
   * gateway's grace period ends. After a 4502 or 4504 the client reconnects
   * with backoff and a token from the provider, and gives up (closed, with
   * that close) after 3 such closes in a row without a welcome between them.
   * A provider that throws, returns a non-string or takes longer than
   * connectTimeoutMs counts as one of them (code 4502).
   */
  token?: string | TokenProvider;
  /** The WebSocket class to use. Default: globalThis.WebSocket (Node 20 has none: pass `ws`). */
  WebSocket?: WebSocketConstructor;
  /** Reconnect and resume after a connection is lost. Default true. */
  reconnect?: boolean;
  /** Full-jitter exponential backoff: attempt k waits a random whole number of ms in [0, min(maxMs, minMs·2^k)]. */
  backoff?: { minMs?: number; maxMs?: number };
  /**
   * Runs after a reconnect's sys/welcome, before unfinished requests are
   * re-sent (or ended as interrupted); requests made while it runs are sent at
   * once. The re-sending waits for its promise, at most onReconnectTimeoutMs.
   */
  onReconnect?: (info: ReconnectInfo) => void | Promise<void>;
  /**
   * How long the re-sending waits for onReconnect's promise; then it goes on
   * as if the promise had resolved (a later rejection is still reported).
   * Default 10000.
   */
  onReconnectTimeoutMs?: number;
  /** Told of every state change, with the close code and reason that caused it. */
  onState?: (state: ConnectionState, info: StateInfo) => void;
  /** Sent in sys/hello as "client". Default "fabric-ts". */
  clientName?: string;
  /** The ping interval assumed if a welcome has none. Default 25000. */
  pingIntervalMs?: number;
  /** How long a connection may take to open and welcome. Default 10000. */
  connectTimeoutMs?: number;
  /** Returns the W3C traceparent for each new request. Default: a random one, sampled. */
  traceparent?: () => string | undefined;
}

/**
 * Options of sendAsync. M is the type of the request's messages: a
 * RouteMessage of the route when the client has a route map.
 */
export interface SendOptions<M extends Message = Message> {
  /** Aborting sends sys/cancel and rejects with signal.reason (an AbortError by default). */
  signal?: AbortSignal;
  /** After this many milliseconds: sys/cancel, and a rejection with a TimeoutError. */
  timeoutMs?: number;
  /** Called with each message of the request as it arrives, through :finish. */
  onEvent?: (message: M) => void;
  /** Reject with FabricError when an :error arrived. Default true; false always resolves at :finish. */
  throwOnError?: boolean;
}

/** Options of stream. */
export interface StreamOptions {
  /** Aborting sends sys/cancel and makes the iteration throw signal.reason. */
  signal?: AbortSignal;
}

/** A handler of pushes. */
export type PushHandler = (message: Message) => void;

// --- typed routes ---
//
// A route map names each route a client may request, its params and the
// payload of each event suffix, e.g. (generated from the Go routes by
// `fabric gen ts`):
//
//   interface DemoRoutes {
//     "demo/count": { params: CountParams; events: { progress: CountProgress; response: CountResult } };
//   }
//
// createClient<DemoRoutes>(…) then checks typeName and params at compile time
// and narrows each message by its type. These are types only: the client does
// not validate payloads at run time.

/** One route of a route map: its params and the payload of each event suffix but :error and :finish. */
export interface RouteSpec {
  params: unknown;
  events: Record<string, unknown>;
}

/** A route map: typeName → RouteSpec. */
export type RouteMap = Record<string, RouteSpec>;

/**
 * The constraint of a client's route map: every entry is a RouteSpec. (An
 * interface such as a generated DemoRoutes has no index signature, so it is
 * not a RouteMap; it is a RouteMapOf<itself>.)
 */
export type RouteMapOf<R> = { [K in keyof R]: RouteSpec };

/** The default route map: any typeName, any params, any suffix with an unknown payload. */
export type AnyRoutes = RouteMap;

/** A typeName of R. */
export type RouteName<R extends RouteMapOf<R>> = keyof R & string;

/** The params (the request's payload) of route K. */
export type RouteParams<R extends RouteMapOf<R>, K extends keyof R> = R[K]["params"];

/** The payload of an :error event (ErrorCode.* or a worker's own code). */
export interface ErrorPayload {
  code: string;
  message: string;
  details?: unknown;
}

/** The payload of each event suffix of route K: its own, plus :error and :finish (which has none). */
export type RouteEvents<R extends RouteMapOf<R>, K extends keyof R> = R[K]["events"] & {
  error: ErrorPayload;
  finish: undefined;
};

/**
 * A message of a request of route K: a union over its event suffixes, so
 * that comparing `type` narrows `payload`. With several routes in K, a union
 * over those too.
 */
export type RouteMessage<R extends RouteMapOf<R>, K extends keyof R & string> = K extends K
  ? {
      [S in keyof RouteEvents<R, K> & string]: {
        /** `${typeName}:${suffix}`. */
        type: `${K}:${S}`;
        /** The request's id. */
        id: string;
        /** 1 for the request's first event, +1 for each next one. */
        seq: number;
        /** The suffix's payload; undefined for :finish. */
        payload: RouteEvents<R, K>[S];
        /** The request's trace id (32 hex digits) when it is traced: paste it into Jaeger. */
        trace?: string;
      };
    }[keyof RouteEvents<R, K> & string]
  : never;

/** The arguments of sendAsync and stream after the typeName: the params may be left out only when they may be undefined (unknown, say). */
export type RequestArgs<P, O> = undefined extends P ? [payload?: P, options?: O] : [payload: P, options?: O];

/** The arguments of send after the typeName, likewise. */
export type PayloadArgs<P> = undefined extends P ? [payload?: P] : [payload: P];
