"""Scale-out: one batch spread over several perturbd servers in parallel.

    import perturbd
    from perturbd import problems

    # A list of servers, or one DNS name that resolves to several (a Kubernetes headless
    # Service: every ready pod is one A/AAAA record).
    with perturbd.ShardedClient("perturbd-headless.ml.svc.cluster.local:50051",
                                timeout=60) as sc:
        r = sc.solve(problems.TopK(3), theta, epsilon=0.5, num_samples=200, seed=7)

How a batch is split. θ [B, d] is cut into contiguous shards along the batch axis, one per
server (sizes differ by at most one, the first shards taking the extra rows; never more shards
than instances, nor shards smaller than ``min_shard_size``). Every shard is one ordinary
``Solve``/``Backward`` call with its slice of θ, targets, cotangent and **instance seeds**; the
calls run in parallel and the results are concatenated in batch order.

Why the result does not depend on the split. The server's noise for instance b is a pure
function of (instance_seeds[b], m, i) when instance seeds are given (DESIGN §2), whatever b's
position in the request, and the CPU backend is bit-deterministic. So:

* with ``instance_seeds`` given, the result is bit-identical to one server's
  ``Client.solve(..., instance_seeds=instance_seeds)`` on the whole batch;
* with only ``seed`` given, the client first derives the per-instance seeds with
  ``derive_instance_seeds(seed, B)`` and then proceeds as above: the result is bit-identical to
  one server's ``Client.solve(..., seed=seed, instance_seeds=derive_instance_seeds(seed, B))``,
  for every number of servers. (It is *not* the noise of ``Client.solve(..., seed=seed)``
  without instance seeds: there the noise of instance b is keyed by (seed, b) in a way a split
  request cannot reproduce.)

``derive_instance_seeds(seed, B)[b]`` is the (b+1)-th output of SplitMix64 started at ``seed``
(Steele, Lea, Flood 2014; the generator java.util.SplittableRandom uses)::

    z = (seed + (b + 1) · 0x9E3779B97F4A7C15) mod 2⁶⁴
    z = (z ⊕ (z >> 30)) · 0xBF58476D1CE4E5B9 mod 2⁶⁴
    z = (z ⊕ (z >> 27)) · 0x94D049BB133111EB mod 2⁶⁴
    instance_seeds[b] = z ⊕ (z >> 31)

It depends on (seed, b) only, so a backward pass with the same ``seed`` replays the forward
pass's noise, and a fresh ``seed`` per step gives fresh noise, as with a single server.

A one-instance θ [d] has no batch axis to split: it goes to one server, unchanged (``seed`` as
given, no derivation).

Failures. A shard whose server stays UNAVAILABLE after the ``Client``'s own retries (down, or
draining after SIGTERM) is re-sent to the other servers in turn (``failover=True``, default);
since the noise travels with the instance seeds, the result is the same. Any other error is
raised after every shard has finished (each call is bounded by its deadline), as the error of
the first failing shard in batch order, with ``.shard`` (index, start, stop) and ``.address``
attached.

DNS. A single address that is not an IP literal is resolved (``getaddrinfo``) into every
address it names, sorted, one channel each; ``refresh()`` resolves again (pods come and go), and
``refresh_interval_s`` makes calls do so by themselves when the last resolution is older. Pass
``resolve=False`` to keep one channel to the name (gRPC then picks one address per call: no
sharding). The result never depends on the order or number of servers.
"""

import concurrent.futures
import ipaddress
import socket
import threading
import time

import numpy as np

from . import _wire
from .client import Client, SolveResult, SolveStats
from .errors import PerturbdError, Unavailable

__all__ = ["ShardedClient", "derive_instance_seeds", "shard_bounds", "resolve_addresses"]

_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15


def derive_instance_seeds(seed, batch_size):
    """The per-instance seeds the sharded client uses for a batch of ``batch_size`` when the
    caller gives only ``seed``: the first ``batch_size`` outputs of SplitMix64(seed), as a
    uint64 numpy array (see the module docstring for the formula)."""
    seed = _wire.check_uint(seed, "seed", _wire.UINT64_MAX)
    batch_size = _wire.check_uint(batch_size, "batch_size", 1 << 62)
    with np.errstate(over="ignore"):
        b = np.arange(1, batch_size + 1, dtype=np.uint64)
        z = np.uint64(seed) + b * np.uint64(_GOLDEN)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return z


