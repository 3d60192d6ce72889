// A turn: one question and its answer, as the page shows it. It keeps the
// latest state of each of agent/ask's steps (each agent/ask:step event is a
// step's whole state), the answer or the error, and the turn's status; the
// page (app.ts) runs the requests and tells the turn what arrived.

import type { AskState, Answer, ErrorPayload, QueryPlan, Step, Summary, Table } from "../../clients/typescript/src/index.js";
import { renderChart } from "./chart.js";
import { h } from "./dom.js";
import { formatMs, formatNumber, formatPercent, formatShort, formatTick, formatValue } from "./format.js";
import { CATEGORIES, DIMENSIONS, METRICS, REGIONS, TOPS, YEARS, described, filtersOf, isTime, labelOf, type Choice } from "./plan.js";

/** A turn's status, also its data-status. */
export type TurnStatus = "running" | "done" | "cancelled" | "failed" | "interrupted";

/** The steps of agent/ask, in the order they run. */
export const STEP_IDS = ["plan", "sql", "analysis", "chart"] as const;

/** What each step is called until the orchestrator says. */
const STEP_DEFAULTS: Readonly<Record<string, { agent: string; title: string }>> = {
  plan: { agent: "agent/plan", title: "Plan the analysis" },
  sql: { agent: "agent/sql", title: "Query the sales data" },
  analysis: { agent: "agent/analyze", title: "Analyse the numbers" },
  chart: { agent: "agent/chart", title: "Draw the chart" },
};

/** One agent/ask request of a turn. A turn may have several: a continue, or a restart after a lost session. */
export interface Run {
  readonly controller: AbortController;
  /** The session it was sent on: set when it is sent (at once if the client is open, or at its first event). */
  sessionId: string | undefined;
  readonly startedAt: number;
}

/** Where a turn came from, when another turn led to it. */
export type Origin = { kind: "follow-up" | "edit"; from: Turn };

/** The turn's buttons, handled by the page. */
export interface TurnActions {
  cancel(turn: Turn): void;
  /** "Continue from here": a follow-up of a done turn, or the rest of an unfinished one. */
  continue(turn: Turn): void;
  /** Runs the question again with an edited plan. */
  edit(turn: Turn, plan: QueryPlan): void;
}

export class Turn {
  readonly el: HTMLElement;
  status: TurnStatus = "running";
  /** The request in flight, or the last one. Events of any other are stale. */
  run: Run | undefined;
  answer: Answer | undefined;
  error: ErrorPayload | undefined;
  /** How many runs the page started by itself, after a lost session or an interrupted stream. */
  autoContinues = 0;
  readonly #steps = new Map<string, Step>();
  readonly #cards = new Map<string, { el: HTMLElement; badge: HTMLElement; time: HTMLElement; title: HTMLElement; agent: HTMLElement; body: HTMLElement }>();
  readonly #statusEl: HTMLElement;
  readonly #notes: HTMLElement;
  readonly #answerEl: HTMLElement;
  readonly #errorEl: HTMLElement;
  readonly #buttons: { cancel: HTMLButtonElement; continue: HTMLButtonElement; edit: HTMLButtonElement };
  readonly #editSlot: HTMLElement;

  constructor(
    readonly number: number,
    readonly question: string,
    readonly previous: QueryPlan | undefined,
    readonly origin: Origin | undefined,
    readonly actions: TurnActions,
  ) {
    const headingId = `turn-${number}-question`;
    this.#statusEl = h("span", { class: "turn-status", "data-testid": "turn-status" });
    this.#notes = h("ul", { class: "notes", "data-testid": "notes" });
    this.#answerEl = h("section", { class: "answer", hidden: true, "aria-label": "Answer" });
    this.#errorEl = h("p", { class: "turn-error", "data-testid": "error", role: "alert", hidden: true });
    this.#editSlot = h("div", { class: "edit-slot" });
    this.#buttons = {
      cancel: h("button", { type: "button", class: "button", "data-testid": "cancel" }, "Cancel"),
      continue: h("button", { type: "button", class: "button", "data-testid": "continue" }, "Continue from here"),
      edit: h("button", { type: "button", class: "button", "data-testid": "edit", "aria-expanded": "false" }, "Edit plan"),
    };
    this.#buttons.cancel.addEventListener("click", () => this.actions.cancel(this));
    this.#buttons.continue.addEventListener("click", () => this.actions.continue(this));
    this.#buttons.edit.addEventListener("click", () => this.#toggleEdit());

