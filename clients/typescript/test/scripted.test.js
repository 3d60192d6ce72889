// The client against a scripted gateway (a ws server in this process), for
// what a real fabric does not do on demand: duplicate seqs, sys/error for a
// request, the exact frames of a resume, close codes 1001 and 45xx (also before
// a reconnect's welcome), a first connection that fails, a request larger than
// maxFrameBytes, the backoff's delays, throwing or hanging callbacks.
import { afterEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import WebSocket, { WebSocketServer } from "ws";

import { ClosedError, createClient, FabricError } from "../dist/index.js";

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(cond, what, timeoutMs = 3000) {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

const TRACEPARENT = /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/;

/**
 * A gateway on 127.0.0.1 driven by script(conn, frame, n) for each client
 * frame, n counting connections from 1. It records each connection's frames
 * and offered subprotocols.
 */
function scriptedGateway(script) {
  return new Promise((resolve) => {
    const conns = [];
    const wss = new WebSocketServer({
      host: "127.0.0.1",
      port: 0,
      handleProtocols: (protocols) => (protocols.has("fabric.v1") ? "fabric.v1" : false),
    });
    wss.on("connection", (ws, req) => {
      const conn = {
        ws,
        n: conns.length + 1,
        frames: [],
        protocols: req.headers["sec-websocket-protocol"],
        send: (frame) => ws.send(JSON.stringify(frame)),
        welcome: (over = {}) =>
          conn.send({
            type: "sys/welcome",
            payload: {
              sessionId: `session-${"x".repeat(16)}-${conn.n}`,
              resumeToken: `token-${conn.n}`,
              resumed: false,
              gateway: "gw-test",
              pingIntervalMs: 10_000,
              limits: { maxFrameBytes: 1 << 20, maxInFlight: 128 },
              ...over,
            },
          }),
      };
      conns.push(conn);
      ws.on("message", (data) => {
        const frame = JSON.parse(String(data));
        conn.frames.push(frame);
        script(conn, frame);
      });
    });
    wss.on("listening", () => {
      const { port } = wss.address();
      resolve({
        url: `ws://127.0.0.1:${port}/ws`,
        conns,
        close: () => {
          for (const c of wss.clients) c.terminate();
          return new Promise((r) => wss.close(() => r()));
        },
      });
    });
  });
}

const cleanups = [];
const realRandom = Math.random;
afterEach(async () => {
  Math.random = realRandom;
  for (const f of cleanups.splice(0).reverse()) await f();
});

async function setup(script, opts = {}) {
  const gw = await scriptedGateway(script);
  cleanups.push(() => gw.close());
  const states = [];
  const client = createClient({
    url: gw.url,
    WebSocket,
    onState: (s, info) => states.push({ s, ...info }),
    ...opts,
  });
  cleanups.push(() => client.close());
  return { gw, client, states };
}

describe("scripted gateway", { timeout: 15_000 }, () => {
  test("hello, subprotocol, traceparent, pong, duplicate seqs dropped, sys/error, pushes", async () => {
    const { gw, client } = await setup(
      (conn, f) => {
        if (f.type === "sys/hello") {
          conn.welcome();
          conn.send({ type: "sys/ping" });
          return;
        }
        if (f.type === "t/dup") {
          const ev = (suffix, seq, payload) => conn.send({ type: `t/dup:${suffix}`, id: f.id, seq, payload });
          ev("progress", 1, "a");
          ev("progress", 1, "a again");
          ev("progress", 2, "b");
          ev("progress", 1, "a once more");
          conn.send({ type: "unrelated/push", payload: 7 });
          conn.send({ type: "other:progress", id: "unknown-id", seq: 1 });
          ev("finish", 3);
          ev("finish", 3);
        } else if (f.type === "t/reject") {
          conn.send({ type: "sys/error", id: f.id, payload: { code: "bad_request", message: "rejected on purpose" } });
        } else if (f.type === "t/own") {
          conn.send({ type: "t/own:error", id: f.id, seq: 1, payload: { code: "quota", message: "over quota", details: { limit: 3 } } });
          conn.send({ type: "t/own:finish", id: f.id, seq: 2 });
        }
      },
      { token: "secret", clientName: "scripted-test", traceparent: () => "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" },
    );
    const pushes = [];
    client.on("*", (m) => pushes.push(m));
    const w = await client.connect();
    assert.equal(w.gateway, "gw-test");
    const conn = gw.conns[0];
    assert.equal(conn.protocols, "fabric.v1");
    assert.deepEqual(conn.frames[0], { type: "sys/hello", payload: { client: "scripted-test", token: "secret" } });
    await waitFor(() => conn.frames.some((f) => f.type === "sys/pong"), "the pong");

    const msgs = await client.sendAsync("t/dup", { x: 1 });
    assert.deepEqual(
      msgs.map((m) => [m.type, m.seq, m.payload]),
      [
        ["t/dup:progress", 1, "a"],
        ["t/dup:progress", 2, "b"],
        ["t/dup:finish", 3, undefined],
      ],
    );
    assert.deepEqual(pushes, [{ type: "unrelated/push", payload: 7 }], "a frame for an unknown id is not a push");
    const req = conn.frames.find((f) => f.type === "t/dup");
    assert.deepEqual(Object.keys(req).sort(), ["id", "payload", "traceparent", "type"]);
    assert.deepEqual(req.payload, { x: 1 });
    assert.equal(req.traceparent, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");

    await assert.rejects(client.sendAsync("t/reject"), (err) => {
      assert.ok(err instanceof FabricError);
      assert.equal(err.code, "bad_request");
      assert.equal(err.message, "rejected on purpose");
      assert.equal(err.messages.at(-1).type, "sys/error");
      return true;
    });
    await assert.rejects(client.sendAsync("t/own"), (err) => {
      assert.equal(err.code, "quota");
      assert.deepEqual(err.details, { limit: 3 });
      return true;
    });
  });

  test("each request gets a fresh random traceparent and id; no payload means none sent", async () => {
    const { gw, client } = await setup((conn, f) => {
      if (f.type === "sys/hello") conn.welcome();
      else if (f.id) conn.send({ type: `${f.type}:finish`, id: f.id, seq: 1 });
    });
    await client.sendAsync("t/a");
    await client.sendAsync("t/b", null);
    const [a, b] = gw.conns[0].frames.slice(1);
    assert.match(a.traceparent, TRACEPARENT);
    assert.match(b.traceparent, TRACEPARENT);
    assert.notEqual(a.traceparent, b.traceparent);
    assert.notEqual(a.id, b.id);
    assert.match(a.id, /^[0-9a-f-]{36}$/);
    assert.equal("payload" in a, false);
    assert.equal(b.payload, null);
  });

  test("1001 reconnects at once and resumes: onReconnect's requests first, then re-sends with after", async () => {
    let closedAt = 0;
    let hookInfo;
    const { gw, client, states } = await setup(
      (conn, f) => {
        if (f.type === "sys/hello") {
          conn.welcome(conn.n === 1 ? {} : { sessionId: f.payload.resume.sessionId, resumed: true });
          return;
        }
        if (f.type === "t/long" && f.after === undefined) {
          conn.send({ type: "t/long:progress", id: f.id, seq: 1, payload: 1 });
          conn.send({ type: "t/long:progress", id: f.id, seq: 2, payload: 2 });
          setTimeout(() => {
            closedAt = Date.now();
            conn.ws.close(1001, "going away");
          }, 20);
        } else if (f.type === "t/long") {
          conn.send({ type: "t/long:progress", id: f.id, seq: 2, payload: "dup" });
          conn.send({ type: "t/long:error", id: f.id, seq: f.after + 1, payload: { code: "interrupted", message: "lost" } });
          conn.send({ type: "t/long:finish", id: f.id, seq: f.after + 2 });
        } else if (f.type === "t/hook" || f.type === "t/queued") {
          conn.send({ type: `${f.type}:response`, id: f.id, seq: 1, payload: f.payload });
          conn.send({ type: `${f.type}:finish`, id: f.id, seq: 2 });
        }
      },
      {
        backoff: { minMs: 10_000, maxMs: 10_000 },
        onReconnect: async (info) => {
          hookInfo = info;
          await client.sendAsync("t/hook", "restored");
        },
      },
    );
    Math.random = () => 0.999; // a backoff would wait ~10 s
    const w1 = await client.connect();
    const err = await client.sendAsync("t/long", { big: "payload" }).then(
      () => assert.fail("resolved"),
      (e) => e,
    );
    assert.ok(Date.now() - closedAt < 2000, "reconnected at once");
    assert.equal(err.code, "interrupted");
    assert.deepEqual(
      err.messages.map((m) => [m.type, m.seq]),
      [
        ["t/long:progress", 1],
        ["t/long:progress", 2],
        ["t/long:error", 3],
        ["t/long:finish", 4],
      ],
    );
    assert.equal(gw.conns.length, 2);
    const first = gw.conns[0].frames.find((f) => f.type === "t/long");
    const [hello, hook, resent] = gw.conns[1].frames;
    assert.deepEqual(hello.payload.resume, { sessionId: w1.sessionId, resumeToken: w1.resumeToken });
    assert.equal(hook.type, "t/hook", "the hook's request went first");
    assert.deepEqual(resent, { ...first, after: 2 }, "same id, type, payload and traceparent, with after");
    assert.equal(hookInfo.resumed, true);
    assert.deepEqual(hookInfo.close, { code: 1001, reason: "going away" });
    assert.deepEqual(states.map((x) => x.s), ["connecting", "open", "reconnecting", "open"]);
    assert.equal(states[2].code, 1001);
  });

  test("close codes 4500–4999 and 1000 from the gateway are terminal", async () => {
    for (const code of [4502, 4999, 1000]) {
      const { gw, client, states } = await setup((conn, f) => {
        if (f.type === "sys/hello") {
          conn.welcome();
          setTimeout(() => conn.ws.close(code, `bye ${code}`), 20);
        }
      });
      Math.random = () => 0; // a backoff would reconnect within 1 ms
      await client.connect();
      await waitFor(() => client.state === "closed", `closed after ${code}`);
      await sleep(100);
      assert.equal(gw.conns.length, 1, `no reconnect after ${code}`);
      assert.deepEqual(client.lastClose, { code, reason: `bye ${code}` });
      assert.deepEqual(states.at(-1), { s: "closed", code, reason: `bye ${code}` });
    }
  });

  test("reconnect:false does not reconnect", async () => {
    const { gw, client } = await setup(
      (conn, f) => {
        if (f.type === "sys/hello") {
          conn.welcome();
          setTimeout(() => conn.ws.terminate(), 20);
        }
      },
      { reconnect: false },
    );
    await client.connect();
    await waitFor(() => client.state === "closed", "closed");
    assert.equal(client.lastClose.code, 1006);
    await sleep(100);
    assert.equal(gw.conns.length, 1);
  });

  test("reconnect attempts back off while the gateway refuses, then resume", async () => {
    let refuse = 0;
    const { gw, client, states } = await setup(
      (conn, f) => {
        if (f.type !== "sys/hello") return;
        if (conn.n === 1) {
          conn.welcome();
          refuse = 3;
          setTimeout(() => conn.ws.terminate(), 10);
        } else if (refuse > 0) {
          refuse--;
          conn.ws.terminate(); // dropped before the welcome
        } else {
          conn.welcome({ sessionId: f.payload.resume.sessionId, resumed: true });
        }
      },
      { backoff: { minMs: 20, maxMs: 40 } },
    );
    await client.connect();
    await waitFor(() => gw.conns.length === 5 && client.state === "open", "the fifth connection");
    assert.deepEqual(states.map((x) => x.s), ["connecting", "open", "reconnecting", "open"]);
    assert.equal(client.welcome.resumed, true);
  });

  test("a first connection that fails closes the client", async () => {
    const gw = await scriptedGateway(() => {});
    const url = gw.url;
    await gw.close();
    const states = [];
    const client = createClient({ url, WebSocket, onState: (s, info) => states.push({ s, ...info }) });
    const p = client.sendAsync("t/x");
    await assert.rejects(client.connect(), ClosedError);
    await assert.rejects(p, ClosedError);
    assert.equal(client.state, "closed");
    assert.equal(client.lastClose.code, 1006);
    assert.deepEqual(states.map((x) => x.s), ["connecting", "closed"]);
  });

  test("a first frame that is not a welcome fails the connection", async () => {
    const { client } = await setup((conn, f) => {
      if (f.type === "sys/hello") conn.send({ type: "sys/error", payload: { code: "bad_request", message: "no" } });
    });
    await assert.rejects(client.connect(), (err) => err instanceof ClosedError && /expected sys\/welcome/.test(err.reason));
  });

  test("a request larger than maxFrameBytes fails locally with too_large", async () => {
    const { gw, client } = await setup((conn, f) => {
      if (f.type === "sys/hello") conn.welcome({ limits: { maxFrameBytes: 200, maxInFlight: 8 } });
      else if (f.id) conn.send({ type: `${f.type}:finish`, id: f.id, seq: 1 });
    });
    await client.connect();
    await assert.rejects(client.sendAsync("t/big", "é".repeat(100)), { code: "too_large" });
    assert.deepEqual(await client.sendAsync("t/small", "ok"), [{ type: "t/small:finish", id: gw.conns[0].frames[1].id, seq: 1 }]);
    assert.equal(gw.conns[0].frames.length, 2, "the large request was not sent");
  });

  test("exceptions thrown by callbacks go to console.error where there is no reportError; nothing crashes", async () => {
    const logged = [];
    const realConsoleError = console.error;
    const hadReportError = Object.prototype.hasOwnProperty.call(globalThis, "reportError");
    const realReportError = globalThis.reportError;
    console.error = (...args) => logged.push(args);
    delete globalThis.reportError; // Node 20 has none; a later Node might
    cleanups.push(() => {
      console.error = realConsoleError;
      if (hadReportError) globalThis.reportError = realReportError;
      else delete globalThis.reportError;
    });
    const thrown = (what) => {
      throw new Error(`boom: ${what}`);
    };
    const { gw, client } = await setup(
      (conn, f) => {
        if (f.type === "sys/hello") {
          conn.welcome(conn.n === 1 ? {} : { sessionId: f.payload.resume.sessionId, resumed: true });
        } else if (f.type === "t/x") {
          conn.send({ type: "t/push", payload: 1 });
          conn.send({ type: "t/x:response", id: f.id, seq: 1, payload: "ok" });
          conn.send({ type: "t/x:finish", id: f.id, seq: 2 });
        }
      },
      {
        backoff: { minMs: 1, maxMs: 1 },
        onState: () => thrown("onState"),
        traceparent: () => thrown("traceparent"),
        onReconnect: async () => thrown("onReconnect"),
      },
    );
    client.on("t/push", () => thrown("push"));
    const msgs = await client.sendAsync("t/x", undefined, { onEvent: () => thrown("onEvent") });
    assert.deepEqual(msgs.map((m) => m.type), ["t/x:response", "t/x:finish"]);
    assert.match(gw.conns[0].frames[1].traceparent, TRACEPARENT, "a random traceparent when the hook throws");
    gw.conns[0].ws.terminate();
    await waitFor(() => gw.conns.length === 2 && client.state === "open", "the reconnect");
    await waitFor(() => logged.some((a) => a.some((x) => x instanceof Error && x.message === "boom: onReconnect")), "onReconnect's error");
    await sleep(20); // a re-throw from a timer would have happened by now
    const messages = logged.map((args) => args.find((x) => x instanceof Error)?.message);
    for (const what of ["onState", "traceparent", "push", "onEvent", "onReconnect"]) {
      assert.ok(messages.includes(`boom: ${what}`), `${what}'s exception is logged`);
    }
    assert.equal(client.state, "open");

    // Where reportError exists (browsers), it gets them instead.
    const reported = [];
    globalThis.reportError = (err) => reported.push(err);
    const before = logged.length;
    await client.sendAsync("t/x");
    await waitFor(() => reported.length === 2, "the reported errors");
    assert.deepEqual(reported.map((e) => e.message), ["boom: traceparent", "boom: push"]);
    assert.equal(logged.length, before, "nothing more on the console");
  });

  test("a sys/error for a send() request, or a queued send() too large, reaches on('sys/error')", async () => {
    const { gw, client } = await setup((conn, f) => {
      if (f.type === "sys/hello") setTimeout(() => conn.welcome({ limits: { maxFrameBytes: 200, maxInFlight: 8 } }), 20);
      else if (f.type === "t/reject") conn.send({ type: "sys/error", id: f.id, payload: { code: "bad_request", message: "rejected on purpose" } });
    });
    const errors = [];
    client.on("sys/error", (m) => errors.push(m));
    const bigId = client.send("t/big", "é".repeat(100)); // queued until the welcome
    await client.connect();
    await waitFor(() => errors.length === 1, "the too-large rejection");
    assert.equal(errors[0].type, "sys/error");
    assert.equal(errors[0].id, bigId);
    assert.equal(errors[0].payload.code, "too_large");
    assert.match(errors[0].payload.message, /maxFrameBytes \(200\)/);
    assert.equal(gw.conns[0].frames.length, 1, "the large request was not sent");

    const id = client.send("t/reject", "x");
    await waitFor(() => errors.length === 2, "the gateway's rejection");
    assert.deepEqual(errors[1], { type: "sys/error", id, payload: { code: "bad_request", message: "rejected on purpose" } });

    // A rejection of a sendAsync request is that request's, not the handlers'.
    await assert.rejects(client.sendAsync("t/reject"), { code: "bad_request" });
    await sleep(20);
    assert.equal(errors.length, 2);
  });

  test("an error thrown by stream() carries the messages it already yielded", async () => {
    const { gw, client } = await setup((conn, f) => {
      if (f.type === "sys/hello") conn.welcome();
      else if (f.type === "t/s") {
        conn.send({ type: "t/s:progress", id: f.id, seq: 1, payload: 1 });
        conn.send({ type: "t/s:progress", id: f.id, seq: 2, payload: 2 });
      }
    });
    await client.connect();
    const seen = [];
    let err;
    try {
      for await (const m of client.stream("t/s")) {
        seen.push(m);
        if (m.seq === 2) {
          const req = gw.conns[0].frames.find((f) => f.type === "t/s");
          gw.conns[0].send({ type: "sys/error", id: req.id, payload: { code: "bad_request", message: "no more" } });
        }
      }
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof FabricError);
    assert.equal(err.code, "bad_request");
    assert.deepEqual(err.messages.map((m) => [m.type, m.seq]), [["t/s:progress", 1], ["t/s:progress", 2], ["sys/error", undefined]]);
    assert.deepEqual(err.messages.slice(0, 2), seen);

    // Likewise a ClosedError.
    err = undefined;
    try {
      for await (const m of client.stream("t/s")) {
        if (m.seq === 2) void client.close();
      }
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof ClosedError);
    assert.deepEqual(err.messages.map((m) => [m.type, m.seq]), [["t/s:progress", 1], ["t/s:progress", 2]]);
  });

  test("backoff is full jitter: random in [0, ceiling]", async () => {
    const { gw, client } = await setup(
      (conn, f) => {
        if (f.type === "sys/hello") conn.welcome();
      },
      { backoff: { minMs: 1000, maxMs: 1000 } },
    );
    await client.connect();
    const delays = [];
    const realSetTimeout = globalThis.setTimeout;
    globalThis.setTimeout = (fn, ms, ...args) => {
      delays.push(ms);
      return realSetTimeout(fn, ms, ...args);
    };
    cleanups.push(() => {
      globalThis.setTimeout = realSetTimeout;
    });
    Math.random = () => 0.5;
    gw.conns[0].ws.terminate();
    await waitFor(() => client.state === "reconnecting", "reconnecting");
    globalThis.setTimeout = realSetTimeout;
    assert.ok(delays.includes(500), `the middle of [0, 1000] (delays: ${delays})`);
    assert.ok(!delays.includes(501), `not shifted by 1 ms (delays: ${delays})`);
  });

  test("a 1001 before a reconnect attempt's welcome retries at once (once in a row)", async () => {
    let goingAway = 1;
    const { gw, client, states } = await setup(
      (conn, f) => {
        if (f.type !== "sys/hello") return;
        if (conn.n === 1) {
          conn.welcome();
          setTimeout(() => conn.ws.close(1001, "going away"), 10);
        } else if (goingAway > 0) {
          goingAway--;
          conn.ws.close(1001, "going away too");
        } else {
          conn.welcome({ sessionId: f.payload.resume.sessionId, resumed: true });
        }
      },
      { backoff: { minMs: 10_000, maxMs: 10_000 } },
    );
    Math.random = () => 0.999; // a backoff would wait ~10 s
    await client.connect();
    await waitFor(() => gw.conns.length === 3 && client.state === "open", "the third connection", 2000);
    assert.deepEqual(states.map((x) => x.s), ["connecting", "open", "reconnecting", "open"]);
    assert.equal(client.welcome.resumed, true);

    // A gateway that keeps going away before the welcome is not hammered:
    // the second 1001 in a row waits the backoff.
    goingAway = Infinity;
    gw.conns[2].ws.close(1001, "going away");
    await waitFor(() => gw.conns.length === 5, "two immediate attempts", 2000);
    await sleep(200);
    assert.equal(gw.conns.length, 5, "then the backoff");
    assert.equal(client.state, "reconnecting");
  });

  test("a 4xxx-never close before a reconnect attempt's welcome closes the client", async () => {
    const { gw, client } = await setup(
      (conn, f) => {
        if (f.type !== "sys/hello") return;
        if (conn.n === 1) {
          conn.welcome();
          setTimeout(() => conn.ws.close(1001, "going away"), 10);
        } else conn.ws.close(4502, "unauthorized");
      },
      { backoff: { minMs: 1, maxMs: 1 } },
    );
    await client.connect();
    await waitFor(() => client.state === "closed", "closed");
    await sleep(50);
    assert.equal(gw.conns.length, 2);
    assert.deepEqual(client.lastClose, { code: 4502, reason: "unauthorized" });
  });

  test("an onReconnect that never settles delays the re-sends by onReconnectTimeoutMs only", async () => {
    let hookAt = 0;
    const sentAt = {};
    let queued;
    const { gw, client } = await setup(
      (conn, f) => {
        if (f.type === "sys/hello") {
          conn.welcome(conn.n === 1 ? {} : { sessionId: f.payload.resume.sessionId, resumed: true });
          return;
        }
        if (conn.n === 1) {
          if (f.type === "t/long") {
            conn.send({ type: "t/long:progress", id: f.id, seq: 1 });
            setTimeout(() => conn.ws.close(1001, "going away"), 10);
          }
          return;
        }
        sentAt[f.type] = Date.now();
        if (f.type === "t/long") {
          conn.send({ type: "t/long:response", id: f.id, seq: f.after + 1, payload: "resumed" });
          conn.send({ type: "t/long:finish", id: f.id, seq: f.after + 2 });
        } else {
          conn.send({ type: `${f.type}:finish`, id: f.id, seq: 1 });
        }
      },
      {
        onReconnectTimeoutMs: 150,
        onReconnect: () => {
          hookAt = Date.now();
          return new Promise(() => {}); // never settles
        },
        onState: (s) => {
          if (s === "reconnecting") queued = client.sendAsync("t/queued", undefined, { timeoutMs: 3000 });
        },
      },
    );
    await client.connect();
    const msgs = await client.sendAsync("t/long", undefined, { timeoutMs: 3000 });
    assert.deepEqual(msgs.map((m) => [m.type, m.seq]), [["t/long:progress", 1], ["t/long:response", 2], ["t/long:finish", 3]]);
    assert.deepEqual((await queued).map((m) => m.type), ["t/queued:finish"]);
    assert.ok(hookAt > 0);
    for (const type of ["t/long", "t/queued"]) {
      const waited = sentAt[type] - hookAt;
      assert.ok(waited >= 140 && waited < 1500, `${type} was sent ${waited} ms after onReconnect`);
    }
    assert.equal(gw.conns.length, 2);
  });

  test("token provider: sys/refresh at expiresInMs − expiresInMs/5, a refused one retried after 1 s, rescheduled from sys/refreshed", async () => {
    const sent = []; // [ms since the welcome, frame]
    let welcomedAt = 0;
    let n = 0;
    const { gw, client } = await setup(
      (conn, f) => {
        if (f.type === "sys/hello") {
          welcomedAt = Date.now();
          conn.welcome({ user: "alice", expiresInMs: 500, refreshGraceMs: 2000 });
        } else if (f.type === "sys/refresh") {
          sent.push([Date.now() - welcomedAt, f]);
          if (sent.length === 1) conn.send({ type: "sys/error", id: f.id, payload: { code: "unauthorized", message: "token expired" } });
          else conn.send({ type: "sys/refreshed", id: f.id, payload: { expiresInMs: sent.length === 2 ? 500 : 3_600_000 } });
        }
      },
      { token: () => `t${++n}` },
    );
    const w = await client.connect();
    assert.equal(gw.conns[0].frames[0].payload.token, "t1");
    assert.equal(client.user, "alice");
    assert.equal(w.expiresInMs, 500);
    await waitFor(() => sent.length === 3, "three refreshes", 4000);
    const [[t1, f1], [t2, f2], [t3, f3]] = sent;
    assert.match(f1.id, /^[A-Za-z0-9_-]{1,64}$/);
    assert.deepEqual(f1.payload, { token: "t2" });
    assert.deepEqual(f2.payload, { token: "t3" });
    assert.deepEqual(f3.payload, { token: "t4" });
    assert.ok(t1 >= 390 && t1 < 700, `first refresh at ${t1} ms, want 400`);
    assert.ok(t2 - t1 >= 990 && t2 - t1 < 1300, `retry after ${t2 - t1} ms, want 1000`);
    assert.ok(t3 - t2 >= 390 && t3 - t2 < 700, `next refresh ${t3 - t2} ms after the refreshed, want 400`);
    await sleep(500);
    assert.equal(sent.length, 3, "a 1 h token is not refreshed yet");
    assert.equal(gw.conns.length, 1);

    // refreshToken() uses the provider; refreshToken(token) sends that token.
    const manual = client.refreshToken("mine");
    await manual;
    assert.deepEqual(sent[3][1].payload, { token: "mine" });
  });

  test("a static token is not refreshed by itself; refreshToken(token) is sent and becomes the token of later connects", async () => {
    const { gw, client } = await setup(
      (conn, f) => {
        if (f.type === "sys/hello") {
          conn.welcome({ sessionId: f.payload.resume?.sessionId ?? `session-${"x".repeat(16)}-${conn.n}`, resumed: !!f.payload.resume, expiresInMs: 200, refreshGraceMs: 100 });
          if (conn.n === 1) setTimeout(() => conn.ws.terminate(), 600);
        } else if (f.type === "sys/refresh") {
          conn.send({ type: "sys/refreshed", id: f.id, payload: { expiresInMs: 200 } });
        }
      },
      { token: "old", backoff: { minMs: 1, maxMs: 5 } },
    );
    await client.connect();
    await sleep(300);
    assert.equal(gw.conns[0].frames.length, 1, "no sys/refresh of a string token");
    await client.refreshToken("new");
    assert.deepEqual(gw.conns[0].frames[1].payload, { token: "new" });
    await waitFor(() => gw.conns.length === 2 && client.state === "open", "the reconnect");
    assert.equal(gw.conns[1].frames[0].payload.token, "new");
    await assert.rejects(client.refreshToken(), TypeError);
  });

  test("a client with no WebSocket implementation is refused at once", { skip: globalThis.WebSocket !== undefined }, () => {
    assert.throws(() => createClient({ url: "ws://127.0.0.1:1/ws" }), TypeError);
  });
});
