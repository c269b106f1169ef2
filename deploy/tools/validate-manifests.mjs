// Offline validation of perturbd's Kubernetes manifests (no cluster needed).
//
//   node deploy/tools/validate-manifests.mjs [--gpu LABEL] LABEL=FILE.yaml ...
//
// Each FILE is a (multi-document) YAML stream, typically `kubectl kustomize` output. Checks:
//  1. schema: every document against the Kubernetes OpenAPI schemas of npm `kubernetes-models`
//     (and `@kubernetes-models/prometheus-operator` for ServiceMonitor): types, required
//     fields, enums, int32/int64 ranges;
//  2. unknown fields: each document becomes a typed TypeScript object literal and `tsc` runs
//     its excess-property check (a misspelt or misplaced field anywhere is an error);
//  3. perturbd's own rules: native gRPC probes on the health service names, requests and
//     limits, non-root read-only containers, a grace period longer than drain + shutdown grace,
//     Services/PDB/HPA/ServiceMonitor that really select/target the Deployment, and (for the
//     inputs named with --gpu) an nvidia.com/gpu limit.
// Needs the packages of deploy/tools/package.json installed in deploy/.npm (deploy/test.sh).
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const npmDir = process.env.PERTURBD_NPM_DIR || path.resolve(here, "..", ".npm");
const require = createRequire(path.join(npmDir, "package.json"));
const YAML = require("yaml");

const SERVICE_NAME = "perturbd.v1.PerturbedOptimizer";

// apiVersion/kind → [module, export name, TypeScript interface].
function modelFor(apiVersion, kind) {
  if (apiVersion === "monitoring.coreos.com/v1") {
    return [`@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/${kind}`, kind, `I${kind}`];
  }
  const dir = apiVersion.includes("/") ? apiVersion : `v1`;
  return [`kubernetes-models/${dir}/${kind}`, kind, `I${kind}`];
}

let errors = [];
const fail = (where, msg) => errors.push(`${where}: ${msg}`);

// ------------------------------------------------------------------ inputs
const args = process.argv.slice(2);
const gpuLabels = new Set();
let selfTest = false;
const inputs = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--gpu") { gpuLabels.add(args[++i]); continue; }
  if (args[i] === "--self-test") { selfTest = true; continue; }
  const eq = args[i].indexOf("=");
  if (eq < 0) { console.error(`usage: validate-manifests.mjs [--gpu LABEL] LABEL=FILE ...`); process.exit(2); }
  inputs.push([args[i].slice(0, eq), args[i].slice(eq + 1)]);
}
if (inputs.length === 0) { console.error("no input"); process.exit(2); }

const docs = []; // {label, where, obj}
for (const [label, file] of inputs) {
  const text = fs.readFileSync(file, "utf8");
  const parsed = YAML.parseAllDocuments(text);
  parsed.forEach((d, idx) => {
    if (d.errors.length) { fail(`${label}#${idx}`, `YAML: ${d.errors.map((e) => e.message).join("; ")}`); return; }
    const obj = d.toJSON();
    if (obj == null) return;
    const where = `${label}: ${obj.kind}/${obj.metadata && obj.metadata.name}`;
    docs.push({ label, where, obj });
  });
}