    const steps = h("ol", { class: "steps" });
    STEP_IDS.forEach((id, i) => {
      const d = STEP_DEFAULTS[id] ?? { agent: "", title: id };
      const badge = h("span", { class: "badge" });
      const time = h("span", { class: "step-time" });
      const title = h("h3", { class: "step-title" }, d.title);
      const agent = h("code", { class: "step-agent" }, d.agent);
      const body = h("div", { class: "step-body" });
      const el = h(
        "li",
        { class: "step", "data-testid": `step-${id}`, "data-step": id },
        h("div", { class: "step-head" }, h("span", { class: "step-index", "aria-hidden": "true" }, i + 1), title, agent, time, badge),
        body,
      );
      this.#cards.set(id, { el, badge, time, title, agent, body });
      steps.append(el);
    });

    const from = origin
      ? h("p", { class: "origin" }, origin.kind === "follow-up" ? `Follow-up to #${origin.from.number}` : `Plan edited from #${origin.from.number}`)
      : null;
    this.el = h(
      "article",
      { class: "turn", "data-testid": "turn", "data-turn": number, "aria-labelledby": headingId },
      h(
        "header",
        { class: "turn-head" },
        h("span", { class: "turn-number", "aria-hidden": "true" }, `#${number}`),
        h("div", { class: "turn-question" }, from, h("h2", { id: headingId }, question)),
        this.#statusEl,
      ),
      this.#notes,
      steps,
      this.#answerEl,
      this.#errorEl,
      this.#editSlot,
      h("div", { class: "turn-actions" }, this.#buttons.cancel, this.#buttons.continue, this.#buttons.edit),
    );
    for (const id of STEP_IDS) this.#renderStep(id);
    this.#renderStatus();
  }

  /** Starts a run: the turn is running again, and earlier runs' events are ignored. */
  begin(run: Run): void {
    this.run = run;
    this.answer = undefined;
    this.error = undefined;
    this.#answerEl.hidden = true;
    this.#errorEl.hidden = true;
    this.#closeEdit();
    this.#setStatus("running");
  }

  /** A step's new state. */
  step(step: Step): void {
    if (!this.#cards.has(step.id)) return;
    this.#steps.set(step.id, step);
    this.#renderStep(step.id);
    if (step.id === "plan") this.#renderButtons();
  }

  /** The answer arrived. */
  answered(answer: Answer): void {
    this.answer = answer;
    this.#answerEl.replaceChildren(h("h3", {}, "Answer"), h("p", { "data-testid": "answer" }, answer.text));
    this.#answerEl.hidden = false;
  }

  /** The run ended: done, or not, and why. */
  ended(status: Exclude<TurnStatus, "running">, error?: ErrorPayload): void {
    this.error = error;
    if (error) {
      this.#errorEl.replaceChildren(h("code", {}, error.code), " ", error.message);
      this.#errorEl.hidden = false;
    }
    this.#setStatus(status);
  }

  /** Adds a line to the turn's notes: what happened to its requests. */
  note(text: string): void {
    this.#notes.append(h("li", {}, text));
  }

  /** The plan the turn has: its plan step's output, or the answer's. */
  plan(): QueryPlan | undefined {
    return this.#output("plan")?.plan ?? this.answer?.plan ?? undefined;
  }

  /**
   * The outputs of the steps that finished, as agent/ask's state: sent back,
   * they are reused and only the other steps run.
   */
  state(): AskState {
    const state: AskState = {};
    const plan = this.#output("plan")?.plan;
    const table = this.#output("sql")?.table;
    const summary = this.#output("analysis")?.summary;
    if (plan) state.plan = plan;
    if (plan && table) state.table = table;
    if (plan && table && summary) state.summary = summary;
    return state;
  }

  /** The step's state if it finished (done or reused). */
  #output(id: string): Step | undefined {
    const st = this.#steps.get(id);
    return st && (st.status === "done" || st.status === "reused") ? st : undefined;
  }

