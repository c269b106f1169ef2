// Checks that the Grafana dashboard and the Prometheus alert rules use the server's own metric
// names, and that the dashboard is well formed.
//
//   node deploy/tools/check-observability.mjs --dashboard deploy/grafana/perturbd-dashboard.json
//        --rules deploy/prometheus/alerts.yml --source server/metrics.cc
//        [--metrics scraped.txt] [--promql-out dashboard-rules.yml]
//
// Metric names are taken from server/metrics.cc (`.Name("...")`) and, with --metrics, from a
// live /metrics scrape (the names there win: that is what Prometheus will see). Every
// perturbd_* name in a dashboard query or a rule (histogram _bucket/_sum/_count included) must
// exist. --promql-out writes every dashboard query as a recording rule, with Grafana's
// variables substituted, for `promtool check rules` to parse (PromQL syntax).
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const npmDir = process.env.PERTURBD_NPM_DIR || path.resolve(here, "..", ".npm");
const require = createRequire(path.join(npmDir, "package.json"));
const YAML = require("yaml");

const opts = {};
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) opts[argv[i].replace(/^--/, "")] = argv[i + 1];
for (const k of ["dashboard", "rules", "source"]) {
  if (!opts[k]) { console.error(`missing --${k}`); process.exit(2); }
}

const errors = [];
const fail = (m) => { if (!errors.includes(m)) errors.push(m); };

// ---------------------------------------------------------------- known metric names
const families = new Map(); // name → type
const src = fs.readFileSync(opts.source, "utf8");
for (const m of src.matchAll(/Build(Counter|Gauge|Histogram|Summary)\(\)\s*\.Name\("([a-z_:][a-z0-9_:]*)"\)/g)) {
  families.set(m[2], m[1].toLowerCase());
}
if (families.size === 0) fail(`no metric names found in ${opts.source}`);
if (opts.metrics) {
  const live = new Map();
  for (const m of fs.readFileSync(opts.metrics, "utf8").matchAll(/^# TYPE (\S+) (\S+)$/gm)) live.set(m[1], m[2]);
  if (live.size === 0) fail(`no # TYPE lines in ${opts.metrics}`);
  for (const name of families.keys()) if (!live.has(name)) fail(`${name} is in ${opts.source} but not in the live /metrics`);
  families.clear();
  for (const [k, v] of live) families.set(k, v);
}
function known(name) {
  if (families.has(name)) return true;
  const m = /^(.*)_(bucket|sum|count)$/.exec(name);
  return !!(m && families.has(m[1]) && ["histogram", "summary", "?"].includes(families.get(m[1])));
}
const used = new Set();
function checkExpr(where, expr) {
  for (const m of expr.matchAll(/\b(perturbd_[a-z0-9_]+)\b/g)) {
    used.add(m[1].replace(/_(bucket|sum|count)$/, ""));
    if (!known(m[1])) fail(`${where}: unknown metric ${m[1]}`);
  }
}

// ---------------------------------------------------------------- dashboard
const dash = JSON.parse(fs.readFileSync(opts.dashboard, "utf8"));
if (!dash.uid || !dash.title || !Array.isArray(dash.panels)) fail("dashboard: uid, title and panels are required");
const ids = new Set();
const cells = new Set();
const exprs = [];
const walk = (panels) => {
  for (const p of panels) {
    const where = `dashboard panel ${p.id} "${p.title}"`;
    if (ids.has(p.id)) fail(`${where}: duplicate id`);
    ids.add(p.id);
    const g = p.gridPos || {};
    if (!(g.w > 0 && g.h > 0 && g.x >= 0 && g.y >= 0 && g.x + g.w <= 24)) fail(`${where}: bad gridPos ${JSON.stringify(g)}`);
    for (let x = g.x; x < g.x + g.w; x++) for (let y = g.y; y < g.y + g.h; y++) {
      if (cells.has(`${x},${y}`)) { fail(`${where}: overlaps another panel at ${x},${y}`); x = 99; break; }
      cells.add(`${x},${y}`);
    }
    if (p.type !== "row") {
      if (!p.targets || p.targets.length === 0) fail(`${where}: no query`);
      for (const t of p.targets || []) {
        if (!t.expr) { fail(`${where}: target ${t.refId} has no expr`); continue; }
        checkExpr(where, t.expr);
        exprs.push([where, t.expr]);
      }
    }
    if (p.panels) walk(p.panels);
  }
};
walk(dash.panels || []);
for (const v of (dash.templating && dash.templating.list) || []) {
  const q = typeof v.query === "string" ? v.query : v.query && v.query.query;
  if (v.type === "query" && q) checkExpr(`dashboard variable ${v.name}`, q);
}

// ---------------------------------------------------------------- alert rules
const rules = YAML.parse(fs.readFileSync(opts.rules, "utf8"));
for (const g of rules.groups || []) {
  for (const r of g.rules || []) checkExpr(`rule ${r.alert || r.record}`, String(r.expr));
}
for (const name of families.keys()) {
  if (name.startsWith("perturbd_") && !used.has(name)) fail(`${name} is exported but neither dashboard nor alerts use it`);
}

// ---------------------------------------------------------------- PromQL for promtool
if (opts["promql-out"]) {
  const subst = (e) => e.replace(/\$__rate_interval|\$__interval|\$__range/g, "5m")
    .replace(/\$\{?(job|instance)\}?/g, ".*");
  const doc = { groups: [{ name: "dashboard", rules: exprs.map(([, e], i) => ({ record: `dashboard:query_${i}`, expr: subst(e) })) }] };
  fs.writeFileSync(opts["promql-out"], YAML.stringify(doc));
}

if (errors.length) {
  console.error(`observability: ${errors.length} problem(s)`);
  for (const e of errors) console.error(`  ${e}`);
  process.exit(1);
}
console.log(`observability: ${exprs.length} dashboard queries and ${(rules.groups || []).reduce((n, g) => n + g.rules.length, 0)} rules use only known metrics (${[...families.keys()].filter((n) => n.startsWith("perturbd_")).length} perturbd_* families${opts.metrics ? ", from the live /metrics" : ""})`);