function check(docs) {
  errors = [];
  // ------------------------------------------------------------------ 1. schemas
  for (const { where, obj } of docs) {
    if (!obj.apiVersion || !obj.kind) { fail(where, "apiVersion and kind are required"); continue; }
    const [mod, exp] = modelFor(obj.apiVersion, obj.kind);
    let Cls;
    try { Cls = require(mod)[exp]; } catch (e) { fail(where, `no schema for ${obj.apiVersion} ${obj.kind} (${mod})`); continue; }
    try {
      new Cls(obj).validate();
    } catch (e) {
      const details = (e.errors || []).map((x) => `${x.instancePath || "/"} ${x.message || x.keyword}`).join("; ");
      fail(where, `schema: ${details || e.message}`);
    }
  }

  // ------------------------------------------------------------------ 2. unknown fields (tsc)
  {
    const dir = fs.mkdtempSync(path.join(npmDir, "tscheck-"));
    try {
      const lines = [];
      const imports = new Map();
      const spans = []; // [firstLine, lastLine, where]
      docs.forEach(({ where, obj }, i) => {
        const [mod, , iface] = modelFor(obj.apiVersion, obj.kind);
        const alias = `T_${iface}_${obj.apiVersion.replace(/[^A-Za-z0-9]/g, "_")}`;
        imports.set(alias, `import type { ${iface} as ${alias} } from "${mod}";`);
        const body = JSON.stringify(obj, null, 2).split("\n");
        const first = lines.length + 1;
        lines.push(`export const doc${i}: ${alias} = ${body[0]}`, ...body.slice(1));
        lines[lines.length - 1] += ";";
        spans.push([first, lines.length, where]);
      });
      const header = [...imports.values()];
      const src = [...header, ...lines].join("\n") + "\n";
      fs.writeFileSync(path.join(dir, "manifests.ts"), src);
      const tsc = path.join(npmDir, "node_modules", "typescript", "bin", "tsc");
      try {
        execFileSync(process.execPath, [tsc, "--noEmit", "--strict", "--skipLibCheck", "--target", "es2020",
          "--module", "commonjs", "--moduleResolution", "node", "--pretty", "false",
          "--typeRoots", path.join(npmDir, "node_modules", "@types"),
          path.join(dir, "manifests.ts")], { cwd: npmDir, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
      } catch (e) {
        const out = `${e.stdout || ""}${e.stderr || ""}`.trim();
        for (const line of out.split("\n")) {
          const m = /manifests\.ts\((\d+),\d+\): error TS\d+: (.*)/.exec(line);
          if (!m) { if (line.trim()) fail("tsc", line); continue; }
          const n = Number(m[1]) - header.length;
          const span = spans.find(([a, b]) => n >= a && n <= b);
          const field = (lines[n - 1] || "").trim();
          fail(span ? span[2] : "tsc", `unknown or mistyped field near \`${field}\`: ${m[2]}`);
        }
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }

  // ------------------------------------------------------------------ 3. perturbd's rules
  const matches = (selector, labels) =>
    selector && Object.keys(selector).length > 0 &&
    Object.entries(selector).every(([k, v]) => labels && labels[k] === v);

  function flagValue(args, name) {
    for (const a of args || []) {
      if (a.startsWith(`--${name}=`)) return a.slice(name.length + 3);
    }
    return undefined;
  }

  for (const label of new Set(docs.map((d) => d.label))) {
    const mine = docs.filter((d) => d.label === label).map((d) => d.obj);
    const byKind = (k) => mine.filter((o) => o.kind === k);
    const deployments = byKind("Deployment");
    if (deployments.length !== 1) { fail(label, `expected one Deployment, found ${deployments.length}`); continue; }
    const dep = deployments[0];
    const where = `${label}: Deployment/${dep.metadata.name}`;
    const pod = dep.spec.template;
    const podLabels = pod.metadata.labels || {};
    if (!matches(dep.spec.selector.matchLabels, podLabels)) fail(where, "selector does not match the pod template labels");
    const c = pod.spec.containers.find((x) => x.name === "perturbd");
    if (!c) { fail(where, "no container named perturbd"); continue; }
    const ports = Object.fromEntries((c.ports || []).map((p) => [p.name, p.containerPort]));
    if (ports.grpc !== 50051 || ports.metrics !== 9464) fail(where, `ports must be grpc:50051 and metrics:9464, got ${JSON.stringify(ports)}`);
    const probe = (p, name, service) => {
      if (!p || !p.grpc) { fail(where, `${name}: a native gRPC probe is required`); return; }
      if (p.grpc.port !== ports.grpc) fail(where, `${name}: probes port ${p.grpc.port}, gRPC listens on ${ports.grpc}`);
      if ((p.grpc.service || "") !== service) fail(where, `${name}: service must be "${service}"`);
    };
    probe(c.livenessProbe, "livenessProbe", "");
    probe(c.readinessProbe, "readinessProbe", SERVICE_NAME);
    if (c.startupProbe) probe(c.startupProbe, "startupProbe", "");
    for (const kind of ["requests", "limits"]) {
      for (const r of ["cpu", "memory"]) {
        if (!c.resources || !c.resources[kind] || c.resources[kind][r] === undefined) fail(where, `resources.${kind}.${r} is required`);
      }
    }
    const psc = pod.spec.securityContext || {};
    const csc = c.securityContext || {};
    if (!(psc.runAsNonRoot || csc.runAsNonRoot)) fail(where, "runAsNonRoot is required");
    const uid = csc.runAsUser ?? psc.runAsUser;
    if (!(uid > 0)) fail(where, "a non-zero runAsUser is required");
    if (csc.readOnlyRootFilesystem !== true) fail(where, "readOnlyRootFilesystem: true is required");
    if (csc.allowPrivilegeEscalation !== false) fail(where, "allowPrivilegeEscalation: false is required");
    const drain = Number(flagValue(c.args, "drain_seconds") ?? 5);
    const grace = Number(flagValue(c.args, "shutdown_grace_seconds") ?? 30);
    const tgps = pod.spec.terminationGracePeriodSeconds ?? 30;
    if (!(tgps > drain + grace)) fail(where, `terminationGracePeriodSeconds ${tgps} must exceed drain ${drain} + shutdown grace ${grace}`);
    if (c.readinessProbe && c.readinessProbe.periodSeconds * (c.readinessProbe.failureThreshold || 3) >= drain) {
      fail(where, "readiness must notice NOT_SERVING within --drain_seconds (periodSeconds × failureThreshold < drain)");
    }
    // Worker threads must follow the CPU limit: --threads=N, or --fromenv=threads with
    // FLAGS_threads from limits.cpu (the default, 0, means the node's core count).
    const threadsEnv = (c.env || []).find((e) => e.name === "FLAGS_threads");
    const fromEnv = (c.args || []).some((a) => /^--(try)?fromenv=(.*,)?threads(,.*)?$/.test(a));
    if (fromEnv) {
      const ref = threadsEnv && threadsEnv.valueFrom && threadsEnv.valueFrom.resourceFieldRef;
      if (!(ref && ref.resource === "limits.cpu")) fail(where, "--fromenv=threads needs FLAGS_threads from resourceFieldRef limits.cpu");
    } else if (!(Number(flagValue(c.args, "threads")) > 0)) {
      fail(where, "set --threads (or --fromenv=threads with FLAGS_threads from limits.cpu)");
    }
    const listen = flagValue(c.args, "listen");
    if (listen && !listen.endsWith(`:${ports.grpc}`)) fail(where, `--listen=${listen} does not use the grpc port`);
    const metricsListen = flagValue(c.args, "metrics_listen");
    if (metricsListen && !metricsListen.endsWith(`:${ports.metrics}`)) fail(where, `--metrics_listen=${metricsListen} does not use the metrics port`);
    const ann = pod.metadata.annotations || {};
    if (ann["prometheus.io/scrape"] !== "true" || ann["prometheus.io/port"] !== String(ports.metrics)) {
      fail(where, "prometheus.io/scrape and prometheus.io/port annotations are required on the pods");
    }
    if (gpuLabels.has(label)) {
      const lim = (c.resources && c.resources.limits) || {};
      if (String(lim["nvidia.com/gpu"] || "") < "1") fail(where, "the GPU variant must limit nvidia.com/gpu");
    }

    const services = byKind("Service");
    const headless = services.filter((s) => s.spec.clusterIP === "None");
    const clusterIP = services.filter((s) => s.spec.clusterIP !== "None");
    if (headless.length !== 1 || clusterIP.length !== 1) fail(label, "expected one ClusterIP and one headless Service");
    for (const s of services) {
      const sw = `${label}: Service/${s.metadata.name}`;
      if (!matches(s.spec.selector, podLabels)) fail(sw, "selector does not select the Deployment's pods");
      for (const p of s.spec.ports || []) {
        if (typeof p.targetPort === "string" && !(p.targetPort in ports)) fail(sw, `targetPort ${p.targetPort} is not a container port`);
      }
    }
    for (const h of byKind("HorizontalPodAutoscaler")) {
      const t = h.spec.scaleTargetRef;
      if (t.kind !== "Deployment" || t.name !== dep.metadata.name) fail(`${label}: HPA/${h.metadata.name}`, `targets ${t.kind}/${t.name}, not the Deployment`);
      if (!(h.spec.minReplicas >= 1 && h.spec.maxReplicas >= h.spec.minReplicas)) fail(`${label}: HPA/${h.metadata.name}`, "bad replica bounds");
    }
    if (byKind("HorizontalPodAutoscaler").length !== 1) fail(label, "expected one HorizontalPodAutoscaler");
    for (const p of byKind("PodDisruptionBudget")) {
      if (!matches(p.spec.selector.matchLabels, podLabels)) fail(`${label}: PDB/${p.metadata.name}`, "selector does not select the pods");
    }
    if (byKind("PodDisruptionBudget").length !== 1) fail(label, "expected one PodDisruptionBudget");
    for (const m of byKind("ServiceMonitor")) {
      const mw = `${label}: ServiceMonitor/${m.metadata.name}`;
      const selected = services.filter((s) => matches(m.spec.selector.matchLabels, s.metadata.labels));
      if (selected.length !== 1) { fail(mw, `selects ${selected.length} Services (want exactly the ClusterIP one)`); continue; }
      const names = (selected[0].spec.ports || []).map((p) => p.name);
      for (const e of m.spec.endpoints) if (!names.includes(e.port)) fail(mw, `endpoint port ${e.port} is not a port of Service/${selected[0].metadata.name}`);
    }
    if (byKind("ServiceMonitor").length !== 1) fail(label, "expected one ServiceMonitor");
    const sa = pod.spec.serviceAccountName;
    if (sa && !byKind("ServiceAccount").some((s) => s.metadata.name === sa)) fail(where, `ServiceAccount ${sa} is not among the manifests`);
  }

  return errors;
}

// --self-test: a copy of the first input with one mistake of each kind must be rejected with
// each of them named (so that a check that passes everything cannot go unnoticed).
if (selfTest) {
  const label = inputs[0][0];
  const bad = structuredClone(docs.filter((d) => d.label === label)).map((d) => ({ ...d, label: "mutant" }));
  const dep = bad.find((d) => d.obj.kind === "Deployment").obj;
  const c = dep.spec.template.spec.containers[0];
  c.securityContext.readOnlyRootFilesystm = true;              // unknown field (tsc)
  c.livenessProbe.periodSeconds = "ten";                       // wrong type (schema)
  c.readinessProbe.grpc.service = "perturbd";                  // wrong health service name
  delete c.resources.limits.memory;                            // missing limit
  c.env = (c.env || []).filter((e) => e.name !== "FLAGS_threads"); // threads = node's cores
  dep.spec.template.spec.terminationGracePeriodSeconds = 20;   // shorter than the drain
  bad.find((d) => d.obj.kind === "Service").obj.spec.selector["app.kubernetes.io/component"] = "x";
  bad.find((d) => d.obj.kind === "HorizontalPodAutoscaler").obj.spec.scaleTargetRef.namee = "x";
  const expected = ["readOnlyRootFilesystm", "must be integer", "service must be", "resources.limits.memory",
    "terminationGracePeriodSeconds", "does not select", "namee", "FLAGS_threads"];
  const got = check(bad);
  const missed = expected.filter((e) => !got.some((g) => g.includes(e)));
  if (missed.length) {
    console.error(`validator self-test: mistakes not caught: ${missed.join(", ")}\n  got: ${got.join("\n  ")}`);
    process.exit(1);
  }
  console.log(`validator self-test: all ${expected.length} planted mistakes caught`);
}

check(docs);
const perLabel = new Map();
for (const d of docs) perLabel.set(d.label, [...(perLabel.get(d.label) || []), d.obj.kind]);
if (errors.length) {
  console.error(`manifests: ${errors.length} problem(s)`);
  for (const e of errors) console.error(`  ${e}`);
  process.exit(1);
}
console.log(`manifests: ${docs.length} documents valid`);
for (const [label, kinds] of perLabel) console.log(`  ${label}: ${kinds.join(", ")}`);
