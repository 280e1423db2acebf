// Feedback per team from /v1/feedback/teams and /v1/feedback/teams/{team}: every team's count
// and the share routed versus left in triage; one team's queue (latest items) and the trend
// of its themes per ISO week.
import { PeriodChart } from "./chart.js";
import { el, format, message } from "./dom.js";

// The chart draws the busiest themes; the table below it lists them all.
const THEMES_CHARTED = 6;
const COLOURS = ["#3454d1", "#d1495b", "#2a9d63", "#e0a030", "#8a63d2", "#1b998b"];

/** `#/feedback/TEAM` → TEAM; `#/feedback` → null. */
export function chosenTeam(hash) {
  const match = /^#\/feedback\/(.+)$/.exec(hash);
  return match ? decodeURIComponent(match[1]) : null;
}

/** The teams table and the routed-versus-triage share. */
export function renderTeams(container, result, current) {
  const teams = result.teams ?? [];
  if (!teams.length) {
    container.replaceChildren(message("empty", "No routing rules are loaded (journeys/routing/*.yaml), so there is no team."));
    return;
  }
  const bar = el("span", { class: "bar" });
  bar.style.width = `${(result.routed_share ?? 0) * 100}%`;
  container.replaceChildren(
    el("div", { class: "tiles" },
      el("div", { class: "tile" }, el("span", { class: "tile-value", id: "feedback-total" }, format.int(result.total)), el("span", { class: "tile-label" }, "feedback items")),
      el("div", { class: "tile" }, el("span", { class: "tile-value", id: "feedback-routed" }, format.int(result.routed)), el("span", { class: "tile-label" }, "routed to a team")),
      el("div", { class: "tile" }, el("span", { class: "tile-value", id: "feedback-triage" }, format.int(result.in_triage)), el("span", { class: "tile-label" }, "left in triage")),
      el("div", { class: "tile" }, el("span", { class: "tile-value", id: "feedback-share" }, format.pct(result.routed_share)), el("span", { class: "tile-label" }, "routed share"), el("span", { class: "bar-cell share" }, bar))),
    el("table", { class: "compact teams" },
      el("thead", {}, el("tr", {}, ["team", "items", "share", "by a reroute", "topic"].map((h) => el("th", {}, h)))),
      el("tbody", {}, teams.map((t) => el("tr", { "data-team": t.team, class: t.team === current ? "current" : null },
        el("th", { scope: "row" },
          el("a", { href: `#/feedback/${encodeURIComponent(t.team)}` }, t.team),
          t.triage ? el("span", { class: "tag" }, "triage") : null),
        el("td", { class: "n" }, format.int(t.items)),
        el("td", { class: "n" }, result.total ? format.pct(t.items / result.total) : "–"),
        el("td", { class: "n" }, format.int(t.rerouted)),
        el("td", {}, el("code", {}, t.topic)))))),
  );
}

/** Only web addresses become links: never a `javascript:` URL, whatever a record holds. */
function linkable(url) {
  return /^(https?:\/\/|\/)/.test(url ?? "") ? url : null;
}

function queue(items) {
  if (!items.length) return message("empty", "No feedback routed to this team yet.");
  return el("ul", { class: "queue" }, items.map((item) => el("li", { "data-item": item.item_id },
    el("q", {}, item.text), " ",
    el("small", {},
      `${item.at} · ${item.source}${item.channel ? ` (${item.channel})` : ""} · `,
      el("a", { href: linkable(item.timeline_url), class: "customer", title: "the customer's records, newest first", rel: "noopener" }, item.customer_id),
      ` · ${item.theme}${item.rerouted ? " · rerouted" : ""}`))));
}

export class FeedbackTeamPanel {
  constructor(container) {
    this.container = container;
    this.chart = null;
    this.charted = "";
  }

  /** A message (no team chosen, error) in place of the team. */
  show(node) {
    this.chart?.destroy();
    this.chart = null;
    this.charted = "";
    this.container.replaceChildren(node);
  }

  render(team) {
    const trend = team.trend ?? [];
    const weeks = trend.map((w) => w.week);
    const totals = new Map();
    for (const w of trend) for (const [theme, n] of Object.entries(w.themes)) totals.set(theme, (totals.get(theme) ?? 0) + n);
    const themes = [...totals.keys()].sort((a, b) => totals.get(b) - totals.get(a) || a.localeCompare(b));
    const charted = themes.slice(0, THEMES_CHARTED);
    const chartBox = el("div", { class: "chart" });
    const head = el("h3", {}, `Team ${team.team}`, team.triage ? el("span", { class: "tag" }, "triage") : null,
      el("small", {}, ` topic ${team.topic}`));
    const trendTable = themes.length
      ? el("table", { class: "compact trend" },
        el("thead", {}, el("tr", {}, el("th", {}, "theme"), weeks.map((w) => el("th", { class: "n" }, w)), el("th", { class: "n" }, "total"))),
        el("tbody", {}, themes.map((theme) => el("tr", { "data-theme": theme },
          el("th", { scope: "row" }, theme),
          trend.map((w) => el("td", { class: "n" }, format.int(w.themes[theme] ?? 0))),
          el("td", { class: "n" }, format.int(totals.get(theme)))))))
      : message("empty", "No theme counted yet.");
    // The chart is rebuilt only when the charted themes change; otherwise fed new data.
    const key = `${team.team}|${charted.join("|")}`;
    if (key !== this.charted || !this.chart) {
      this.chart?.destroy();
      this.chart = null;
      this.charted = key;
      this.chartBox = chartBox;
    }
    this.container.replaceChildren(
      head,
      el("h4", {}, "Themes per ISO week"),
      this.chartBox,
      trendTable,
      el("h4", {}, `Queue (latest ${format.int((team.items ?? []).length)})`),
      queue(team.items ?? []),
    );
    if (!charted.length) return;
    if (!this.chart) {
      this.chart = new PeriodChart(this.chartBox,
        charted.map((theme, i) => ({ label: theme, stroke: COLOURS[i % COLOURS.length], scale: "n" })),
        { n: { range: (_u, _min, max) => [0, Math.max(1, max)], label: "items" } }, 200);
    }
    this.chart.set(weeks, charted.map((theme) => trend.map((w) => w.themes[theme] ?? 0)));
  }
}
