// What a QueryPlan may hold, and how the planner describes one. The lists
// and sentences follow the planner (workers/demo/agents/plan.go), so that a
// plan edited on the page reads like one the planner wrote.

import type { QueryPlan } from "../../clients/typescript/src/index.js";

export interface Choice<T> {
  value: T;
  label: string;
}

export const METRICS: ReadonlyArray<Choice<string>> = [
  { value: "revenue", label: "Revenue" },
  { value: "units", label: "Units sold" },
  { value: "orders", label: "Orders" },
  { value: "avg_order_value", label: "Average order value" },
];

export const DIMENSIONS: ReadonlyArray<Choice<string>> = [
  { value: "region", label: "Region" },
  { value: "category", label: "Category" },
  { value: "product", label: "Product" },
  { value: "month", label: "Month" },
  { value: "quarter", label: "Quarter" },
];

/** 0 is every year. */
export const YEARS: ReadonlyArray<Choice<number>> = [
  { value: 0, label: "All years" },
  { value: 2024, label: "2024" },
  { value: 2025, label: "2025" },
];

/** "" is every region. */
export const REGIONS: ReadonlyArray<Choice<string>> = [
  { value: "", label: "All regions" },
  ...["North", "South", "East", "West"].map((r) => ({ value: r, label: r })),
];

/** "" is every category. */
export const CATEGORIES: ReadonlyArray<Choice<string>> = [
  { value: "", label: "All categories" },
  ...["Hardware", "Software", "Services"].map((c) => ({ value: c, label: c })),
];

/** 0 keeps every group. */
export const TOPS: ReadonlyArray<Choice<number>> = [
  { value: 0, label: "All" },
  { value: 3, label: "Top 3" },
  { value: 5, label: "Top 5" },
];

const FIRST_YEAR = 2024;
const LAST_YEAR = 2025;

const METRIC_NAMES: Readonly<Record<string, string>> = {
  revenue: "revenue",
  units: "units sold",
  orders: "the number of orders",
  avg_order_value: "the average order value",
};

/** Whether a dimension is time, which a line shows and which is never cut to a top N. */
export function isTime(dimension: string): boolean {
  return dimension === "month" || dimension === "quarter";
}

/** The label of value in choices, or the value itself. */
export function labelOf<T>(choices: ReadonlyArray<Choice<T>>, value: T): string {
  return choices.find((c) => c.value === value)?.label ?? String(value);
}

/**
 * The plan with its intent and steps rewritten for its fields, as the
 * planner writes them (but for the plural of "category"): for a plan the
 * page edited.
 */
export function described(plan: QueryPlan): QueryPlan {
  const metric = METRIC_NAMES[plan.metric] ?? plan.metric;
  const top = plan.top ?? 0;
  const groups = plan.dimension === "category" ? "categories" : `${plan.dimension}s`;
  let intent = top > 0 ? `The top ${top} ${groups} by ${metric}` : `${capitalize(metric)} by ${plan.dimension}`;
  if (plan.region) intent += ` in the ${plan.region}`;
  if (plan.category) intent += ` for ${plan.category}`;
  intent += plan.year ? ` in ${plan.year}` : `, ${FIRST_YEAR}–${LAST_YEAR}`;
  const time = isTime(plan.dimension);
  return {
    ...plan,
    intent,
    steps: [
      "SQL agent: write and run the query on the orders table",
      `Analysis agent: totals, spread, extremes, ${time ? "growth" : "shares"}`,
      `Chart agent: a ${time ? "line" : "bar"} chart of ${metric} by ${plan.dimension}`,
    ],
  };
}

/** The plan's filters for people: ["2025", "West", "Top 3"]. */
export function filtersOf(plan: QueryPlan): string[] {
  const out: string[] = [];
  out.push(plan.year ? String(plan.year) : `${FIRST_YEAR}–${LAST_YEAR}`);
  if (plan.region) out.push(plan.region);
  if (plan.category) out.push(plan.category);
  if (plan.top) out.push(`Top ${plan.top}`);
  return out;
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
