#!/usr/bin/env bash
# Deployment tests: Dockerfile lint, Kubernetes manifests (offline schema + unknown-field +
# policy checks, kustomize rendering), Prometheus config/rules (promtool, rule unit tests),
# Grafana dashboard, and the real image: podman build from a locally made Debian base, run on
# loopback, gRPC health, real Solve/Backward bit-identical to the host's binary, /metrics,
# HEALTHCHECK, SIGTERM drain and exit 0; two containers behind perturbd.ShardedClient
# bit-identical to one server; the Deployment's pod under `podman kube play`.
#
#   deploy/test.sh                   everything (root; ~10-15 min on 2 cores, first run longer
#                                    by the one-time Debian base image, ~4 min)
#   PERTURBD_DEPLOY_SKIP_IMAGE=1     static checks only (lint, manifests, rules; ~1 min)
#   PERTURBD_DEPLOY_KEEP_CACHE=1     keep podman's layer cache (faster reruns while developing)
#   PERTURBD_DEPLOY_IMAGE=ID|NAME    test an image built before instead of building (kept)
#
# Needs the host's build (scripts/build.sh): ${BUILD_DIR:-build}/server/perturbd and
# client/cpp/perturbd-cli (override with PERTURBD_BIN / PERTURBD_CLI), Debian's python3 with
# grpcio and numpy (scripts/install-deps.sh). Installs its own tools
# (deploy/scripts/install-tools.sh). Only loopback addresses are used; every wait is bounded;
# the containers, pods and images it made are removed by id at the end (the Debian base image
# is a per-machine cache and stays; see deploy/scripts/base-image.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
START=$SECONDS
BUILD_DIR=${BUILD_DIR:-build}
PERTURBD_BIN=${PERTURBD_BIN:-$BUILD_DIR/server/perturbd}
PERTURBD_CLI=${PERTURBD_CLI:-$BUILD_DIR/client/cpp/perturbd-cli}
PY=/usr/bin/python3
export CONTAINERS_CONF=$REPO/deploy/containers.conf
export PERTURBD_NPM_DIR=$REPO/deploy/.npm
TOOLS=$REPO/deploy/.tools/bin
WORK=$(mktemp -d /tmp/perturbd-deploy-test.XXXXXX)
export PERTURBD_SMOKE_WORK=$WORK
TAG=localhost/perturbd:deploy-test-$$

passed=0
failed=0
declare -a CONTAINERS=() PODS=() IMAGES=() PIDS=()

step_start=$SECONDS
step() { step_start=$SECONDS; echo; echo "== $* (t=$((SECONDS - START))s)"; }
ok() { passed=$((passed + 1)); echo "ok   $* ($((SECONDS - step_start))s)"; }
die() {
  failed=$((failed + 1))
  # podman's own complaints, without the noise of HEALTHCHECK timers it cannot make (no systemd)
  if [ -s "$WORK/podman.err" ]; then
    { grep -v "systemd connection" "$WORK/podman.err" || true; } | tail -n 20 >&2
  fi
  echo "FAIL $*" >&2
  exit 1
}

