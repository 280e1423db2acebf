// Task cycle times from /v1/measure/tasks: the customer's time beside the process's (median,
// p90, distribution), and where the gap between them is spent.
import { el, format, message } from "./dom.js";

function bar(value, top, kind) {
  const span = el("span", { class: value ? `bar ${kind}` : `bar ${kind} none` });
  span.style.width = `${top ? (100 * (value ?? 0)) / top : 0}%`;
  return span;
}

function spans(task) {
  const customer = task.customer_time ?? {};
  const process = task.process_time ?? {};
  const top = Math.max(1, customer.p90_seconds ?? 0, process.p90_seconds ?? 0);
  const row = (label, kind, time) =>
    el("tr", { "data-span": kind },
      el("th", { scope: "row" }, label),
      el("td", { class: "n" }, format.seconds(time.median_seconds)),
      el("td", { class: "bar-cell" }, bar(time.median_seconds, top, kind)),
      el("td", { class: "n" }, format.seconds(time.p90_seconds)),
      el("td", { class: "bar-cell" }, bar(time.p90_seconds, top, kind)));
  return el("table", { class: "spans" },
    el("thead", {}, el("tr", {}, ["", "median", "", "p90", ""].map((h) => el("th", {}, h)))),
    el("tbody", {}, row("customer", "customer", customer), row("process", "process", process)));
}

function distribution(task) {
  const customer = new Map((task.customer_time?.histogram ?? []).map((b) => [b.le_seconds, b.count]));
  const process = new Map((task.process_time?.histogram ?? []).map((b) => [b.le_seconds, b.count]));
  const all = [...new Set([...customer.keys(), ...process.keys()])].sort((a, b) => (a ?? Infinity) - (b ?? Infinity));
  // From the first bucket anyone fell in to the last: the empty tails say nothing.
  const used = all.map((le) => Boolean(customer.get(le) || process.get(le)));
  const bounds = all.slice(used.indexOf(true), used.lastIndexOf(true) + 1);
  if (!bounds.length) return null;
  const top = Math.max(1, ...customer.values(), ...process.values());
  return el("table", { class: "histogram" },
    el("caption", {}, "distribution (customers per bucket)"),
    el("tbody", {}, bounds.map((le) => el("tr", {},
      el("th", { scope: "row" }, le === null ? "longer" : `≤ ${format.seconds(le)}`),
      el("td", { class: "bar-cell" }, bar(customer.get(le), top, "customer"), bar(process.get(le), top, "process")),
      el("td", { class: "n" }, `${format.int(customer.get(le))} / ${format.int(process.get(le))}`)))));
}

function gap(task) {
  const parts = task.gap ?? [];
  if (!parts.length) return null;
  return el("div", { class: "gap" },
    el("h5", {}, `where the gap goes: ${format.seconds(task.gap_seconds)} over all customers`),
    el("ul", {}, parts.map((g) => el("li", {},
      el("strong", {}, g.where), ` ${format.seconds(g.seconds)} (${format.pct(g.share, 0)})`))));
}

export function renderTasks(container, result) {
  const tasks = result.tasks ?? [];
  if (!tasks.length) {
    container.replaceChildren(message("empty", "No task is declared (journeys/tasks/*.yaml), or none has started yet."));
    return;
  }
  container.replaceChildren(el("div", { class: "task-grid" }, tasks.map((task) =>
    el("article", { class: "task", "data-task": task.task },
      el("h4", {}, task.task, el("small", {}, ` ${format.int(task.customers)} customers`)),
      task.description ? el("p", { class: "note" }, task.description) : null,
      task.customers ? [spans(task), distribution(task), gap(task)]
        : message("empty", "No customer has done this task yet.")))));
}