  #setStatus(status: TurnStatus): void {
    this.status = status;
    this.#renderStatus();
    // A step still running or pending when the run ends never will be.
    for (const id of STEP_IDS) this.#renderBadge(id);
  }

  #renderStatus(): void {
    const status = this.status;
    this.el.dataset["status"] = status;
    this.el.setAttribute("aria-busy", String(status === "running"));
    const took = this.run && status === "done" ? ` in ${formatMs(Date.now() - this.run.startedAt)}` : "";
    const words: Record<TurnStatus, string> = {
      running: "Running…",
      done: `Done${took}`,
      cancelled: "Cancelled",
      failed: "Failed",
      interrupted: "Interrupted",
    };
    this.#statusEl.dataset["status"] = status;
    this.#statusEl.textContent = words[status];
    this.#renderButtons();
  }

  #renderButtons(): void {
    const running = this.status === "running";
    const { cancel, continue: cont, edit } = this.#buttons;
    const focused = [cancel, cont, edit].find((b) => b === document.activeElement);
    cancel.hidden = !running;
    cont.hidden = running;
    cont.title =
      this.status === "done"
        ? "Ask a follow-up question that keeps this answer's filters"
        : "Run the steps that did not finish, reusing the ones that did";
    edit.hidden = running || !this.plan();
    // Keep the keyboard in the turn when the focused button goes away (Cancel, say).
    if (focused?.hidden) (running ? cancel : cont).focus();
  }

  #renderBadge(id: string): void {
    const card = this.#cards.get(id);
    if (!card) return;
    const status = this.#steps.get(id)?.status ?? "pending";
    // data-status is the orchestrator's word; the badge says when a run stopped under a step.
    const stopped = this.status !== "running" && (status === "running" || status === "pending");
    card.el.dataset["status"] = status;
    card.el.classList.toggle("stopped", stopped);
    card.el.setAttribute("aria-busy", String(status === "running" && this.status === "running"));
    card.badge.dataset["status"] = stopped ? "stopped" : status;
    card.badge.textContent = stopped ? (status === "running" ? "stopped" : "not run") : status;
  }

  #renderStep(id: string): void {
    const card = this.#cards.get(id);
    if (!card) return;
    const st = this.#steps.get(id);
    this.#renderBadge(id);
    if (!st) return;
    card.title.textContent = st.title || card.title.textContent;
    card.agent.textContent = st.agent || card.agent.textContent;
    card.time.textContent = st.status !== "reused" && st.elapsedMs > 0 ? formatMs(st.elapsedMs) : "";
    const metric = this.plan()?.metric ?? "";
    const body: Node[] = [];
    switch (id) {
      case "plan":
        if (st.plan) body.push(planView(st.plan));
        body.push(...thoughts(st, !!st.plan));
        break;
      case "sql":
        if (st.text) body.push(h("pre", { class: st.status === "running" ? "sql writing" : "sql", "aria-label": "SQL" }, h("code", {}, st.text)));
        if (st.table) body.push(tableView(st.table));
        break;
      case "analysis":
        if (st.summary) body.push(summaryView(st.summary, metric));
        body.push(...thoughts(st, !!st.summary));
        break;
      case "chart":
        if (st.chart) {
          const width = card.body.clientWidth || 720;
          const tick = (v: number) => formatTick(metric, v);
          const format = (v: number) => formatShort(metric, v);
          body.push(h("figure", { class: "figure" }, h("figcaption", {}, st.chart.title), renderChart(st.chart, { width, format, tick })));
        }
        body.push(...thoughts(st, !!st.chart));
        break;
    }
    if (st.error) body.push(h("p", { class: "step-error" }, h("code", {}, st.error.code), " ", st.error.message));
    card.body.replaceChildren(...body);
    card.el.classList.toggle("has-body", body.length > 0);
  }

  #toggleEdit(): void {
    if (this.#editSlot.firstChild) {
      this.#closeEdit();
      return;
    }
    const plan = this.plan();
    if (!plan) return;
    this.#editSlot.append(this.#editForm(plan));
    this.#buttons.edit.setAttribute("aria-expanded", "true");
    this.#editSlot.querySelector("select")?.focus();
  }

  #closeEdit(): void {
    this.#editSlot.replaceChildren();
    this.#buttons.edit.setAttribute("aria-expanded", "false");
  }

  #editForm(plan: QueryPlan): HTMLFormElement {
    const id = (name: string) => `turn-${this.number}-edit-${name}`;
    const metric = select(id("metric"), "edit-metric", METRICS, plan.metric);
    const dimension = select(id("dimension"), "edit-dimension", DIMENSIONS, plan.dimension);
    const year = select(id("year"), "edit-year", YEARS.map(asText), String(plan.year ?? 0));
    const region = select(id("region"), "edit-region", REGIONS, plan.region ?? "");
    const category = select(id("category"), "edit-category", CATEGORIES, plan.category ?? "");
    const top = select(id("top"), "edit-top", TOPS.map(asText), String(plan.top ?? 0));
    // A time series is never cut to its top N.
    const syncTop = () => {
      top.disabled = isTime(dimension.value);
      if (top.disabled) top.value = "0";
    };
    dimension.addEventListener("change", syncTop);
    syncTop();
    const field = (label: string, control: HTMLSelectElement) =>
      h("div", { class: "field" }, h("label", { for: control.id }, label), control);
    const form = h(
      "form",
      { class: "edit", "data-testid": "edit-form", "aria-label": `Edit the plan of #${this.number}` },
      h("div", { class: "fields" }, field("Metric", metric), field("Group by", dimension), field("Year", year), field("Region", region), field("Category", category), field("Keep", top)),
      h(
        "div",
        { class: "edit-actions" },
        h("button", { type: "submit", class: "button primary", "data-testid": "edit-run" }, "Run with this plan"),
        h("button", { type: "button", class: "button quiet", "data-testid": "edit-close" }, "Close"),
      ),
    );
    form.querySelector('[data-testid="edit-close"]')?.addEventListener("click", () => this.#closeEdit());
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const edited: QueryPlan = { ...plan, metric: metric.value, dimension: dimension.value, steps: [] };
      setOptional(edited, "year", Number(year.value));
      setOptional(edited, "top", Number(top.value));
      setOptional(edited, "region", region.value);
      setOptional(edited, "category", category.value);
      this.#closeEdit();
      this.actions.edit(this, described(edited));
    });
    return form;
  }
}

