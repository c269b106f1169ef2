"""perturbd.ShardedClient: one batch spread over two real servers on loopback gives results
bit-identical to one server's (per-instance seeds); seed derivation, shard bounds, DNS
resolution, failover and error reporting."""

import re
import socket
import time
import urllib.request

import numpy as np
import pytest

import perturbd
from perturbd import problems
from perturbd.sharded import derive_instance_seeds, resolve_addresses, shard_bounds

from conftest import ServerProcess

NOISE = dict(epsilon=0.5, num_samples=16)
ALL_OUTPUTS = dict(jacobian=True, samples=True, stderr=True)
METRICS = re.compile(r"perturbd metrics on (\S+):(\d+)")
MASK = (1 << 64) - 1


def _splitmix64(seed, n):
    """Reference SplitMix64 (pure Python integers)."""
    out, state = [], seed
    for _ in range(n):
        state = (state + 0x9E3779B97F4A7C15) & MASK
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        out.append(z ^ (z >> 31))
    return out


def _theta(shape, dtype, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(dtype)


def _same(a, b):
    """Bit-identical arrays: same dtype, shape and bytes (NaN-safe)."""
    assert a is not None and b is not None
    assert a.dtype == b.dtype and a.shape == b.shape
    assert a.tobytes() == b.tobytes()


class _Server(ServerProcess):
    """A ServerProcess with its metrics endpoint on a free loopback port."""

    def __init__(self, *extra):
        super().__init__("--metrics_listen=127.0.0.1:0", "--threads=2", *extra)
        self.metrics = None
        deadline = time.monotonic() + 10
        while self.metrics is None and time.monotonic() < deadline:
            for line in list(self.log):
                m = METRICS.search(line)
                if m:
                    self.metrics = "http://127.0.0.1:%s/metrics" % m.group(2)
            time.sleep(0.02)

    def solve_requests(self):
        """Sum of perturbd_requests_total{method="Solve",code="OK"} (0 without metrics)."""
        if self.metrics is None:
            return 0.0
        text = urllib.request.urlopen(self.metrics, timeout=10).read().decode()
        total = 0.0
        for line in text.splitlines():
            if (line.startswith("perturbd_requests_total{") and 'method="Solve"' in line
                    and 'code="OK"' in line):
                total += float(line.rsplit(" ", 1)[1])
        return total


@pytest.fixture(scope="module")
def two_servers():
    servers = []
    try:
        servers.append(_Server())
        servers.append(_Server())
        yield servers
    finally:
        for s in servers:
            s.stop()


@pytest.fixture(scope="module")
def single(two_servers):
    with perturbd.Client(two_servers[0].address, timeout=60) as c:
        c.wait_ready(30)
        yield c


@pytest.fixture(scope="module")
def sharded(two_servers):
    with perturbd.ShardedClient([s.address for s in two_servers], timeout=60) as sc:
        sc.wait_ready(30)
        yield sc


# ------------------------------------------------------------------------------ pure parts


def test_derive_instance_seeds_is_splitmix64():
    # SplitMix64(0) begins e220a8397b1dcdaf 6e789e6aa1b965f4 06c45d188009454f.
    assert derive_instance_seeds(0, 3).tolist() == [
        0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]
    for seed in (1, 7, 2**63 + 5, MASK):
        got = derive_instance_seeds(seed, 37)
        assert got.dtype == np.uint64
        assert got.tolist() == _splitmix64(seed, 37)
    # Prefix-stable: instance b's seed depends on (seed, b) only.
    assert derive_instance_seeds(9, 100)[:10].tolist() == derive_instance_seeds(9, 10).tolist()
    assert derive_instance_seeds(5, 0).shape == (0,)
    with pytest.raises(ValueError):
        derive_instance_seeds(-1, 3)


def test_shard_bounds():
    assert shard_bounds(10, 3) == [(0, 4), (4, 7), (7, 10)]
    assert shard_bounds(2, 5) == [(0, 1), (1, 2)]
    assert shard_bounds(1, 2) == [(0, 1)]
    assert shard_bounds(0, 2) == []
    assert shard_bounds(9, 4, min_shard_size=4) == [(0, 5), (5, 9)]
    assert shard_bounds(3, 4, min_shard_size=8) == [(0, 3)]
    for b in range(1, 40):
        for n in range(1, 7):
            bounds = shard_bounds(b, n)
            assert bounds[0][0] == 0 and bounds[-1][1] == b
            assert all(x[1] == y[0] for x, y in zip(bounds, bounds[1:]))
            sizes = [hi - lo for lo, hi in bounds]
            assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 1
            assert len(bounds) == min(b, n)


def test_resolve_addresses(monkeypatch):
    def fake_getaddrinfo(host, port, *args, **kwargs):
        assert host == "perturbd-headless.example" and port == 50051
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.3", port)),
                (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", port, 0, 0)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.2", port)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.3", port))]
    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    expected = ["127.0.0.2:50051", "127.0.0.3:50051", "[::1]:50051"]
    assert resolve_addresses("perturbd-headless.example:50051") == expected
    assert resolve_addresses("dns:///perturbd-headless.example:50051") == expected
    # IP literals and non-DNS targets are kept as they are.
    assert resolve_addresses("127.0.0.1:5") == ["127.0.0.1:5"]
    assert resolve_addresses("[::1]:5") == ["[::1]:5"]
    assert resolve_addresses("unix:/tmp/x.sock") == ["unix:/tmp/x.sock"]


def test_refresh_follows_dns(monkeypatch):
    """Pods come and go: refresh() (or refresh_interval_s) re-resolves; a failed lookup keeps
    the known servers. (Channels connect lazily: no server is needed here.)"""
    answers = [["127.0.0.2", "127.0.0.3"]]

    def fake_getaddrinfo(host, port, *args, **kwargs):
        if answers[0] is None:
            raise socket.gaierror("temporary failure")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)) for ip in answers[0]]
    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    with perturbd.ShardedClient("perturbd-headless.example:7", refresh_interval_s=0) as sc:
        assert sc.addresses == ["127.0.0.2:7", "127.0.0.3:7"]
        answers[0] = ["127.0.0.4", "127.0.0.2"]
        assert sc.refresh() == ["127.0.0.2:7", "127.0.0.4:7"]
        answers[0] = None
        time.sleep(0.01)
        assert [a for a, _ in sc._snapshot()] == ["127.0.0.2:7", "127.0.0.4:7"]
    with pytest.raises(ValueError):
        perturbd.ShardedClient([])


