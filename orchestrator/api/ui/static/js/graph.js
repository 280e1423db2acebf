// A journey's step graph: laid out once by dagre (per journey version), drawn as SVG, and
// its counts updated in place on every refresh so nothing moves or flickers.
import dagre from "../vendor/dagre/dagre.esm.js";
import { format, svg } from "./dom.js";

const ENTRY = "@entry";
const END = "@end";
const NODE_WIDTH = 190;
const NODE_HEIGHT = 62;
// How many characters fit: an edge label, a node's name (bold) and its detail line.
const EDGE_CHARS = 30;
const NAME_CHARS = 22;
const DETAIL_CHARS = 27;

function short(text, most = EDGE_CHARS) {
  return text.length > most ? `${text.slice(0, most - 1)}…` : text;
}

const BADGE_WIDTH = 72;
const BADGE_HEIGHT = 17;

/** A pill on a node's border: hidden until its class "shown" is set. */
function badge(kind, x, y) {
  const title = svg("title", {}, "");
  const text = svg("text", { x: x + BADGE_WIDTH / 2, y: y + 12.5, "text-anchor": "middle" }, "");
  const group = svg("g", { class: `badge badge-${kind}` },
    title, svg("rect", { x, y, width: BADGE_WIDTH, height: BADGE_HEIGHT, rx: BADGE_HEIGHT / 2 }), text);
  return { group, text, title };
}

function edgeKey(from, to) {
  return `${from}\u2192${to}`;
}

export class JourneyGraph {
  constructor(container) {
    this.container = container;
    this.key = null;
    this.nodes = new Map(); // id -> {group, entered, waiting, spof, held} elements
    this.edges = new Map(); // "from→to" -> {group, count}
  }