/** The agent's words: live while it runs; afterwards, folded away under its output. */
function thoughts(st: Step, hasOutput: boolean): Node[] {
  if (!st.text) return [];
  if (!hasOutput) return [h("p", { class: "thinking" }, st.text)];
  return [h("details", { class: "notes-detail" }, h("summary", {}, "Agent notes"), h("p", { class: "thinking" }, st.text))];
}

function planView(plan: QueryPlan): HTMLElement {
  const facts: Array<[string, string]> = [
    ["Metric", labelOf(METRICS, plan.metric)],
    ["Group by", labelOf(DIMENSIONS, plan.dimension)],
    ["Filters", filtersOf(plan).join(" · ")],
  ];
  return h(
    "div",
    { class: "plan" },
    h("p", { class: "intent" }, plan.intent),
    h("dl", { class: "facts" }, ...facts.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
    plan.steps.length > 0 ? h("ol", { class: "plan-steps" }, ...plan.steps.map((x) => h("li", {}, x))) : null,
  );
}

function tableView(t: Table): HTMLElement {
  const [labelCol = "label", valueCol = "value"] = t.columns;
  const total = t.values.reduce((a, b) => a + b, 0);
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "data" },
      h("caption", {}, `${t.labels.length} ${t.labels.length === 1 ? "row" : "rows"} · query ${formatNumber(t.elapsedMs)} ms`),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, labelCol), h("th", { scope: "col", class: "num" }, valueCol))),
      h(
        "tbody",
        {},
        ...t.labels.map((label, i) => {
          const v = t.values[i] ?? 0;
          return h("tr", {}, h("th", { scope: "row" }, label), h("td", { class: "num", title: total ? formatPercent((100 * v) / total) : null }, formatValue(valueCol, v)));
        }),
      ),
    ),
  );
}

function summaryView(sum: Summary, metric: string): HTMLElement {
  const f = (v: number) => formatShort(metric, v);
  const additive = metric !== "avg_order_value";
  const stat = (label: string, value: string, sub?: string) =>
    h("div", { class: "stat" }, h("dt", {}, label), h("dd", {}, value, sub ? h("span", { class: "sub" }, sub) : null));
  return h(
    "div",
    { class: "summary" },
    h(
      "dl",
      { class: "stats" },
      additive ? stat("Total", f(sum.total), `${sum.count} groups`) : stat("Groups", String(sum.count)),
      stat("Mean", f(sum.mean), `σ ${f(sum.stdDev)}`),
      stat("Highest", f(sum.max.value), additive ? `${sum.max.label} · ${formatPercent(sum.max.share)}` : sum.max.label),
      stat("Lowest", f(sum.min.value), additive ? `${sum.min.label} · ${formatPercent(sum.min.share)}` : sum.min.label),
      sum.growth !== null ? stat("Growth", formatPercent(sum.growth, true), "first to last") : null,
    ),
    sum.insights.length > 0 ? h("ul", { class: "insights" }, ...sum.insights.map((x) => h("li", {}, x))) : null,
  );
}

function select(id: string, testId: string, choices: ReadonlyArray<Choice<string>>, value: string): HTMLSelectElement {
  const el = h("select", { id, name: testId, "data-testid": testId });
  for (const c of choices) el.append(h("option", { value: c.value }, c.label));
  el.value = choices.some((c) => c.value === value) ? value : (choices[0]?.value ?? "");
  return el;
}

function asText(c: Choice<number>): Choice<string> {
  return { value: String(c.value), label: c.label };
}

/** Sets an optional field of a plan, or deletes it for its zero value ("all"). */
function setOptional<K extends "year" | "top" | "region" | "category">(plan: QueryPlan, key: K, value: NonNullable<QueryPlan[K]>): void {
  if (value === 0 || value === "") delete plan[key];
  else plan[key] = value;
}
