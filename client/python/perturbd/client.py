"""The perturbd gRPC client: numpy in, numpy out.

    import numpy as np, perturbd
    from perturbd import problems

    with perturbd.Client("localhost:50051", timeout=30) as client:
        r = client.solve(problems.Argmax(), np.array([[1., 2., 3.]], np.float32),
                         epsilon=0.5, num_samples=1000, seed=7, distribution="gumbel",
                         jacobian=True)
        r.solution   # [1, 3] float32, ≈ softmax(θ/ε)
        r.jacobian   # [1, 3, 3], jacobian[b, i, j] = ∂y_i/∂θ_j

Conventions (DESIGN.md §1, §5):

* θ is [B, d] (a batch) or [d] (one instance: every output drops the batch axis).
* Outputs have θ's dtype; float32 stays float32. Decoded arrays are read-only: zero-copy views
  over the response bytes (an aligned copy where the data is misaligned for its dtype).
* The noise Z[b, m, i] is a pure function of (seed, b, m, i, distribution), or of
  (instance_seeds[b], m, i) when instance seeds are given: the same seed replays the same
  noise, which is how ``backward`` matches a forward ``solve``. A fixed seed gives a
  sample-average approximation; a fresh seed per call gives fresh noise.
* ``jacobian[b, i, j] = ∂y_i/∂θ_j``; ``backward`` returns Jᵀg without forming J.
* Fenchel–Young (``targets=y``): ``loss_grad`` is y_ε − y for MAXIMIZE and y − y_ε for MINIMIZE;
  ``loss`` is (1/M) Σ ⟨η_m, y_m − y⟩ (MAXIMIZE), ≥ 0 per sample. With GUMBEL noise (mean γ) its
  expectation carries an extra εγ·Σ y_m term. No library computes Ω_ε itself.

Errors are raised as ``perturbd.PerturbdError`` subclasses (see ``perturbd.errors``).

Retries: only UNAVAILABLE (server unreachable or draining) is retried, at most ``retries``
times, with exponential backoff and full jitter, all within the call's deadline. Streams are
never retried.

Keep-alive: the channel pings an idle connection every ``keepalive_time_s`` (default 30 s) and
drops it when a ping goes unanswered for ``keepalive_timeout_s`` (default 10 s). The perturbd
server accepts pings every ≥ 10 s (``GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS``);
pinging more often than the server allows makes it close the connection with
``GOAWAY too_many_pings``, so ``keepalive_time_s`` below 10 is refused here. For a server with
gRPC's default policy (one ping per 5 minutes) pass ``keepalive_time_s=None``.
"""

import collections
import concurrent.futures
import dataclasses
import itertools
import os
import queue
import random
import threading
import time
from typing import Optional, Tuple

import grpc
import numpy as np

from . import _wire
from ._proto import perturbd_pb2 as pb
from ._proto import perturbd_pb2_grpc as pb_grpc
from .errors import DeadlineExceeded, PerturbdError, ProtocolError, error_from_rpc
from .problems import to_proto as _problem_proto

__all__ = ["Client", "SolveResult", "SolveStats", "ServerInfo", "SolverInfo", "SolverParameter",
           "Limits", "SolveStream", "SERVICE_NAME", "DEFAULT_MAX_MESSAGE_BYTES",
           "MIN_KEEPALIVE_TIME_S"]

SERVICE_NAME = "perturbd.v1.PerturbedOptimizer"
"""The gRPC service name; also the health-check name that reports readiness."""

DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024 * 1024
MIN_KEEPALIVE_TIME_S = 10.0


# ------------------------------------------------------------------------------------ results


@dataclasses.dataclass(frozen=True)
class SolveStats:
    """Server-side statistics of one request."""
    solves: int          # oracle calls (B·M, plus B for UNPERTURBED)
    seconds: float       # server wall time of the solves
    backend: str         # "cpu" or "gpu"
    threads: int         # worker threads that took part
    clamped_costs: int   # negative perturbed costs clamped at zero by Dijkstra oracles

    @classmethod
    def from_proto(cls, m):
        return cls(int(m.solves), float(m.seconds), m.backend, int(m.threads),
                   int(m.clamped_costs))