def shard_bounds(batch_size, num_servers, min_shard_size=1):
    """Contiguous [start, stop) shards of ``range(batch_size)``: at most ``num_servers`` of
    them, none smaller than ``min_shard_size`` (unless the batch itself is), sizes differing by
    at most one with the first shards taking the extra rows."""
    if batch_size <= 0:
        return []
    if num_servers < 1:
        raise ValueError("num_servers must be >= 1")
    n = max(1, min(num_servers, batch_size // max(1, int(min_shard_size))))
    base, extra = divmod(batch_size, n)
    bounds, start = [], 0
    for k in range(n):
        stop = start + base + (1 if k < extra else 0)
        bounds.append((start, stop))
        start = stop
    return bounds


def _split_host_port(address):
    """'host:port' / '[v6]:port' / 'dns:///host:port' → (host, port) or None when the target is
    not a plain host:port (unix:, ipv4:, ... or no port)."""
    target = address
    if target.startswith("dns:///"):
        target = target[len("dns:///"):]
    elif "://" in target or target.startswith(("unix:", "ipv4:", "ipv6:", "unix-abstract:")):
        return None
    if target.startswith("["):
        host, sep, rest = target[1:].partition("]")
        if not sep or not rest.startswith(":"):
            return None
        return host, rest[1:]
    host, sep, port = target.rpartition(":")
    if not sep or not host or not port.isdigit():
        return None
    return host, port


def _is_ip(host):
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def _format(ip, port):
    return "[%s]:%s" % (ip, port) if ":" in ip else "%s:%s" % (ip, port)


def resolve_addresses(address):
    """Every address a 'host:port' (or 'dns:///host:port') name resolves to, as sorted unique
    'ip:port' strings; an IP literal or a non-host:port target is returned as is."""
    hp = _split_host_port(address)
    if hp is None or _is_ip(hp[0]):
        return [address]
    host, port = hp
    infos = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
    ips = sorted({info[4][0] for info in infos},
                 key=lambda ip: (ipaddress.ip_address(ip).version, ipaddress.ip_address(ip)))
    if not ips:
        raise OSError("perturbd.ShardedClient: %r resolved to no address" % (address,))
    return [_format(ip, port) for ip in ips]


def _concat(parts):
    """Concatenates the shards' arrays along the batch axis (None stays None)."""
    if any(p is None for p in parts):
        return None
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)


def _merge_stats(stats):
    stats = [s for s in stats if s is not None]
    if not stats:
        return None
    backends = []
    for s in stats:
        if s.backend not in backends:
            backends.append(s.backend)
    return SolveStats(solves=sum(s.solves for s in stats),
                      seconds=max(s.seconds for s in stats),   # the shards ran in parallel
                      backend=",".join(backends),
                      threads=sum(s.threads for s in stats),
                      clamped_costs=sum(s.clamped_costs for s in stats))


class ShardedClient:
    """Spreads each batch over several perturbd servers in parallel (see the module docstring).

    Args:
      addresses: a list of 'host:port' targets (used as given), or one string: a DNS name that
        is resolved into all its addresses (``resolve=True``), or an IP literal.
      resolve: resolve a single name into its addresses (default True).
      refresh_interval_s: re-resolve the name before a call when the last resolution is older
        (None: only at construction and on ``refresh()``).
      min_shard_size: do not cut shards smaller than this (small batches use fewer servers).
      failover: re-send a shard whose server is UNAVAILABLE to the other servers.
      **client_kwargs: passed to every ``perturbd.Client`` (timeout, retries, tls, ...).
    """

    def __init__(self, addresses, *, resolve=True, refresh_interval_s=None, min_shard_size=1,
                 failover=True, **client_kwargs):
        if isinstance(addresses, (str, bytes)):
            addresses = [addresses.decode() if isinstance(addresses, bytes) else addresses]
            self._name = addresses[0] if resolve else None
        else:
            addresses = list(addresses)
            self._name = None
        if not addresses:
            raise ValueError("perturbd.ShardedClient: no server address")
        if min_shard_size < 1:
            raise ValueError("min_shard_size must be >= 1")
        self.min_shard_size = int(min_shard_size)
        self.failover = bool(failover)
        self.refresh_interval_s = refresh_interval_s
        self._client_kwargs = dict(client_kwargs)
        self._lock = threading.Lock()
        self._clients = {}        # address -> Client
        self._order = []          # the addresses in use, in shard order
        self._resolved_at = 0.0
        self._closed = False
        self._pool = None
        self._pool_size = 0
        self._retired = []        # (monotonic time, Client) dropped by a refresh
        if self._name is not None:
            self.refresh()
        else:
            self._set_addresses(addresses)

    # --------------------------------------------------------------- servers

    def _set_addresses(self, addresses):
        seen, order = set(), []
        for a in addresses:
            if a not in seen:
                seen.add(a)
                order.append(a)
        now = time.monotonic()
        # A dropped server's channel stays open while calls started on it may still run
        # (bounded by the client's timeout; without one, until close()).
        grace = self._client_kwargs.get("timeout")
        with self._lock:
            if self._closed:
                raise RuntimeError("perturbd.ShardedClient is closed")
            for a in list(self._clients):
                if a not in seen:
                    self._retired.append((now, self._clients.pop(a)))
            for a in order:
                if a not in self._clients:
                    self._clients[a] = Client(a, **self._client_kwargs)
            self._order = order
            self._resolved_at = now
            expired = [c for t, c in self._retired if grace is not None and now - t > grace]
            self._retired = [(t, c) for t, c in self._retired if c not in expired]
        for c in expired:
            c.close()

    def refresh(self):
        """Resolves the DNS name again (no-op for an explicit address list); returns the
        addresses in use."""
        if self._name is not None:
            self._set_addresses(resolve_addresses(self._name))
        return self.addresses

    @property
    def addresses(self):
        """The server addresses in use, in shard order."""
        with self._lock:
            return list(self._order)

    def _snapshot(self):
        if (self._name is not None and self.refresh_interval_s is not None
                and time.monotonic() - self._resolved_at > self.refresh_interval_s):
            try:
                self.refresh()
            except OSError:  # DNS hiccup: keep the servers we know, try again next call
                with self._lock:
                    self._resolved_at = time.monotonic()
        with self._lock:
            if self._closed:
                raise RuntimeError("perturbd.ShardedClient is closed")
            return [(a, self._clients[a]) for a in self._order]

    def _executor(self, n):
        with self._lock:
            if self._pool is None or self._pool_size < n:
                self._pool_size = max(n, 4)
                old, self._pool = self._pool, concurrent.futures.ThreadPoolExecutor(
                    max_workers=self._pool_size, thread_name_prefix="perturbd-sharded")
                if old is not None:
                    old.shutdown(wait=False)
            return self._pool

    # --------------------------------------------------------------- lifecycle

    def close(self):
        """Closes every channel and the worker threads."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            clients, self._clients = list(self._clients.values()), {}
            clients += [c for _, c in self._retired]
            self._retired = []
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        for c in clients:
            c.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return "perturbd.ShardedClient(%r)" % (self.addresses,)

    def wait_ready(self, timeout=10.0):
        """Waits until every server's channel is connected (DeadlineExceeded otherwise)."""
        deadline = time.monotonic() + timeout
        for _, c in self._snapshot():
            c.wait_ready(max(0.0, deadline - time.monotonic()))

    def health(self, service="", *, timeout=None):
        """{address: health status} of every server (see ``Client.health``); an unreachable
        server maps to the PerturbdError it raised."""
        out = {}
        for a, c in self._snapshot():
            try:
                out[a] = c.health(service, timeout=timeout)
            except PerturbdError as e:
                out[a] = e
        return out

    def list_solvers(self, *, timeout=None):
        """{address: ServerInfo} of every server."""
        return {a: c.list_solvers(timeout=timeout) for a, c in self._snapshot()}

    # --------------------------------------------------------------- sharding

    def _plan(self, theta, seed, instance_seeds):
        theta = _wire.as_float_array(theta, "theta")
        if theta.ndim != 2:
            return theta, None, None
        batch = theta.shape[0]
        if instance_seeds is None:
            seeds = derive_instance_seeds(seed, batch)
        else:
            # Element by element: np.asarray([1, 2**63]) would be float64 and lose bits.
            values = (instance_seeds.tolist() if isinstance(instance_seeds, np.ndarray)
                      else list(instance_seeds))
            if len(values) != batch or any(isinstance(v, (list, tuple)) for v in values):
                raise ValueError("instance_seeds: expected %d seeds (θ's batch), got %r"
                                 % (batch, np.shape(instance_seeds)))
            seeds = np.array([_wire.check_uint(v, "instance_seeds", _wire.UINT64_MAX)
                              for v in values], dtype=np.uint64)
        return theta, seeds, batch

    def _run(self, call, theta, seed, instance_seeds, per_shard, timeout):
        """call(client, bounds, shard_theta, shard_seeds, extra) for every shard, in parallel;
        returns the per-shard results in batch order."""
        servers = self._snapshot()
        theta, seeds, batch = self._plan(theta, seed, instance_seeds)
        if batch is None:  # one instance [d] (or a shape the server will reject): one call
            return None, call(servers[0][1], None, theta, None, per_shard(None), timeout,
                              seed_only=True)
        bounds = shard_bounds(batch, len(servers), self.min_shard_size)
        if not bounds:  # B = 0: let the server reject it as usual
            return None, call(servers[0][1], None, theta, None, per_shard(None), timeout,
                              seed_only=True)
        deadline = None if timeout is None and self._client_kwargs.get("timeout") is None \
            else time.monotonic() + (timeout if timeout is not None
                                     else self._client_kwargs["timeout"])
        pool = self._executor(len(bounds))
        futures = []
        for k, (lo, hi) in enumerate(bounds):
            futures.append(pool.submit(self._shard, k, servers, call, (lo, hi), theta[lo:hi],
                                       seeds[lo:hi], per_shard((lo, hi)), deadline))
        concurrent.futures.wait(futures)
        for f in futures:
            err = f.exception()
            if err is not None:
                raise err
        return bounds, [f.result() for f in futures]

    def _shard(self, k, servers, call, bounds, theta, seeds, extra, deadline):
        order = [servers[k % len(servers)]]
        if self.failover:
            order += [s for i, s in enumerate(servers) if i != k % len(servers)]
        last = None
        for address, client in order:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if last is not None and remaining == 0.0:
                break
            try:
                return call(client, bounds, theta, seeds, extra, remaining)
            except Unavailable as e:
                last = e
                last.shard, last.address = (k,) + tuple(bounds), address
                continue
            except PerturbdError as e:
                e.shard, e.address = (k,) + tuple(bounds), address
                raise
        raise last

    # --------------------------------------------------------------- public RPCs

    def solve(self, problem, theta, *, epsilon, num_samples, seed, instance_seeds=None,
              targets=None, timeout=None, request_id=None, **kwargs):
        """``Client.solve`` over every server: same arguments and result (a SolveResult whose
        arrays are the shards' concatenated in batch order; ``stats`` sums solves, threads and
        clamped costs, takes the slowest shard's seconds and lists the backends).

        The noise of instance b comes from ``instance_seeds[b]`` when given, else from
        ``derive_instance_seeds(seed, B)[b]``: the result is bit-identical to a single server's
        call with those instance seeds, whatever the number of servers.
        """
        common = dict(epsilon=epsilon, num_samples=num_samples, **kwargs)
        targets_arr = None
        if targets is not None:
            targets_arr = np.asarray(targets)

        def per_shard(bounds):
            if targets_arr is None:
                return None
            return targets_arr if bounds is None else targets_arr[bounds[0]:bounds[1]]

        def call(client, bounds, th, seeds, tg, remaining, seed_only=False):
            rid = request_id
            if rid and bounds is not None:
                rid = "%s/%d-%d" % (request_id, bounds[0], bounds[1])
            if seed_only:
                return client.solve(problem, th, seed=seed, instance_seeds=instance_seeds,
                                    targets=tg, timeout=remaining, request_id=rid, **common)
            return client.solve(problem, th, seed=seed, instance_seeds=seeds, targets=tg,
                                timeout=remaining, request_id=rid, **common)

        bounds, results = self._run(call, theta, seed, instance_seeds, per_shard, timeout)
        if bounds is None:
            return results
        fields = ("solution", "value", "jacobian", "loss", "loss_grad", "solution_stderr",
                  "samples")
        merged = {f: _concat([getattr(r, f) for r in results]) for f in fields}
        return SolveResult(stats=_merge_stats([r.stats for r in results]),
                           request_id=request_id or "", **merged)

    def backward(self, problem, theta, cotangent, *, epsilon, num_samples, seed,
                 instance_seeds=None, timeout=None, request_id=None, **kwargs):
        """``Client.backward`` over every server: grad_theta of θ's shape, the shards'
        concatenated. Pass the forward call's ``seed``/``instance_seeds`` to replay its noise
        (the derivation from ``seed`` is the same in both)."""
        common = dict(epsilon=epsilon, num_samples=num_samples, **kwargs)
        cot = np.asarray(cotangent)

        def per_shard(bounds):
            return cot if bounds is None else cot[bounds[0]:bounds[1]]

        def call(client, bounds, th, seeds, g, remaining, seed_only=False):
            rid = request_id
            if rid and bounds is not None:
                rid = "%s/%d-%d" % (request_id, bounds[0], bounds[1])
            return client.backward(problem, th, g, seed=seed,
                                   instance_seeds=instance_seeds if seed_only else seeds,
                                   timeout=remaining, request_id=rid, **common)

        bounds, results = self._run(call, theta, seed, instance_seeds, per_shard, timeout)
        if bounds is None:
            return results
        return _concat(results)