  /** Lays out and draws `graph` (from /v1/journeys/{j}/graph) unless it is already drawn. */
  draw(graph) {
    const key = `${graph.journey}@${graph.version}`;
    if (key === this.key) return;
    this.key = key;
    this.nodes.clear();
    this.edges.clear();

    const layout = new dagre.graphlib.Graph();
    layout.setGraph({ rankdir: "TB", nodesep: 36, ranksep: 46, edgesep: 16, marginx: 12, marginy: 12 });
    layout.setDefaultEdgeLabel(() => ({}));
    for (const node of graph.nodes) {
      layout.setNode(node.id, { width: NODE_WIDTH, height: NODE_HEIGHT });
    }
    for (const edge of graph.edges) {
      // Room for the label and a count of a few digits beside it.
      const text = edge.label ? short(edge.label) : "";
      layout.setEdge(edge.from, edge.to, { width: text.length * 6 + 40, height: 18, labelpos: "c" });
    }
    dagre.layout(layout);

    const { width, height } = layout.graph();
    const canvas = svg("svg", {
      viewBox: `0 0 ${Math.ceil(width)} ${Math.ceil(height)}`,
      width: Math.ceil(width),
      role: "img",
      "aria-label": `steps of ${graph.journey} version ${graph.version}`,
    });
    canvas.append(
      svg("defs", {},
        svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 9, markerHeight: 9, markerUnits: "userSpaceOnUse", orient: "auto" },
          svg("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrow-head" }))),
    );
    for (const edge of graph.edges) canvas.append(this.#edge(edge, layout.edge(edge.from, edge.to)));
    for (const node of graph.nodes) canvas.append(this.#node(node, layout.node(node.id)));
    this.container.replaceChildren(canvas);
  }

  #edge(edge, placed) {
    const points = placed.points.map((p) => `${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(" L ");
    // The label and the count share one line at dagre's label position, clear of the path.
    const count = svg("tspan", { class: "edge-count" }, "");
    const group = svg("g", { class: "edge", "data-from": edge.from, "data-to": edge.to, "data-count": "" },
      svg("path", { d: `M ${points}`, "marker-end": "url(#arrow)" }),
      svg("text", { class: "edge-text", x: placed.x, y: placed.y + 4, "text-anchor": "middle" },
        edge.label ? svg("title", {}, edge.label) : null,
        edge.label ? svg("tspan", { class: "edge-label" }, `${short(edge.label)} `) : null,
        count),
    );
    this.edges.set(edgeKey(edge.from, edge.to), { group, count, from: edge.from, to: edge.to });
    return group;
  }

  #node(node, placed) {
    const left = placed.x - NODE_WIDTH / 2;
    const top = placed.y - NODE_HEIGHT / 2;
    const entered = svg("tspan", { class: "count", "data-count": "entered" }, "0");
    const waiting = svg("tspan", { class: "count", "data-count": "waiting" }, "0");
    // What the node counts: a step its entries and who waits there; the trigger the entries,
    // the end the completions; a holdout has no figure of its own (see Experiments).
    const counts = {
      trigger: [svg("tspan", {}, "entered "), entered],
      end: [svg("tspan", {}, "completed "), entered],
      holdout: [],
    }[node.kind] ?? [svg("tspan", {}, "entered "), entered, svg("tspan", {}, " · waiting "), waiting];
    // Badges on the node's border, shown by markRisks(): a single point of failure on the
    // top edge, the customers held there on the bottom edge.
    const spof = badge("spof", left + NODE_WIDTH - BADGE_WIDTH - 6, top - BADGE_HEIGHT / 2);
    const held = badge("held", left + NODE_WIDTH - BADGE_WIDTH - 6, top + NODE_HEIGHT - BADGE_HEIGHT / 2);
    spof.text.textContent = "no fallback";
    const group = svg("g", { class: `node kind-${node.kind}`, "data-node": node.id },
      svg("title", {}, `${node.label}: ${node.detail}`),
      svg("rect", { x: left, y: top, width: NODE_WIDTH, height: NODE_HEIGHT, rx: 8 }),
      svg("text", { class: "node-label", x: left + 10, y: top + 18 }, short(node.label, NAME_CHARS)),
      svg("text", { class: "node-detail", x: left + 10, y: top + 34 }, short(node.detail, DETAIL_CHARS)),
      svg("text", { class: "node-counts", x: left + 10, y: top + 52 }, counts),
      spof.group,
      held.group,
    );
    this.nodes.set(node.id, { group, entered, waiting, spof, held });
    return group;
  }

  /**
   * Marks the steps of /v1/journeys/{j}/dependencies on the drawing: a badge on each single
   * point of failure, and on each step where customers are held now, how many. `map` null
   * (the map could not be read) clears the badges.
   */
  markRisks(map) {
    const single = new Map((map?.sends ?? []).filter((s) => s.single_point).map((s) => [s.step, s.single_point]));
    const held = new Map();
    for (const h of map?.held ?? []) {
      const sum = held.get(h.step) ?? { customers: 0, lines: [] };
      sum.customers += h.customers;
      sum.lines.push(`${format.int(h.customers)} on ${h.channel} (${h.provider})`);
      held.set(h.step, sum);
    }
    for (const [id, view] of this.nodes) {
      const reason = single.get(id);
      view.spof.group.classList.toggle("shown", Boolean(reason));
      view.spof.title.textContent = reason ? `single point of failure: ${reason}` : "";
      view.group.dataset.spof = reason ? "true" : "false";
      const here = held.get(id);
      view.held.group.classList.toggle("shown", Boolean(here?.customers));
      view.held.text.textContent = here ? `held ${format.int(here.customers)}` : "";
      view.held.title.textContent = here ? `customers held now: ${here.lines.join(", ")}` : "";
      view.group.dataset.held = here?.customers ?? 0;
    }
  }

  /**
   * Puts the figures of /v1/measure/journeys/{j} on the drawing. Returns the measured
   * edges the drawing has no place for (steps of another version), for a note.
   */
  update(figures) {
    const steps = new Map((figures.steps ?? []).map((step) => [step.step, step]));
    for (const [id, view] of this.nodes) {
      let entered = steps.get(id)?.entered ?? 0;
      if (id === ENTRY) entered = figures.entered ?? 0;
      if (id === END) entered = figures.exits?.completed ?? 0;
      view.entered.textContent = format.int(entered);
      view.waiting.textContent = format.int(steps.get(id)?.waiting ?? 0);
      view.group.dataset.entered = entered;
      view.group.dataset.waiting = steps.get(id)?.waiting ?? 0;
    }
    const measured = new Map((figures.edges ?? []).map((e) => [edgeKey(e.from, e.to), e.count]));
    const top = Math.max(1, figures.entered ?? 0, ...measured.values());
    for (const [key, view] of this.edges) {
      // Every entry takes the edge from the trigger; edges into the end or a holdout are
      // not step-to-step moves, so they have no measured count (the end node has its own).
      const structural = view.from === ENTRY || view.to.startsWith("@");
      const count = view.from === ENTRY ? figures.entered ?? 0 : measured.get(key) ?? 0;
      view.count.textContent = count ? format.int(count) : "";
      view.group.dataset.count = count;
      // Busier edges are drawn thicker, on a log scale so a rare path stays visible.
      view.group.style.setProperty("--weight", count ? 1.5 + 4 * (Math.log1p(count) / Math.log1p(top)) : 1.2);
      view.group.classList.toggle("idle", !count && !structural);
    }
    return [...measured.keys()].filter((key) => !this.edges.has(key));
  }
}