@dataclasses.dataclass(frozen=True)
class SolveResult:
    """The response of one Solve. Shapes for θ [B, d] (θ [d] drops the leading B); every array
    has θ's dtype; fields not asked for are None.

    solution:        [B, d]     y_ε(θ) ≈ (1/M) Σ_m y*(η_m)
    value:           [B]        F_ε(θ) ≈ (1/M) Σ_m ⟨y_m, η_m⟩
    jacobian:        [B, d, d]  jacobian[b, i, j] = ∂y_i/∂θ_j       (jacobian=True)
    loss:            [B]        Fenchel–Young loss                    (targets given)
    loss_grad:       [B, d]     ∂loss/∂θ: y_ε − y (max), y − y_ε (min) (targets given)
    solution_stderr: [B, d]     standard error of each coordinate of y_ε (stderr=True)
    samples:         [B, M, d]  the per-sample solutions y_m          (samples=True)
    stats:           SolveStats
    request_id:      echoed request id
    """
    solution: Optional[np.ndarray]
    value: Optional[np.ndarray]
    jacobian: Optional[np.ndarray] = None
    loss: Optional[np.ndarray] = None
    loss_grad: Optional[np.ndarray] = None
    solution_stderr: Optional[np.ndarray] = None
    samples: Optional[np.ndarray] = None
    stats: Optional[SolveStats] = None
    request_id: str = ""

    @classmethod
    def _from_decoded(cls, decoded):
        msg, tensors = decoded
        return cls(**{name: tensors.get(name) for name in _SOLVE_TENSORS},
                   stats=SolveStats.from_proto(msg.stats) if msg.HasField("stats") else None,
                   request_id=msg.request_id)


_SOLVE_TENSORS = ("solution", "value", "jacobian", "loss", "loss_grad", "solution_stderr",
                  "samples")
_decode_solve_response = _wire.ResponseDecoder(pb.SolveResponse)
_decode_backward_response = _wire.ResponseDecoder(pb.BackwardResponse)


@dataclasses.dataclass(frozen=True)
class SolverParameter:
    name: str
    type: str
    description: str


@dataclasses.dataclass(frozen=True)
class SolverInfo:
    """One oracle: ``name`` is the Problem oneof field (e.g. 'top_k'); senses are
    'maximize'/'minimize'; backends 'cpu'/'gpu'."""
    name: str
    description: str
    natural_sense: Optional[str]
    senses: Tuple[str, ...]
    parameters: Tuple[SolverParameter, ...]
    backends: Tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Limits:
    max_work: int             # max B·M·d per request
    max_message_bytes: int    # both directions
    max_inflight: int         # concurrent requests before RESOURCE_EXHAUSTED
    max_response_values: int  # max values in one response (B·d², B·M·d, ...)


@dataclasses.dataclass(frozen=True)
class ServerInfo:
    """ListSolvers: the oracles, the server's limits, CPU threads, GPU devices, version."""
    solvers: Tuple[SolverInfo, ...]
    limits: Limits
    threads: int
    devices: Tuple[str, ...]
    version: str

    def solver(self, name):
        """The SolverInfo called ``name``; KeyError when the server has none."""
        for s in self.solvers:
            if s.name == name:
                return s
        raise KeyError(name)

    @classmethod
    def from_proto(cls, m):
        solvers = tuple(
            SolverInfo(
                name=s.name, description=s.description,
                natural_sense=_wire.sense_name(s.natural_sense),
                senses=tuple(_wire.sense_name(x) for x in s.senses),
                parameters=tuple(SolverParameter(p.name, p.type, p.description)
                                 for p in s.parameters),
                backends=tuple(_wire.backend_name(b) for b in s.backends))
            for s in m.solvers)
        lim = m.limits
        return cls(solvers=solvers,
                   limits=Limits(int(lim.max_work), int(lim.max_message_bytes),
                                 int(lim.max_inflight), int(lim.max_response_values)),
                   threads=int(m.threads), devices=tuple(m.devices), version=m.version)


# ------------------------------------------------------------------------------ health codec
# grpc.health.v1 is two one-field messages; encoded by hand so that no extra package is needed.

