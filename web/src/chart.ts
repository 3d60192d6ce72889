// An SVG renderer for the part of Vega-Lite v5 that the chart agent writes:
// one "bar" or "line" mark over inline data, a nominal or ordinal x, a
// quantitative y, x sorted by "-y" (largest first) or kept in order. It
// draws axes, gridlines, axis titles, value labels where they fit and a
// tooltip (an SVG <title>) on each bar or point. Colours come from the
// stylesheet (.chart …), so the chart follows the page's theme.

import type { ChartSpec } from "../../clients/typescript/src/index.js";
import { s } from "./dom.js";

export interface ChartOptions {
  /** The drawing's width in CSS pixels; it scales to its box. Default 720. */
  width?: number;
  /** Formats a value for labels and tooltips. Default: at most two decimals. */
  format?: (v: number) => string;
  /** Formats a value on the y axis. Default: format. */
  tick?: (v: number) => string;
}

interface Datum {
  label: string;
  value: number;
}

const FONT_PX = 12;
/** A label's width, estimated: the page's sans-serif at 12px averages under 7px a character. */
const CHAR_PX = 6.8;
const TICKS = 5;
const ROTATE_DEG = 40;

/** Draws spec as an SVG element. */
export function renderChart(spec: ChartSpec, opts: ChartOptions = {}): SVGSVGElement {
  const format = opts.format ?? ((v: number) => String(Math.round(v * 100) / 100));
  const tick = opts.tick ?? format;
  const data = sorted(rows(spec), spec.encoding.x.sort);
  const line = spec.mark.type === "line";

  const width = Math.max(320, Math.min(1200, Math.round(opts.width ?? 720)));
  const plotH = spec.height > 0 ? spec.height : 260;
  const [lo, hi, step] = niceDomain(data.map((d) => d.value));
  const ticks: number[] = [];
  for (let v = lo; v <= hi + step / 2; v += step) ticks.push(round(v));

  // Margins: room for the tick labels and the y title on the left, for the
  // x labels (rotated when they do not fit side by side) and the x title below.
  const tickChars = Math.max(...ticks.map((t) => tick(t).length));
  const left = 28 + Math.ceil(tickChars * CHAR_PX) + 8;
  const right = 16;
  const top = 22;
  const plotW = width - left - right;
  const band = data.length > 0 ? plotW / data.length : plotW;
  const labelChars = Math.max(1, ...data.map((d) => d.label.length));
  const rotate = labelChars * CHAR_PX > band - 6;
  // Rotated labels need about 22px between them (their line height over sin 40°).
  const every = rotate ? Math.max(1, Math.ceil(22 / band)) : 1;
  const xLabelH = rotate ? Math.min(110, Math.ceil(labelChars * CHAR_PX * Math.sin((ROTATE_DEG * Math.PI) / 180)) + FONT_PX + 4) : FONT_PX + 6;
  const bottom = 10 + xLabelH + 20;
  const height = top + plotH + bottom;

  const y = (v: number) => top + plotH - ((v - lo) / (hi - lo)) * plotH;
  const x = (i: number) => left + band * (i + 0.5);
  const zero = y(Math.max(lo, Math.min(0, hi)));

  const title = spec.title || spec.description;
  const svg = s("svg", {
    class: `chart chart-${line ? "line" : "bar"}`,
    "data-testid": "chart",
    viewBox: `0 0 ${width} ${height}`,
    width: "100%",
    role: "img",
    "aria-label": spec.description || title,
    "font-size": FONT_PX,
  });
  svg.append(s("title", {}, title));

  // The y axis: gridlines and tick labels, then its title.
  const yAxis = s("g", { class: "axis axis-y" });
  for (const t of ticks) {
    const ty = y(t);
    yAxis.append(
      s("line", { class: t === 0 ? "grid grid-zero" : "grid", x1: left, x2: left + plotW, y1: ty, y2: ty }),
      s("text", { x: left - 8, y: ty, "text-anchor": "end", "dominant-baseline": "middle" }, tick(t)),
    );
  }
  yAxis.append(
    s(
      "text",
      { class: "axis-title", transform: `translate(14 ${top + plotH / 2}) rotate(-90)`, "text-anchor": "middle" },
      spec.encoding.y.title,
    ),
  );
  svg.append(yAxis);

  // The marks.
  const marks = s("g", { class: "marks" });
  const labels = valueLabels(data.length, band, line);
  if (line) {
    const points = data.map((d, i) => `${round(x(i))},${round(y(d.value))}`);
    if (data.length > 1) {
      marks.append(
        s("path", { class: "area", d: `M${round(x(0))},${round(zero)}L${points.join("L")}L${round(x(data.length - 1))},${round(zero)}Z` }),
        s("path", { class: "line", d: `M${points.join("L")}` }),
      );
    }
    data.forEach((d, i) => {
      const g = s("g", { class: "point" });
      if (spec.mark.tooltip) g.append(s("title", {}, `${d.label}: ${format(d.value)}`));
      g.append(s("circle", { cx: round(x(i)), cy: round(y(d.value)), r: spec.mark.point ? 3.5 : 0 }));
      if (labels) {
        g.append(s("text", { class: "value", x: round(x(i)), y: round(y(d.value) - 9), "text-anchor": "middle" }, format(d.value)));
      }
      marks.append(g);
    });
  } else {
    const barW = Math.max(1, Math.min(band * 0.7, 72));
    data.forEach((d, i) => {
      const vy = y(d.value);
      const g = s("g", { class: "bar" });
      if (spec.mark.tooltip) g.append(s("title", {}, `${d.label}: ${format(d.value)}`));
      g.append(
        s("rect", {
          x: round(x(i) - barW / 2),
          y: round(Math.min(vy, zero)),
          width: round(barW),
          height: round(Math.max(Math.abs(zero - vy), d.value === 0 ? 0 : 1)),
          rx: 2,
        }),
      );
      if (labels) {
        const above = d.value >= 0;
        g.append(
          s(
            "text",
            { class: "value", x: round(x(i)), y: round(above ? vy - 6 : vy + FONT_PX + 4), "text-anchor": "middle" },
            format(d.value),
          ),
        );
      }
      marks.append(g);
    });
  }
  svg.append(marks);

  // The x axis: its line at zero, the labels (every nth when crowded), its title.
  const xAxis = s("g", { class: "axis axis-x" });
  xAxis.append(s("line", { class: "domain", x1: left, x2: left + plotW, y1: top + plotH, y2: top + plotH }));
  const labelY = top + plotH + 10;
  data.forEach((d, i) => {
    if (i % every !== 0) return;
    const lx = round(x(i));
    const attrs = rotate
      ? { x: lx, y: labelY, "text-anchor": "end", "dominant-baseline": "hanging", transform: `rotate(-${ROTATE_DEG} ${lx} ${labelY})` }
      : { x: lx, y: labelY, "text-anchor": "middle", "dominant-baseline": "hanging" };
    xAxis.append(s("text", attrs, d.label));
  });
  xAxis.append(
    s("text", { class: "axis-title", x: left + plotW / 2, y: height - 8, "text-anchor": "middle" }, spec.encoding.x.title),
  );
  svg.append(xAxis);
  return svg;
}

