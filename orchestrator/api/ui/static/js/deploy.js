// "Deploy a change": a draft journey (YAML and templates, pasted or uploaded) is first
// backtested against real traffic (POST /v1/journeys/backtest: the deployed version and the
// draft replayed over the same window, side by side); only then can it be deployed
// (POST /v1/journeys), and only the draft that was compared.
import { el, failure, format, message } from "./dom.js";

const $ = (id) => document.getElementById(id);

function keyed(rows, key) {
  return new Map((rows ?? []).map((r) => [key(r), r.count]));
}

/** A table of counts per key, deployed beside draft, with the difference. */
function sideBySide(title, heads, deployed, draft, cls) {
  const keys = [...new Set([...deployed.keys(), ...draft.keys()])].sort();
  if (!keys.length) return [el("h4", {}, title), message("empty", "none on either side")];
  return [el("h4", {}, title), el("table", { class: `compact comparison ${cls}` },
    el("thead", {}, el("tr", {}, [...heads, "deployed", "draft", "difference"].map((h) => el("th", {}, h)))),
    el("tbody", {}, keys.map((k) => {
      const before = deployed.get(k) ?? 0;
      const after = draft.get(k) ?? 0;
      const delta = after - before;
      return el("tr", { "data-key": k, class: delta ? "changed" : null },
        ...k.split("\u0000").map((part) => el("th", { scope: "row" }, part)),
        el("td", { class: "n" }, format.int(before)),
        el("td", { class: "n" }, format.int(after)),
        el("td", { class: "n" }, delta ? `${delta > 0 ? "+" : ""}${format.int(delta)}` : "="));
    })))];
}

const join = (...parts) => parts.join("\u0000");

function messages(list) {
  if (!list.length) return message("empty", "no message");
  return el("ol", { class: "messages" }, list.map((m) => el("li", {},
    el("strong", {}, `${m.step} · ${m.channel}`), el("small", {}, ` ${m.at} · ${m.template} · v${m.version ?? "draft"}`),
    el("pre", {}, JSON.stringify(m.content, null, 1)))));
}

/** The backtest report (the JSON of `orchestrator backtest --json`), side by side. */
export function renderComparison(container, report) {
  const { deployed, draft, changes } = report;
  const journeys = Object.entries(report.journeys ?? {});
  const entries = (side) => new Map(Object.entries(side.entries ?? {}));
  const goals = (side) => new Map(Object.entries(side.goals ?? {}));
  const providers = Object.entries(report.limits?.providers ?? {});
  container.replaceChildren(...[
    el("p", { class: "window" },
      `Window ${report.window?.from ?? "?"} to ${report.window?.until ?? "?"}: `,
      el("strong", {}, `${format.int(report.events)} events`), ` of ${format.int(report.customers)} customers replayed`,
      journeys.length ? ` · ${journeys.map(([j, v]) => `${j}: deployed ${v.deployed ? `v${v.deployed}` : "none"} → draft v${v.draft}`).join(", ")}` : ""),
    el("div", { class: "comparison-grid" },
      el("div", {}, ...sideBySide("Entries", ["journey"], entries(deployed), entries(draft), "entries")),
      el("div", {}, ...sideBySide("Goals", ["journey"], goals(deployed), goals(draft), "goals")),
      el("div", { class: "wide" }, ...sideBySide("Sends per step and channel", ["journey", "step", "channel"],
        keyed(deployed.sends, (r) => join(r.journey, r.step, r.channel)),
        keyed(draft.sends, (r) => join(r.journey, r.step, r.channel)), "sends")),
      el("div", {}, ...sideBySide("Suppressions", ["journey", "reason"],
        keyed(deployed.suppressions, (r) => join(r.journey, r.reason)),
        keyed(draft.suppressions, (r) => join(r.journey, r.reason)), "suppressions")),
      el("div", {}, ...sideBySide("Exits", ["journey", "reason"],
        keyed(deployed.exits, (r) => join(r.journey, r.reason)),
        keyed(draft.exits, (r) => join(r.journey, r.reason)), "exits"))),
    el("p", {}, "Conversion: ", Object.keys(draft.conversion ?? {}).map((j) =>
      `${j} ${format.pct(deployed.conversion?.[j])} → ${format.pct(draft.conversion?.[j])}`).join(", ") || "–"),
    providers.length ? el("p", {}, "Busiest hour per provider: ", providers.map(([p, l]) =>
      `${p} ${format.int(l.deployed_peak?.sends ?? 0)} → ${format.int(l.draft_peak?.sends ?? 0)}${l.limit_per_hour ? ` (limit ${format.int(l.limit_per_hour)}/h)` : ""}`).join(", ")) : null,
    el("h4", {}, `Customers whose messages differ: `, el("span", { id: "deploy-differing" }, format.int(changes.customers))),
    (changes.sample ?? []).length
      ? el("div", { class: "differing" }, changes.sample.map((c) => el("div", { class: "customer-diff", "data-customer": c.customer_id },
        el("h5", {}, c.customer_id),
        el("div", { class: "sides" }, el("div", {}, el("h5", {}, "deployed"), messages(c.deployed)),
          el("div", {}, el("h5", {}, "draft"), messages(c.draft))))))
      : message("empty", "Nobody: the draft sends the same messages as the deployed version."),
  ].filter(Boolean));
}

