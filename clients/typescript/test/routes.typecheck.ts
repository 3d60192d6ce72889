// Compiled by `npm run typecheck`, never run: the client typed by a route map
// (the generated DemoRoutes). The positive cases must compile; each line after
// a `@ts-expect-error` must not (tsc fails on an expect-error that is unused,
// so each one proves that a misuse is a compile error).
import WebSocket from "ws";
import {
  createClient,
  type Answer,
  type Step,
  demoRouteNames,
  FabricError,
  type CountProgress,
  type CountResult,
  type DemoRoutes,
  type ErrorPayload,
  type FabricClient,
  type Message,
  type RouteMessage,
  type RouteParams,
  type SleepResult,
  type WhoamiResult,
} from "../src/index.js";

/** true only when A and B are the same type. */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function assertType<T extends true>(): T | void {}

const client = createClient<DemoRoutes>({ url: "ws://127.0.0.1:8080/ws", WebSocket });

// --- what compiles ---

export async function narrowing(): Promise<void> {
  for (const m of await client.sendAsync("agent/ask", { question: "q", state: { plan: null } })) {
    if (m.type === "agent/ask:step") assertType<Equal<typeof m.payload, Step>>();
    if (m.type === "agent/ask:response") assertType<Equal<typeof m.payload, Answer>>();
  }
  const msgs = await client.sendAsync("demo/count", { n: 3, intervalMs: 10 });
  for (const m of msgs) {
    const id: string = m.id;
    const seq: number = m.seq;
    console.log(id, seq);
    if (m.type === "demo/count:progress") {
      const p: CountProgress = m.payload;
      const i: number = m.payload.i;
      console.log(p, i);
    } else if (m.type === "demo/count:response") {
      const n: number = m.payload.n;
      console.log(n);
    } else if (m.type === "demo/count:error") {
      const e: ErrorPayload = m.payload;
      console.log(e.code, e.message, e.details);
    } else {
      // Only :finish is left, and it has no payload.
      assertType<Equal<typeof m.type, "demo/count:finish">>();
      const none: undefined = m.payload;
      console.log(none);
    }
  }
}

/** A switch over every suffix is exhaustive: the default is unreachable. */
export function describeMessage(m: RouteMessage<DemoRoutes, "demo/sleep">): string {
  switch (m.type) {
    case "demo/sleep:response":
      return `slept ${m.payload.sleptMs} ms`;
    case "demo/sleep:error":
      return `${m.payload.code}: ${m.payload.message}`;
    case "demo/sleep:finish":
      return "done";
    default: {
      const unreachable: never = m;
      return unreachable;
    }
  }
}

export async function paramsAndOptions(): Promise<void> {
  // onEvent sees the same narrowed messages.
  await client.sendAsync("demo/count", { n: 1, intervalMs: 0 }, {
    timeoutMs: 1000,
    onEvent: (m) => {
      if (m.type === "demo/count:progress") console.log(m.payload.i);
    },
  });
  // A comparison of type narrows in a callback too (an inferred type predicate).
  const response = (await client.sendAsync("demo/sleep", { ms: 5 })).find((m) => m.type === "demo/sleep:response");
  const slept: number | undefined = response?.payload.sleptMs;
  console.log(slept);
  // Routes whose params are unknown take anything, or nothing.
  await client.sendAsync("demo/echo", { anything: [1, "two"] });
  await client.sendAsync("demo/whoami");
  await client.sendAsync("demo/silent", null, { signal: AbortSignal.timeout(100) });
  await client.sendAsync("demo/fail", { code: "nope", message: "on purpose" }, { throwOnError: false });
  client.send("demo/push", { type: "chat/x", payload: { text: "hi" }, delayMs: 0 });
  client.send("demo/panic");
  for await (const m of client.stream("demo/whoami", undefined, { signal: AbortSignal.timeout(1000) })) {
    if (m.type === "demo/whoami:response") {
      const w: WhoamiResult = m.payload;
      console.log(w.user, w.session);
    }
  }
  const params: RouteParams<DemoRoutes, "demo/count"> = { n: 2, intervalMs: 1 };
  await client.sendAsync("demo/count", params);
  // The generated list of names, e.g. for a route picker.
  const names: readonly (keyof DemoRoutes)[] = demoRouteNames;
  console.log(names);
}

export async function interop(): Promise<void> {
  // A typed message is a Message, so untyped helpers and FabricError keep working.
  const msgs: Message[] = await client.sendAsync("demo/count", { n: 1, intervalMs: 0 });
  console.log(msgs.length);
  try {
    await client.sendAsync("demo/fail", { code: "x", message: "y" });
  } catch (err) {
    if (err instanceof FabricError) console.log(err.code, err.messages);
  }
  // The route map is inferred from the declared type too.
  const inferred: FabricClient<DemoRoutes> = createClient({ url: "ws://127.0.0.1:8080/ws", WebSocket });
  await inferred.sendAsync("demo/sleep", { ms: 1 });
  // Pushes are not typed by the route map.
  client.on("chat/message:new", (m) => console.log(m.type, m.payload));
  // Without a route map, anything goes (as before): any typeName, payload unknown.
  const untyped = createClient({ url: "ws://127.0.0.1:8080/ws", WebSocket });
  const any = await untyped.sendAsync("chat/restore", { whatever: true });
  const payload: unknown = any[0]?.payload;
  const type: string = any[0]?.type ?? "";
  console.log(payload, type);
  const dynamic: string = "demo/echo";
  await untyped.sendAsync(dynamic);
}

