#!/usr/bin/env python3
"""Black-box checks of running perturbd servers (containers, pods) for deploy/test.sh.

Uses the repository's Python client from the source tree (copied with freshly generated stubs
into --work, so the checkout is left alone). Run with Debian's /usr/bin/python3.

  smoke.py check   --address A [--reference R] [--metrics URL --metrics-out FILE]
      health (liveness "" and readiness "perturbd.v1.PerturbedOptimizer") SERVING,
      ListSolvers, a real Solve (Jacobian, FY loss, stderr, samples) and Backward; with
      --reference every result must be bit-identical to that server's (e.g. the host's binary);
      with --metrics the scrape must count the Solve, and is saved for check-observability.mjs.
  smoke.py sharded --addresses A,B[,...] --reference R [--metrics URL,URL]
      perturbd.ShardedClient over A,B,... gives bit-identical results to one server R with the
      derived per-instance seeds; with --metrics every server must have served a shard.
  smoke.py drain   --address A [--timeout S]
      right after SIGTERM: readiness turns NOT_SERVING while liveness stays SERVING and a Solve
      is still answered (the drain window).
Every wait is bounded; exit status 0 = all checks passed.
"""

import argparse
import os
import pathlib
import shutil
import sys
import time
import urllib.request

REPO = pathlib.Path(__file__).resolve().parents[2]


def load_client(work):
    """Imports perturbd from a copy of client/python/perturbd with generated stubs."""
    dest = pathlib.Path(work) / "py"
    if not (dest / "perturbd" / "_proto" / "perturbd_pb2_grpc.py").is_file():
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(REPO / "client" / "python" / "perturbd", dest / "perturbd",
                        ignore=shutil.ignore_patterns("_proto", "__pycache__"))
        sys.path.insert(0, str(REPO / "client" / "python"))
        import build_stubs
        sys.path.pop(0)
        build_stubs.generate(out_dir=str(dest / "perturbd" / "_proto"),
                             proto_root=str(REPO / "proto"))
    sys.path.insert(0, str(dest))
    import perturbd
    return perturbd


def scrape(url, timeout=10):
    return urllib.request.urlopen(url, timeout=timeout).read().decode()


def solve_requests(text):
    total = 0.0
    for line in text.splitlines():
        if (line.startswith("perturbd_requests_total{") and 'method="Solve"' in line
                and 'code="OK"' in line):
            total += float(line.rsplit(" ", 1)[1])
    return total


def same(a, b, what):
    if a is None or b is None or a.dtype != b.dtype or a.shape != b.shape \
            or a.tobytes() != b.tobytes():
        raise AssertionError("%s differs from the reference" % what)


def wait_serving(client, service, timeout):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = client.health(service, timeout=2)
            if last == "SERVING":
                return
        except Exception as e:  # noqa: BLE001 - anything but SERVING means "not yet"
            last = e
        time.sleep(0.2)
    raise AssertionError("health(%r) not SERVING after %g s (last: %r)" % (service, timeout, last))


def requests(perturbd, np):
    """The Solve/Backward requests every check sends (small; several oracles and dtypes)."""
    from perturbd import problems
    rng = np.random.default_rng(2024)
    theta = rng.normal(size=(5, 6))
    grid = np.abs(rng.normal(size=(3, 12))) + 0.1
    return [
        ("top_k float64", "solve", problems.TopK(2), theta,
         dict(epsilon=0.5, num_samples=32, seed=7, jacobian=True, stderr=True, samples=True,
              targets=np.eye(6)[[0, 1, 2, 3, 4]])),
        ("argmax float32 gumbel", "solve", problems.Argmax(), theta.astype(np.float32),
         dict(epsilon=1.0, num_samples=64, seed=3, distribution="gumbel", jacobian=True)),
        ("grid path multiplicative", "solve", problems.GridShortestPath(3, 4), grid,
         dict(epsilon=0.3, num_samples=16, seed=11, perturbation="multiplicative")),
        ("ranking backward", "backward", problems.Ranking(), theta,
         dict(cotangent=rng.normal(size=(5, 6)), epsilon=0.5, num_samples=32, seed=5)),
    ]


FIELDS = ("solution", "value", "jacobian", "loss", "loss_grad", "solution_stderr", "samples")


def run(client, kind, problem, theta, kw, **extra):
    kw = dict(kw, **extra)
    if kind == "solve":
        return client.solve(problem, theta, **kw)
    cot = kw.pop("cotangent")
    return client.backward(problem, theta, cot, **kw)


def compare(kind, got, want, name):
    if kind == "solve":
        for f in FIELDS:
            if getattr(want, f) is not None:
                same(getattr(got, f), getattr(want, f), "%s: %s" % (name, f))
    else:
        same(got, want, "%s: grad_theta" % name)