/** The spec's rows as label and value, by the fields its encoding names. */
function rows(spec: ChartSpec): Datum[] {
  const xf = spec.encoding.x.field || "label";
  const yf = spec.encoding.y.field || "value";
  return spec.data.values.map((row) => {
    const r = row as unknown as Record<string, unknown>;
    const value = Number(r[yf]);
    return { label: String(r[xf] ?? ""), value: Number.isFinite(value) ? value : 0 };
  });
}

/** The rows in the order x's sort asks for: "-y" largest first, "y" smallest first, otherwise as given. */
function sorted(data: Datum[], sort: string | null | undefined): Datum[] {
  if (sort === "-y") return [...data].sort((a, b) => b.value - a.value);
  if (sort === "y") return [...data].sort((a, b) => a.value - b.value);
  return data;
}

/** A y domain that includes zero and ends on round ticks: [low, high, step]. */
function niceDomain(values: number[]): [number, number, number] {
  let lo = Math.min(0, ...values);
  let hi = Math.max(0, ...values);
  if (lo === hi) hi = lo + 1;
  const step = niceStep((hi - lo) / TICKS);
  lo = round(Math.floor(lo / step) * step);
  hi = round(Math.ceil(hi / step) * step);
  return [lo, hi, step];
}

/** The round number (1, 2, 2.5 or 5 times a power of ten) nearest above raw. */
function niceStep(raw: number): number {
  const pow = 10 ** Math.floor(Math.log10(raw));
  const f = raw / pow;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * pow;
}

/** Whether values are written on the marks: when there are few and they have room. */
function valueLabels(n: number, band: number, line: boolean): boolean {
  return line ? n <= 12 && band >= 48 : n <= 16 && band >= 44;
}

/** Rounds away floating-point noise and keeps the SVG short. */
function round(v: number): number {
  return Math.round(v * 100) / 100;
}
