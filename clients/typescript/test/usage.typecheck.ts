// Compiled by `npm run typecheck`, never run: the public API as an
// application uses it, in Node with the ws package and in a browser.
import WebSocket from "ws";
import {
  createClient,
  ClosedError,
  CloseCode,
  ErrorCode,
  FabricError,
  reconnectPolicy,
  type ConnectionState,
  type FabricClient,
  type Message,
  type TokenProvider,
  type Welcome,
} from "../src/index.js";

export async function node(): Promise<void> {
  const client: FabricClient = createClient({
    url: "ws://127.0.0.1:8080/ws",
    WebSocket,
    backoff: { minMs: 50, maxMs: 1000 },
    onState: (state: ConnectionState, info) => console.log(state, info.code, info.reason),
    onReconnect: async (info) => {
      await client.sendAsync("chat/restore", { session: info.previousSessionId });
    },
    onReconnectTimeoutMs: 5000,
    traceparent: () => "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
  });
  const welcome: Welcome = await client.connect();
  console.log(welcome.sessionId, client.sessionId, client.state, client.lastClose?.code);
  const messages: Message[] = await client.sendAsync("demo/count", { n: 3 }, {
    timeoutMs: 1000,
    signal: AbortSignal.timeout(5000),
    onEvent: (m) => console.log(m.type, m.seq),
  });
  console.log(messages.length);
  try {
    await client.sendAsync("demo/fail", { code: "nope" });
  } catch (err) {
    if (err instanceof ClosedError) console.log(err.closeCode, err.reason);
    else if (err instanceof FabricError && err.code === ErrorCode.Interrupted) console.log(err.messages);
  }
  for await (const m of client.stream("demo/count", { n: 3 })) console.log(m.payload);
  const off = client.on("*", (m) => console.log(m.type));
  off();
  const id: string = client.send("demo/echo", "hi");
  console.log(id, reconnectPolicy(CloseCode.GoingAway));
  await client.close();
}

export function browser(): FabricClient {
  // The DOM's WebSocket class fits the option too.
  return createClient({ url: "wss://example.invalid/ws", WebSocket: globalThis.WebSocket });
}

export async function tokens(): Promise<void> {
  const provider: TokenProvider = async () => "a fresh token";
  const withProvider = createClient({ url: "ws://127.0.0.1:8080/ws", WebSocket, token: provider });
  const withString = createClient({ url: "ws://127.0.0.1:8080/ws", WebSocket, token: "a token" });
  createClient({ url: "ws://127.0.0.1:8080/ws", WebSocket, token: () => "a token" });
  // @ts-expect-error a provider returns a string
  createClient({ url: "ws://127.0.0.1:8080/ws", WebSocket, token: () => 42 });
  const w: Welcome = await withProvider.connect();
  const user: string | undefined = withProvider.user ?? w.user;
  const left: number | undefined = w.expiresInMs;
  const grace: number | undefined = w.refreshGraceMs;
  console.log(user, left, grace);
  await withProvider.refreshToken();
  await withString.refreshToken("a new token");
  try {
    await withString.refreshToken("another user's token");
  } catch (err) {
    if (err instanceof FabricError && err.code === ErrorCode.Unauthorized) console.log(err.message);
  }
  if (withString.lastClose?.code === CloseCode.TokenExpired) console.log("sign in again");
}
