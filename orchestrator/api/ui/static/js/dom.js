// Small DOM builders and number formats shared by the panels.

const SVG_NS = "http://www.w3.org/2000/svg";

function fill(node, attrs, children, setAttribute) {
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else setAttribute(name, value === true ? "" : String(value));
  }
  node.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

/** An HTML element: el("td", {class: "n"}, "42"). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  return fill(node, attrs, children, (n, v) => node.setAttribute(n, v));
}

/** An SVG element, same call shape as el(). */
export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  return fill(node, attrs, children, (n, v) => node.setAttribute(n, v));
}

/** A panel's message instead of its content: empty state, not available, or error. */
export function message(kind, text) {
  return el("p", { class: kind }, text);
}

/** The panel's content for a failed request: "not available" for a route the server lacks. */
export function failure(error, what) {
  if (error.missing) {
    return message("unavailable", `${what}: not available on this server (${error.message})`);
  }
  return message("error", `${what}: ${error.code}: ${error.message}`);
}

export const format = {
  int: (n) => (n ?? 0).toLocaleString("en"),
  pct: (share, digits = 1) =>
    share === null || share === undefined ? "–" : `${(share * 100).toFixed(digits)}%`,
  signedPct: (share) =>
    share === null || share === undefined ? "–" : `${share >= 0 ? "+" : ""}${(share * 100).toFixed(1)}`,
  seconds(total) {
    if (total === null || total === undefined) return "–";
    const units = [["d", 86400], ["h", 3600], ["m", 60], ["s", 1]];
    const parts = [];
    let rest = Math.round(total);
    for (const [unit, size] of units) {
      if (rest >= size && parts.length < 2) {
        parts.push(`${Math.floor(rest / size)}${unit}`);
        rest %= size;
      }
    }
    return parts.join(" ") || "0s";
  },
};

/** "a: 1, b: 2" from {a: 1, b: 2}, or "none". */
export function counts(map) {
  const entries = Object.entries(map ?? {}).filter(([, n]) => n);
  return entries.length ? entries.map(([k, n]) => `${k} ${format.int(n)}`).join(" · ") : "none";
}
