"""Plumbing shared by the perturbd training examples (not an example itself).

* ``add_common_arguments(parser)``: ``--address`` (a running server) or ``--spawn PATH`` (start
  that binary on 127.0.0.1 with a free port for the run), ``--seed``, ``--full``,
  ``--torch-threads``, ``--rpc-timeout``, ``--quiet``.
* ``service(args)``: a context manager yielding a connected ``perturbd.Client`` (and stopping a
  spawned server at the end).
* ``emit(metrics)``: the final JSON line every example prints.
* Exact (noise-free) oracles used for the ground-truth labels and for evaluation:
  ``dag_shortest_path`` and ``grid_shortest_path``. They are independent of the service on
  purpose, so the reported metrics also check what the service trained against.

The examples import ``perturbd`` (the installed client package); run from a source checkout
without installing it, they fall back to ``client/python`` (after generating its stubs).
"""

import argparse
import contextlib
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import threading
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[2]


def import_perturbd():
    """Imports the perturbd client package, falling back to the source tree."""
    try:
        import perturbd  # noqa: F401
    except ImportError:  # not installed: use this checkout's client/python
        src = REPO / "client" / "python"
        if not src.is_dir():
            raise
        sys.path.insert(0, str(src))
        import build_stubs  # noqa: E402
        build_stubs.generate()
    import perturbd
    return perturbd


perturbd = import_perturbd()


# ----------------------------------------------------------------------------- arguments


def add_common_arguments(parser):
    """Adds the service and run-control flags shared by every example."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--address", metavar="HOST:PORT",
                       help="address of a running perturbd server")
    where.add_argument("--spawn", metavar="PATH",
                       help="start this perturbd binary on 127.0.0.1 (free port) for the run "
                            "and stop it at the end")
    parser.add_argument("--server-threads", type=int, default=0,
                        help="--threads for a spawned server (0: one per core)")
    parser.add_argument("--rpc-timeout", type=float, default=120.0,
                        help="deadline of each RPC in seconds")
    parser.add_argument("--seed", type=int, default=0, help="seed of data, init and noise")
    parser.add_argument("--full", action="store_true",
                        help="the published experiment size (slow); defaults run in < 2 min")
    parser.add_argument("--torch-threads", type=int, default=1,
                        help="torch intra-op threads (the server needs the other cores)")
    parser.add_argument("--quiet", action="store_true", help="only print the final JSON line")
    return parser


def parse(parser, argv):
    args = parser.parse_args(argv)
    if not args.address and not args.spawn:
        env = os.environ.get("PERTURBD_ADDRESS")
        if env:
            args.address = env
        else:
            parser.error("give --address HOST:PORT of a running server or --spawn PATH "
                         "to a perturbd binary (or set PERTURBD_ADDRESS)")
    return args


class Logger:
    def __init__(self, quiet):
        self.quiet = quiet
        self.t0 = time.monotonic()

    def __call__(self, fmt, *a):
        if not self.quiet:
            print("[%6.1fs] %s" % (time.monotonic() - self.t0, fmt % a if a else fmt),
                  flush=True)


def seed_everything(seed, torch_threads=1):
    """Seeds numpy's legacy RNG and torch; returns a torch.Generator for the noise seeds."""
    import torch
    if torch_threads:
        torch.set_num_threads(int(torch_threads))
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    # The perturbd layers draw one noise seed per call from this generator, so the noise
    # stream does not depend on how much randomness model init or shuffling consumed.
    return torch.Generator().manual_seed(seed + 7919)


def emit(metrics):
    """Prints the final JSON line (floats rounded for readability) and returns ``metrics``."""
    def clean(v):
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        if isinstance(v, (np.floating, float)):
            return round(float(v), 6)
        if isinstance(v, np.integer):
            return int(v)
        return v
    print(json.dumps(clean(metrics), sort_keys=True), flush=True)
    return metrics


# ----------------------------------------------------------------------------- the server

_LISTENING = re.compile(r"perturbd listening on (\S+):(\d+)")