_HEALTH_CHECK = "/grpc.health.v1.Health/Check"
_HEALTH_STATUS = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}


def _encode_health_request(service):
    raw = service.encode("utf-8")
    return b"\x0a" + _wire._varint(len(raw)) + raw if raw else b""


def _decode_health_response(buf):
    status = 0
    pos = 0
    try:
        while pos < len(buf):
            key, pos = _wire._read_varint(buf, pos)
            if key == 1 << 3 | _wire._VARINT:  # HealthCheckResponse.status
                status, pos = _wire._read_varint(buf, pos)
            else:
                pos = _wire._skip_field(buf, pos, key & 7)
    except (IndexError, ValueError) as e:
        raise ProtocolError("health response: malformed (%s)" % (e or "truncated")) from None
    return _HEALTH_STATUS.get(status, "UNKNOWN")


# ------------------------------------------------------------------------------------ client


def _read_pem(value, name):
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, (str, os.PathLike)):
        with open(value, "rb") as f:
            return f.read()
    raise TypeError("%s: expected bytes or a file path, got %r" % (name, type(value)))


class Client:
    """A connection to a perturbd server. Thread-safe; one per process is enough.

    Args:
      address: "host:port" (any gRPC target, e.g. "dns:///perturbd:50051").
      timeout: default deadline in seconds for unary calls (None: none). A call's own
        ``timeout`` overrides it; the deadline covers all retries.
      retries: how many times an UNAVAILABLE call is retried (0 disables retries).
      retry_initial_backoff, retry_max_backoff: backoff before retry n is uniform in
        [0, min(max, initial·2ⁿ)] seconds (full jitter).
      tls: use TLS. Default: True when any of the certificate arguments is given.
      root_certificates: PEM bytes or a path; None uses the system roots.
      private_key, certificate_chain: client key and certificate (mutual TLS), bytes or paths.
      server_name_override: the name to verify in the server's certificate (tests, IPs).
      keepalive_time_s: ping interval on an idle connection; ≥ 10 (what the server allows) or
        None to send no keep-alive pings.
      keepalive_timeout_s: how long an unanswered ping waits before the connection is dropped.
      keepalive_permit_without_calls: also ping with no call in flight (the server must allow
        it too).
      max_message_bytes: send and receive limit (default 256 MiB; the server has its own).
      wait_for_ready: queue calls while the channel connects instead of failing UNAVAILABLE.
      metadata: extra (key, value) pairs sent with every call (e.g. authorization).
      options: extra gRPC channel options, appended last (they win).
      max_workers: threads behind ``solve_async`` / ``backward_async``.
    """

    def __init__(self, address, *, timeout=None, retries=3, retry_initial_backoff=0.1,
                 retry_max_backoff=2.0, tls=None, root_certificates=None, private_key=None,
                 certificate_chain=None, server_name_override=None, keepalive_time_s=30.0,
                 keepalive_timeout_s=10.0, keepalive_permit_without_calls=False,
                 max_message_bytes=DEFAULT_MAX_MESSAGE_BYTES, wait_for_ready=False,
                 metadata=None, options=(), max_workers=8):
        if retries < 0:
            raise ValueError("retries must be >= 0")
        if keepalive_time_s is not None and keepalive_time_s < MIN_KEEPALIVE_TIME_S:
            raise ValueError("keepalive_time_s=%r: the server allows pings every >= %g s"
                             % (keepalive_time_s, MIN_KEEPALIVE_TIME_S))
        self.address = address
        self.timeout = timeout
        self.retries = int(retries)
        self.retry_initial_backoff = float(retry_initial_backoff)
        self.retry_max_backoff = float(retry_max_backoff)
        self.wait_for_ready = bool(wait_for_ready)
        self.metadata = tuple(metadata) if metadata else None
        self._max_workers = max_workers
        self._executor = None
        self._lock = threading.Lock()
        self._closed = False

        opts = [("grpc.max_send_message_length", int(max_message_bytes)),
                ("grpc.max_receive_message_length", int(max_message_bytes))]
        if keepalive_time_s is not None:
            opts += [("grpc.keepalive_time_ms", int(keepalive_time_s * 1000)),
                     ("grpc.keepalive_timeout_ms", int(keepalive_timeout_s * 1000)),
                     ("grpc.keepalive_permit_without_calls",
                      int(bool(keepalive_permit_without_calls))),
                     # Keep pinging through long idle stretches of a stream: no cap on
                     # pings without data, and no 5-minute floor between them (gRPC's
                     # default min_time_between_pings would silently stretch the interval).
                     ("grpc.http2.max_pings_without_data", 0),
                     ("grpc.http2.min_time_between_pings_ms", int(keepalive_time_s * 1000))]
        if server_name_override:
            opts.append(("grpc.ssl_target_name_override", server_name_override))
        opts += list(options)

        use_tls = tls if tls is not None else any(
            x is not None for x in (root_certificates, private_key, certificate_chain))
        if use_tls:
            creds = grpc.ssl_channel_credentials(
                root_certificates=_read_pem(root_certificates, "root_certificates"),
                private_key=_read_pem(private_key, "private_key"),
                certificate_chain=_read_pem(certificate_chain, "certificate_chain"))
            self._channel = grpc.secure_channel(address, creds, options=opts)
        else:
            self._channel = grpc.insecure_channel(address, options=opts)
        self._stub = pb_grpc.PerturbedOptimizerStub(self._channel)
        # The tensor-carrying RPCs send and receive bytes: requests are serialized when they are
        # built and responses decoded after the call, both by _wire, which copies each tensor
        # once at most instead of through protobuf's own bytes (see _wire).
        method = "/%s/" % SERVICE_NAME
        self._solve_rpc = self._channel.unary_unary(method + "Solve")
        self._backward_rpc = self._channel.unary_unary(method + "Backward")
        self._solve_stream_rpc = self._channel.stream_stream(method + "SolveStream")
        self._health_check = self._channel.unary_unary(
            _HEALTH_CHECK, request_serializer=_encode_health_request,
            response_deserializer=_decode_health_response)

    # --------------------------------------------------------------- lifecycle

    def close(self):
        """Closes the channel (in-flight calls are cancelled) and the async thread pool."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            ex, self._executor = self._executor, None
        if ex is not None:
            ex.shutdown(wait=False, cancel_futures=True)
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return "perturbd.Client(%r)" % (self.address,)

    @property
    def channel(self):
        """The underlying grpc.Channel."""
        return self._channel

    def wait_ready(self, timeout=10.0):
        """Blocks until the channel is connected; raises DeadlineExceeded after ``timeout``."""
        try:
            grpc.channel_ready_future(self._channel).result(timeout=timeout)
        except grpc.FutureTimeoutError:
            raise DeadlineExceeded("channel to %s not ready after %g s"
                                   % (self.address, timeout)) from None

    # --------------------------------------------------------------- unary plumbing

    def _unary(self, rpc, request, timeout):
        timeout = self.timeout if timeout is None else timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        attempt = 0
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                return rpc(request, timeout=remaining, metadata=self.metadata,
                           wait_for_ready=self.wait_for_ready)
            except grpc.RpcError as e:
                err = error_from_rpc(e)
                if err.code == grpc.StatusCode.UNAVAILABLE and attempt < self.retries:
                    cap = min(self.retry_max_backoff, self.retry_initial_backoff * 2 ** attempt)
                    delay = random.uniform(0, cap)
                    if deadline is None or time.monotonic() + delay < deadline:
                        attempt += 1
                        time.sleep(delay)
                        continue
                err.attempts = attempt + 1
                raise err from None

    def _executor_(self):
        with self._lock:
            if self._closed:
                raise RuntimeError("perturbd.Client is closed")
            if self._executor is None:
                self._executor = concurrent.futures.ThreadPoolExecutor(
                    max_workers=self._max_workers, thread_name_prefix="perturbd-client")
            return self._executor

    # --------------------------------------------------------------- requests

    @staticmethod
    def _solve_request(problem, theta, *, epsilon, num_samples, seed, instance_seeds=None,
                       distribution="normal", perturbation="additive", variance_reduction=None,
                       antithetic=False, targets=None, jacobian=False, samples=False,
                       stderr=False, backend="auto", request_id=None):
        """The serialized SolveRequest (bytes)."""
        req = pb.SolveRequest()
        if request_id:
            req.request_id = request_id
        req.problem.CopyFrom(_problem_proto(problem))
        tensors = [("theta", _wire.wire_array(theta, "theta"))]
        th = tensors[0][1]
        _wire.fill_noise(req.noise, epsilon=epsilon, num_samples=num_samples, seed=seed,
                         instance_seeds=instance_seeds, distribution=distribution,
                         perturbation=perturbation, variance_reduction=variance_reduction,
                         antithetic=antithetic)
        if targets is not None:
            tensors.append(("targets", _wire.wire_array(targets, "targets", like=th)))
        req.outputs.jacobian = bool(jacobian)
        req.outputs.samples = bool(samples)
        req.outputs.stderr = bool(stderr)
        req.backend = _wire.parse_backend(backend)
        return _wire.encode_message(req, tensors)

    @staticmethod
    def _backward_request(problem, theta, cotangent, *, epsilon, num_samples, seed,
                          instance_seeds=None, distribution="normal", perturbation="additive",
                          variance_reduction=None, antithetic=False, backend="auto",
                          request_id=None):
        """The serialized BackwardRequest (bytes)."""
        req = pb.BackwardRequest()
        if request_id:
            req.request_id = request_id
        req.problem.CopyFrom(_problem_proto(problem))
        th = _wire.wire_array(theta, "theta")
        _wire.fill_noise(req.noise, epsilon=epsilon, num_samples=num_samples, seed=seed,
                         instance_seeds=instance_seeds, distribution=distribution,
                         perturbation=perturbation, variance_reduction=variance_reduction,
                         antithetic=antithetic)
        cot = _wire.wire_array(cotangent, "cotangent", like=th)
        req.backend = _wire.parse_backend(backend)
        return _wire.encode_message(req, [("theta", th), ("cotangent", cot)])

    def _solve_call(self, req, timeout):
        return SolveResult._from_decoded(
            _decode_solve_response(self._unary(self._solve_rpc, req, timeout)))

    def _backward_call(self, req, timeout):
        _, tensors = _decode_backward_response(self._unary(self._backward_rpc, req, timeout))
        if "grad_theta" not in tensors:
            raise ProtocolError("Backward response without grad_theta")
        return tensors["grad_theta"]

    # --------------------------------------------------------------- public RPCs

    def solve(self, problem, theta, *, epsilon, num_samples, seed, instance_seeds=None,
              distribution="normal", perturbation="additive", variance_reduction=None,
              antithetic=False, targets=None, jacobian=False, samples=False, stderr=False,
              backend="auto", timeout=None, request_id=None):
        """Smoothed solution y_ε(θ) and value F_ε(θ), plus what is asked for.

        Args:
          problem: a ``perturbd.problems`` builder (or a ``perturbd_pb2.Problem``).
          theta: [B, d] or [d] scores/costs; float32 and float64 are kept, integers become
            float64. Outputs have θ's dtype; [d] drops the batch axis from every output.
          epsilon: ε > 0, the noise scale.
          num_samples: M ≥ 1 perturbed solves per instance.
          seed: uint64; the noise is a pure function of (seed, b, m, i). Same seed ⇒ same noise.
          instance_seeds: None or exactly B uint64 seeds; instance b's noise then depends on
            (instance_seeds[b], m, i) only (split/reorder batches freely).
          distribution: 'normal' (∇ν(z) = z) or 'gumbel' (standard, mean γ; ∇ν(z) = 1 − e^{−z}).
          perturbation: 'additive' η = θ + εZ, or 'multiplicative' η = θ ⊙ exp(εZ − ε²/2).
          variance_reduction: None (server default: 'leave_one_out' when there are ≥ 2
            independent draws, else 'none'), 'none', 'leave_one_out' or 'unperturbed'.
          antithetic: pair samples 2k, 2k+1 as (Z, −Z) (NORMAL) or (U, 1−U) (GUMBEL); even M.
          targets: θ's shape; ask for the Fenchel–Young loss and its gradient against them.
          jacobian / samples / stderr: also return the [B,d,d] Jacobian, the [B,M,d]
            per-sample solutions, the [B,d] standard errors (stderr needs ≥ 2 draws).
          backend: 'auto', 'cpu' or 'gpu' (FailedPrecondition where no GPU exists).
          timeout: deadline in seconds for this call (default: the client's).
          request_id: echoed in ``result.request_id``.

        Returns:
          SolveResult (numpy arrays; see its docstring for shapes).
        Raises:
          PerturbdError subclasses (InvalidArgument naming the field, ResourceExhausted, ...).
        """
        req = self._solve_request(
            problem, theta, epsilon=epsilon, num_samples=num_samples, seed=seed,
            instance_seeds=instance_seeds, distribution=distribution, perturbation=perturbation,
            variance_reduction=variance_reduction, antithetic=antithetic, targets=targets,
            jacobian=jacobian, samples=samples, stderr=stderr, backend=backend,
            request_id=request_id)
        return self._solve_call(req, timeout)

    def backward(self, problem, theta, cotangent, *, epsilon, num_samples, seed,
                 instance_seeds=None, distribution="normal", perturbation="additive",
                 variance_reduction=None, antithetic=False, backend="auto", timeout=None,
                 request_id=None):
        """Vector–Jacobian product Jᵀg of y_ε at θ, i.e. grad_θ ⟨y_ε(θ), g⟩.

        Pass the same problem, θ and noise arguments (seed included) as the forward ``solve``:
        the server replays the same noise. ``cotangent`` g has θ's shape ([B, d] or [d]).

        Returns:
          numpy array of θ's shape and dtype: grad[b, j] = Σ_i g[b, i] · ∂y_i/∂θ_j.
        """
        req = self._backward_request(
            problem, theta, cotangent, epsilon=epsilon, num_samples=num_samples, seed=seed,
            instance_seeds=instance_seeds, distribution=distribution, perturbation=perturbation,
            variance_reduction=variance_reduction, antithetic=antithetic, backend=backend,
            request_id=request_id)
        return self._backward_call(req, timeout)

    def solve_async(self, problem, theta, **kwargs):
        """``solve`` in the background: returns a concurrent.futures.Future of SolveResult.

        The request is encoded before this returns, so θ may be modified right after.
        """
        timeout = kwargs.pop("timeout", None)
        req = self._solve_request(problem, theta, **kwargs)
        return self._executor_().submit(self._solve_call, req, timeout)

    def backward_async(self, problem, theta, cotangent, **kwargs):
        """``backward`` in the background: a concurrent.futures.Future of the numpy grad."""
        timeout = kwargs.pop("timeout", None)
        req = self._backward_request(problem, theta, cotangent, **kwargs)
        return self._executor_().submit(self._backward_call, req, timeout)

    def stream(self, *, timeout=None, max_pending=None):
        """Opens a ``SolveStream``: one long-lived bidirectional stream, responses in request
        order. Use as a context manager::

            with client.stream() as s:
                futs = [s.submit(problem, th, epsilon=.5, num_samples=100, seed=i)
                        for i, th in enumerate(batches)]
                results = [f.result() for f in futs]

        ``timeout`` bounds the whole stream's lifetime (None: no deadline). ``max_pending``
        (None: unbounded) makes ``submit`` block while that many requests await responses.
        """
        return SolveStream(self, timeout=timeout, max_pending=max_pending)

    def list_solvers(self, *, timeout=None):
        """The server's oracles, limits, threads, GPU devices and version (ServerInfo)."""
        return ServerInfo.from_proto(
            self._unary(self._stub.ListSolvers, pb.ListSolversRequest(), timeout))

    def health(self, service="", *, timeout=None):
        """grpc.health.v1 Check: 'SERVING', 'NOT_SERVING', 'UNKNOWN' or 'SERVICE_UNKNOWN'.

        ``service=''`` is liveness; ``service=perturbd.SERVICE_NAME`` is readiness (NOT_SERVING
        while the server drains). An unknown name raises NotFound.
        """
        return self._unary(self._health_check, service, timeout)


# ------------------------------------------------------------------------------------ stream

_END = object()


class SolveStream:
    """An open SolveStream RPC. Thread-safe ``submit``; responses complete the futures in
    request order. Obtain from ``Client.stream()``.

    A request the server rejects ends the stream with that status: its future raises the
    matching PerturbdError, every later pending future raises a copy of it, and ``submit``
    raises it from then on. Earlier results stand. Streams are not retried.
    """

    def __init__(self, client, timeout=None, max_pending=None):
        self._client = client
        self._slots = threading.BoundedSemaphore(max_pending) if max_pending else None
        self._requests = queue.SimpleQueue()
        self._pending = collections.deque()
        self._lock = threading.Lock()
        self._ids = itertools.count()
        self._closed = False   # no more submits
        self._ended = False    # _END queued
        self._error = None
        self._call = client._solve_stream_rpc(
            self._request_iter(), timeout=timeout, metadata=client.metadata,
            wait_for_ready=client.wait_for_ready)
        self._reader = threading.Thread(target=self._read, name="perturbd-stream-reader",
                                        daemon=True)
        self._reader.start()

    def _request_iter(self):
        while True:
            req = self._requests.get()
            if req is _END:
                return
            yield req

    def submit(self, problem, theta, **kwargs):
        """Sends one SolveRequest (same arguments as ``Client.solve``, without ``timeout``);
        returns a concurrent.futures.Future of its SolveResult. Without a ``request_id`` the
        stream numbers the requests and checks the echoed ids."""
        if "timeout" in kwargs:
            raise TypeError("submit() takes no timeout: use Client.stream(timeout=...)")
        # Numbered before encoding, which the id is part of; a failed submit skips a number.
        rid = kwargs.pop("request_id", None) or "s%d" % next(self._ids)
        req = Client._solve_request(problem, theta, request_id=rid, **kwargs)
        fut = concurrent.futures.Future()
        fut.set_running_or_notify_cancel()  # a sent request cannot be cancelled alone
        if self._slots is not None:
            self._slots.acquire()
        try:
            with self._lock:
                if self._error is not None:
                    raise self._error._clone()
                if self._closed:
                    raise RuntimeError("SolveStream is closed")
                self._pending.append((rid, fut))
                self._requests.put(req)
        except BaseException:
            if self._slots is not None:
                self._slots.release()
            raise
        if self._slots is not None:
            fut.add_done_callback(lambda _: self._slots.release())
        return fut

    def _read(self):
        err = None
        try:
            for resp in self._call:
                with self._lock:
                    if not self._pending:
                        err = ProtocolError("SolveStream: a response without a request")
                        self._call.cancel()
                        break
                    rid, fut = self._pending.popleft()
                try:
                    decoded = _decode_solve_response(resp)
                    echoed = decoded.message.request_id
                    if echoed and echoed != rid:
                        raise ProtocolError("SolveStream: response %r for request %r (out of order)"
                                            % (echoed, rid))
                    result = SolveResult._from_decoded(decoded)
                except PerturbdError as e:
                    fut.set_exception(e)
                else:
                    fut.set_result(result)
        except grpc.RpcError as e:
            # Unblock gRPC's request-consuming thread first: until the request iterator ends,
            # the call does not finish terminating and its status accessors block.
            self._end_requests()
            err = error_from_rpc(e)
        except Exception as e:  # pragma: no cover - defensive
            err = PerturbdError("SolveStream reader failed: %r" % (e,))
        self._end_requests()
        with self._lock:
            if err is None and self._pending:
                err = ProtocolError("SolveStream ended with %d requests unanswered"
                                    % len(self._pending))
            if err is not None:
                self._error = err
            pending = list(self._pending)
            self._pending.clear()
        for _, fut in pending:
            fut.set_exception(err._clone())

    def _end_requests(self):
        """Marks the stream closed and ends the request iterator (idempotent)."""
        with self._lock:
            if self._ended:
                return
            self._ended = True
            self._closed = True
        self._requests.put(_END)

    def close(self, timeout=None):
        """Half-closes the stream and waits (up to ``timeout`` s) for the pending responses."""
        self._end_requests()
        self._reader.join(timeout)

    def cancel(self):
        """Cancels the stream; pending futures raise Cancelled."""
        self._call.cancel()
        self._reader.join(10)

    @property
    def error(self):
        """The PerturbdError that ended the stream, or None."""
        return self._error

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.cancel()
        else:
            self.close()
