// The multi-agent demo's page: one Fabric client on the gateway's /ws, a
// question form, and a turn per question showing agent/ask's steps as they
// stream. It also shows the connection's life (state, session, closes,
// reconnects) and what a disconnect does to a run in flight: a resumed
// session goes on where it stopped; a lost session, or a stream the gateway
// could not keep, is continued from the outputs the page already has
// (agent/ask's state), so only the steps that had not finished run again.

import {
  CloseCode,
  ClosedError,
  ErrorCode,
  FabricError,
  createClient,
  type AskParams,
  type AskState,
  type ClientState,
  type CloseInfo,
  type DemoRoutes,
  type ErrorPayload,
  type FabricClient,
  type ReconnectInfo,
} from "../../clients/typescript/src/index.js";
import { h } from "./dom.js";
import { Turn, type Origin, type Run, type TurnActions } from "./turn.js";

declare global {
  interface Window {
    /** For tests and the console: the page's client (a new one after the old one closed for good) and its turns. */
    fabricDemo: { readonly client: FabricClient<DemoRoutes>; readonly turns: readonly Turn[] };
  }
}

const WS_URL = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;

const EXAMPLES = [
  "Which region had the highest revenue in 2025?",
  "How did monthly revenue trend in 2025?",
  "Top 3 products by units sold",
  "Revenue by category in the West",
];

/** A close code's name, for a close without a reason: from the generated catalogue ("GoingAway" → "going away"). */
function closeName(code: number): string {
  if (code === 1006) return "connection lost"; // no close frame: not a code anyone sends
  const key = (Object.keys(CloseCode) as (keyof typeof CloseCode)[]).find((k) => CloseCode[k] === code);
  return key ? key.replace(/([a-z])([A-Z])/g, "$1 $2").toLowerCase() : "closed";
}

function closeText(c: CloseInfo): string {
  return `${c.code} ${c.reason || closeName(c.code)}`;
}

// --- the header: the connection's state ---

const conn = mustFind("conn");
const connWord = mustFind("conn-word");
const sessionEl = mustFind("session");
const reconnectsEl = mustFind("reconnects");
const lastCloseEl = mustFind("last-close");
const reconnectButton = mustFind("reconnect") as HTMLButtonElement;
let reconnects = 0;

function renderConnection(): void {
  const state: ClientState = client.state;
  conn.dataset["state"] = state;
  connWord.textContent = state;
  const id = client.sessionId;
  sessionEl.textContent = id ? id.slice(0, 8) : "—";
  sessionEl.title = id ?? "";
  reconnectsEl.textContent = String(reconnects);
  const last = client.lastClose;
  lastCloseEl.textContent = last ? closeText(last) : "—";
  reconnectButton.hidden = state !== "closed";
}

// --- the client ---

function newClient(): FabricClient<DemoRoutes> {
  const c: FabricClient<DemoRoutes> = createClient<DemoRoutes>({
    url: WS_URL,
    clientName: "fabric-demo-web",
    onState: (state, info) => {
      if (c !== client) return;
      renderConnection();
      if (state === "reconnecting") {
        const why = info.code !== undefined ? ` (${closeText({ code: info.code, reason: info.reason ?? "" })})` : "";
        for (const turn of sentTurns()) turn.note(`Connection lost${why}; reconnecting…`);
      }
    },
    onReconnect: (info) => {
      if (c === client) onReconnect(info);
    },
  });
  return c;
}

let client = newClient();

/** The client, a new one if the last closed for good (a close code that forbids reconnecting). */
function liveClient(): FabricClient<DemoRoutes> {
  if (client.state === "closed") {
    client = newClient();
    renderConnection();
  }
  return client;
}

function connect(): void {
  liveClient()
    .connect()
    .catch(() => {}) // onState shows it, and lastClose says why
    .finally(renderConnection);
}

/**
 * After a reconnect's welcome, before the client re-sends what is unfinished.
 * Resumed: the client re-sends each request with "after" and its stream goes
 * on (a gateway that kept none of its events answers "interrupted", and run()
 * continues it from saved state). Not resumed: the client will end each
 * request as interrupted, so each turn still running starts over at once
 * with the outputs it already has.
 */
function onReconnect(info: ReconnectInfo): void {
  reconnects++;
  renderConnection();
  const why = closeText(info.close);
  for (const turn of sentTurns()) {
    if (info.resumed) {
      turn.note(`Resumed after reconnect (${why}).`);
      continue;
    }
    const state = turn.state();
    turn.note(`Continued from saved state after the session was lost (${why})${reusing(state)}.`);
    void run(turn, askParams(turn, state));
  }
}

/** Turns whose request is in flight on a connection (not waiting to be sent). */
function sentTurns(): Turn[] {
  return turns.filter((t) => t.status === "running" && t.run?.sessionId !== undefined);
}

// --- turns ---

const turnsEl = mustFind("turns");
const turns: Turn[] = [];

const actions: TurnActions = {
  cancel(turn) {
    turn.run?.controller.abort();
  },
  continue(turn) {
    if (turn.status === "done") {
      followUp(turn);
      return;
    }
    const state = turn.state();
    turn.autoContinues = 0;
    turn.note(`Continued from here${reusing(state)}.`);
    void run(turn, askParams(turn, state));
  },
  edit(turn, plan) {
    const next = addTurn(turn.question, undefined, { kind: "edit", from: turn });
    void run(next, { question: turn.question, state: { plan } });
  },
};

