// NPS and CSAT by week from /v1/measure/surveys: the scores over time (channels and journeys
// added up, each score recomputed from the summed counts), the counts, the latest comments.
import { PeriodChart } from "./chart.js";
import { el, format, message } from "./dom.js";

const COMMENTS_SHOWN = 8;
// How the API masks a personal field for a key without the `pii` grant.
const MASKED = "***";

function byWeek(rows, fields) {
  const weeks = new Map();
  for (const row of rows) {
    const sums = weeks.get(row.week) ?? Object.fromEntries(fields.map((f) => [f, 0]));
    for (const field of fields) sums[field] += row[field] ?? 0;
    weeks.set(row.week, sums);
  }
  return weeks;
}

export class SurveyPanel {
  constructor(container) {
    this.container = container;
    this.chartBox = el("div", { class: "chart" });
    this.table = el("div");
    this.comments = el("div");
    this.chart = null;
  }

  /** A message (empty state, error) in place of the figures. */
  show(node) {
    this.chart?.destroy();
    this.chart = null;
    this.container.replaceChildren(node);
  }

  render(surveys) {
    const nps = byWeek(surveys.nps ?? [], ["responses", "promoters", "passives", "detractors"]);
    const csat = byWeek(surveys.csat ?? [], ["responses", "satisfied"]);
    const weeks = [...new Set([...nps.keys(), ...csat.keys()])].sort();
    if (!weeks.length) {
      this.show(message("empty", "No survey answer yet."));
      return;
    }
    if (!this.chart) {
      this.container.replaceChildren(this.chartBox, this.table, this.comments);
      this.chart = new PeriodChart(
        this.chartBox,
        [
          { label: "NPS", stroke: "#3454d1", scale: "nps" },
          { label: "CSAT %", stroke: "#d1495b", scale: "pct" },
        ],
        { nps: { range: [-100, 100], label: "NPS" }, pct: { range: [0, 100], label: "CSAT %" } },
      );
    }
    const npsScore = (w) => {
      const s = nps.get(w);
      return s?.responses ? (100 * (s.promoters - s.detractors)) / s.responses : null;
    };
    const csatScore = (w) => {
      const s = csat.get(w);
      return s?.responses ? (100 * s.satisfied) / s.responses : null;
    };
    this.chart.set(weeks, [weeks.map(npsScore), weeks.map(csatScore)]);
    this.table.replaceChildren(
      el("table", { class: "compact" },
        el("thead", {}, el("tr", {}, ["week", "NPS", "answers", "promoters", "passives", "detractors", "CSAT", "answers", "satisfied"].map((h) => el("th", {}, h)))),
        el("tbody", {}, weeks.map((w) => {
          const n = nps.get(w);
          const c = csat.get(w);
          const score = (v) => (v === null ? "–" : v.toFixed(1));
          return el("tr", { "data-week": w },
            el("th", { scope: "row" }, w),
            el("td", { class: "n" }, score(npsScore(w))),
            ...["responses", "promoters", "passives", "detractors"].map((f) => el("td", { class: "n" }, n ? format.int(n[f]) : "–")),
            el("td", { class: "n" }, csatScore(w) === null ? "–" : `${csatScore(w).toFixed(1)}%`),
            ...["responses", "satisfied"].map((f) => el("td", { class: "n" }, c ? format.int(c[f]) : "–")));
        }))),
    );
    const comments = [...(surveys.comments ?? [])]
      .sort((a, b) => String(b.at).localeCompare(String(a.at)))
      .slice(0, COMMENTS_SHOWN);
    this.comments.replaceChildren(
      el("h4", {}, "Latest comments"),
      comments.length
        ? el("ul", { class: "comments" }, comments.map((c) => el("li", {},
          c.text === MASKED ? el("em", { class: "note" }, "(text hidden: this key has no pii grant)") : el("q", {}, c.text), " ",
          el("small", {}, `${c.survey} ${c.score} · ${c.journey ?? "no journey"} · ${c.channel ?? ""} · ${c.at}`))))
        : message("empty", "No comment yet."),
    );
  }
}
