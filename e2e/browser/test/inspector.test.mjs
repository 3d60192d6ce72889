// The request inspector (/inspector of `fabric dev`) in a real browser:
// requests made on the gateway's WebSocket appear live with their events,
// link to their trace in Jaeger, and the filters narrow the list. Each test
// saves a screenshot under outputDir.

import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { buildFabric, launchChromium, outputDir, startDev } from "../harness.mjs";

const JAEGER = "http://jaeger.test:16686";
const TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";
const TIMEOUT = 30_000;

let fabric, dev, browser;

before(async () => {
  fabric = buildFabric();
  dev = await startDev(fabric.bin, ["--jaeger-url", JAEGER]);
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await dev?.stop();
  fabric?.cleanup();
});

/** Opens the inspector and waits until its stream is live. */
async function openInspector(t) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = [];
  page.on("pageerror", (err) => errors.push(err));
  t.after(async () => {
    await page.close();
    assert.deepEqual(errors, [], "the page threw");
  });
  await page.goto(`http://${dev.addr}/inspector`);
  await page.locator("[data-testid=live][data-state=live]").waitFor({ timeout: TIMEOUT });
  return page;
}

/**
 * Sends requests on a WebSocket of the page's own (the wire protocol by
 * hand), each with a traceparent when given one, and resolves with the
 * frames of each once every one has finished.
 */
function call(page, requests) {
  return page.evaluate(
    (requests) =>
      new Promise((resolve, reject) => {
        const ws = new WebSocket(`ws://${location.host}/ws`, "fabric.v1");
        const frames = {};
        let open = requests.length;
        ws.onerror = () => reject(new Error("websocket error"));
        ws.onopen = () => ws.send(JSON.stringify({ type: "sys/hello" }));
        ws.onmessage = (ev) => {
          const m = JSON.parse(ev.data);
          if (m.type === "sys/welcome") {
            for (const r of requests) ws.send(JSON.stringify(r));
            return;
          }
          if (!m.id) return;
          (frames[m.id] ??= []).push(m.type);
          if (m.type.endsWith(":finish") && --open === 0) {
            ws.close(1000);
            resolve(frames);
          }
        };
      }),
    requests,
  );
}

test("a request appears live with its events and a link to its trace", async (t) => {
  const page = await openInspector(t);
  const frames = await call(page, [
    { type: "demo/count", id: "live-1", payload: { n: 3 }, traceparent: `00-${TRACE_ID}-00f067aa0ba902b7-01` },
  ]);
  assert.equal(frames["live-1"].length, 5);

  const row = page.locator("[data-testid=request][data-id=live-1]");
  await row.and(page.locator("[data-state=finished]")).waitFor({ timeout: TIMEOUT });
  assert.equal(await row.getAttribute("data-route"), "demo/count");
  assert.equal(await row.getByTestId("state").innerText(), "ok");
  const link = row.getByTestId("trace-link");
  assert.equal(await link.getAttribute("href"), `${JAEGER}/trace/${TRACE_ID}`);

  // Its timeline: every event, numbered, in order.
  await row.click();
  const events = page.getByTestId("timeline").getByTestId("event");
  await events.nth(4).waitFor({ timeout: TIMEOUT });
  const timeline = [];
  for (const e of await events.all()) timeline.push(`${await e.getAttribute("data-suffix")}#${await e.getAttribute("data-seq")}`);
  assert.deepEqual(timeline, ["progress#1", "progress#2", "progress#3", "response#4", "finish#5"]);
  assert.match(await page.getByTestId("timeline").innerText(), /\{"i":3\}/);
  await screenshot(page, "inspector-timeline");
});

test("the filter box and errors only narrow the list", async (t) => {
  const page = await openInspector(t);
  await call(page, [
    { type: "demo/echo", id: "echo-1", payload: "hi" },
    { type: "demo/fail", id: "fail-1", payload: { code: "quota_exceeded", message: "later" } },
    { type: "demo/echo", id: "echo-2", payload: "there" },
  ]);
  const rows = page.getByTestId("request");
  const fail = page.locator("[data-testid=request][data-id=fail-1]");
  await fail.and(page.locator("[data-state=error]")).waitFor({ timeout: TIMEOUT });
  await page.locator("[data-testid=request][data-id=echo-2][data-state=finished]").waitFor({ timeout: TIMEOUT });
  assert.equal(await fail.getByTestId("state").innerText(), "quota_exceeded");

  await page.getByTestId("filter").fill("echo-");
  await page.waitForFunction(() => document.querySelectorAll("[data-testid=request]").length === 2);
  // Sent together, they reach NATS in no set order: the page lists them in
  // the order the server saw them.
  assert.deepEqual((await ids(rows)).sort(), ["echo-1", "echo-2"]);

  await page.getByTestId("filter").fill("");
  await page.getByTestId("errors-only").check();
  await page.waitForFunction(() => [...document.querySelectorAll("[data-testid=request]")].every((r) => r.dataset.state === "error"));
  assert.deepEqual(await ids(rows), ["fail-1"]);
  await screenshot(page, "inspector-errors");

  // The filter also matches a route, and the two combine.
  await page.getByTestId("errors-only").uncheck();
  await page.getByTestId("filter").fill("demo/fail");
  await page.waitForFunction(() => document.querySelectorAll("[data-testid=request]").length === 1);
  assert.deepEqual(await ids(rows), ["fail-1"]);
});

async function ids(rows) {
  const out = [];
  for (const r of await rows.all()) out.push(await r.getAttribute("data-id"));
  return out;
}

async function screenshot(page, name) {
  await page.screenshot({ path: join(outputDir, `${name}.png`), fullPage: true });
}
