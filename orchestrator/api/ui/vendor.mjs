// Copies the dashboard's third-party browser files from node_modules into static/vendor/,
// each package with its LICENSE, and writes static/vendor/MANIFEST.txt (what, which version,
// which licence). Run by `make vendor-ui` after `npm ci`; the copies are committed, so
// neither the server nor CI needs npm. Files are copied unchanged.
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const modules = join(here, "node_modules");
const vendor = join(here, "static", "vendor");

// package -> its directory under static/vendor/ and [file in the package, name there]. A
// package bundled into another's file (graphlib inside dagre's) brings only its licence.
const PACKAGES = {
  "@dagrejs/dagre": { dir: "dagre", files: [["dist/dagre.esm.js", "dagre.esm.js"]] },
  "@dagrejs/graphlib": { dir: "dagre/graphlib", files: [] },
  uplot: {
    dir: "uplot",
    files: [
      ["dist/uPlot.esm.js", "uPlot.esm.js"],
      ["dist/uPlot.min.css", "uPlot.min.css"],
    ],
  },
};

rmSync(vendor, { recursive: true, force: true });
const manifest = ["# Vendored by orchestrator/api/ui/vendor.mjs from npm; do not edit by hand.", ""];
for (const [name, { dir, files }] of Object.entries(PACKAGES)) {
  const source = join(modules, name);
  const meta = JSON.parse(readFileSync(join(source, "package.json"), "utf8"));
  const target = join(vendor, dir);
  mkdirSync(target, { recursive: true });
  for (const [from, to] of [...files, ["LICENSE", "LICENSE"]]) {
    copyFileSync(join(source, from), join(target, to));
  }
  manifest.push(`${name}@${meta.version}  licence ${meta.license}  -> vendor/${dir}/`);
}
writeFileSync(join(vendor, "MANIFEST.txt"), manifest.join("\n") + "\n");
console.log(manifest.slice(2).join("\n"));