def test_exported():
    assert perturbd.ShardedClient is perturbd.sharded.ShardedClient
    assert "ShardedClient" in perturbd.__all__ and "derive_instance_seeds" in perturbd.__all__


# ------------------------------------------------------------------------------ two servers


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch", [1, 2, 7])
def test_solve_bit_identical_to_one_server(single, sharded, dtype, batch):
    d = 5
    theta = _theta((batch, d), dtype, seed=batch)
    targets = np.eye(d)[np.arange(batch) % d]
    seed = 1234 + batch
    got = sharded.solve(problems.TopK(2), theta, seed=seed, targets=targets,
                        request_id="sh", **NOISE, **ALL_OUTPUTS)
    want = single.solve(problems.TopK(2), theta, seed=seed,
                        instance_seeds=derive_instance_seeds(seed, batch), targets=targets,
                        **NOISE, **ALL_OUTPUTS)
    for name in ("solution", "value", "jacobian", "loss", "loss_grad", "solution_stderr",
                 "samples"):
        _same(getattr(got, name), getattr(want, name))
    assert got.request_id == "sh"
    assert got.stats.solves == want.stats.solves == batch * NOISE["num_samples"]


def test_explicit_instance_seeds_and_other_oracles(single, sharded):
    # Grid shortest path (MINIMIZE, positive costs, multiplicative noise), 5 instances.
    rows, cols = 3, 4
    theta = np.abs(_theta((5, rows * cols), np.float64, seed=3)) + 0.1
    seeds = np.array([11, 2**64 - 1, 0, 42, 7], dtype=np.uint64)
    kw = dict(epsilon=0.3, num_samples=8, seed=0, instance_seeds=seeds,
              perturbation="multiplicative")
    problem = problems.GridShortestPath(rows, cols)
    got = sharded.solve(problem, theta, jacobian=True, **kw)
    want = single.solve(problem, theta, jacobian=True, **kw)
    _same(got.solution, want.solution)
    _same(got.jacobian, want.jacobian)
    # A plain list of Python ints works too (seeds ≥ 2⁶³ included).
    _same(sharded.solve(problem, theta, jacobian=True,
                        **dict(kw, instance_seeds=[int(x) for x in seeds])).jacobian,
          want.jacobian)
    # The explicit seeds win over `seed`: a different seed changes nothing.
    again = sharded.solve(problem, theta, **dict(kw, seed=99))
    _same(again.solution, want.solution)


def test_backward_bit_identical_and_matches_forward(single, sharded):
    B, d = 6, 4
    theta = _theta((B, d), np.float64, seed=5)
    g = _theta((B, d), np.float64, seed=6)
    seed = 77
    got = sharded.backward(problems.Argmax(), theta, g, seed=seed, **NOISE)
    want = single.backward(problems.Argmax(), theta, g, seed=seed,
                           instance_seeds=derive_instance_seeds(seed, B), **NOISE)
    _same(got, want)
    # Same noise as the sharded forward pass: Jᵀg from the forward Jacobian.
    fwd = sharded.solve(problems.Argmax(), theta, seed=seed, jacobian=True, **NOISE)
    np.testing.assert_allclose(got, np.einsum("bi,bij->bj", g, fwd.jacobian),
                               rtol=1e-9, atol=1e-12)


