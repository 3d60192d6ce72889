// The Fabric client: one WebSocket to a gateway, requests with streamed
// events, pushes, heartbeat, reconnect and resume. It follows the Go client
// (client/client.go) and the wire contract (docs/protocol.md).

import { CloseCode, ErrorCode, reconnectPolicy } from "./codes.js";
import { ClosedError, FabricError, errorFromPayload } from "./errors.js";
import { routeNameProblem, suffixOf } from "./names.js";
import type {
  AnyRoutes,
  ClientOptions,
  ClientState,
  CloseInfo,
  ConnectionState,
  Message,
  PayloadArgs,
  PushHandler,
  RequestArgs,
  RouteMapOf,
  RouteMessage,
  RouteName,
  SendOptions,
  StateInfo,
  StreamOptions,
  TokenProvider,
  Welcome,
  WebSocketConstructor,
  WebSocketLike,
} from "./types.js";

/** The subprotocol the client offers. */
export const SUBPROTOCOL = "fabric.v1";

const TYPE_HELLO = "sys/hello";
const TYPE_WELCOME = "sys/welcome";
const TYPE_PING = "sys/ping";
const TYPE_PONG = "sys/pong";
const TYPE_CANCEL = "sys/cancel";
const TYPE_ERROR = "sys/error";
const TYPE_REFRESH = "sys/refresh";
const TYPE_REFRESHED = "sys/refreshed";
const SUFFIX_ERROR = "error";
const SUFFIX_FINISH = "finish";

const WS_OPEN = 1;
/** A close with no close frame: a dropped connection (also used for a dead or failed one). */
const CLOSE_ABNORMAL = 1006;
/** What the client sends when it gives up on a connection it still believes open. */
const CLOSE_GIVE_UP = 4000;

/** With a token provider: the 4502/4504 closes in a row (no welcome between them) after which the client gives up. */
const MAX_AUTH_FAILURES = 3;
/** Automatic refreshes of one token: the first try and the retries. */
const REFRESH_ATTEMPTS = 5;
/** The first retry of a failed automatic refresh waits this long; each next one twice as long. */
const REFRESH_RETRY_MS = 1000;

/**
 * A connection to a Fabric gateway. Create one with {@link createClient}.
 *
 * R is the route map: with a generated one (createClient<DemoRoutes>), a
 * typeName that is not a route, or params of the wrong shape, do not compile,
 * and each message of a request is a {@link RouteMessage} whose payload
 * narrows by its type. The default, AnyRoutes, takes any typeName and params.
 * Pushes (on) are not typed by R.
 */
export interface FabricClient<R extends RouteMapOf<R> = AnyRoutes> {
  /** "idle" until connect() or the first request; then connecting, open, reconnecting, closed. */
  readonly state: ClientState;
  /** The session id of the last welcome. */
  readonly sessionId: string | undefined;
  /** The last sys/welcome. */
  readonly welcome: Welcome | undefined;
  /** The authenticated user of the last welcome; undefined on an anonymous session. */
  readonly user: string | undefined;
  /** The close that ended the last connection, if one has ended. */
  readonly lastClose: CloseInfo | undefined;
  /**
   * Opens the connection if it is not open and resolves with the welcome.
   * Requests connect on their own, so calling it is optional. While
   * reconnecting it waits for the next welcome. It rejects with ClosedError if
   * the client is or becomes closed (the first connection failing closes it).
   */
  connect(): Promise<Welcome>;
  /**
   * Closes the connection normally (1000), which ends the session, and fails
   * unfinished requests with ClosedError. Resolves once the socket is closed.
   */
  close(): Promise<void>;
  /**
   * Sends the gateway a new token for the open connection (sys/refresh): token,
   * or else the token provider's. The token's user must be the session's.
   * Resolves once the gateway accepted it; the automatic refresh is then
   * scheduled from the new token's expiry. Rejects with FabricError
   * "unauthorized" (a bad or expired token, another user's), "internal" (the
   * gateway's authenticator did not answer: try again), "timeout" (no answer
   * within connectTimeoutMs) or "interrupted" (the connection ended first);
   * a refused token leaves the old one in force until its expiry (+ grace).
   * While disconnected it waits for the next welcome, as connect() does.
   * Without a token provider, a token given here and accepted (or given
   * while disconnected) also becomes the one later connects send.
   */
  refreshToken(token?: string): Promise<void>;
  /**
   * Sends a request and resolves at its :finish with every message of it.
   * Rejects with FabricError if an :error arrived (unless throwOnError is
   * false), if the gateway rejected the frame (sys/error, "bad_request") or if
   * typeName or payload are invalid; with ClosedError if the client closes
   * first; with the signal's reason or a TimeoutError after sending sys/cancel.
   */
  sendAsync<K extends RouteName<R>>(
    type: K,
    ...args: RequestArgs<R[K]["params"], SendOptions<RouteMessage<R, K>>>
  ): Promise<RouteMessage<R, K>[]>;
  /**
   * Sends a request when iteration starts and yields its messages as they
   * arrive, :error included, ending after :finish. Leaving the loop early
   * sends sys/cancel. Throws what sendAsync rejects with, except for :error.
   */
  stream<K extends RouteName<R>>(
    type: K,
    ...args: RequestArgs<R[K]["params"], StreamOptions>
  ): AsyncGenerator<RouteMessage<R, K>, void, undefined>;
  /**
   * Sends a request and ignores its events. Returns its id; throws FabricError
   * for an invalid request. A later rejection of it (the gateway's sys/error,
   * or too_large for a request queued until a welcome with a smaller
   * maxFrameBytes) goes to the on("sys/error") handlers, with its id.
   */
  send<K extends RouteName<R>>(type: K, ...args: PayloadArgs<R[K]["params"]>): string;
  /**
   * Calls handler with each push of the type ("*": every push). "sys/error"
   * gets the gateway's rejections that no pending request owns and those of
   * send() requests. Returns a function that unsubscribes.
   */
  on(type: string, handler: PushHandler): () => void;
}