cleanup() {
  local rc=$?
  set +e
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${PIDS[@]}"; do timeout 15 tail --pid="$pid" -f /dev/null 2>/dev/null || kill -KILL "$pid" 2>/dev/null; done
  for id in "${PODS[@]}"; do timeout 60 podman pod rm -f -t 5 "$id" >/dev/null 2>&1; done
  for id in "${CONTAINERS[@]}"; do timeout 60 podman rm -f -t 5 "$id" >/dev/null 2>&1; done
  for id in "${IMAGES[@]}"; do timeout 60 podman rmi -f "$id" >/dev/null 2>&1; done
  rm -rf "$WORK"
  echo
  echo "deploy/test.sh: $((SECONDS - START)) s"
  if [ "$rc" = 0 ]; then
    echo "deploy: $passed passed, 0 failed"
  else
    echo "deploy: $passed passed, $((failed > 0 ? failed : 1)) failed"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Free loopback TCP ports (bound and released; nothing else on this machine uses them then).
free_ports() {
  "$PY" - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

# Waits (bounded) until `perturbd-cli health` says SERVING for the service $2 at $1.
wait_health() {
  local address=$1 service=${2:-} deadline=$((SECONDS + ${3:-60}))
  until "$PERTURBD_CLI" health --address="$address" --service="$service" --timeout=2 >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.5
  done
}

# A host perturbd on a loopback port: the reference the containers must match bit for bit.
start_host_server() {
  local port=$1 log=$WORK/host-$1.log
  "$PERTURBD_BIN" --listen="127.0.0.1:$port" --metrics_listen= --threads=1 \
    --drain_seconds=0 --shutdown_grace_seconds=5 >"$log" 2>&1 &
  PIDS+=($!)
  wait_health "127.0.0.1:$port" "" 30 || { cat "$log"; die "host perturbd did not start"; }
}

# ------------------------------------------------------------------------------ tools
step "tools"
deploy/scripts/install-tools.sh
ok "tools installed"

# ------------------------------------------------------------------------------ static checks
step "Dockerfile lint"
"$PERTURBD_NPM_DIR/node_modules/.bin/dockerfilelint" Dockerfile >"$WORK/dockerfilelint.txt" 2>&1 \
  || { cat "$WORK/dockerfilelint.txt"; die "dockerfilelint"; }
"$PERTURBD_NPM_DIR/node_modules/.bin/dockerfile-utils" lint Dockerfile >"$WORK/dfutils.txt" 2>&1 \
  || { cat "$WORK/dfutils.txt"; die "dockerfile-utils lint"; }
[ ! -s "$WORK/dfutils.txt" ] || { cat "$WORK/dfutils.txt"; die "dockerfile-utils lint reported problems"; }
for pattern in 'build\*' '\*\*/build' '.git'; do
  grep -qx "$pattern" .dockerignore || die ".dockerignore must exclude $pattern"
done
ok "Dockerfile: dockerfilelint and dockerfile-utils clean; .dockerignore excludes build dirs"

step "Kubernetes manifests"
K8S=deploy/kubernetes
for f in "$K8S"/base/*.yaml; do
  name=$(basename "$f")
  [ "$name" = kustomization.yaml ] && continue
  grep -q -- "- $name\$" "$K8S/base/kustomization.yaml" || die "$f is not listed in base/kustomization.yaml"
done
kubectls=("$TOOLS/kubectl")
# A newer kubectl on the machine (kustomize v4/v5) must render the same manifests too.
if command -v kubectl >/dev/null && [ "$(command -v kubectl)" != "$TOOLS/kubectl" ]; then
  kubectls+=("$(command -v kubectl)")
fi
inputs=()
for k in "${kubectls[@]}"; do
  v=$("$k" version --client -o json 2>/dev/null | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["clientVersion"]["gitVersion"])')
  for dir in "$K8S" "$K8S/overlays/gpu"; do
    label=$([ "$dir" = "$K8S" ] && echo cpu || echo gpu)@kubectl-$v
    "$k" kustomize "$dir" >"$WORK/$label.yaml" 2>"$WORK/$label.err" \
      || { cat "$WORK/$label.err"; die "kubectl $v kustomize $dir"; }
    inputs+=("$label=$WORK/$label.yaml")
  done
  cmp -s <("$k" kustomize "$K8S" 2>/dev/null) <("$k" kustomize "$K8S/base" 2>/dev/null) \
    || die "deploy/kubernetes and deploy/kubernetes/base render differently"
done
gpu_args=()
for i in "${inputs[@]}"; do case $i in gpu@*) gpu_args+=(--gpu "${i%%=*}");; esac; done
node deploy/tools/validate-manifests.mjs --self-test "${gpu_args[@]}" "${inputs[@]}"
ok "manifests render with ${#kubectls[@]} kubectl(s) and pass schema, unknown-field and policy checks"

step "Prometheus and Grafana"
# Debian's promtool is built without Kubernetes discovery: check a copy whose
# kubernetes_sd_configs are replaced by a static target (the relabelling is still checked).
node --input-type=module -e '
  import { createRequire } from "node:module";
  const require = createRequire(process.env.PERTURBD_NPM_DIR + "/package.json");
  const YAML = require("yaml"); const fs = require("fs");
  const [src, dst] = process.argv.slice(1);
  const cfg = YAML.parse(fs.readFileSync(src, "utf8"));
  for (const job of cfg.scrape_configs) if (job.kubernetes_sd_configs) {
    delete job.kubernetes_sd_configs; job.static_configs = [{ targets: ["127.0.0.1:9464"] }];
  }
  fs.writeFileSync(dst, YAML.stringify(cfg));
' deploy/prometheus/prometheus.yml "$WORK/prometheus.yml"
cp deploy/prometheus/alerts.yml "$WORK/alerts.yml"
"$TOOLS/promtool" check config "$WORK/prometheus.yml" >/dev/null || die "promtool check config"
"$TOOLS/promtool" check rules deploy/prometheus/alerts.yml >/dev/null || die "promtool check rules"
(cd deploy/prometheus && "$TOOLS/promtool" test rules alerts_test.yml) >"$WORK/ruletest.txt" 2>&1 \
  || { cat "$WORK/ruletest.txt"; die "promtool test rules"; }
node deploy/tools/check-observability.mjs --dashboard deploy/grafana/perturbd-dashboard.json \
  --rules deploy/prometheus/alerts.yml --source server/metrics.cc --promql-out "$WORK/dashboard-rules.yml"
"$TOOLS/promtool" check rules "$WORK/dashboard-rules.yml" >/dev/null || die "dashboard PromQL does not parse"
ok "scrape config, alert rules (+ unit tests), dashboard queries"

if [ -n "${PERTURBD_DEPLOY_SKIP_IMAGE:-}" ]; then
  echo "PERTURBD_DEPLOY_SKIP_IMAGE set: no image build, no containers"
  exit 0
fi

# ------------------------------------------------------------------------------ image
for f in "$PERTURBD_BIN" "$PERTURBD_CLI"; do
  [ -x "$f" ] || die "$f not found: build the project first (scripts/build.sh) or set PERTURBD_BIN/PERTURBD_CLI"
done

step "Debian base image"
timeout 900 deploy/scripts/base-image.sh || die "base image"
ok "docker.io/library/debian:bookworm-slim available locally"

step "image build (podman, server + CLI only, -j2)"
if [ -n "${PERTURBD_DEPLOY_IMAGE:-}" ]; then
  # An image built before (by id or name): tested as is and left in place.
  IMAGE=$(podman image inspect --format '{{.Id}}' "$PERTURBD_DEPLOY_IMAGE") || die "no image $PERTURBD_DEPLOY_IMAGE"
  echo "PERTURBD_DEPLOY_IMAGE: testing ${IMAGE:0:12} without building"
else
  layers=false
  [ -n "${PERTURBD_DEPLOY_KEEP_CACHE:-}" ] && layers=true
  revision=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
  if ! timeout 1200 podman build --pull=never --format docker --layers="$layers" --force-rm \
        --build-arg JOBS=2 --build-arg REVISION="$revision" \
        --iidfile "$WORK/iid" -t "$TAG" . >"$WORK/build.log" 2>&1; then
    tail -n 60 "$WORK/build.log"
    die "podman build"
  fi
  IMAGE=$(cat "$WORK/iid")
  IMAGES+=("$IMAGE")
  grep -m1 "^runtime packages:" "$WORK/build.log" || true
fi
size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
short=${IMAGE#sha256:}
echo "image ${short:0:12}: $((size / 1024 / 1024)) MiB"
"$PY" - "$IMAGE" <<'EOF' || die "image configuration"
import json, subprocess, sys
cfg = json.loads(subprocess.check_output(["podman", "image", "inspect", sys.argv[1]]))[0]
c = cfg["Config"]
assert c.get("User") == "10001:10001", c.get("User")
assert c.get("Entrypoint") == ["perturbd"], c.get("Entrypoint")
assert set(c.get("ExposedPorts", {})) >= {"50051/tcp", "9464/tcp"}, c.get("ExposedPorts")
labels = c.get("Labels") or {}
for k in ("org.opencontainers.image.title", "org.opencontainers.image.version"):
    assert labels.get(k), "label %s missing" % k
hc = cfg.get("HealthCheck") or cfg.get("Healthcheck") or c.get("Healthcheck") or {}
assert "perturbd-cli" in " ".join(hc.get("Test") or []), "no HEALTHCHECK in %s" % sorted(cfg)
EOF
[ "$size" -lt $((250 * 1024 * 1024)) ] || die "image is $((size / 1024 / 1024)) MiB (> 250 MiB)"
ok "image built: non-root 10001, ENTRYPOINT perturbd, ports, labels, HEALTHCHECK"

# ------------------------------------------------------------------------------ one container
step "container on loopback: health, Solve, /metrics, HEALTHCHECK, SIGTERM"
read -r GRPC METRICS REF <<<"$(free_ports 3)"
start_host_server "$REF"
cid=$(timeout 60 podman run -d --read-only --cap-drop=ALL --security-opt=no-new-privileges \
        -p "127.0.0.1:$GRPC:50051" -p "127.0.0.1:$METRICS:9464" "$IMAGE" \
        --threads=2 --drain_seconds=4 --shutdown_grace_seconds=10 2>>"$WORK/podman.err") || die "podman run"
CONTAINERS+=("$cid")
wait_health "127.0.0.1:$GRPC" "" 60 || { podman logs "$cid"; die "container not live"; }
wait_health "127.0.0.1:$GRPC" perturbd.v1.PerturbedOptimizer 30 || die "container not ready"
"$PERTURBD_CLI" solve --address="127.0.0.1:$GRPC" --oracle=top_k --k=2 --theta="0.1,2,-1,3;1,0,0,0" \
  --epsilon=0.5 --samples=200 --seed=7 >"$WORK/cli-solve.json" || die "perturbd-cli solve"
"$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print("perturbd-cli solve:", json.dumps(d.get("solution")))' \
  "$WORK/cli-solve.json" || die "perturbd-cli solve printed no JSON"
"$PY" deploy/tools/smoke.py check --address "127.0.0.1:$GRPC" --reference "127.0.0.1:$REF" \
  --metrics "http://127.0.0.1:$METRICS/metrics" --metrics-out "$WORK/metrics.txt" || die "smoke check"
node deploy/tools/check-observability.mjs --dashboard deploy/grafana/perturbd-dashboard.json \
  --rules deploy/prometheus/alerts.yml --source server/metrics.cc --metrics "$WORK/metrics.txt" \
  || die "dashboard/alerts vs the live /metrics"
timeout 60 podman healthcheck run "$cid" >/dev/null 2>>"$WORK/podman.err" || die "image HEALTHCHECK (perturbd-cli health) failed"
echo "HEALTHCHECK: healthy"
timeout 30 podman kill --signal TERM "$cid" >/dev/null 2>>"$WORK/podman.err"
"$PY" deploy/tools/smoke.py drain --address "127.0.0.1:$GRPC" --timeout 3 || die "drain"
code=$(timeout 60 podman wait "$cid" 2>>"$WORK/podman.err") || die "container did not exit within 60 s of SIGTERM"
podman logs "$cid" >"$WORK/container.log" 2>&1
[ "$code" = 0 ] || { cat "$WORK/container.log"; die "exit code $code after SIGTERM (want 0)"; }
grep -q "draining" "$WORK/container.log" || die "no drain in the container's log"
ok "container served, matched the host binary bit for bit, drained and exited 0"

# ------------------------------------------------------------------------------ two replicas
step "two containers behind perturbd.ShardedClient"
read -r G1 M1 G2 M2 <<<"$(free_ports 4)"
for pair in "$G1:$M1" "$G2:$M2"; do
  id=$(timeout 60 podman run -d --read-only --cap-drop=ALL -p "127.0.0.1:${pair%%:*}:50051" \
         -p "127.0.0.1:${pair##*:}:9464" "$IMAGE" --threads=1 --drain_seconds=0 \
         2>>"$WORK/podman.err") || die "podman run"
  CONTAINERS+=("$id")
done
for g in "$G1" "$G2"; do wait_health "127.0.0.1:$g" perturbd.v1.PerturbedOptimizer 60 || die "replica $g not ready"; done
"$PY" deploy/tools/smoke.py sharded --addresses "127.0.0.1:$G1,127.0.0.1:$G2" --reference "127.0.0.1:$REF" \
  --metrics "http://127.0.0.1:$M1/metrics,http://127.0.0.1:$M2/metrics" || die "sharded"
for id in "${CONTAINERS[@]:1:2}"; do
  timeout 60 podman stop -t 30 "$id" >/dev/null 2>>"$WORK/podman.err"
  code=$(podman inspect --format '{{.State.ExitCode}}' "$id")
  [ "$code" = 0 ] || die "replica exited with $code after podman stop"
done
ok "a batch split over two replicas is bit-identical to one server; both stopped with exit 0"

# ------------------------------------------------------------------------------ kube play
step "the Deployment's pod under podman kube play"
read -r PG PM <<<"$(free_ports 2)"
cpu_render=$(printf '%s\n' "${inputs[@]}" | grep -m1 '^cpu@' | cut -d= -f2-)
node deploy/tools/kube-play.mjs "$cpu_render" "$IMAGE" "perturbd-play-$$" "$PG" "$PM" >"$WORK/play.yaml"
pause_before=$(podman images -q --filter reference='localhost/podman-pause' | sort | tr '\n' ' ')
timeout 120 podman kube play "$WORK/play.yaml" >"$WORK/play.out" 2>&1 || { cat "$WORK/play.out"; die "podman kube play"; }
pod=$(podman pod ps -q --filter "name=perturbd-play-$$")
[ -n "$pod" ] || { cat "$WORK/play.out"; die "no pod from kube play"; }
PODS+=("$pod")
# The pause image podman builds for pods (from catatonit) is removed too if this run made it.
for id in $(podman images -q --filter reference='localhost/podman-pause'); do
  case " $pause_before " in *" $id "*) ;; *) IMAGES+=("$id") ;; esac
done
ctr=$(podman ps -a -q --filter "pod=$pod" --filter "name=-perturbd\$")
wait_health "127.0.0.1:$PG" perturbd.v1.PerturbedOptimizer 60 || { podman logs "$ctr"; die "pod not ready"; }
"$PY" deploy/tools/smoke.py check --address "127.0.0.1:$PG" --reference "127.0.0.1:$REF" \
  --metrics "http://127.0.0.1:$PM/metrics" || die "smoke check of the pod"
"$PY" - "$ctr" <<'EOF' || die "pod settings"
import json, subprocess, sys
c = json.loads(subprocess.check_output(["podman", "inspect", sys.argv[1]]))[0]
hc, cfg = c["HostConfig"], c["Config"]
assert hc.get("ReadonlyRootfs") is True, "read-only root filesystem"
assert cfg.get("User", "").split(":")[0] == "10001", cfg.get("User")
env = dict(e.split("=", 1) for e in cfg.get("Env") or [])
assert env.get("FLAGS_threads") == "2", env.get("FLAGS_threads")   # limits.cpu
print("pod: read-only rootfs, user %s, FLAGS_threads=%s, args %s"
      % (cfg.get("User"), env["FLAGS_threads"], " ".join(c.get("Args") or [])))
EOF
podman logs "$ctr" >"$WORK/pod.log" 2>&1
grep -q "2 worker threads" "$WORK/pod.log" || { cat "$WORK/pod.log"; die "the pod's server does not run 2 threads"; }
timeout 90 podman pod stop -t 60 "$pod" >/dev/null 2>>"$WORK/podman.err" || die "pod stop"
code=$(podman inspect --format '{{.State.ExitCode}}' "$ctr")
[ "$code" = 0 ] || { podman logs "$ctr"; die "pod container exited with $code"; }
ok "Deployment pod: probes' services SERVING, Solve bit-identical, read-only, non-root, threads = CPU limit, exit 0"
