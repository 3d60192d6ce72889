// Numbers and durations for people, the way the agents write them
// (workers/demo/agents: format): money for revenue and average order value,
// whole numbers with separators for counts.

const LOCALE = "en-US";

const money = new Intl.NumberFormat(LOCALE, { style: "currency", currency: "USD" });
const count = new Intl.NumberFormat(LOCALE, { maximumFractionDigits: 0 });
const compactMoney = new Intl.NumberFormat(LOCALE, {
  style: "currency",
  currency: "USD",
  notation: "compact",
  maximumFractionDigits: 1,
});
const compactCount = new Intl.NumberFormat(LOCALE, { notation: "compact", maximumFractionDigits: 1 });
const oneDecimal = new Intl.NumberFormat(LOCALE, { maximumFractionDigits: 1, minimumFractionDigits: 1 });
const twoDecimals = new Intl.NumberFormat(LOCALE, { maximumFractionDigits: 2 });

/** Whether a metric is an amount of money. */
export function isMoney(metric: string): boolean {
  return metric === "revenue" || metric === "avg_order_value";
}

/** A metric's value in full, for tables: "$12,345.67", "1,234". */
export function formatValue(metric: string, v: number): string {
  return isMoney(metric) ? money.format(v) : count.format(v);
}

/** A metric's value in a few characters, for summaries: "$1.23M", "$12.3k", "$950.00", "1,234". */
export function formatShort(metric: string, v: number): string {
  if (!isMoney(metric)) return count.format(v);
  const a = Math.abs(v);
  if (a >= 1e6) return `$${(v / 1e6).toFixed(2)}M`;
  if (a >= 1e4) return `$${(v / 1e3).toFixed(1)}k`;
  return money.format(v);
}

/** A metric's value for an axis tick: "$20K", "1.5K". */
export function formatTick(metric: string, v: number): string {
  return isMoney(metric) ? compactMoney.format(v) : compactCount.format(v);
}

/** A number for people, at most two decimals. */
export function formatNumber(v: number): string {
  return twoDecimals.format(v);
}

/** A percentage: "42.0%"; signed: "+12.5%", "−3.0%". */
export function formatPercent(v: number, signed = false): string {
  const text = `${oneDecimal.format(Math.abs(v))}%`;
  if (!signed || v === 0) return v < 0 ? `−${text}` : text;
  return v > 0 ? `+${text}` : `−${text}`;
}

/** A duration: "850 ms", "1.2 s", "12 s". */
export function formatMs(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 10_000) return `${oneDecimal.format(ms / 1000)} s`;
  return `${Math.round(ms / 1000)} s`;
}
