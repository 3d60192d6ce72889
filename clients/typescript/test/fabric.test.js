// The client against a real `fabric dev`, built from this repository and
// started by the test: every demo route, interleaving, cancel, timeouts,
// streams, pushes, heartbeat, reconnect and resume through a TCP proxy the
// test can cut, and the terminal close 4503.
import { after, afterEach, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import WebSocket from "ws";

import { ClosedError, createClient, demoRouteNames, ErrorCode, FabricError } from "../dist/index.js";

const repoRoot = fileURLToPath(new URL("../../..", import.meta.url));
/** p, marked as handled: the test awaits it later. */
const later = (p) => {
  p.catch(() => {});
  return p;
};
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves once cond() is true; fails after timeoutMs. */
async function waitFor(cond, what, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** Runs a command to completion, failing on a non-zero exit or after timeoutMs. */
function run(cmd, args, opts, timeoutMs) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { ...opts, stdio: ["ignore", "inherit", "inherit"] });
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${cmd} ${args.join(" ")}: timed out`));
    }, timeoutMs);
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`${cmd} ${args.join(" ")}: exit ${code ?? signal}`));
    });
  });
}

const children = new Set();
process.on("exit", () => {
  for (const child of children) child.kill("SIGKILL");
});

/** Starts `fabric dev` (with more args, and env added to ours) and resolves with its WebSocket URL once it listens. */
function startFabric(bin, { args = [], env = {} } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, ["dev", "--listen", "127.0.0.1:0", "--ping-interval", "500ms", "--agent-pace", "0", ...args], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, ...env },
    });
    children.add(child);
    let out = "";
    let errOut = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`fabric dev did not start in 30s\nstdout:\n${out}\nstderr:\n${errOut}`));
    }, 30_000);
    child.stdout.setEncoding("utf8");
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (d) => {
      errOut = (errOut + d).slice(-20_000);
    });
    child.stdout.on("data", (d) => {
      out += d;
      const m = /fabric dev: gateway listening on (ws:\/\/\S+\/ws)/.exec(out);
      if (m) {
        clearTimeout(timer);
        const url = m[1];
        resolve({ child, url, port: Number(new URL(url).port), stderr: () => errOut });
      }
    });
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on("exit", (code, signal) => {
      children.delete(child);
      clearTimeout(timer);
      reject(new Error(`fabric dev exited (${code ?? signal}) before listening\n${errOut}`));
    });
  });
}

/** Stops a fabric: SIGINT, then SIGKILL after 5s. */
async function stopFabric(f) {
  if (!f || f.child.exitCode !== null || f.child.signalCode !== null) return;
  const exited = new Promise((resolve) => f.child.once("exit", resolve));
  f.child.kill("SIGINT");
  const timer = setTimeout(() => f.child.kill("SIGKILL"), 5000);
  await exited;
  clearTimeout(timer);
}

/**
 * A TCP proxy on 127.0.0.1 between a client and a gateway. cut() destroys
 * every connection; freeze() stops passing the gateway's bytes to the clients
 * of the connections open now; retarget() sends new connections elsewhere.
 */
function startProxy(targetPort) {
  return new Promise((resolve) => {
    const conns = new Set();
    let target = targetPort;
    let accepted = 0;
    const server = net.createServer((down) => {
      accepted++;
      const conn = { down, up: net.connect(target, "127.0.0.1"), frozen: false };
      conns.add(conn);
      const end = () => {
        conns.delete(conn);
        down.destroy();
        conn.up.destroy();
      };
      down.on("data", (d) => conn.up.write(d));
      conn.up.on("data", (d) => {
        if (!conn.frozen) down.write(d);
      });
      for (const s of [down, conn.up]) {
        s.on("error", end);
        s.on("close", end);
      }
    });
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      resolve({
        url: `ws://127.0.0.1:${port}/ws`,
        accepted: () => accepted,
        cut() {
          for (const c of [...conns]) {
            c.down.destroy();
            c.up.destroy();
          }
          conns.clear();
        },
        freeze() {
          for (const c of conns) c.frozen = true;
        },
        retarget(p) {
          target = p;
        },
        close() {
          this.cut();
          return new Promise((r) => server.close(() => r()));
        },
      });
    });
  });
}