class SpawnedServer:
    """A perturbd server on 127.0.0.1 with a free port, for the duration of one run."""

    def __init__(self, binary, threads=0, startup_timeout=60.0):
        binary = os.path.abspath(binary)
        if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
            raise FileNotFoundError("--spawn: %s is not an executable file" % binary)
        args = [binary, "--listen=127.0.0.1:0", "--metrics_listen=", "--drain_seconds=0",
                "--shutdown_grace_seconds=5"]
        if threads:
            args.append("--threads=%d" % threads)
        self.log = []
        self.address = None
        self._ready = threading.Event()
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, text=True, bufsize=1)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + startup_timeout
        while not self._ready.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("perturbd did not start:\n" + "".join(self.log))

    def _read(self):
        for line in self.proc.stdout:
            self.log.append(line)
            m = _LISTENING.search(line)
            if m and not self._ready.is_set():
                self.address = "127.0.0.1:%s" % m.group(2)
                self._ready.set()

    def stop(self, timeout=20.0):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._reader.join(5)
        return self.proc.returncode


@contextlib.contextmanager
def service(args):
    """Yields a connected ``perturbd.Client`` for ``args.address`` or a spawned server."""
    server = None
    address = args.address
    if args.spawn:
        server = SpawnedServer(args.spawn, threads=args.server_threads)
        address = server.address
    client = perturbd.Client(address, timeout=args.rpc_timeout)
    try:
        client.wait_ready(30)
        yield client
    finally:
        client.close()
        if server is not None:
            server.stop()


# ----------------------------------------------------------------------------- exact oracles


def dag_shortest_path(costs, num_nodes, edges, source, target):
    """Exact shortest paths on a DAG whose edges go from lower to higher node ids.

    costs: [B, E]; edges: list of (u, v) with u < v. Returns (y [B, E] 0/1, value [B]).
    Ties go to the lowest edge index (the service's rule).
    """
    costs = np.asarray(costs, np.float64)
    B, E = costs.shape
    incoming = [[] for _ in range(num_nodes)]
    for e, (u, v) in enumerate(edges):
        if not u < v:
            raise ValueError("dag_shortest_path expects edges u -> v with u < v")
        incoming[v].append(e)
    dist = np.full((B, num_nodes), np.inf)
    dist[:, source] = 0.0
    pred = np.full((B, num_nodes), -1, np.int64)
    src = np.array([u for u, _ in edges])
    for v in range(source + 1, num_nodes):
        ins = incoming[v]
        if not ins:
            continue
        cand = dist[:, src[ins]] + costs[:, ins]          # [B, |in(v)|]
        k = np.argmin(cand, axis=1)                         # first minimum: lowest edge index
        dist[:, v] = cand[np.arange(B), k]
        pred[:, v] = np.asarray(ins)[k]
    y = np.zeros((B, E), np.float32)
    for b in range(B):
        v = target
        while v != source:
            e = pred[b, v]
            if e < 0:
                raise ValueError("target unreachable")
            y[b, e] = 1.0
            v = edges[e][0]
    return y, dist[:, target]


def _grid_edges(rows, cols, connectivity):
    steps = [(-1, 0), (1, 0), (0, -1), (0, 1)]
    if connectivity == 8:
        steps += [(-1, -1), (-1, 1), (1, -1), (1, 1)]
    us, vs = [], []
    for r in range(rows):
        for c in range(cols):
            for dr, dc in steps:
                rr, cc = r + dr, c + dc
                if 0 <= rr < rows and 0 <= cc < cols:
                    us.append(r * cols + c)
                    vs.append(rr * cols + cc)
    return np.array(us), np.array(vs)


def grid_shortest_path(costs, rows, cols, connectivity=8):
    """Exact vertex-cost shortest paths, top-left -> bottom-right, both ends counted.

    costs: [B, rows*cols], non-negative. Returns (y [B, rows*cols] 0/1, value [B]).
    """
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import dijkstra
    costs = np.asarray(costs, np.float64)
    if (costs < 0).any():
        raise ValueError("grid_shortest_path needs non-negative costs")
    n = rows * cols
    us, vs = _grid_edges(rows, cols, connectivity)
    y = np.zeros(costs.shape, np.float32)
    value = np.empty(costs.shape[0])
    for b, c in enumerate(costs):
        # Entering cell v costs c[v]; a zero cost would vanish from a sparse matrix, so add a
        # tiny floor there (it cannot change which path is optimal by more than 1e-12 per cell).
        w = np.maximum(c[vs], 1e-12)
        g = csr_matrix((w, (us, vs)), shape=(n, n))
        dist, pred = dijkstra(g, directed=True, indices=0, return_predecessors=True)
        v = n - 1
        y[b, v] = 1.0
        while v != 0:
            v = pred[v]
            y[b, v] = 1.0
        value[b] = c[0] + dist[n - 1]
    return y, value


def make_parser(description):
    return add_common_arguments(argparse.ArgumentParser(
        description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter))