/**
 * Creates a client. It connects on connect() or on its first request.
 * createClient<DemoRoutes>(…) types its requests by a route map (see FabricClient).
 */
export function createClient<R extends RouteMapOf<R> = AnyRoutes>(options: ClientOptions): FabricClient<R> {
  // The route map is types only: the same untyped implementation serves every R.
  return new Client(options) as unknown as FabricClient<R>;
}

/** One request's state. */
class Call {
  /** The connection it was last sent on; 0: not sent yet. */
  gen = 0;
  /** The highest seq received. */
  lastSeq = 0;
  /** Every message received, for the result and for errors' messages (none for send()). */
  readonly msgs: Message[] = [];
  /**
   * Sent with send(): nobody reads its events, so msgs keeps none, and nobody
   * awaits it, so its rejection goes to on("sys/error").
   */
  fireAndForget = false;
  finished = false;
  /** Set when it ended without a :finish: a rejection, a cancel, the client closing. */
  failed = false;
  /** Why it failed: what sendAsync rejects with and stream throws. */
  error: unknown;
  readonly listeners = new Set<() => void>();
  onEvent: ((m: Message) => void) | undefined;

  constructor(
    readonly type: string,
    readonly id: string,
    readonly payloadJSON: string | undefined,
    readonly traceparent: string,
  ) {}

  /** Adds m unless the call is finished or m's seq was already delivered. */
  add(m: Message): boolean {
    if (this.finished) return false;
    if (typeof m.seq === "number") {
      if (m.seq <= this.lastSeq) return false; // never deliver a seq twice
      this.lastSeq = m.seq;
    }
    if (!this.fireAndForget) this.msgs.push(m);
    if (suffixOf(m.type) === SUFFIX_FINISH) this.finished = true;
    if (this.onEvent) {
      try {
        this.onEvent(m);
      } catch (err) {
        report(err);
      }
    }
    this.notify();
    return true;
  }

  fail(err: unknown): void {
    if (this.finished) return;
    this.finished = true;
    this.failed = true;
    this.error = err;
    this.notify();
  }

  notify(): void {
    for (const l of [...this.listeners]) l();
  }

  /** The :error event's FabricError, if one arrived. */
  eventError(): FabricError | undefined {
    const m = this.msgs.find((x) => suffixOf(x.type) === SUFFIX_ERROR);
    return m ? errorFromPayload(m.payload, this.msgs.slice(), ErrorCode.Internal) : undefined;
  }
}

/** A sys/refresh awaiting its answer. */
interface PendingRefresh {
  readonly ws: WebSocketLike;
  /** Ends it: resolved with undefined, rejected with an error. */
  readonly settle: (err: Error | undefined) => void;
}

/** FabricClient's request methods with the route map erased: what Client implements. */
interface UntypedRequests {
  sendAsync(type: string, payload?: unknown, options?: SendOptions): Promise<Message[]>;
  stream(type: string, payload?: unknown, options?: StreamOptions): AsyncGenerator<Message, void, undefined>;
  send(type: string, payload?: unknown): string;
}

/**
 * The implementation, with the request methods untyped (type: string,
 * payload: unknown, messages: Message): createClient gives it the typed
 * signatures of FabricClient<R>.
 */
class Client implements Omit<FabricClient, keyof UntypedRequests>, UntypedRequests {
  readonly #url: string;
  readonly #WebSocket: WebSocketConstructor;
  readonly #opts: ClientOptions;
  readonly #reconnect: boolean;
  readonly #backoffMin: number;
  readonly #backoffMax: number;
  readonly #connectTimeoutMs: number;
  readonly #onReconnectTimeoutMs: number;

  #state: ClientState = "idle";
  #lastClose: CloseInfo | undefined;
  /** The close that ended the last welcomed connection, for onReconnect. */
  #lostBy: CloseInfo = { code: CLOSE_ABNORMAL, reason: "" };
  #welcome: Welcome | undefined;
  /** The open, welcomed connection; undefined while disconnected. */
  #ws: WebSocketLike | undefined;
  /** The connection being opened, before its welcome. */
  #dialing: WebSocketLike | undefined;
  /** Counts welcomed connections; a call records the one it was sent on. */
  #gen = 0;
  readonly #calls = new Map<string, Call>();
  readonly #handlers = new Map<string, Set<PushHandler>>();
  #openWaiters: Array<{ resolve: (w: Welcome) => void; reject: (e: Error) => void }> = [];
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #idleTimer: ReturnType<typeof setTimeout> | undefined;
  #lastFrameAt = 0;
  #closePromise: Promise<void> | undefined;
  /** Ends the wait for onReconnect's promise early: when its connection is lost or the client closes. */
  #endReconnectHook: (() => void) | undefined;
  /** The token option when it is a provider. */
  readonly #tokenProvider: TokenProvider | undefined;
  /** The token sent in hello when there is no provider: the option's, or refreshToken's latest. */
  #token: string | undefined;
  /** Counts dials, so that a token the provider returns late does not open a stale connection. */
  #dialSeq = 0;
  /** 4502/4504 closes since the last welcome (with a token provider). */
  #authFailures = 0;
  /** The automatic refresh of the open connection's token. */
  #refreshTimer: ReturnType<typeof setTimeout> | undefined;
  /** Counts refresh schedules: a failed refresh retries only if no newer schedule replaced it. */
  #refreshEpoch = 0;
  /** sys/refresh frames awaiting their answer, by id. */
  readonly #refreshes = new Map<string, PendingRefresh>();