/** The value of a Prometheus counter line with exactly these labels, or 0. */
async function counter(httpBase, name, labels) {
  const text = await (await fetch(`${httpBase}/metrics`)).text();
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`)) continue;
    const inner = line.slice(name.length + 1, line.indexOf("}"));
    const have = inner.split(",");
    if (have.length === want.length && want.every((l) => have.includes(l))) return Number(line.split(" ").pop());
  }
  return 0;
}

/** Waits until the gateway counts one more request of route ended with outcome than before. */
async function waitCounted(route, outcome, before) {
  const deadline = Date.now() + 3000;
  for (;;) {
    const now = await counter(httpBase, "fabric_gateway_requests_total", { route, outcome });
    if (now > before || Date.now() > deadline) return now;
    await sleep(20);
  }
}

/** Asserts msgs are one request's messages with seq 1..n and a :finish last. */
function assertContiguous(msgs, type) {
  assert.ok(msgs.length >= 1, "at least the :finish");
  msgs.forEach((m, i) => assert.equal(m.seq, i + 1, `seq of message ${i} (${m.type})`));
  const id = msgs[0].id;
  for (const m of msgs) assert.equal(m.id, id);
  assert.equal(msgs.at(-1).type, `${type}:finish`);
  assert.equal(msgs.filter((m) => m.type.endsWith(":finish")).length, 1);
}

let tmp;
let fabric;
let httpBase;
const clients = [];
const proxies = [];
const rawSockets = [];
const fabrics = [];

/** A client of fabric (or of url), closed after the test. */
function newClient(opts = {}) {
  const states = [];
  const client = createClient({
    url: fabric.url,
    WebSocket,
    clientName: "ts-test",
    backoff: { minMs: 20, maxMs: 200 },
    onState: (s, info) => states.push({ s, ...info }),
    ...opts,
  });
  clients.push(client);
  return { client, states };
}

before(
  async () => {
    tmp = mkdtempSync(join(tmpdir(), "fabric-ts-test-"));
    const bin = join(tmp, "fabric");
    await run("go", ["build", "-o", bin, "./cmd/fabric"], { cwd: repoRoot }, 300_000);
    fabric = await startFabric(bin);
    fabrics.push(fabric);
    httpBase = fabric.url.replace(/^ws/, "http").replace(/\/ws$/, "");
    fabric.bin = bin;
  },
  { timeout: 330_000 },
);

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  for (const ws of rawSockets.splice(0)) ws.terminate();
  await Promise.all(proxies.splice(0).map((p) => p.close()));
});

after(async () => {
  await Promise.all(fabrics.map(stopFabric));
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe("demo routes", { timeout: 20_000 }, () => {
  test("connect: welcome, state, session", async () => {
    const { client, states } = newClient();
    assert.equal(client.state, "idle");
    const w = await client.connect();
    assert.equal(client.state, "open");
    assert.match(w.sessionId, /^[A-Za-z0-9_-]{22,64}$/);
    assert.equal(client.sessionId, w.sessionId);
    assert.equal(typeof w.resumeToken, "string");
    assert.equal(w.resumed, false);
    assert.equal(w.pingIntervalMs, 500);
    assert.ok(w.limits.maxFrameBytes > 0 && w.limits.maxInFlight > 0);
    assert.deepEqual(states.map((x) => x.s), ["connecting", "open"]);
    assert.equal(await client.connect(), w, "connect() when open resolves with the welcome");
  });

  test("demo/echo, connecting lazily on the first request", async () => {
    const { client } = newClient();
    const payload = { a: 1, b: [true, null, "x"], c: { d: "é" } };
    const msgs = await client.sendAsync("demo/echo", payload);
    assert.equal(client.state, "open");
    assert.deepEqual(
      msgs.map(({ type, seq, payload }) => ({ type, seq, payload })),
      [
        { type: "demo/echo:response", seq: 1, payload },
        { type: "demo/echo:finish", seq: 2, payload: undefined },
      ],
    );
    assert.match(msgs[0].id, /^[A-Za-z0-9_-]{1,64}$/);
    assert.equal(msgs[1].id, msgs[0].id);
    assert.equal("payload" in msgs[1], false, "a :finish has no payload");
  });

  test("demo/count n=3: exact types and seq 1..5", async () => {
    const { client } = newClient();
    const events = [];
    const msgs = await client.sendAsync("demo/count", { n: 3 }, { onEvent: (m) => events.push(m) });
    assert.deepEqual(
      msgs.map(({ type, seq, payload }) => [type, seq, payload]),
      [
        ["demo/count:progress", 1, { i: 1 }],
        ["demo/count:progress", 2, { i: 2 }],
        ["demo/count:progress", 3, { i: 3 }],
        ["demo/count:response", 4, { n: 3 }],
        ["demo/count:finish", 5, undefined],
      ],
    );
    assert.deepEqual(events, msgs, "onEvent saw every message, in order");
  });

  test("demo/fail rejects with FabricError carrying code, message and messages", async () => {
    const { client } = newClient();
    const err = await client.sendAsync("demo/fail", { code: "nope", message: "it failed on purpose" }).then(
      () => assert.fail("resolved"),
      (e) => e,
    );
    assert.ok(err instanceof FabricError);
    assert.ok(err instanceof Error);
    assert.equal(err.name, "FabricError");
    assert.equal(err.code, "nope");
    assert.equal(err.message, "it failed on purpose");
    assert.deepEqual(
      err.messages.map(({ type, seq }) => [type, seq]),
      [
        ["demo/fail:error", 1],
        ["demo/fail:finish", 2],
      ],
    );
    assert.deepEqual(err.messages[0].payload, { code: "nope", message: "it failed on purpose" });
  });

  test("throwOnError:false resolves with the :error and :finish", async () => {
    const { client } = newClient();
    const msgs = await client.sendAsync("demo/fail", { code: "bad_thing", message: "m" }, { throwOnError: false });
    assert.deepEqual(
      msgs.map((m) => m.type),
      ["demo/fail:error", "demo/fail:finish"],
    );
    assert.equal(msgs[0].payload.code, "bad_thing");
  });

  test("demo/sleep", async () => {
    const { client } = newClient();
    const t0 = Date.now();
    const msgs = await client.sendAsync("demo/sleep", { ms: 150 });
    assert.ok(Date.now() - t0 >= 140);
    assert.equal(msgs[0].type, "demo/sleep:response");
    assert.ok(msgs[0].payload.sleptMs >= 150);
    assertContiguous(msgs, "demo/sleep");
  });

  test("demo/panic rejects with FabricError internal; the worker keeps serving", async () => {
    const { client } = newClient();
    await assert.rejects(client.sendAsync("demo/panic"), (err) => {
      assert.ok(err instanceof FabricError);
      assert.equal(err.code, ErrorCode.Internal);
      assert.deepEqual(
        err.messages.map((m) => m.type),
        ["demo/panic:error", "demo/panic:finish"],
      );
      return true;
    });
    const msgs = await client.sendAsync("demo/echo", "still here");
    assert.equal(msgs[0].payload, "still here");
  });

  test("demo/push arrives through on(type) and on('*'); unsubscribe stops it", async () => {
    const { client } = newClient();
    const typed = [];
    const all = [];
    const offTyped = client.on("chat/message:new", (m) => typed.push(m));
    const offAll = client.on("*", (m) => all.push(m));
    const msgs = await client.sendAsync("demo/push", { type: "chat/message:new", payload: { text: "hi" }, delayMs: 50 });
    assert.deepEqual(msgs.map((m) => m.type), ["demo/push:response", "demo/push:finish"]);
    await waitFor(() => typed.length === 1 && all.length === 1, "the push");
    assert.deepEqual(typed[0], { type: "chat/message:new", payload: { text: "hi" } });
    assert.equal(all[0].type, "chat/message:new");
    assert.equal(typed[0].id, undefined);
    offTyped();
    await client.sendAsync("demo/push", { type: "chat/other", payload: 2, delayMs: 0 });
    await waitFor(() => all.length === 2, "the second push");
    assert.equal(all[1].type, "chat/other");
    assert.equal(all[1].payload, 2);
    assert.equal(typed.length, 1, "an unsubscribed handler gets nothing");
    offAll();
  });

  test("demo/whoami: the session is the client's", async () => {
    const { client } = newClient();
    const w = await client.connect();
    const msgs = await client.sendAsync("demo/whoami");
    assert.equal(msgs[0].type, "demo/whoami:response");
    assert.equal(msgs[0].payload.session, w.sessionId);
    assert.equal(msgs[0].payload.session, client.sessionId);
  });

  test("typed routes: a FabricClient<DemoRoutes> gets the payloads its types narrow to", async () => {
    // In TypeScript this is createClient<DemoRoutes>(…), and test/routes.typecheck.ts
    // compiles the same reads; in this file the JSDoc type serves an editor's checkJs.
    /** @type {import("../dist/index.js").FabricClient<import("../dist/index.js").DemoRoutes>} */
    const client = newClient().client;
    const msgs = await client.sendAsync("demo/count", { n: 2, intervalMs: 5 });
    const progress = [];
    let result;
    for (const m of msgs) {
      if (m.type === "demo/count:progress") progress.push(m.payload.i);
      else if (m.type === "demo/count:response") result = m.payload.n;
    }
    assert.deepEqual(progress, [1, 2]);
    assert.equal(result, 2);
    const slept = (await client.sendAsync("demo/sleep", { ms: 1 })).find((m) => m.type === "demo/sleep:response");
    assert.equal(typeof slept?.payload.sleptMs, "number");
    // Every route of the generated map is served by fabric dev (none gets no_responders).
    const plan = { intent: "units by region", metric: "units", dimension: "region", steps: [] };
    const table = { sql: "", columns: ["region", "units"], labels: ["West", "East"], values: [2, 1], elapsedMs: 0 };
    const params = {
      "demo/count": { n: 1, intervalMs: 0 },
      "demo/echo": "x",
      "demo/fail": { code: "x", message: "y" },
      "demo/panic": null,
      "demo/push": { type: "typed/push", payload: null, delayMs: 0 },
      "demo/silent": null,
      "demo/sleep": { ms: 1 },
      "demo/whoami": null,
      "agent/ask": { question: "revenue by region" },
      "agent/plan": { question: "units by month" },
      "agent/sql": { plan },
      "agent/analyze": { plan, table },
      "agent/chart": { plan, table },
    };
    assert.deepEqual([...demoRouteNames].sort(), Object.keys(params).sort());
    for (const name of demoRouteNames) {
      const outcome = await client.sendAsync(name, params[name], { timeoutMs: name === "demo/silent" ? 300 : 5000, throwOnError: false }).then(
        (ms) => ms.at(-2)?.type,
        (err) => err.name,
      );
      const want =
        name === "demo/silent" ? "TimeoutError" : name === "demo/fail" || name === "demo/panic" ? `${name}:error` : `${name}:response`;
      assert.equal(outcome, want, name);
    }
  });

  test("agent/ask: typed steps stream live and the answer comes from the data", async () => {
    /** @type {import("../dist/index.js").FabricClient<import("../dist/index.js").DemoRoutes>} */
    const client = newClient().client;
    /** @type {Record<string, string[]>} */
    const statuses = {};
    const msgs = await client.sendAsync("agent/ask", { question: "Top 3 products by units sold in 2025" }, {
      onEvent: (m) => {
        if (m.type === "agent/ask:step") (statuses[m.payload.id] ??= []).push(m.payload.status);
      },
    });
    for (const id of ["plan", "sql", "analysis", "chart"]) {
      assert.deepEqual([...new Set(statuses[id])], ["pending", "running", "done"], id);
    }
    const answer = msgs.find((m) => m.type === "agent/ask:response")?.payload;
    assert.equal(answer?.plan.top, 3);
    assert.equal(answer?.table.labels.length, 3);
    assert.equal(answer?.chart.mark.type, "bar");
    assert.ok(answer?.summary.total > 0);
    // The state-resend path: with the plan and table sent back, those steps are reused.
    const again = await client.sendAsync("agent/ask", {
      question: "Top 3 products by units sold in 2025",
      state: { plan: answer.plan, table: answer.table },
    });
    const reused = again.filter((m) => m.type === "agent/ask:step" && m.payload.status === "reused").map((m) => m.payload.id);
    assert.deepEqual(reused, ["plan", "sql"]);
  });

  test("20 interleaved requests each get contiguous seqs", async () => {
    const { client } = newClient();
    await client.connect();
    const arrivals = [];
    const calls = Array.from({ length: 20 }, (_, i) => {
      const n = 1 + (i % 5);
      return client
        .sendAsync("demo/count", { n, intervalMs: 10 }, { onEvent: (m) => arrivals.push(m.id) })
        .then((msgs) => ({ n, msgs }));
    });
    const results = await Promise.all(calls);
    const ids = new Set();
    for (const { n, msgs } of results) {
      assertContiguous(msgs, "demo/count");
      assert.equal(msgs.length, n + 2);
      assert.deepEqual(msgs.at(-2).payload, { n });
      ids.add(msgs[0].id);
    }
    assert.equal(ids.size, 20, "distinct ids");
    let switches = 0;
    for (let i = 1; i < arrivals.length; i++) if (arrivals[i] !== arrivals[i - 1]) switches++;
    assert.ok(switches > 20, `events of different requests interleave (${switches} switches)`);
  });
});

describe("cancel, timeout, stream, validation", { timeout: 20_000 }, () => {
  test("AbortSignal cancels demo/silent promptly with sys/cancel; a next call works", async () => {
    const { client } = newClient();
    await client.connect();
    const before = await counter(httpBase, "fabric_gateway_requests_total", { route: "demo/silent", outcome: "cancelled" });
    const ac = new AbortController();
    const p = later(client.sendAsync("demo/silent", null, { signal: ac.signal }));
    await sleep(100);
    const t0 = Date.now();
    ac.abort();
    await assert.rejects(p, (err) => {
      assert.equal(err.name, "AbortError");
      return true;
    });
    assert.ok(Date.now() - t0 < 500, "rejected promptly");
    assert.equal(await waitCounted("demo/silent", "cancelled", before), before + 1, "the gateway cancelled the request");
    const msgs = await client.sendAsync("demo/echo", 1);
    assert.equal(msgs[0].payload, 1);
    // A signal aborted already: nothing is sent.
    await assert.rejects(client.sendAsync("demo/echo", 2, { signal: AbortSignal.abort() }), { name: "AbortError" });
  });

  test("timeoutMs rejects with TimeoutError and cancels", async () => {
    const { client } = newClient();
    await client.connect();
    const t0 = Date.now();
    await assert.rejects(client.sendAsync("demo/silent", {}, { timeoutMs: 200 }), (err) => {
      assert.equal(err.name, "TimeoutError");
      return true;
    });
    const took = Date.now() - t0;
    assert.ok(took >= 190 && took < 1500, `took ${took} ms`);
    const msgs = await client.sendAsync("demo/count", { n: 1 }, { timeoutMs: 5000 });
    assertContiguous(msgs, "demo/count");
  });

  test("stream() yields every message through :finish", async () => {
    const { client } = newClient();
    const got = [];
    for await (const m of client.stream("demo/count", { n: 3 })) got.push(m);
    assert.deepEqual(
      got.map((m) => [m.type, m.seq]),
      [
        ["demo/count:progress", 1],
        ["demo/count:progress", 2],
        ["demo/count:progress", 3],
        ["demo/count:response", 4],
        ["demo/count:finish", 5],
      ],
    );
    const failed = [];
    for await (const m of client.stream("demo/fail", { code: "x", message: "y" })) failed.push(m.type);
    assert.deepEqual(failed, ["demo/fail:error", "demo/fail:finish"], "a stream yields :error rather than throwing");
  });

  test("breaking out of stream() sends sys/cancel", async () => {
    const { client } = newClient();
    await client.connect();
    const before = await counter(httpBase, "fabric_gateway_requests_total", { route: "demo/count", outcome: "cancelled" });
    const got = [];
    const t0 = Date.now();
    for await (const m of client.stream("demo/count", { n: 1000, intervalMs: 20 })) {
      got.push(m);
      if (got.length === 3) break;
    }
    assert.deepEqual(got.map((m) => m.seq), [1, 2, 3]);
    assert.ok(Date.now() - t0 < 2000);
    assert.equal(await waitCounted("demo/count", "cancelled", before), before + 1, "the gateway cancelled the request");
    // An AbortSignal ends a stream too.
    const ac = new AbortController();
    const seen = [];
    setTimeout(() => ac.abort(), 50);
    await assert.rejects(async () => {
      for await (const m of client.stream("demo/silent", null, { signal: ac.signal })) seen.push(m);
    }, { name: "AbortError" });
    assert.equal(seen.length, 0);
  });

  test("a bad typeName is rejected locally with FabricError bad_request", async () => {
    const { client } = newClient();
    for (const bad of ["", "bad name", "demo.echo", "demo/echo:response", "sys/hello", "sys", "/demo", "demo//x", "démo/x", "a/b/c/d/e/f/g/h/i", "x".repeat(129)]) {
      await assert.rejects(client.sendAsync(bad, {}), (err) => {
        assert.ok(err instanceof FabricError, `${bad}: FabricError`);
        assert.equal(err.code, ErrorCode.BadRequest);
        return true;
      });
      assert.throws(() => client.send(bad), FabricError);
    }
    assert.equal(client.state, "idle", "nothing was sent, so nothing connected");
    await assert.rejects(client.sendAsync("demo/echo", { big: 10n }), { code: "bad_request" });
    // Not a worker's route, but a valid name: the gateway answers no_responders.
    await assert.rejects(client.sendAsync("nope/route"), { code: ErrorCode.NoResponders });
  });

  test("send() is fire-and-forget", async () => {
    const { client } = newClient();
    const pushes = [];
    client.on("fire/forget", (m) => pushes.push(m));
    const id = client.send("demo/push", { type: "fire/forget", payload: "ok", delayMs: 0 });
    assert.match(id, /^[A-Za-z0-9_-]{1,64}$/);
    await waitFor(() => pushes.length === 1, "the push sent by the fire-and-forget request");
  });

  test("close() ends the session (1000) and fails what is in flight with ClosedError", async () => {
    const { client, states } = newClient();
    const w = await client.connect();
    const p = later(client.sendAsync("demo/silent"));
    await sleep(50);
    await client.close();
    assert.equal(client.state, "closed");
    assert.equal(client.lastClose.code, 1000);
    assert.deepEqual(states.map((x) => x.s), ["connecting", "open", "closed"]);
    await assert.rejects(p, (err) => err instanceof ClosedError && err.closeCode === 1000 && err.code === "closed");
    await assert.rejects(client.sendAsync("demo/echo"), ClosedError);
    await assert.rejects(client.connect(), ClosedError);
    // The session is over: resuming it gets a new one.
    const raw = await rawHello(fabric.url, { resume: { sessionId: w.sessionId, resumeToken: w.resumeToken } });
    assert.equal(raw.welcome.resumed, false);
    assert.notEqual(raw.welcome.sessionId, w.sessionId);
  });
});

/** Opens a raw ws connection and says hello; resolves with the socket and the welcome. */
function rawHello(url, helloPayload) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, "fabric.v1");
    rawSockets.push(ws);
    ws.on("error", reject);
    ws.on("open", () => ws.send(JSON.stringify({ type: "sys/hello", payload: helloPayload })));
    ws.once("message", (data) => {
      const m = JSON.parse(String(data));
      if (m.type !== "sys/welcome") reject(new Error(`expected a welcome, got ${data}`));
      else resolve({ ws, welcome: m.payload });
    });
  });
}

describe("heartbeat, reconnect, resume", { timeout: 30_000 }, () => {
  test("pings are answered: an idle connection stays open past two ping intervals", async () => {
    const { client, states } = newClient();
    const w = await client.connect();
    await sleep(1600); // the gateway closes a client silent for 2 × 500 ms
    assert.equal(client.state, "open");
    assert.deepEqual(states.map((x) => x.s), ["connecting", "open"]);
    const msgs = await client.sendAsync("demo/whoami");
    assert.equal(msgs[0].payload.session, w.sessionId);
  });

  test("a silent connection (no frame for 2 × pingIntervalMs) is dropped and resumed", async () => {
    const proxy = await startProxy(fabric.port);
    proxies.push(proxy);
    const { client, states } = newClient({ url: proxy.url });
    const w = await client.connect();
    proxy.freeze(); // the gateway's frames, pings included, stop reaching the client
    const t0 = Date.now();
    await waitFor(() => states.some((x) => x.s === "reconnecting"), "reconnecting", 4000);
    const took = Date.now() - t0;
    assert.ok(took >= 900 && took < 2500, `dead after ${took} ms`);
    const rec = states.find((x) => x.s === "reconnecting");
    assert.equal(rec.code, 1006);
    assert.match(rec.reason, /no frame/);
    await waitFor(() => client.state === "open", "open again");
    assert.equal(client.welcome.resumed, true);
    assert.equal(client.sessionId, w.sessionId);
    assert.deepEqual(states.map((x) => x.s), ["connecting", "open", "reconnecting", "open"]);
    assert.equal(proxy.accepted(), 2);
  });

  test("a cut connection is resumed with nothing lost: every event exactly once, in order (durable fabric dev)", async () => {
    const proxy = await startProxy(fabric.port);
    proxies.push(proxy);
    const log = [];
    const reconnects = [];
    let queued;
    const { client, states } = newClient({
      url: proxy.url,
      onState: (s, info) => {
        states.push({ s, ...info });
        // A request made while disconnected waits for the next connection.
        if (s === "reconnecting") queued = later(client.sendAsync("demo/echo", { queued: true }));
      },
      onReconnect: async (info) => {
        reconnects.push(info);
        // The hook's own requests go out at once, before the re-sends.
        const msgs = await client.sendAsync("demo/echo", { restored: true });
        log.push(`hook echo ${msgs[0].payload.restored}`);
      },
    });
    const w1 = await client.connect();
    const seen = [];
    const msgs = await client.sendAsync(
      "demo/count",
      { n: 50, intervalMs: 20 },
      {
        onEvent: (m) => {
          seen.push(m);
          log.push(m.type);
          if (m.seq === 5) proxy.cut();
        },
      },
    );
    // The gateway kept the events sent while the client was away, and
    // replayed them after the re-sent request's "after".
    assertContiguous(msgs, "demo/count");
    assert.equal(msgs.length, 52);
    assert.deepEqual(
      msgs.slice(0, 50).map((m) => m.payload),
      Array.from({ length: 50 }, (_, i) => ({ i: i + 1 })),
    );
    assert.equal(msgs[50].type, "demo/count:response");
    assert.equal(new Set(seen.map((m) => m.seq)).size, seen.length, "no seq delivered twice");
    assert.deepEqual(seen, msgs);

    assert.equal(reconnects.length, 1);
    assert.equal(reconnects[0].resumed, true);
    assert.equal(reconnects[0].welcome.sessionId, w1.sessionId);
    assert.equal(reconnects[0].previousSessionId, w1.sessionId);
    assert.equal(reconnects[0].close.code, 1006);
    assert.equal(reconnects[0].unfinished, 1);
    assert.equal(client.sessionId, w1.sessionId);
    assert.equal(client.welcome.resumed, true);
    assert.ok(log.indexOf("hook echo true") < log.indexOf("demo/count:response"), log.join(", "));
    assert.deepEqual(states.map((x) => x.s), ["connecting", "open", "reconnecting", "open"]);
    assert.equal(states[2].code, 1006);

    assert.ok(queued, "a request was made while disconnected");
    const q = await queued;
    assert.deepEqual(q[0].payload, { queued: true });
    const who = await client.sendAsync("demo/whoami");
    assert.equal(who[0].payload.session, w1.sessionId);
  });

  test("a resume that is refused (another fabric) ends the in-flight call locally as interrupted", async () => {
    const other = await startFabric(fabric.bin);
    fabrics.push(other);
    const proxy = await startProxy(fabric.port);
    proxies.push(proxy);
    const reconnects = [];
    const { client, states } = newClient({ url: proxy.url, onReconnect: (info) => reconnects.push(info) });
    const w1 = await client.connect();
    const err = await client
      .sendAsync(
        "demo/count",
        { n: 50, intervalMs: 20 },
        {
          onEvent: (m) => {
            if (m.seq === 3) {
              proxy.retarget(other.port);
              proxy.cut();
            }
          },
        },
      )
      .then(
        () => assert.fail("resolved"),
        (e) => e,
      );
    assert.equal(err.code, ErrorCode.Interrupted);
    assert.match(err.message, /session was lost/, "ended by the client");
    assertContiguous(err.messages, "demo/count");
    assert.equal(reconnects.length, 1);
    assert.equal(reconnects[0].resumed, false);
    assert.notEqual(client.sessionId, w1.sessionId);
    assert.deepEqual(states.map((x) => x.s), ["connecting", "open", "reconnecting", "open"]);
    const who = await client.sendAsync("demo/whoami");
    assert.equal(who[0].payload.session, client.sessionId);
    await stopFabric(other);
  });

  test("no reconnect after a terminal close (4503: the session was resumed elsewhere)", async () => {
    const proxy = await startProxy(fabric.port);
    proxies.push(proxy);
    const { client, states } = newClient({ url: proxy.url });
    const w = await client.connect();
    const inflight = later(client.sendAsync("demo/silent"));
    await sleep(50);
    const raw = await rawHello(fabric.url, { resume: { sessionId: w.sessionId, resumeToken: w.resumeToken } });
    assert.equal(raw.welcome.resumed, true);
    assert.equal(raw.welcome.sessionId, w.sessionId);
    await waitFor(() => client.state === "closed", "closed");
    assert.equal(client.lastClose.code, 4503);
    await assert.rejects(inflight, (e) => e instanceof ClosedError && e.closeCode === 4503);
    await sleep(500);
    assert.equal(proxy.accepted(), 1, "no reconnect");
    assert.deepEqual(
      states.map((x) => x.s),
      ["connecting", "open", "closed"],
    );
    assert.equal(states[2].code, 4503);
    await assert.rejects(client.sendAsync("demo/echo"), ClosedError);
    raw.ws.close(1000);
  });
});

// --- authentication: a second fabric dev that requires HS256 JWTs ---

const jwtSecret = randomBytes(32).toString("hex");

/** An HS256 JWT for sub, expiring in ttlSeconds (negative: expired), signed with secret. */
function signJWT(sub, ttlSeconds, secret = jwtSecret) {
  const b64 = (v) => Buffer.from(JSON.stringify(v)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  const unsigned = `${b64({ alg: "HS256", typ: "JWT" })}.${b64({ sub, iat: now, exp: now + ttlSeconds })}`;
  return `${unsigned}.${createHmac("sha256", secret).update(unsigned).digest("base64url")}`;
}

describe("authentication and token refresh", { timeout: 30_000 }, () => {
  let authFabric;
  let authHttp;
  before(async () => {
    // The secret goes in the environment, which ps does not show; fabric dev
    // leaves a 30 s leeway on exp, so "expired" tokens below are an hour old.
    authFabric = await startFabric(fabric.bin, { args: ["--refresh-grace", "1s"], env: { FABRIC_JWT_SECRET: jwtSecret } });
    fabrics.push(authFabric);
    authHttp = authFabric.url.replace(/^ws/, "http").replace(/\/ws$/, "");
  });
  const authClient = (opts) => newClient({ url: authFabric.url, ...opts });
  const authCount = (kind, result) => counter(authHttp, "fabric_gateway_authentications_total", { kind, result });

  test("no token: the first connect fails with 4502 and the client does not reconnect", async () => {
    const proxy = await startProxy(authFabric.port);
    proxies.push(proxy);
    const { client, states } = authClient({ url: proxy.url });
    const pending = later(client.sendAsync("demo/echo", 1));
    await assert.rejects(client.connect(), (e) => e instanceof ClosedError && e.closeCode === 4502);
    await assert.rejects(pending, (e) => e instanceof ClosedError && e.closeCode === 4502);
    assert.equal(client.state, "closed");
    assert.match(client.lastClose.reason, /no token/);
    await sleep(300);
    assert.equal(proxy.accepted(), 1, "no reconnect");
    assert.deepEqual(states.map((x) => x.s), ["connecting", "closed"]);
  });

  test("a valid string token: the welcome's user; refreshToken with another user's token is refused and the connection stays", async () => {
    const { client, states } = authClient({ token: signJWT("alice", 3600) });
    const w = await client.connect();
    assert.equal(w.user, "alice");
    assert.equal(client.user, "alice");
    assert.ok(w.expiresInMs > 3_500_000 && w.expiresInMs <= 3_600_000, `expiresInMs ${w.expiresInMs}`);
    assert.equal(w.refreshGraceMs, 1000);
    const who = await client.sendAsync("demo/whoami");
    assert.equal(who[0].payload.user, "alice");

    await assert.rejects(client.refreshToken(signJWT("mallory", 3600)), (e) => e instanceof FabricError && e.code === "unauthorized" && /another user/.test(e.message));
    await assert.rejects(client.refreshToken(signJWT("alice", 3600, "another secret of 32 bytes or more!!")), (e) => e.code === "unauthorized");
    await assert.rejects(client.refreshToken(), TypeError, "no provider, no token");
    const ok = await authCount("refresh", "ok");
    await client.refreshToken(signJWT("alice", 7200));
    assert.equal(await authCount("refresh", "ok"), ok + 1);
    assert.equal((await client.sendAsync("demo/echo", 2))[0].payload, 2);
    assert.deepEqual(states.map((x) => x.s), ["connecting", "open"]);
  });

  test("a provider: the client refreshes a 3 s token by itself and the connection outlives its expiry and grace", async () => {
    const calls = [];
    const { client, states } = authClient({
      token: async () => {
        calls.push(Date.now());
        return signJWT("bob", 3);
      },
    });
    const refreshedBefore = await authCount("refresh", "ok");
    const t0 = Date.now();
    const w = await client.connect();
    assert.equal(client.user, "bob");
    assert.ok(w.expiresInMs > 1000 && w.expiresInMs <= 3000, `expiresInMs ${w.expiresInMs}`);
    // Past the first token's expiry (≤ 3 s) plus the 1 s grace, and well into the second's.
    await sleep(Math.max(0, t0 + 5500 - Date.now()));
    assert.equal(client.state, "open");
    assert.deepEqual(states.map((x) => x.s), ["connecting", "open"], "no close, no reconnect");
    assert.ok(calls.length >= 3, `provider called ${calls.length} times (the connect and at least two refreshes)`);
    assert.ok(calls[1] - t0 < w.expiresInMs, "the first refresh came before the expiry");
    assert.ok((await authCount("refresh", "ok")) >= refreshedBefore + 2);
    const who = await client.sendAsync("demo/whoami");
    assert.deepEqual(who[0].payload, { user: "bob", session: w.sessionId });
  });

  test("a provider whose refresh tokens are expired: 4504, then a reconnect with a fresh token resumes the session", async () => {
    let expired = false; // the provider's tokens after the first are expired until the 4504
    let n = 0;
    const { client, states } = authClient({
      token: () => (n++ === 0 || !expired ? signJWT("carol", 3) : signJWT("carol", -3600)),
      onState: (s, info) => {
        states.push({ s, ...info });
        if (info.code === 4504) expired = false;
      },
    });
    expired = true;
    const w1 = await client.connect();
    const refusedBefore = await authCount("refresh", "expired");
    await waitFor(() => states.some((x) => x.code === 4504), "the 4504 close", 8000);
    await waitFor(() => client.state === "open", "the reconnect", 5000);
    assert.deepEqual(states.map((x) => x.s), ["connecting", "open", "reconnecting", "open"]);
    assert.equal(client.welcome.resumed, true);
    assert.equal(client.sessionId, w1.sessionId);
    assert.ok((await authCount("refresh", "expired")) > refusedBefore, "the expired tokens were refused");
    assert.equal((await client.sendAsync("demo/whoami"))[0].payload.user, "carol");
  });

  test("a provider that keeps returning expired tokens: the client gives up after 3 auth closes in a row and fails what is pending", async () => {
    let n = 0;
    const { client, states } = authClient({ token: () => (n++ === 0 ? signJWT("dave", 2) : signJWT("dave", -3600)) });
    await client.connect();
    const helloExpired = await authCount("hello", "expired");
    await waitFor(() => client.state === "reconnecting", "the 4504 close", 8000);
    const pending = later(client.sendAsync("demo/echo", 1)); // waits for a connection that never comes
    await waitFor(() => client.state === "closed", "closed", 8000);
    await assert.rejects(pending, (e) => e instanceof ClosedError && e.closeCode === 4502);
    assert.equal(client.lastClose.code, 4502);
    assert.deepEqual(states.map((x) => [x.s, x.code]), [["connecting", undefined], ["open", undefined], ["reconnecting", 4504], ["closed", 4502]]);
    assert.equal(await authCount("hello", "expired"), helloExpired + 2, "two reconnects, each refused");
    const dials = n;
    await sleep(300);
    assert.equal(n, dials, "no more connects");
  });
});