// A route map written by hand, as an interface or a type alias.
interface ChatRoutes {
  "chat/send": { params: { text: string }; events: { token: { t: string }; response: { id: number } } };
}
type ToolRoutes = { "tool/run": { params: { argv: string[] }; events: { response: { exit: number } } } };

export async function handWritten(): Promise<void> {
  const chat = createClient<ChatRoutes>({ url: "ws://x/ws" });
  for await (const m of chat.stream("chat/send", { text: "hi" })) {
    if (m.type === "chat/send:token") console.log(m.payload.t);
  }
  const tool = createClient<ToolRoutes>({ url: "ws://x/ws" });
  const [first] = await tool.sendAsync("tool/run", { argv: ["ls"] });
  if (first?.type === "tool/run:response") console.log(first.payload.exit);
}

// The generated names are exactly the map's keys.
assertType<Equal<(typeof demoRouteNames)[number], keyof DemoRoutes>>();
// A message's type is `${route}:${suffix}` for each suffix and no other.
assertType<
  Equal<
    RouteMessage<DemoRoutes, "demo/count">["type"],
    "demo/count:progress" | "demo/count:response" | "demo/count:error" | "demo/count:finish"
  >
>();

// --- what does not compile ---

export async function misuse(): Promise<void> {
  // agent/ask's question must be a string, and its state's plan a QueryPlan.
  // @ts-expect-error
  await client.sendAsync("agent/ask", { question: 42 });
  // @ts-expect-error
  await client.sendAsync("agent/ask", { question: "q", state: { plan: { metric: "revenue" } } });
  // An unknown typeName.
  // @ts-expect-error
  await client.sendAsync("demo/nope", {});
  // A typeName with the suffix: a request names the route.
  // @ts-expect-error
  await client.sendAsync("demo/count:progress", { n: 1, intervalMs: 0 });
  // A params field the route does not have.
  // @ts-expect-error
  await client.sendAsync("demo/count", { n: 1, intervalMs: 0, extra: true });
  // A misspelt params field.
  // @ts-expect-error
  await client.sendAsync("demo/count", { n: 1, interval: 0 });
  // A required params field left out.
  // @ts-expect-error
  await client.sendAsync("demo/count", { n: 1 });
  // The params left out although the route requires them.
  // @ts-expect-error
  await client.sendAsync("demo/sleep");
  // A params field of the wrong type.
  // @ts-expect-error
  await client.sendAsync("demo/sleep", { ms: "150" });
  // Another route's params.
  // @ts-expect-error
  await client.sendAsync("demo/fail", { ms: 150 });

  const msgs = await client.sendAsync("demo/count", { n: 3, intervalMs: 0 });
  for (const m of msgs) {
    // Before narrowing, the payload is a union (with :finish's undefined).
    // @ts-expect-error
    console.log(m.payload.i);
    // A suffix the route lacks.
    // @ts-expect-error
    if (m.type === "demo/count:token") console.log(m);
    // Another route's event.
    // @ts-expect-error
    if (m.type === "demo/sleep:response") console.log(m);
    if (m.type === "demo/count:progress") {
      // A payload field that does not exist.
      // @ts-expect-error
      console.log(m.payload.n);
      // @ts-expect-error
      console.log(m.payload.nope);
    }
    if (m.type === "demo/count:response") {
      // The payload of another route.
      // @ts-expect-error
      const s: SleepResult = m.payload;
      const ok: CountResult = m.payload;
      console.log(s, ok);
    }
    if (m.type === "demo/count:finish") {
      // :finish has no payload.
      // @ts-expect-error
      console.log(m.payload.code);
    }
  }

  // onEvent is typed too.
  await client.sendAsync("demo/sleep", { ms: 1 }, {
    onEvent: (m) => {
      // @ts-expect-error
      if (m.type === "demo/sleep:response") console.log(m.payload.i);
    },
  });

  // stream and send check typeName and params like sendAsync.
  // @ts-expect-error
  for await (const m of client.stream("demo/sleep", { ms: "1" })) console.log(m);
  // @ts-expect-error
  for await (const m of client.stream("demo/unknown")) console.log(m);
  // @ts-expect-error
  client.send("demo/fail", { code: "x" });
  // @ts-expect-error
  client.send("demo/push", { type: "x", payload: 1, delayMs: "0" });
  // @ts-expect-error
  client.send("sys/ping");
  // A stream's messages are narrowed: a field of another suffix does not exist.
  for await (const m of client.stream("demo/whoami")) {
    // @ts-expect-error
    if (m.type === "demo/whoami:response") console.log(m.payload.sleptMs);
  }

  // A route map must give each route its params and events.
  // @ts-expect-error
  createClient<{ "a/b": { params: number } }>({ url: "ws://x/ws" });

  // Without a route map, payloads are unknown, as before.
  const untyped = createClient({ url: "ws://x/ws" });
  const [first] = await untyped.sendAsync("x/y");
  // @ts-expect-error
  console.log(first?.payload.anything);
}