def cmd_check(args, perturbd, np):
    with perturbd.Client(args.address, timeout=60) as c:
        wait_serving(c, "", args.timeout)
        wait_serving(c, perturbd.SERVICE_NAME, args.timeout)
        info = c.list_solvers()
        print("  %s: version %s, %d threads, oracles %s" % (
            args.address, info.version, info.threads, ",".join(s.name for s in info.solvers)))
        results = [(name, kind, run(c, kind, p, th, kw)) for name, kind, p, th, kw
                   in requests(perturbd, np)]
        r = results[0][2]
        assert r.solution.shape == (5, 6) and r.jacobian.shape == (5, 6, 6)
        assert np.allclose(r.solution.sum(axis=1), 2.0), "top_k(2) rows must sum to 2"
        print("  Solve/Backward answered (top_k y_eps[0] = %s)" % np.round(r.solution[0], 3))
    if args.reference:
        with perturbd.Client(args.reference, timeout=60) as ref:
            wait_serving(ref, perturbd.SERVICE_NAME, args.timeout)
            for (name, kind, p, th, kw), (_, _, got) in zip(requests(perturbd, np), results):
                compare(kind, got, run(ref, kind, p, th, kw), name)
        print("  bit-identical to the reference server %s (%d requests)"
              % (args.reference, len(results)))
    if args.metrics:
        text = scrape(args.metrics)
        n = solve_requests(text)
        assert n >= 3, "perturbd_requests_total{method=Solve,code=OK} = %g, expected >= 3" % n
        for family in ("perturbd_request_duration_seconds", "perturbd_inflight_requests",
                       "perturbd_solves_total", "perturbd_build_info"):
            assert ("# TYPE %s " % family) in text, "%s missing from /metrics" % family
        if args.metrics_out:
            pathlib.Path(args.metrics_out).write_text(text)
        print("  /metrics counts %g OK Solve requests" % n)


def cmd_sharded(args, perturbd, np):
    from perturbd.sharded import derive_instance_seeds
    addresses = args.addresses.split(",")
    urls = args.metrics.split(",") if args.metrics else []
    before = [solve_requests(scrape(u)) for u in urls]
    with perturbd.ShardedClient(addresses, timeout=60) as sc, \
            perturbd.Client(args.reference, timeout=60) as ref:
        sc.wait_ready(args.timeout)
        wait_serving(ref, perturbd.SERVICE_NAME, args.timeout)
        n = 0
        for name, kind, p, th, kw in requests(perturbd, np):
            got = run(sc, kind, p, th, kw)
            seeds = derive_instance_seeds(kw["seed"], th.shape[0])
            compare(kind, got, run(ref, kind, p, th, kw, instance_seeds=seeds), name)
            n += 1
    after = [solve_requests(scrape(u)) for u in urls]
    for u, b, a in zip(urls, before, after):
        assert a > b, "%s served no shard" % u
    print("  ShardedClient over %s == one server %s, bit for bit (%d requests)"
          % (",".join(addresses), args.reference, n))


def cmd_drain(args, perturbd, np):
    from perturbd import problems
    with perturbd.Client(args.address, timeout=10, retries=0) as c:
        deadline = time.monotonic() + args.timeout
        while c.health(perturbd.SERVICE_NAME, timeout=2) == "SERVING":
            assert time.monotonic() < deadline, "readiness still SERVING after SIGTERM"
            time.sleep(0.05)
        assert c.health(perturbd.SERVICE_NAME, timeout=2) == "NOT_SERVING"
        assert c.health("", timeout=2) == "SERVING", "liveness must stay SERVING while draining"
        r = c.solve(problems.Argmax(), np.ones((2, 3)), epsilon=0.5, num_samples=8, seed=1)
        assert r.solution.shape == (2, 3)
    print("  draining: readiness NOT_SERVING, liveness SERVING, requests still served")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=("check", "sharded", "drain"))
    ap.add_argument("--address")
    ap.add_argument("--addresses")
    ap.add_argument("--reference")
    ap.add_argument("--metrics")
    ap.add_argument("--metrics-out")
    ap.add_argument("--timeout", type=float, default=30.0)
    ap.add_argument("--work", default=os.environ.get("PERTURBD_SMOKE_WORK", "/tmp"))
    args = ap.parse_args()
    perturbd = load_client(args.work)
    import numpy as np
    {"check": cmd_check, "sharded": cmd_sharded, "drain": cmd_drain}[args.mode](
        args, perturbd, np)


if __name__ == "__main__":
    main()
