// The multi-agent demo page in a real browser: ask, cancel, lose the
// connection and resume, lose the session and continue from the page's own
// state. Each test saves a screenshot under outputDir.

import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { Proxy, buildFabric, launchChromium, outputDir, startDev } from "../harness.mjs";

// Fast enough for CI, slow enough that a run is still going when the test
// cancels it or cuts its connection (a run is ~45 paces).
const PACE = "60ms";
const TIMEOUT = 30_000;

let fabric, dev, proxy, browser;

before(async () => {
  fabric = buildFabric();
  dev = await startDev(fabric.bin, ["--agent-pace", PACE]);
  proxy = await Proxy.start(dev.addr);
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await proxy?.close();
  await dev?.stop();
  fabric?.cleanup();
});

/** Opens the page and waits until its client is connected. */
async function openPage(t) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  const errors = [];
  page.on("pageerror", (err) => errors.push(err));
  t.after(async () => {
    await page.close();
    assert.deepEqual(errors, [], "the page threw");
  });
  await page.goto(proxy.url);
  await page.getByTestId("question").waitFor();
  return page;
}

/** Asks question and returns the locator of its turn, the page's last. */
async function ask(page, question) {
  await page.getByTestId("question").fill(question);
  await page.getByTestId("ask").click();
  const turn = page.getByTestId("turn").last();
  await turn.and(page.locator("[data-status=running]")).waitFor({ timeout: TIMEOUT });
  return turn;
}

function step(turn, id, status) {
  return turn.locator(`[data-testid=step-${id}]${status ? `[data-status=${status}]` : ""}`);
}

async function statusOf(locator) {
  return locator.getAttribute("data-status");
}

async function screenshot(page, name) {
  await page.screenshot({ path: join(outputDir, `${name}.png`), fullPage: true });
}

test("a question runs every step and shows the answer and chart", async (t) => {
  const page = await openPage(t);
  await page.locator("[data-testid=conn][data-state=open]").waitFor({ timeout: TIMEOUT });
  const turn = await ask(page, "Which region had the highest revenue in 2025?");
  // The steps update live: the plan runs while the chart waits.
  await step(turn, "plan", "running").waitFor({ timeout: TIMEOUT });
  assert.equal(await statusOf(step(turn, "chart")), "pending");

  await turn.and(page.locator("[data-status=done]")).waitFor({ timeout: TIMEOUT });
  for (const id of ["plan", "sql", "analysis", "chart"]) {
    assert.equal(await statusOf(step(turn, id)), "done", `step ${id}`);
  }
  assert.match(await step(turn, "sql").innerText(), /SELECT region AS region/);
  assert.match(await turn.getByTestId("answer").innerText(), /West leads/);
  assert.equal(await turn.getByTestId("chart").locator("rect").count() >= 4, true, "a bar per region");
  await screenshot(page, "answer");
});

test("cancel stops a run", async (t) => {
  const page = await openPage(t);
  const turn = await ask(page, "How did monthly revenue trend in 2025?");
  await step(turn, "sql", "running").waitFor({ timeout: TIMEOUT });
  await turn.getByTestId("cancel").click();
  await turn.and(page.locator("[data-status=cancelled]")).waitFor({ timeout: TIMEOUT });
  // Nothing runs after the cancel: the chart step never starts.
  await page.waitForTimeout(1500);
  assert.equal(await statusOf(step(turn, "chart")), "pending");
  assert.notEqual(await statusOf(step(turn, "analysis")), "done");
  await screenshot(page, "cancelled");
});

test("a cut connection reconnects, resumes and finishes the answer", async (t) => {
  const page = await openPage(t);
  const turn = await ask(page, "Top 3 products by units sold");
  await step(turn, "sql", "running").waitFor({ timeout: TIMEOUT });
  proxy.cut();
  await page.locator("[data-testid=conn][data-state=reconnecting]").waitFor({ timeout: TIMEOUT });
  await page.locator("[data-testid=conn][data-state=open]").waitFor({ timeout: TIMEOUT });
  assert.match(await page.getByTestId("last-close").innerText(), /1006/);
  assert.equal(await page.getByTestId("reconnects").innerText(), "1");

  // fabric dev is durable: the session resumed and the gateway replayed
  // what the page missed, so the same run finishes; nothing is redone.
  await turn.and(page.locator("[data-status=done]")).waitFor({ timeout: TIMEOUT });
  for (const id of ["plan", "sql", "analysis", "chart"]) {
    assert.equal(await statusOf(step(turn, id)), "done", `step ${id}`);
  }
  assert.match(await turn.getByTestId("notes").innerText(), /Resumed after reconnect/);
  assert.doesNotMatch(await turn.getByTestId("notes").innerText(), /continued from saved state/i);
  const rows = await step(turn, "sql").locator("tbody tr").count();
  assert.equal(rows, 3, "the top 3 products");
  await screenshot(page, "resumed");
});

test("a lost session continues from the page's state on a new server", async (t) => {
  const page = await openPage(t);
  const turn = await ask(page, "Revenue by category in the West");
  await step(turn, "analysis", "running").waitFor({ timeout: TIMEOUT });
  // The server dies with the session: the page reconnects to a new one,
  // which cannot resume it, so onReconnect sends back what the page has
  // and the run goes on from there.
  await dev.stop(true);
  dev = await startDev(fabric.bin, ["--agent-pace", PACE]);
  proxy.target = dev.addr;
  proxy.cut();

  await turn.and(page.locator("[data-status=done]")).waitFor({ timeout: TIMEOUT });
  assert.equal(await statusOf(step(turn, "plan")), "reused");
  assert.equal(await statusOf(step(turn, "sql")), "reused");
  assert.equal(await statusOf(step(turn, "chart")), "done");
  assert.match(await turn.getByTestId("answer").innerText(), /Revenue by category in the West/);
  await screenshot(page, "continued");
});

test("continue from here finishes a cancelled run; edit plan re-runs from the plan", async (t) => {
  const page = await openPage(t);
  const turn = await ask(page, "Revenue by region in 2024");
  await step(turn, "analysis", "running").waitFor({ timeout: TIMEOUT });
  await turn.getByTestId("cancel").click();
  await turn.and(page.locator("[data-status=cancelled]")).waitFor({ timeout: TIMEOUT });

  // The same turn goes on from what it has: the plan and the table.
  await turn.getByTestId("continue").click();
  await turn.and(page.locator("[data-status=done]")).waitFor({ timeout: TIMEOUT });
  assert.equal(await statusOf(step(turn, "plan")), "reused");
  assert.equal(await statusOf(step(turn, "sql")), "reused");
  assert.equal(await statusOf(step(turn, "chart")), "done");

  // Edit the plan: group by month instead; the steps after the plan run again.
  await turn.getByTestId("edit").click();
  await turn.getByTestId("edit-dimension").selectOption("month");
  await turn.getByTestId("edit-run").click();
  const edited = page.getByTestId("turn").last();
  await edited.and(page.locator("[data-turn='2'][data-status=done]")).waitFor({ timeout: TIMEOUT });
  assert.equal(await statusOf(step(edited, "plan")), "reused");
  assert.equal(await statusOf(step(edited, "sql")), "done");
  assert.equal(await step(edited, "sql").locator("tbody tr").count(), 12, "a row per month of 2024");
  assert.equal(await edited.getByTestId("chart").locator("path.line").count(), 1, "a line chart");
  await screenshot(page, "edited");
});
