// The journey's touch-point dependency map from /v1/journeys/{j}/dependencies: per send step
// its channels and their providers, the hosts its message links to and whether it is a single
// point of failure; each provider's circuit; the customers held now, per step and channel.
import { el, format, message } from "./dom.js";

function circuit(provider, state) {
  const open = state.state !== "closed";
  return el("li", { class: `circuit circuit-${state.state}`, "data-provider": provider, "data-state": state.state },
    el("strong", {}, provider), " ",
    el("span", { class: "circuit-state" }, state.state.replace("_", " ")),
    open && state.open_until ? el("small", {}, ` until ${state.open_until}`) : null);
}

function sendRow(send, held) {
  const here = held.filter((h) => h.step === send.step);
  const customers = here.reduce((n, h) => n + h.customers, 0);
  return el("tr", { "data-step": send.step, class: send.single_point ? "spof" : null },
    el("th", { scope: "row" }, send.step),
    el("td", {}, send.channels.map((c, i) => el("span", { class: "route" }, `${c} → ${send.providers[i]}`))),
    el("td", {}, send.template),
    el("td", {}, send.link_hosts.length ? send.link_hosts.join(", ") : "–"),
    el("td", { class: "risk" }, send.single_point ? `single point of failure: ${send.single_point}` : "has a fallback"),
    el("td", { class: "n", "data-held": customers, title: here.map((h) => `${h.channel}: ${h.messages} messages`).join(", ") },
      customers ? format.int(customers) : "–"));
}

/** Renders the map; the graph's badges are set by JourneyGraph.markRisks from the same map. */
export function renderDependencies(container, map) {
  const sends = map.sends ?? [];
  const held = map.held ?? [];
  const circuits = Object.entries(map.circuits ?? {});
  if (!sends.length) {
    container.replaceChildren(message("empty", "This journey sends nothing: it depends on no provider."));
    return;
  }
  const heldTotal = held.reduce((n, h) => n + h.customers, 0);
  container.replaceChildren(
    el("dl", { class: "facts" },
      el("dt", {}, "providers"), el("dd", {}, (map.providers ?? []).join(", ") || "none"),
      el("dt", {}, "link hosts"), el("dd", {}, (map.link_hosts ?? []).join(", ") || "none"),
      el("dt", {}, "single points"), el("dd", { class: map.single_points?.length ? "error" : null },
        map.single_points?.length ? map.single_points.join(", ") : "none: every send step has a fallback on another provider"),
      el("dt", {}, "held now"), el("dd", { id: "held-total", "data-held": heldTotal },
        heldTotal ? `${format.int(heldTotal)} customers wait in a retry schedule` : "nobody")),
    el("h4", {}, "Provider circuits"),
    circuits.length ? el("ul", { class: "circuits" }, circuits.map(([p, s]) => circuit(p, s))) : message("empty", "No provider."),
    el("table", { class: "compact dependencies" },
      el("thead", {}, el("tr", {}, ["send step", "channel → provider", "template", "links to", "fallback", "held"].map((h) => el("th", {}, h)))),
      el("tbody", {}, sends.map((s) => sendRow(s, held)))),
  );
}
