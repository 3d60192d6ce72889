// The request inspector's page, served at /inspector: the fabric's most
// recent requests as the server's inspector (internal/inspector) sees them
// on NATS, each with its timeline of events and a link to its trace in
// Jaeger. One EventSource on inspector/api/stream brings a snapshot, then
// every request that changes; the page filters what it holds.

import { h } from "./dom.js";

/** How a request ended so far: internal/inspector's State. */
type State = "in_flight" | "finished" | "error" | "cancelled";

/** One event or cancel of a request: internal/inspector's Event. */
interface InspectedEvent {
  time: string;
  kind: "event" | "cancel";
  suffix?: string;
  seq?: number;
  origin?: string;
  code?: string;
  size: number;
  traceId?: string;
  payload?: string;
  truncated?: boolean;
}

/** One request: internal/inspector's Request. */
interface InspectedRequest {
  /** 1, 2, … in the order the server first saw the requests. */
  number: number;
  session: string;
  id: string;
  route: string;
  time: string;
  seen: boolean;
  user?: string;
  size: number;
  payload?: string;
  truncated?: boolean;
  traceId?: string;
  traceUrl?: string;
  state: State;
  code?: string;
  cancelled?: boolean;
  end?: string;
  last: string;
  events: InspectedEvent[];
  omitted?: number;
}

/** The stream's first event, and the body of inspector/api/requests. */
interface Snapshot {
  requests: InspectedRequest[];
  capacity: number;
  jaegerUrl: string;
}

declare global {
  interface Window {
    /** For tests and the console: the requests the page holds, newest first. */
    fabricInspector: { readonly requests: readonly InspectedRequest[] };
  }
}

const requests = new Map<string, InspectedRequest>();
const expanded = new Set<string>();
let capacity = 500;

const keyOf = (r: InspectedRequest): string => `${r.session}/${r.id}`;

/** The requests, newest first. */
function newestFirst(): InspectedRequest[] {
  return [...requests.values()].sort((a, b) => b.number - a.number);
}

/** Forgets the oldest requests beyond the server's capacity, as it does. */
function trim(): void {
  if (requests.size <= capacity) return;
  for (const r of newestFirst().slice(capacity)) requests.delete(keyOf(r));
}

// --- the live stream ---

const live = mustFind("live");
const liveWord = mustFind("live-word");

function setLive(state: "connecting" | "live" | "reconnecting"): void {
  live.dataset["state"] = state;
  liveWord.textContent = state;
}

const source = new EventSource("inspector/api/stream");
source.addEventListener("open", () => setLive("live"));
source.addEventListener("error", () => setLive("reconnecting")); // EventSource tries again by itself
source.addEventListener("snapshot", (ev) => {
  const snap = JSON.parse((ev as MessageEvent<string>).data) as Snapshot;
  requests.clear();
  for (const r of snap.requests) requests.set(keyOf(r), r);
  capacity = snap.capacity;
  setLive("live");
  scheduleRender();
});
source.addEventListener("update", (ev) => {
  const r = JSON.parse((ev as MessageEvent<string>).data) as InspectedRequest;
  requests.set(keyOf(r), r);
  trim();
  scheduleRender();
});
addEventListener("pagehide", () => source.close());

// --- filters ---

const filterInput = mustFind("filter") as HTMLInputElement;
const errorsOnly = mustFind("errors-only") as HTMLInputElement;
filterInput.addEventListener("input", scheduleRender);
errorsOnly.addEventListener("change", scheduleRender);
mustFind("filters").addEventListener("submit", (ev) => ev.preventDefault());

function shown(r: InspectedRequest): boolean {
  const q = filterInput.value.trim();
  if (q !== "" && !r.route.includes(q) && !r.session.includes(q) && !r.id.includes(q)) return false;
  return !errorsOnly.checked || r.code !== undefined;
}

// --- rendering ---

const rows = mustFind("rows");
const empty = mustFind("empty");
const count = mustFind("count");
let pending = false;

function scheduleRender(): void {
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => {
    pending = false;
    render();
  });
}

/** A request's rendered rows, kept while the request does not change. */
interface Rendered {
  request: InspectedRequest;
  open: boolean;
  nodes: HTMLTableRowElement[];
  took: HTMLElement;
}

const rendered = new Map<string, Rendered>();

function render(): void {
  const all = newestFirst();
  const visible = all.filter(shown);
  const nodes: HTMLTableRowElement[] = [];
  const keep = new Set<string>();
  for (const r of visible) {
    const key = keyOf(r);
    keep.add(key);
    let x = rendered.get(key);
    const open = expanded.has(key);
    if (!x || x.request !== r || x.open !== open) {
      x = build(r, open);
      rendered.set(key, x);
    } else {
      x.took.textContent = took(r);
    }
    nodes.push(...x.nodes);
  }
  for (const key of [...rendered.keys()]) if (!keep.has(key)) rendered.delete(key);
  // Rows that stay in place are not moved, so a click on one is not lost.
  const current = rows.children;
  if (current.length !== nodes.length || nodes.some((n, i) => current[i] !== n)) rows.replaceChildren(...nodes);
  empty.hidden = visible.length > 0;
  empty.textContent = all.length === 0 ? "No requests yet: they appear here as they cross NATS." : "No request matches the filter.";
  const noun = all.length === 1 ? "request" : "requests";
  count.textContent = visible.length === all.length ? `${all.length} ${noun}` : `${visible.length} of ${all.length} ${noun}`;
}