function addTurn(question: string, previous: AskParams["previous"], origin?: Origin): Turn {
  const turn = new Turn(turns.length + 1, question, previous ?? undefined, origin, actions);
  turns.push(turn);
  turnsEl.append(turn.el);
  document.body.classList.add("has-turns");
  turn.el.scrollIntoView({ behavior: "smooth", block: "start" });
  return turn;
}

/** agent/ask's params to run turn's question again, reusing what state holds. */
function askParams(turn: Turn, state: AskState): AskParams {
  const params: AskParams = { question: turn.question };
  if (turn.previous && !state.plan) params.previous = turn.previous;
  if (Object.keys(state).length > 0) params.state = state;
  return params;
}

/** ", reusing the plan and table", for a note; "" when nothing is reused. */
function reusing(state: AskState): string {
  const kept = [state.plan && "plan", state.table && "table", state.summary && "analysis"].filter((x) => !!x);
  if (kept.length === 0) return "";
  const last = kept.pop();
  return `, reusing the ${kept.length > 0 ? `${kept.join(", ")} and ${last}` : last}`;
}

/** How often a turn continues by itself after an interrupted run before it waits for "Continue from here". */
const MAX_AUTO_CONTINUES = 3;

/**
 * Runs agent/ask for turn: its events update the turn until another run of
 * the turn supersedes this one.
 */
async function run(turn: Turn, params: AskParams): Promise<void> {
  const c = liveClient();
  const r: Run = {
    controller: new AbortController(),
    sessionId: c.state === "open" ? c.sessionId : undefined,
    startedAt: Date.now(),
  };
  turn.begin(r);
  let error: ErrorPayload | undefined;
  try {
    const msgs = await c.sendAsync("agent/ask", params, {
      signal: r.controller.signal,
      throwOnError: false,
      onEvent: (m) => {
        if (turn.run !== r) return;
        r.sessionId ??= c.sessionId; // it was sent, so a lost session interrupts it
        if (m.type === "agent/ask:step") turn.step(m.payload);
        else if (m.type === "agent/ask:response") turn.answered(m.payload);
      },
    });
    for (const m of msgs) if (m.type === "agent/ask:error") error = m.payload;
  } catch (err) {
    if (turn.run !== r) return;
    if (r.controller.signal.aborted) {
      turn.note("Cancelled: the gateway was told to stop the run (sys/cancel).");
      turn.ended("cancelled");
      return;
    }
    if (err instanceof ClosedError) {
      turn.ended("interrupted", { code: err.code, message: err.message });
      return;
    }
    error = err instanceof FabricError ? { code: err.code, message: err.message } : { code: ErrorCode.Internal, message: String(err) };
  }
  if (turn.run !== r) return;
  if (error?.code === ErrorCode.Interrupted && turn.autoContinues < MAX_AUTO_CONTINUES) {
    // A resumed session's request whose events the gateway could not keep
    // (it has no durable storage): continue from what the turn has.
    turn.autoContinues++;
    const state = turn.state();
    turn.note(`The gateway lost the run's events in the disconnect (interrupted); continued from saved state${reusing(state)}.`);
    void run(turn, askParams(turn, state));
    return;
  }
  if (error) {
    const status = error.code === ErrorCode.Interrupted ? "interrupted" : error.code === ErrorCode.Cancelled ? "cancelled" : "failed";
    turn.ended(status, error);
  } else if (turn.answer) {
    turn.ended("done");
  } else {
    turn.ended("failed", { code: ErrorCode.Internal, message: "the run finished without an answer" });
  }
}

// --- the question form ---

const form = mustFind("ask-form") as HTMLFormElement;
const input = mustFind("question") as HTMLInputElement;
const followUpEl = mustFind("followup");
const followUpText = mustFind("followup-text");
let followUpOf: Turn | undefined;

function followUp(turn: Turn | undefined): void {
  followUpOf = turn;
  followUpEl.hidden = !turn;
  if (turn) {
    followUpText.textContent = `#${turn.number} · ${turn.plan()?.intent ?? turn.question}`;
    input.placeholder = "Ask a follow-up, e.g. “and in 2024?” or “by category”";
    input.focus();
  } else {
    input.placeholder = "Ask about revenue, units or orders by region, category, product, month…";
  }
}

form.addEventListener("submit", (ev) => {
  ev.preventDefault();
  const question = input.value.trim();
  if (question === "") {
    input.focus();
    return;
  }
  const from = followUpOf;
  const previous = from?.plan();
  const turn = addTurn(question, previous, from && previous ? { kind: "follow-up", from } : undefined);
  input.value = "";
  followUp(undefined);
  void run(turn, previous ? { question, previous } : { question });
});

mustFind("followup-clear").addEventListener("click", () => followUp(undefined));

const chips = mustFind("examples");
for (const q of EXAMPLES) {
  const chip = h("button", { type: "button", class: "chip", "data-testid": "example" }, q);
  chip.addEventListener("click", () => {
    followUp(undefined); // an example is a question of its own
    input.value = q;
    form.requestSubmit();
  });
  chips.append(chip);
}

reconnectButton.addEventListener("click", connect);
// Leaving the page ends the session; coming back to it from the history starts a new one.
addEventListener("pagehide", () => void client.close());
addEventListener("pageshow", (ev) => {
  if (ev.persisted) connect();
});

window.fabricDemo = {
  get client() {
    return client;
  },
  get turns() {
    return turns;
  },
};

followUp(undefined);
renderConnection();
connect();

function mustFind(testId: string): HTMLElement {
  const el = document.querySelector<HTMLElement>(`[data-testid="${testId}"]`);
  if (!el) throw new Error(`the page has no [data-testid="${testId}"]`);
  return el;
}
