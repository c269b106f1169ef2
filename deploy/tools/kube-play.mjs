// Turns the rendered Deployment (kubectl kustomize output) into what `podman kube play` runs on
// this machine: the same pod spec (args, env, probes, resources, securityContext, volumes),
// with the test image, one replica, a distinct name, and the ports published on loopback only
// (hostIP 127.0.0.1 + hostPort; podman ignores Services).
//
//   node deploy/tools/kube-play.mjs RENDERED.yaml IMAGE NAME GRPC_PORT METRICS_PORT > play.yaml
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const npmDir = process.env.PERTURBD_NPM_DIR || path.resolve(here, "..", ".npm");
const require = createRequire(path.join(npmDir, "package.json"));
const YAML = require("yaml");

const [file, image, name, grpcPort, metricsPort] = process.argv.slice(2);
if (!metricsPort) {
  console.error("usage: kube-play.mjs RENDERED.yaml IMAGE NAME GRPC_PORT METRICS_PORT");
  process.exit(2);
}
const docs = YAML.parseAllDocuments(fs.readFileSync(file, "utf8")).map((d) => d.toJSON()).filter(Boolean);
const dep = docs.find((d) => d.kind === "Deployment");
if (!dep) { console.error(`${file}: no Deployment`); process.exit(1); }

dep.metadata = { ...dep.metadata, name };
dep.spec.replicas = 1;
const spec = dep.spec.template.spec;
delete spec.serviceAccountName;          // no API server here
delete spec.topologySpreadConstraints;   // one node
const hostPorts = { grpc: Number(grpcPort), metrics: Number(metricsPort) };
for (const c of spec.containers) {
  if (c.name === "perturbd") c.image = image;
  for (const p of c.ports || []) {
    if (!(p.name in hostPorts)) continue;
    p.hostPort = hostPorts[p.name];
    p.hostIP = "127.0.0.1";
  }
}
process.stdout.write(YAML.stringify(dep));