/** A request's row, and its timeline's row when it is expanded. */
function build(r: InspectedRequest, open: boolean): Rendered {
  const key = keyOf(r);
  const tookCell = h("td", { class: "num" }, took(r));
  const row = h(
    "tr",
    { class: "request", "data-testid": "request", "data-id": r.id, "data-route": r.route, "data-state": r.state, "aria-expanded": open ? "true" : "false", tabindex: 0 },
    h("td", { class: "mono" }, clock(r.time)),
    h("td", { class: "route" }, r.route),
    h("td", { class: "mono", title: r.session }, r.session.slice(0, 8)),
    h("td", { class: "mono" }, r.id),
    h("td", {}, h("span", { class: `state ${r.state}`, "data-testid": "state" }, stateText(r))),
    h("td", { class: "num" }, String(r.events.length + (r.omitted ?? 0))),
    tookCell,
    h("td", {}, traceLink(r.traceId, r.traceUrl)),
  );
  const toggle = (): void => {
    if (expanded.has(key)) expanded.delete(key);
    else expanded.add(key);
    render();
  };
  row.addEventListener("click", (ev) => {
    if (!(ev.target instanceof Element && ev.target.closest("a"))) toggle();
  });
  row.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" || ev.key === " ") {
      ev.preventDefault();
      toggle();
    }
  });
  const nodes = open ? [row, h("tr", { class: "detail" }, h("td", { colspan: 8 }, timeline(r)))] : [row];
  return { request: r, open, nodes, took: tookCell };
}

function stateText(r: InspectedRequest): string {
  switch (r.state) {
    case "in_flight":
      return "in flight";
    case "finished":
      return "ok";
    case "error":
      return r.code ?? "error";
    case "cancelled":
      return "cancelled";
  }
}

/** How long the request took, or has been in flight. */
function took(r: InspectedRequest): string {
  const start = Date.parse(r.time);
  const end = r.end ? Date.parse(r.end) : Date.now();
  return formatDuration(end - start) + (r.end ? "" : "…");
}

function traceLink(traceId: string | undefined, traceUrl: string | undefined): Node | string {
  if (!traceId || !traceUrl) return "—";
  return h("a", { href: traceUrl, target: "_blank", rel: "noopener noreferrer", class: "mono", "data-testid": "trace-link", title: `trace ${traceId} in Jaeger` }, traceId.slice(0, 8));
}

/** A request's payload and every event, with its time after the request's. */
function timeline(r: InspectedRequest): HTMLElement {
  const start = Date.parse(r.time);
  const head = h(
    "p",
    { class: "request-info" },
    h("span", { class: "mono" }, `session ${r.session}`),
    r.user ? h("span", {}, `user ${r.user}`) : null,
    r.seen ? h("span", {}, `payload ${r.size} B: `, h("code", {}, preview(r.payload, r.truncated))) : h("span", { class: "muted" }, "request not seen: known from its events"),
  );
  const table = h(
    "table",
    { class: "timeline", "data-testid": "timeline" },
    h("thead", {}, h("tr", {}, h("th", { class: "num" }, "seq"), h("th", { class: "num" }, "at"), h("th", {}, "event"), h("th", { class: "num" }, "size"), h("th", {}, "trace"), h("th", {}, "payload"))),
    h(
      "tbody",
      {},
      ...r.events.map((e) =>
        h(
          "tr",
          { class: `event ${e.kind === "cancel" ? "cancel" : (e.suffix ?? "")}`, "data-testid": "event", "data-suffix": e.suffix ?? "", "data-seq": e.seq ?? "" },
          h("td", { class: "num" }, e.seq ? `#${e.seq}` : ""),
          h("td", { class: "num" }, `+${formatDuration(Date.parse(e.time) - start)}`),
          h("td", {}, e.kind === "cancel" ? "✕ cancel" : `:${e.suffix ?? ""}`, e.origin === "gateway" ? h("span", { class: "origin" }, "gateway") : null),
          h("td", { class: "num" }, `${e.size} B`),
          h("td", { class: "mono" }, e.traceId ? e.traceId.slice(0, 8) : "—"),
          h("td", {}, h("code", {}, preview(e.payload, e.truncated))),
        ),
      ),
    ),
  );
  const more = r.omitted ? h("p", { class: "muted" }, `${r.omitted} more events not kept`) : null;
  return h("div", { class: "detail-body" }, head, table, more);
}

function preview(payload: string | undefined, truncated: boolean | undefined): string {
  return (payload ?? "") + (truncated ? "…" : "");
}

/** HH:MM:SS.mmm, local time. */
function clock(iso: string): string {
  const d = new Date(iso);
  const two = (n: number): string => String(n).padStart(2, "0");
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}.${String(d.getMilliseconds()).padStart(3, "0")}`;
}

/** "12 ms", "1.2 s", "2 min". */
function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.round(ms / 60_000)} min`;
}

// Requests in flight show how long they have been so.
setInterval(() => {
  for (const r of requests.values()) {
    if (r.state === "in_flight") {
      scheduleRender();
      return;
    }
  }
}, 1000);

window.fabricInspector = {
  get requests() {
    return newestFirst();
  },
};

render();

function mustFind(testId: string): HTMLElement {
  const el = document.querySelector<HTMLElement>(`[data-testid="${testId}"]`);
  if (!el) throw new Error(`the page has no [data-testid="${testId}"]`);
  return el;
}