def test_single_instance_passes_through(single, sharded):
    theta = _theta((6,), np.float32)
    got = sharded.solve(problems.Ranking(), theta, seed=3, **NOISE)
    want = single.solve(problems.Ranking(), theta, seed=3, **NOISE)
    assert got.solution.shape == (6,)
    _same(got.solution, want.solution)


def test_work_is_spread_over_both_servers(two_servers, sharded):
    if any(s.metrics is None for s in two_servers):
        pytest.skip("the servers did not report a metrics address")
    before = [s.solve_requests() for s in two_servers]
    sharded.solve(problems.Argmax(), _theta((4, 3), np.float64), seed=1, **NOISE)
    after = [s.solve_requests() for s in two_servers]
    assert [a - b for a, b in zip(after, before)] == [1.0, 1.0]


def test_shards_run_concurrently(two_servers, monkeypatch):
    """Both shards are in flight at once: every shard's call starts before any of them ends
    (each call is held 0.3 s before it is sent, so a serial client could not overlap them)."""
    spans = []
    real_solve = perturbd.Client.solve

    def slow_solve(self, *args, **kwargs):
        start = time.monotonic()
        time.sleep(0.3)
        try:
            return real_solve(self, *args, **kwargs)
        finally:
            spans.append((start, time.monotonic()))
    monkeypatch.setattr(perturbd.Client, "solve", slow_solve)
    with perturbd.ShardedClient([s.address for s in two_servers], timeout=60) as sc:
        r = sc.solve(problems.Ranking(), _theta((8, 16), np.float64), epsilon=0.5,
                     num_samples=8, seed=2)
    assert r.solution.shape == (8, 16)
    assert len(spans) == 2
    assert max(s for s, _ in spans) < min(e for _, e in spans)


def test_errors_name_the_shard(sharded):
    theta = _theta((4, 3), np.float64)
    with pytest.raises(perturbd.InvalidArgument) as info:
        sharded.solve(problems.Argmax(), theta, epsilon=-1.0, num_samples=4, seed=0)
    assert info.value.shard[0] == 0 and info.value.address in sharded.addresses
    with pytest.raises(ValueError):
        sharded.solve(problems.Argmax(), theta, instance_seeds=[1, 2], seed=0, **NOISE)


@pytest.mark.timeout(90)
def test_failover_when_a_server_is_gone(single):
    a, b = _Server(), _Server()
    try:
        theta = _theta((6, 4), np.float64, seed=8)
        want = single.solve(problems.Argmax(), theta, seed=5,
                            instance_seeds=derive_instance_seeds(5, 6), **NOISE)
        with perturbd.ShardedClient([a.address, b.address], timeout=30, retries=1,
                                    retry_initial_backoff=0.05) as sc:
            _same(sc.solve(problems.Argmax(), theta, seed=5, **NOISE).solution, want.solution)
            assert b.stop() == 0
            got = sc.solve(problems.Argmax(), theta, seed=5, **NOISE)
            _same(got.solution, want.solution)
            health = sc.health()
            assert health[a.address] == "SERVING"
            assert isinstance(health[b.address], perturbd.Unavailable)
        with perturbd.ShardedClient([a.address, b.address], timeout=30, retries=0,
                                    failover=False) as sc:
            with pytest.raises(perturbd.Unavailable) as info:
                sc.solve(problems.Argmax(), theta, seed=5, **NOISE)
            assert info.value.address == b.address and info.value.shard == (1, 3, 6)
    finally:
        a.stop()
        b.stop()


@pytest.mark.timeout(90)
def test_dns_name_resolving_to_two_servers(monkeypatch, single):
    """A headless Service in miniature: one name, two loopback addresses on the same port."""
    first = _Server()
    second = None
    try:
        port = int(first.address.rsplit(":", 1)[1])
        try:
            second = _Server("--listen=127.0.0.2:%d" % port)
        except RuntimeError:
            pytest.skip("127.0.0.2:%d is not available on this machine" % port)
        real = socket.getaddrinfo

        def fake_getaddrinfo(host, p, *args, **kwargs):
            if host == "perturbd-headless.test":
                return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.2", p)),
                        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", p))]
            return real(host, p, *args, **kwargs)
        monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)

        theta = _theta((5, 3), np.float32, seed=9)
        want = single.solve(problems.Argmax(), theta, seed=21,
                            instance_seeds=derive_instance_seeds(21, 5), **NOISE)
        with perturbd.ShardedClient("perturbd-headless.test:%d" % port, timeout=30) as sc:
            assert sc.addresses == ["127.0.0.1:%d" % port, "127.0.0.2:%d" % port]
            before = [first.solve_requests(), second.solve_requests()]
            _same(sc.solve(problems.Argmax(), theta, seed=21, **NOISE).solution, want.solution)
            after = [first.solve_requests(), second.solve_requests()]
            if first.metrics and second.metrics:
                assert [x - y for x, y in zip(after, before)] == [1.0, 1.0]
    finally:
        if second is not None:
            second.stop()
        first.stop()
