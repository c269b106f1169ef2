#!/usr/bin/env python3
"""End-to-end benchmark: the real perturbd server through the Python client, side by side
with the in-process PyTorch peer (../shared/peers/bench_peer.py) in the same run.

For each workload of the peer's table (argmax, topk, ranking, 12x12 and 30x30 grid shortest
path) it prints one JSON line per implementation with the peer's field names:

  fwd_ms      one forward request (Solve: B*M perturbed solves, averaged)
  fwd_bwd_ms  forward + backward through torch autograd (Solve + Backward, same seed)
  fy_ms       Fenchel-Young loss forward + backward (one Solve with targets)
  solves_per_s  B*M / median fwd time
plus, for perturbd, server_ms (SolveStats.seconds of the forward: the solves alone), and a
final "ratios" line: peer fwd_ms / perturbd fwd_ms etc. (peer: its fastest variant).

Usage (Debian's python with python3-torch; the perturbd package importable or installed):
  /usr/bin/python3 bench/e2e_bench.py --server build/server/perturbd --threads 2 [--quick]
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def median_ms(fn, min_reps, min_time, max_reps=200):
    fn()  # warm-up
    times, start = [], time.perf_counter()
    while len(times) < max_reps:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if len(times) >= min_reps and time.perf_counter() - start >= min_time:
            break
    return 1e3 * statistics.median(times), len(times)


def start_server(binary, threads):
    proc = subprocess.Popen(
        [binary, "--listen=127.0.0.1:0", "--metrics_listen=", f"--threads={threads}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 30
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        m = re.search(r"perturbd listening on (\S+):(\d+)", line)
        if m:
            return proc, f"{m.group(1)}:{m.group(2)}"
    proc.kill()
    raise RuntimeError("perturbd did not start")


def problem_for(w, problems):
    name = w["workload"]
    if name == "argmax":
        return problems.Argmax()
    if name == "topk":
        return problems.TopK(w["k"])
    if name == "ranking":
        return problems.Ranking()
    k = w["grid"]
    return problems.GridShortestPath(k, k, connectivity=8)


def bench_perturbd(client, w, theta, dy, y_true, min_reps, min_time):
    import perturbd.torch as ptorch
    from perturbd import problems
    problem = problem_for(w, problems)
    noise = dict(epsilon=w["sigma"], num_samples=w["M"],
                 distribution="gumbel" if w["noise"] == "gumbel" else "normal")
    th = theta.numpy()
    seed = [0]

    def fwd():
        seed[0] += 1
        return client.solve(problem, th, seed=seed[0], **noise)

    fwd_ms, reps = median_ms(fwd, min_reps, min_time)
    server_ms = 1e3 * statistics.median(fwd().stats.seconds for _ in range(5))
    layer = ptorch.PerturbedOptimizer(client, problem, **noise)
    fy_layer = ptorch.FenchelYoungLoss(client, problem, **noise)

    def fwd_bwd():
        t = theta.clone().requires_grad_()
        layer(t).backward(dy)

    def fy():
        t = theta.clone().requires_grad_()
        fy_layer(t, y_true).sum().backward()

    fb_ms, _ = median_ms(fwd_bwd, min_reps, min_time)
    fy_ms, _ = median_ms(fy, min_reps, min_time)
    solves = w["B"] * w["M"]
    return {"impl": "perturbd", "fwd_ms": round(fwd_ms, 3), "server_ms": round(server_ms, 3),
            "fwd_bwd_ms": round(fb_ms, 3), "fy_ms": round(fy_ms, 3),
            "solves_per_s": round(solves / (fwd_ms / 1e3), 1), "reps": reps}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--server", default=os.path.join(ROOT, "build", "server", "perturbd"))
    ap.add_argument("--peer-dir", default=os.path.join(ROOT, "..", "shared", "peers"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", nargs="*", default=None)
    args = ap.parse_args()

    sys.path.insert(0, os.path.abspath(args.peer_dir))
    import bench_peer  # the peer's own workload table, inputs and timing
    import perturbd

    torch.set_num_threads(args.threads)
    min_reps, min_time = (3, 0.3) if args.quick else (5, 1.0)
    proc, address = start_server(args.server, args.threads)
    try:
        client = perturbd.Client(address, timeout=120)
        for w in bench_peer.WORKLOADS:
            if args.only and w["workload"] not in args.only:
                continue
            theta, dy, y_true = bench_peer.make_inputs(w, 0)
            # The wire takes θ as [B, d]: grids go row-major, d = rows·cols.
            theta, dy, y_true = (t.reshape(w["B"], -1) for t in (theta, dy, y_true))
            base = {k: w[k] for k in w if k != "variants"}
            peer = [bench_peer.bench_workload(w, v, min_reps, min_time, 0) for v in w["variants"]]
            best = min(peer, key=lambda r: r["fwd_ms"])
            ours = bench_perturbd(client, w, theta, dy, y_true, min_reps, min_time)
            print(json.dumps({**base, **best, "threads": args.threads}), flush=True)
            print(json.dumps({**base, **ours, "threads": args.threads}), flush=True)
            ratios = {f"{k}_ratio": round(min(r[k] for r in peer) / ours[k], 2)
                      for k in ("fwd_ms", "fwd_bwd_ms", "fy_ms")}
            print(json.dumps({**base, "impl": "ratio peer/perturbd", **ratios,
                              "peer_variant": best["variant"]}), flush=True)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