  constructor(opts: ClientOptions) {
    const WS = opts.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!WS) {
      throw new TypeError("fabric: no WebSocket implementation: pass one as the WebSocket option (in Node, from the ws package)");
    }
    if (typeof opts.url !== "string" || opts.url === "") throw new TypeError("fabric: url is required");
    this.#url = opts.url;
    this.#WebSocket = WS;
    this.#opts = opts;
    this.#reconnect = opts.reconnect ?? true;
    this.#backoffMin = positive(opts.backoff?.minMs, 100);
    this.#backoffMax = Math.max(positive(opts.backoff?.maxMs, 10_000), this.#backoffMin);
    this.#connectTimeoutMs = positive(opts.connectTimeoutMs, 10_000);
    this.#onReconnectTimeoutMs = positive(opts.onReconnectTimeoutMs, 10_000);
    if (typeof opts.token === "function") this.#tokenProvider = opts.token;
    else if (typeof opts.token === "string" && opts.token !== "") this.#token = opts.token;
  }

  get state(): ClientState {
    return this.#state;
  }

  get sessionId(): string | undefined {
    return this.#welcome?.sessionId;
  }

  get welcome(): Welcome | undefined {
    return this.#welcome;
  }

  get lastClose(): CloseInfo | undefined {
    return this.#lastClose;
  }

  get user(): string | undefined {
    return this.#welcome?.user;
  }

  connect(): Promise<Welcome> {
    switch (this.#state) {
      case "open":
        return Promise.resolve(this.#welcome as Welcome);
      case "closed":
        return Promise.reject(this.#closedError());
      case "idle":
        this.#setState("connecting", {});
        this.#dial(undefined, 0);
        break;
      default:
    }
    // #dial may have closed the client already (a URL the WebSocket rejects).
    if ((this.#state as ClientState) === "closed") return Promise.reject(this.#closedError());
    return new Promise((resolve, reject) => this.#openWaiters.push({ resolve, reject }));
  }

  close(): Promise<void> {
    if (this.#closePromise) return this.#closePromise;
    const ws = this.#ws; // a connection still opening is dropped by #shutdown
    this.#shutdown(CloseCode.Normal, "closed by the client");
    if (!ws) {
      this.#closePromise = Promise.resolve();
      return this.#closePromise;
    }
    this.#closePromise = new Promise<void>((resolve) => {
      // The gateway answers the close frame; don't wait for one that doesn't.
      const timer = setTimeout(() => {
        terminate(ws);
        resolve();
      }, 2000);
      ws.addEventListener("close", () => {
        clearTimeout(timer);
        resolve();
      });
      try {
        ws.close(CloseCode.Normal, "");
      } catch {
        clearTimeout(timer);
        terminate(ws);
        resolve();
      }
    });
    return this.#closePromise;
  }

  async refreshToken(token?: string): Promise<void> {
    if (token !== undefined && (typeof token !== "string" || token === "")) {
      throw new TypeError("fabric: refreshToken(token): the token must be a non-empty string");
    }
    if (token === undefined && !this.#tokenProvider) {
      throw new TypeError("fabric: refreshToken() needs a token: the client has no token provider");
    }
    if (this.#state === "closed") throw this.#closedError();
    if (!this.#ws) {
      if (token !== undefined && !this.#tokenProvider) this.#token = token; // for the hello of the connection awaited
      await this.connect();
    }
    const t = token ?? (await this.#provideToken());
    const ws = this.#ws;
    if (!ws) throw new FabricError(ErrorCode.Interrupted, "the connection closed before the refresh was sent");
    await this.#sendRefresh(ws, t);
  }

  sendAsync(type: string, payload?: unknown, options: SendOptions = {}): Promise<Message[]> {
    const { signal, timeoutMs, onEvent, throwOnError = true } = options;
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    let call: Call;
    try {
      call = this.#start(type, payload);
    } catch (err) {
      return Promise.reject(err);
    }
    if (onEvent) call.onEvent = onEvent;
    return new Promise<Message[]>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const cleanup = () => {
        call.listeners.delete(onChange);
        signal?.removeEventListener("abort", onAbort);
        if (timer !== undefined) clearTimeout(timer);
      };
      const onChange = () => {
        if (!call.finished) return;
        cleanup();
        if (call.failed) {
          reject(call.error);
          return;
        }
        const err = throwOnError ? call.eventError() : undefined;
        if (err) reject(err);
        else resolve(call.msgs.slice());
      };
      const onAbort = () => {
        cleanup();
        const reason = signal ? abortReason(signal) : abortError();
        this.#cancel(call, reason);
        reject(reason);
      };
      call.listeners.add(onChange);
      signal?.addEventListener("abort", onAbort, { once: true });
      if (timeoutMs !== undefined && timeoutMs >= 0 && Number.isFinite(timeoutMs)) {
        timer = setTimeout(() => {
          cleanup();
          const reason = new DOMException(`the request timed out after ${timeoutMs} ms`, "TimeoutError");
          this.#cancel(call, reason);
          reject(reason);
        }, timeoutMs);
      }
      onChange(); // it may have ended already (too large, say)
    });
  }

  async *stream(type: string, payload?: unknown, options: StreamOptions = {}): AsyncGenerator<Message, void, undefined> {
    const { signal } = options;
    if (signal?.aborted) throw abortReason(signal);
    const call = this.#start(type, payload);
    let wake: (() => void) | undefined;
    const onChange = () => {
      const w = wake;
      wake = undefined;
      w?.();
    };
    const onAbort = () => {
      this.#cancel(call, signal ? abortReason(signal) : abortError());
    };
    call.listeners.add(onChange);
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      // The messages stay in call.msgs: an error thrown here carries them all.
      for (let next = 0; ; ) {
        while (next < call.msgs.length) yield call.msgs[next++] as Message;
        if (call.failed) throw call.error;
        if (call.finished) return;
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
    } finally {
      call.listeners.delete(onChange);
      signal?.removeEventListener("abort", onAbort);
      if (!call.finished) this.#cancel(call, abortError());
    }
  }

  send(type: string, payload?: unknown): string {
    const call = this.#start(type, payload);
    if (call.failed) throw call.error; // too large for the gateway
    call.fireAndForget = true;
    return call.id;
  }

  on(type: string, handler: PushHandler): () => void {
    let set = this.#handlers.get(type);
    if (!set) {
      set = new Set();
      this.#handlers.set(type, set);
    }
    set.add(handler);
    return () => {
      const s = this.#handlers.get(type);
      if (s?.delete(handler) && s.size === 0) this.#handlers.delete(type);
    };
  }

  // --- requests ---

  /** Registers a request and sends it if a connection is open; otherwise it waits for one. */
  #start(type: string, payload: unknown): Call {
    if (this.#state === "closed") throw this.#closedError();
    const problem = routeNameProblem(type);
    if (problem !== undefined) throw new FabricError(ErrorCode.BadRequest, problem);
    let payloadJSON: string | undefined;
    try {
      payloadJSON = payload === undefined ? undefined : JSON.stringify(payload);
    } catch (err) {
      throw new FabricError(ErrorCode.BadRequest, `the payload cannot be encoded as JSON: ${String(err)}`);
    }
    const call = new Call(type, newId(), payloadJSON, this.#traceparent());
    this.#calls.set(call.id, call);
    if (this.#state === "idle") {
      this.connect().catch(() => {}); // a failure fails the call too
    } else if (this.#ws) {
      this.#flush(call, this.#ws, this.#gen, true);
    }
    return call;
  }

  #traceparent(): string {
    const hook = this.#opts.traceparent;
    if (hook) {
      try {
        const tp = hook();
        if (typeof tp === "string" && tp !== "") return tp;
      } catch (err) {
        report(err);
      }
    }
    return randomTraceparent();
  }

  /**
   * Sends call on ws, the connection numbered gen, unless it was already sent
   * there: a call not sent yet goes as new; one sent on an earlier connection
   * is re-sent with "after" if the session was resumed, and ends as
   * interrupted if it was not. If the send fails, the next connection retries.
   */
  #flush(call: Call, ws: WebSocketLike, gen: number, resumed: boolean): void {
    if (call.finished || call.gen === gen) return;
    let after: number | undefined;
    if (call.gen !== 0) {
      if (!resumed) {
        this.#calls.delete(call.id);
        call.add({
          type: `${call.type}:${SUFFIX_ERROR}`,
          id: call.id,
          seq: call.lastSeq + 1,
          payload: { code: ErrorCode.Interrupted, message: "the session was lost; the request's outcome is unknown" },
        });
        call.add({ type: `${call.type}:${SUFFIX_FINISH}`, id: call.id, seq: call.lastSeq + 1 });
        return;
      }
      after = call.lastSeq;
    }
    let frame = `{"type":${JSON.stringify(call.type)},"id":"${call.id}"`;
    if (call.payloadJSON !== undefined) frame += `,"payload":${call.payloadJSON}`;
    if (after !== undefined) frame += `,"after":${after}`;
    frame += `,"traceparent":${JSON.stringify(call.traceparent)}}`;
    const max = this.#welcome?.limits?.maxFrameBytes ?? 0;
    if (max > 0 && frame.length > max / 3 && new TextEncoder().encode(frame).length > max) {
      // The gateway would close the connection with 1009, again on every retry.
      this.#calls.delete(call.id);
      const message = `the request frame is larger than the gateway's maxFrameBytes (${max})`;
      call.fail(new FabricError(ErrorCode.TooLarge, message));
      if (call.fireAndForget) this.#emit(TYPE_ERROR, { type: TYPE_ERROR, id: call.id, payload: { code: ErrorCode.TooLarge, message } });
      return;
    }
    if (trySend(ws, frame)) call.gen = gen;
  }

  /** Abandons call: the gateway is told with sys/cancel if it was sent. */
  #cancel(call: Call, reason: unknown): void {
    const pending = this.#calls.get(call.id) === call;
    if (pending) this.#calls.delete(call.id);
    call.fail(reason);
    if (pending && call.gen !== 0 && this.#ws) {
      trySend(this.#ws, `{"type":"${TYPE_CANCEL}","id":"${call.id}"}`);
    }
  }

  // --- connections ---

  /**
   * Opens a connection and says hello, resuming prev's session if given.
   * goingAwayRetry: this attempt is the immediate retry of one closed with a
   * 1001 before its welcome.
   */
  #dial(prev: Welcome | undefined, failedAttempts: number, goingAwayRetry = false): void {
    const seq = ++this.#dialSeq;
    if (!this.#tokenProvider) {
      this.#openSocket(prev, failedAttempts, goingAwayRetry, this.#token);
      return;
    }
    this.#provideToken().then(
      (token) => {
        if (seq === this.#dialSeq && this.#state !== "closed") this.#openSocket(prev, failedAttempts, goingAwayRetry, token);
      },
      (err: unknown) => {
        if (seq !== this.#dialSeq || this.#state === "closed") return;
        this.#dialFailed(CloseCode.Unauthorized, `token provider: ${errorText(err)}`, prev, failedAttempts, goingAwayRetry);
      },
    );
  }

  /** Calls the token provider, within connectTimeoutMs. */
  async #provideToken(): Promise<string> {
    const provider = this.#tokenProvider as TokenProvider;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no token within ${this.#connectTimeoutMs} ms`)), this.#connectTimeoutMs);
    });
    try {
      const token: unknown = await Promise.race([Promise.resolve().then(provider), timeout]);
      if (typeof token !== "string") throw new TypeError(`the token provider returned ${typeof token}, not a string`);
      return token;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Opens a connection and says hello with token ("" or undefined: none). */
  #openSocket(prev: Welcome | undefined, failedAttempts: number, goingAwayRetry: boolean, token: string | undefined): void {
    let ws: WebSocketLike;
    try {
      ws = new this.#WebSocket(this.#url, SUBPROTOCOL);
    } catch (err) {
      this.#dialFailed(CLOSE_ABNORMAL, `cannot open ${this.#url}: ${String(err)}`, prev, failedAttempts, goingAwayRetry);
      return;
    }
    this.#dialing = ws;
    let welcomed = false;
    const giveUp = (reason: string) => {
      if (this.#dialing !== ws) return;
      this.#dialing = undefined;
      clearTimeout(timer);
      closeQuietly(ws);
      this.#dialFailed(CLOSE_ABNORMAL, reason, prev, failedAttempts, goingAwayRetry);
    };
    const timer = setTimeout(() => giveUp(`no ${TYPE_WELCOME} within ${this.#connectTimeoutMs} ms`), this.#connectTimeoutMs);
    ws.addEventListener("open", () => {
      if (this.#dialing !== ws) return;
      const hello: { token?: string; resume?: { sessionId: string; resumeToken: string }; client: string } = {
        client: this.#opts.clientName ?? "fabric-ts",
      };
      if (token !== undefined && token !== "") hello.token = token;
      if (prev) hello.resume = { sessionId: prev.sessionId, resumeToken: prev.resumeToken };
      if (!trySend(ws, JSON.stringify({ type: TYPE_HELLO, payload: hello }))) giveUp(`cannot send ${TYPE_HELLO}`);
    });
    ws.addEventListener("message", (ev: { data?: unknown }) => {
      if (welcomed) {
        this.#onFrame(ws, ev.data);
        return;
      }
      if (this.#dialing !== ws) return;
      const m = parseFrame(ev.data);
      const w = m?.type === TYPE_WELCOME ? parseWelcome(m.payload) : undefined;
      if (!w) {
        giveUp(`expected ${TYPE_WELCOME}, got ${String(ev.data).slice(0, 100)}`);
        return;
      }
      welcomed = true;
      clearTimeout(timer);
      this.#dialing = undefined;
      void this.#opened(ws, w, prev, failedAttempts);
    });
    ws.addEventListener("close", (ev: { code?: number; reason?: string }) => {
      const code = typeof ev.code === "number" ? ev.code : CLOSE_ABNORMAL;
      const reason = typeof ev.reason === "string" ? ev.reason : "";
      if (welcomed) {
        this.#closed(ws, code, reason);
        return;
      }
      if (this.#dialing !== ws) return;
      this.#dialing = undefined;
      clearTimeout(timer);
      this.#dialFailed(code, reason || "the connection closed before its welcome", prev, failedAttempts, goingAwayRetry);
    });
    ws.addEventListener("error", () => {
      // A close event follows.
    });
  }

  /** A connection attempt failed before its welcome. */
  #dialFailed(code: number, reason: string, prev: Welcome | undefined, failedAttempts: number, goingAwayRetry: boolean): void {
    if (this.#state === "closed") return;
    this.#lastClose = { code, reason };
    // The first connection failing closes the client (as Dial fails in Go);
    // a reconnect keeps trying as the close code says: never, at once, or
    // after the backoff. A second "immediately" in a row backs off, so that a
    // gateway that keeps going away before the welcome is not hammered.
    const policy = this.#policy(code);
    if (!prev || policy === "never") {
      this.#shutdown(code, reason);
      return;
    }
    if (policy === "immediately" && !goingAwayRetry) this.#dial(prev, failedAttempts + 1, true);
    else this.#scheduleReconnect(prev, failedAttempts + 1);
  }

  /** A connection was welcomed: re-send or end what was unfinished, send what waited. */
  async #opened(ws: WebSocketLike, w: Welcome, prev: Welcome | undefined, failedAttempts: number): Promise<void> {
    if (this.#state === "closed") {
      closeQuietly(ws);
      return;
    }
    this.#ws = ws;
    const gen = ++this.#gen;
    this.#welcome = w;
    this.#authFailures = 0;
    this.#scheduleRefresh(ws, w.expiresInMs);
    this.#lastFrameAt = Date.now();
    const ping = w.pingIntervalMs > 0 ? w.pingIntervalMs : positive(this.#opts.pingIntervalMs, 25_000);
    this.#armIdle(ws, 2 * ping);
    this.#setState("open", {});
    const waiters = this.#openWaiters;
    this.#openWaiters = [];
    for (const waiter of waiters) waiter.resolve(w);
    const hook = this.#opts.onReconnect;
    if (prev && hook) {
      let result: unknown;
      try {
        result = hook({
          welcome: w,
          resumed: w.resumed,
          previousSessionId: prev.sessionId,
          close: this.#lostBy,
          failedAttempts,
          unfinished: [...this.#calls.values()].filter((c) => c.gen !== 0).length,
        });
      } catch (err) {
        report(err);
      }
      if (isThenable(result) && this.#ws === ws) await this.#awaitReconnectHook(result);
      if (this.#ws !== ws) return; // lost again (or closed): the next connection flushes
    }
    for (const call of [...this.#calls.values()]) this.#flush(call, ws, gen, w.resumed);
  }

  /**
   * Waits for onReconnect's promise, but at most onReconnectTimeoutMs, and no
   * longer than its connection lasts. A rejection, even a late one, is reported.
   */
  #awaitReconnectHook(result: PromiseLike<unknown>): Promise<void> {
    return new Promise<void>((resolve) => {
      const end = () => {
        clearTimeout(timer);
        if (this.#endReconnectHook === end) this.#endReconnectHook = undefined;
        resolve();
      };
      const timer = setTimeout(end, this.#onReconnectTimeoutMs);
      this.#endReconnectHook = end;
      Promise.resolve(result).then(end, (err: unknown) => {
        report(err);
        end();
      });
    });
  }

  /** Handles a frame after the welcome. */
  #onFrame(ws: WebSocketLike, data: unknown): void {
    if (this.#ws !== ws) return;
    this.#lastFrameAt = Date.now();
    const m = parseFrame(data);
    if (!m) return;
    switch (m.type) {
      case TYPE_PING:
        trySend(ws, `{"type":"${TYPE_PONG}"}`);
        return;
      case TYPE_PONG:
      case TYPE_WELCOME:
        return;
      case TYPE_REFRESHED: {
        const pending = typeof m.id === "string" ? this.#refreshes.get(m.id) : undefined;
        if (!pending) return;
        const p = m.payload as { expiresInMs?: unknown } | undefined;
        const expiresInMs = typeof p?.expiresInMs === "number" && p.expiresInMs > 0 ? p.expiresInMs : undefined;
        this.#scheduleRefresh(ws, expiresInMs);
        pending.settle(undefined);
        return;
      }
      case TYPE_ERROR: {
        const refresh = typeof m.id === "string" ? this.#refreshes.get(m.id) : undefined;
        if (refresh) {
          refresh.settle(errorFromPayload(m.payload, [m], ErrorCode.Internal));
          return;
        }
        const call = typeof m.id === "string" ? this.#calls.get(m.id) : undefined;
        if (call) {
          this.#calls.delete(call.id);
          call.fail(errorFromPayload(m.payload, [...call.msgs, m], ErrorCode.BadRequest));
        }
        // A frame the gateway rejected that no request owns, or a send() that nobody awaits.
        if (!call || call.fireAndForget) this.#emit(TYPE_ERROR, m);
        return;
      }
    }
    if (typeof m.id === "string") {
      const call = this.#calls.get(m.id);
      if (call && call.add(m) && call.finished && this.#calls.get(m.id) === call) this.#calls.delete(m.id);
      return;
    }
    if (m.type.startsWith("sys/")) return; // a control frame of a later version; pushes are never sys/…
    this.#emit(m.type, m);
    this.#emit("*", m);
  }

  #emit(key: string, m: Message): void {
    const set = this.#handlers.get(key);
    if (!set) return;
    for (const h of [...set]) {
      try {
        h(m);
      } catch (err) {
        report(err);
      }
    }
  }

  /** Treats ws as dead when no frame arrives for idleMs (two ping intervals). */
  #armIdle(ws: WebSocketLike, idleMs: number): void {
    const check = () => {
      this.#idleTimer = undefined;
      if (this.#ws !== ws) return;
      const quiet = Date.now() - this.#lastFrameAt;
      if (quiet < idleMs) {
        this.#idleTimer = setTimeout(check, idleMs - quiet);
        return;
      }
      this.#closed(ws, CLOSE_ABNORMAL, `no frame from the gateway for ${idleMs} ms`);
      closeQuietly(ws);
    };
    this.#idleTimer = setTimeout(check, idleMs);
  }

  /** A welcomed connection ended: reconnect unless the close code or the options forbid it. */
  #closed(ws: WebSocketLike, code: number, reason: string): void {
    if (this.#ws !== ws) return;
    this.#ws = undefined;
    if (this.#idleTimer !== undefined) clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    this.#endReconnectHook?.();
    this.#lastClose = { code, reason };
    this.#lostBy = { code, reason };
    this.#stopRefresh(ws, new FabricError(ErrorCode.Interrupted, `the connection closed before the refresh was answered (${code})`));
    const policy = this.#policy(code);
    if (this.#state === "closed" || !this.#reconnect || policy === "never") {
      this.#shutdown(code, reason);
      return;
    }
    this.#setState("reconnecting", { code, reason });
    const prev = this.#welcome as Welcome; // #ws was welcomed
    if (policy === "immediately") this.#dial(prev, 0);
    else this.#scheduleReconnect(prev, 0);
  }

  /**
   * What to do after a close: as reconnectPolicy says, except that with a
   * token provider a 4502 or 4504 reconnects with backoff (and a new token),
   * up to MAX_AUTH_FAILURES of them in a row.
   */
  #policy(code: number): ReturnType<typeof reconnectPolicy> {
    if (this.#tokenProvider && (code === CloseCode.Unauthorized || code === CloseCode.TokenExpired)) {
      return ++this.#authFailures < MAX_AUTH_FAILURES ? "backoff" : "never";
    }
    return reconnectPolicy(code);
  }

  /** Dials again after a full-jitter backoff: a random whole number of ms in [0, min(max, min·2^attempt)]. */
  #scheduleReconnect(prev: Welcome, attempt: number): void {
    const ceiling = Math.floor(Math.min(this.#backoffMax, this.#backoffMin * 2 ** Math.min(attempt, 30)));
    const delay = Math.floor(Math.random() * (ceiling + 1));
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      if (this.#state !== "closed") this.#dial(prev, attempt);
    }, delay);
  }

  /** Ends the client: fails every unfinished request and marks it closed. */
  #shutdown(code: number, reason: string): void {
    if (this.#state === "closed") return;
    this.#lastClose = { code, reason };
    if (this.#reconnectTimer !== undefined) clearTimeout(this.#reconnectTimer);
    if (this.#idleTimer !== undefined) clearTimeout(this.#idleTimer);
    this.#reconnectTimer = undefined;
    this.#idleTimer = undefined;
    this.#stopRefresh(undefined, new ClosedError(code, reason));
    const dialing = this.#dialing;
    this.#ws = undefined;
    this.#dialing = undefined;
    if (dialing) closeQuietly(dialing);
    this.#state = "closed";
    this.#endReconnectHook?.();
    const calls = [...this.#calls.values()];
    this.#calls.clear();
    for (const call of calls) call.fail(new ClosedError(code, reason, call.msgs.slice()));
    const waiters = this.#openWaiters;
    this.#openWaiters = [];
    for (const waiter of waiters) waiter.reject(new ClosedError(code, reason));
    this.#notifyState("closed", { code, reason });
  }

  // --- token refresh ---

  /** Sends sys/refresh with token on ws; resolves at its sys/refreshed. */
  #sendRefresh(ws: WebSocketLike, token: string): Promise<void> {
    const id = `refresh-${newId()}`;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => settle(new FabricError(ErrorCode.Timeout, `no answer to ${TYPE_REFRESH} within ${this.#connectTimeoutMs} ms`)),
        this.#connectTimeoutMs,
      );
      const settle = (err: Error | undefined) => {
        if (this.#refreshes.get(id)?.settle !== settle) return;
        this.#refreshes.delete(id);
        clearTimeout(timer);
        if (err) reject(err);
        else {
          if (!this.#tokenProvider) this.#token = token;
          resolve();
        }
      };
      this.#refreshes.set(id, { ws, settle });
      if (!trySend(ws, JSON.stringify({ type: TYPE_REFRESH, id, payload: { token } }))) {
        settle(new FabricError(ErrorCode.Interrupted, `cannot send ${TYPE_REFRESH}: the connection is closing`));
      }
    });
  }

  /**
   * Schedules the automatic refresh of ws's token, which expires in
   * expiresInMs (undefined: never): at expiresInMs − min(60 s, expiresInMs/5),
   * so a 1 h token is refreshed a minute before it expires and a 10 s one
   * after 8 s. Only with a token provider: a string token cannot be renewed.
   */
  #scheduleRefresh(ws: WebSocketLike, expiresInMs: number | undefined): void {
    if (this.#refreshTimer !== undefined) clearTimeout(this.#refreshTimer);
    this.#refreshTimer = undefined;
    const epoch = ++this.#refreshEpoch;
    if (!this.#tokenProvider || expiresInMs === undefined || !(expiresInMs > 0)) return;
    const graceMs = Math.max(this.#welcome?.refreshGraceMs ?? 0, 0);
    const deadline = Date.now() + expiresInMs + graceMs;
    const delay = expiresInMs - Math.min(60_000, expiresInMs / 5);
    this.#refreshTimer = setTimeout(() => void this.#autoRefresh(ws, epoch, deadline, 0), delay);
  }

  /**
   * Refreshes ws's token with the provider's. A failure is retried after
   * 1 s, 2 s, 4 s…, but never later than halfway to deadline (the expiry plus
   * the gateway's grace), REFRESH_ATTEMPTS times in all; then the gateway
   * closes with 4504 and the reconnect asks the provider again.
   */
  async #autoRefresh(ws: WebSocketLike, epoch: number, deadline: number, attempt: number): Promise<void> {
    this.#refreshTimer = undefined;
    if (this.#ws !== ws || epoch !== this.#refreshEpoch) return;
    try {
      const token = await this.#provideToken();
      if (this.#ws !== ws) return;
      await this.#sendRefresh(ws, token); // its sys/refreshed schedules the next one
    } catch (err) {
      if (this.#ws !== ws || epoch !== this.#refreshEpoch) return;
      if (!(err instanceof FabricError)) report(err); // the provider's failure: nobody else sees it
      const delay = Math.min(REFRESH_RETRY_MS * 2 ** attempt, (deadline - Date.now()) / 2);
      if (attempt + 1 >= REFRESH_ATTEMPTS || delay < 10) return;
      this.#refreshTimer = setTimeout(() => void this.#autoRefresh(ws, epoch, deadline, attempt + 1), delay);
    }
  }

  /** Stops the automatic refresh and fails the refreshes pending on ws (undefined: on any connection). */
  #stopRefresh(ws: WebSocketLike | undefined, err: Error): void {
    if (this.#refreshTimer !== undefined) clearTimeout(this.#refreshTimer);
    this.#refreshTimer = undefined;
    this.#refreshEpoch++;
    for (const p of [...this.#refreshes.values()]) if (ws === undefined || p.ws === ws) p.settle(err);
  }

  #closedError(): ClosedError {
    const c = this.#lastClose ?? { code: CloseCode.Normal, reason: "closed" };
    return new ClosedError(c.code, c.reason);
  }

  #setState(state: ConnectionState, info: StateInfo): void {
    this.#state = state;
    this.#notifyState(state, info);
  }

  #notifyState(state: ConnectionState, info: StateInfo): void {
    const cb = this.#opts.onState;
    if (!cb) return;
    try {
      cb(state, info);
    } catch (err) {
      report(err);
    }
  }
}

// --- helpers ---

function positive(v: number | undefined, dflt: number): number {
  return typeof v === "number" && Number.isFinite(v) && v > 0 ? v : dflt;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function trySend(ws: WebSocketLike, data: string): boolean {
  if (ws.readyState !== WS_OPEN) return false;
  try {
    ws.send(data);
    return true;
  } catch {
    return false;
  }
}

/** Drops a connection without ending its session (any close code but 1000). */
function closeQuietly(ws: WebSocketLike): void {
  if (terminate(ws)) return;
  try {
    ws.close(CLOSE_GIVE_UP, "client gave up on the connection");
  } catch {
    // already closed
  }
}

/** Destroys a `ws` socket at once (browsers have no such thing). */
function terminate(ws: WebSocketLike): boolean {
  const t = (ws as { terminate?: () => void }).terminate;
  if (typeof t !== "function") return false;
  try {
    t.call(ws);
  } catch {
    // already closed
  }
  return true;
}

function parseFrame(data: unknown): Message | undefined {
  if (typeof data !== "string") return undefined; // the gateway sends text frames only
  let v: unknown;
  try {
    v = JSON.parse(data);
  } catch {
    return undefined;
  }
  if (v === null || typeof v !== "object" || Array.isArray(v)) return undefined;
  return typeof (v as { type?: unknown }).type === "string" ? (v as Message) : undefined;
}

function parseWelcome(p: unknown): Welcome | undefined {
  if (p === null || typeof p !== "object") return undefined;
  const w = p as Partial<Welcome>;
  if (typeof w.sessionId !== "string" || typeof w.resumeToken !== "string") return undefined;
  const limits = (w.limits ?? {}) as Partial<Welcome["limits"]>;
  const welcome: Welcome = {
    sessionId: w.sessionId,
    resumeToken: w.resumeToken,
    resumed: w.resumed === true,
    gateway: typeof w.gateway === "string" ? w.gateway : "",
    pingIntervalMs: typeof w.pingIntervalMs === "number" ? w.pingIntervalMs : 0,
    limits: {
      maxFrameBytes: typeof limits.maxFrameBytes === "number" ? limits.maxFrameBytes : 0,
      maxInFlight: typeof limits.maxInFlight === "number" ? limits.maxInFlight : 0,
    },
  };
  if (typeof w.user === "string" && w.user !== "") welcome.user = w.user;
  if (typeof w.expiresInMs === "number" && w.expiresInMs > 0) welcome.expiresInMs = w.expiresInMs;
  if (typeof w.refreshGraceMs === "number" && w.refreshGraceMs > 0) welcome.refreshGraceMs = w.refreshGraceMs;
  return welcome;
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? abortError();
}

function abortError(): DOMException {
  return new DOMException("the request was aborted", "AbortError");
}

/** A request id: a UUID (crypto.randomUUID exists only in secure contexts in browsers). */
function newId(): string {
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  return randomHex(16);
}

const HEX = "0123456789abcdef";

function randomHex(bytes: number): string {
  const b = crypto.getRandomValues(new Uint8Array(bytes));
  let s = "";
  for (const x of b) s += (HEX[x >> 4] as string) + (HEX[x & 15] as string);
  return /^0+$/.test(s) ? randomHex(bytes) : s; // all zeros is invalid
}

/** A random, sampled W3C traceparent: 00-<32 hex trace id>-<16 hex span id>-01. */
export function randomTraceparent(): string {
  return `00-${randomHex(16)}-${randomHex(8)}-01`;
}

/**
 * Reports an error thrown by an application callback without breaking the
 * client or the process: to reportError where there is one (browsers: the
 * window's "error" event and the console), else to console.error (Node).
 */
function report(err: unknown): void {
  try {
    const r = (globalThis as { reportError?: (e: unknown) => void }).reportError;
    if (typeof r === "function") r.call(globalThis, err);
    else console.error("fabric: an application callback threw:", err);
  } catch {
    // Reporting must not throw into the client.
  }
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return (typeof v === "object" || typeof v === "function") && v !== null && typeof (v as { then?: unknown }).then === "function";
}