function problems(error) {
  const list = error.body?.problems ?? [];
  return el("div", {}, failure(error, "the draft"),
    list.length ? el("ul", { class: "error" }, list.map((p) => el("li", {}, `${p.file}:${p.line}:${p.col}: ${p.message}`))) : null);
}

export class DeployPanel {
  constructor(api) {
    this.api = api;
    this.templates = {};
    this.compared = null; // the body that was backtested: the only one Confirm deploys
    $("deploy-file").addEventListener("change", async (e) => {
      const [file] = e.target.files;
      if (file) {
        $("deploy-yaml").value = await file.text();
        this.draftChanged();
      }
    });
    $("deploy-templates").addEventListener("change", async (e) => {
      for (const file of e.target.files) this.templates[file.name.replace(/\.ya?ml$/, "")] = await file.text();
      $("deploy-template-list").textContent = Object.keys(this.templates).length
        ? `Templates: ${Object.keys(this.templates).sort().join(", ")}` : "No template added.";
      this.draftChanged();
    });
    $("deploy-yaml").addEventListener("input", () => this.draftChanged());
    $("deploy-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.backtest();
    });
    $("deploy-go").addEventListener("click", () => this.deploy());
  }

  /** An edit after the comparison: the comparison no longer describes the draft. */
  draftChanged() {
    if (!this.compared) return;
    this.compared = null;
    $("deploy-confirm").hidden = true;
    $("deploy-result").prepend(message("note", "The draft changed since this comparison: backtest it again to deploy."));
  }

  async backtest() {
    const body = { yaml: $("deploy-yaml").value, path: "draft.yaml", templates: { ...this.templates } };
    const since = $("deploy-since").value.trim();
    if (since) body.since = since;
    if ($("deploy-customers").value) body.customers = Number($("deploy-customers").value);
    this.compared = null;
    $("deploy-confirm").hidden = true;
    $("deploy-outcome").textContent = "";
    $("deploy-backtest").disabled = true;
    $("deploy-result").replaceChildren(message("note", "Replaying the window through the deployed version and the draft…"));
    try {
      const report = await this.api().post("/v1/journeys/backtest", body);
      renderComparison($("deploy-result"), report);
      this.compared = body;
      $("deploy-go").hidden = false;
      $("deploy-confirm").hidden = false;
    } catch (error) {
      $("deploy-result").replaceChildren(error.missing
        ? message("unavailable", `Backtesting is not available on this server (${error.message}): a draft cannot be compared here, so it cannot be deployed from this page. Run \`orchestrator backtest\`, then \`orchestrator deploy\`.`)
        : problems(error));
    } finally {
      $("deploy-backtest").disabled = false;
    }
  }

  async deploy() {
    const body = this.compared;
    if (!body) return;
    $("deploy-go").disabled = true;
    try {
      const done = await this.api().post("/v1/journeys", { yaml: body.yaml, path: body.path, templates: body.templates });
      $("deploy-outcome").className = "";
      $("deploy-outcome").textContent = done.changed
        ? `Deployed ${done.journey} version ${done.version}.`
        : `${done.journey} version ${done.version} is already deployed with this content: nothing changed.`;
      this.compared = null;
      $("deploy-go").hidden = true;
    } catch (error) {
      $("deploy-outcome").className = "error";
      $("deploy-outcome").textContent = `Not deployed: ${error.code}: ${error.message}`;
    } finally {
      $("deploy-go").disabled = false;
    }
  }
}
