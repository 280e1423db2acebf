// The selected journey's figures: summary tiles, funnel, experiments with their intervals.
import { counts, el, format, message, svg } from "./dom.js";

function tile(label, value, title) {
  return el("div", { class: "tile", title }, el("span", { class: "tile-value" }, value), el("span", { class: "tile-label" }, label));
}

/** Headline figures of /v1/measure/journeys/{j}. */
export function renderSummary(container, figures) {
  const time = figures.time_to_goal ?? {};
  container.replaceChildren(
    el("div", { class: "tiles" },
      tile("entered", format.int(figures.entered)),
      tile("active now", format.int(figures.active)),
      tile("goals", format.int(figures.goals)),
      tile("conversion", format.pct(figures.conversion_rate)),
      tile("time to goal, median", format.seconds(time.median_seconds), `${format.int(time.count)} goals timed`),
      tile("time to goal, p90", format.seconds(time.p90_seconds)),
    ),
    el("dl", { class: "facts" },
      el("dt", {}, "sends"), el("dd", {}, counts(figures.sends)),
      el("dt", {}, "receipts"), el("dd", {}, counts(figures.receipts)),
      el("dt", {}, "suppressed"), el("dd", {}, counts(figures.suppressions)),
      el("dt", {}, "exits"), el("dd", {}, counts(figures.exits)),
    ),
  );
}

/** /v1/measure/journeys/{j}/funnel: one bar per step, its share of entries. */
export function renderFunnel(container, funnel) {
  const steps = funnel.steps ?? [];
  if (!steps.some((s) => s.entered)) {
    container.replaceChildren(message("empty", "No customer has entered this journey yet."));
    return;
  }
  container.replaceChildren(
    el("table", { class: "funnel" },
      el("tbody", {}, steps.map((s) => {
        const bar = el("span", { class: "bar" });
        bar.style.width = `${Math.max(0, Math.min(1, s.share ?? 0)) * 100}%`;
        return el("tr", { "data-step": s.step },
          el("th", { scope: "row" }, s.step),
          el("td", { class: "bar-cell" }, bar),
          el("td", { class: "n" }, format.int(s.entered)),
          el("td", { class: "n" }, format.pct(s.share)));
      }))),
  );
}

/** The difference to the control and its 95% interval on one axis (a forest plot row). */
function interval(arm, low, high) {
  const width = 200;
  const x = (v) => 8 + ((v - low) / (high - low || 1)) * (width - 16);
  const plot = svg("svg", { class: "interval", viewBox: `0 0 ${width} 22`, width, height: 22 },
    svg("line", { class: "zero", x1: x(0), x2: x(0), y1: 1, y2: 21 }));
  if (arm.ci_low !== null && arm.ci_low !== undefined && arm.ci_high !== null && arm.ci_high !== undefined) {
    plot.append(
      svg("line", { class: "ci", x1: x(arm.ci_low), x2: x(arm.ci_high), y1: 11, y2: 11 }),
      svg("line", { class: "ci", x1: x(arm.ci_low), x2: x(arm.ci_low), y1: 6, y2: 16 }),
      svg("line", { class: "ci", x1: x(arm.ci_high), x2: x(arm.ci_high), y1: 6, y2: 16 }),
      svg("circle", { class: "estimate", cx: x(arm.difference ?? 0), cy: 11, r: 4 }),
    );
  }
  return plot;
}

function experiment(test) {
  const arms = test.arms ?? [];
  const bounds = arms.flatMap((a) => [a.ci_low, a.ci_high]).filter((v) => v !== null && v !== undefined);
  const low = Math.min(0, ...bounds);
  const high = Math.max(0, ...bounds);
  return el("div", { class: "experiment", "data-step": test.step },
    el("h4", {}, `split ${test.step}`, el("small", {}, ` control: ${test.control}`)),
    el("p", { class: "verdict" }, test.verdict ?? ""),
    el("table", {},
      el("thead", {}, el("tr", {},
        ["variant", "entries", "conversions", "rate", "difference (pts)", "95% interval", "p-value", ""].map((h) => el("th", {}, h)))),
      el("tbody", {}, arms.map((arm) => el("tr", { "data-variant": arm.variant },
        el("th", { scope: "row" }, arm.variant, arm.holdout ? el("span", { class: "tag" }, "holdout") : null),
        el("td", { class: "n" }, format.int(arm.entries)),
        el("td", { class: "n" }, format.int(arm.conversions)),
        el("td", { class: "n" }, format.pct(arm.rate)),
        el("td", { class: "n" }, arm.variant === test.control ? "control" : format.signedPct(arm.difference)),
        el("td", { class: "n" }, arm.ci_low === null || arm.ci_low === undefined ? "–"
          : `${format.signedPct(arm.ci_low)} to ${format.signedPct(arm.ci_high)}`),
        el("td", { class: "n" }, arm.p_value === null || arm.p_value === undefined ? "–" : arm.p_value.toFixed(3)),
        el("td", {}, arm.variant === test.control ? null : interval(arm, low, high)),
      )))),
  );
}

/** /v1/measure/journeys/{j}/experiments: each split, its arms and verdict. */
export function renderExperiments(container, result) {
  const tests = result.experiments ?? [];
  if (!tests.length) {
    container.replaceChildren(message("empty", "This journey has no split step."));
    return;
  }
  container.replaceChildren(...tests.map(experiment));
}
