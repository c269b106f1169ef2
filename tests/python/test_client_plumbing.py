"""Client machinery against an in-process fake server (fakes.py): retries, deadlines, error
mapping, futures, stream ordering and failure, health, TLS. No C++ binary needed."""

import subprocess
import threading
import time

import grpc
import numpy as np
import pytest

import perturbd
from perturbd import problems

from fakes import FakeServer

NOISE = dict(epsilon=0.5, num_samples=4, seed=1)


@pytest.fixture
def fake():
    srv = FakeServer()
    yield srv
    srv.stop()


@pytest.fixture
def fclient(fake):
    c = perturbd.Client(fake.address, timeout=10, retries=3, retry_initial_backoff=0.01,
                        retry_max_backoff=0.05)
    yield c
    c.close()


def test_round_trip_through_fake(fake, fclient):
    theta = np.arange(6, dtype=np.float32).reshape(2, 3)
    r = fclient.solve(problems.Argmax(), theta, jacobian=True, request_id="x1", **NOISE)
    assert r.request_id == "x1"
    assert r.solution.dtype == np.float32 and r.solution.shape == (2, 3)
    np.testing.assert_array_equal(r.solution, theta)
    np.testing.assert_array_equal(r.value, theta.sum(-1))
    assert r.jacobian.shape == (2, 3, 3)
    assert r.loss is None and r.samples is None and r.solution_stderr is None
    assert r.stats.solves == 4 and r.stats.backend == "fake"
    req = fake.servicer.requests[-1]
    assert req.noise.epsilon == 0.5 and req.noise.num_samples == 4 and req.noise.seed == 1
    g = fclient.backward(problems.Argmax(), theta, np.ones_like(theta), **NOISE)
    assert g.dtype == np.float32
    np.testing.assert_array_equal(g, 2 * np.ones_like(theta))


def test_retries_unavailable_then_succeeds(fake, fclient):
    fake.servicer.fail_with = [grpc.StatusCode.UNAVAILABLE] * 2
    r = fclient.solve(problems.Argmax(), np.ones(3), **NOISE)
    assert r.solution.shape == (3,)
    assert fake.servicer.calls == 3


def test_retries_are_bounded(fake, fclient):
    fake.servicer.fail_with = [grpc.StatusCode.UNAVAILABLE] * 10
    with pytest.raises(perturbd.Unavailable) as info:
        fclient.solve(problems.Argmax(), np.ones(3), **NOISE)
    assert fake.servicer.calls == 4           # 1 + retries
    assert info.value.attempts == 4
    assert info.value.code == grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize("code,cls", [
    (grpc.StatusCode.INVALID_ARGUMENT, perturbd.InvalidArgument),
    (grpc.StatusCode.RESOURCE_EXHAUSTED, perturbd.ResourceExhausted),
    (grpc.StatusCode.INTERNAL, perturbd.Internal),
    (grpc.StatusCode.DEADLINE_EXCEEDED, perturbd.DeadlineExceeded),
])
def test_other_codes_are_not_retried(fake, fclient, code, cls):
    fake.servicer.fail_with = [code]
    with pytest.raises(cls) as info:
        fclient.backward(problems.Argmax(), np.ones(3), np.ones(3), **NOISE)
    assert fake.servicer.calls == 1
    assert "fake failure" in info.value.details


def test_no_retries_when_disabled(fake):
    with perturbd.Client(fake.address, retries=0, timeout=5) as c:
        fake.servicer.fail_with = [grpc.StatusCode.UNAVAILABLE]
        with pytest.raises(perturbd.Unavailable):
            c.solve(problems.Argmax(), np.ones(3), **NOISE)
    assert fake.servicer.calls == 1


def test_server_message_reaches_the_exception(fclient):
    with pytest.raises(perturbd.InvalidArgument, match="noise.epsilon") as info:
        fclient.solve(problems.Argmax(), np.ones(3), epsilon=0.0, num_samples=1, seed=0)
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT


def test_deadline(fake, fclient):
    fake.servicer.delay = 2.0
    t0 = time.monotonic()
    with pytest.raises(perturbd.DeadlineExceeded):
        fclient.solve(problems.Argmax(), np.ones(3), timeout=0.2, **NOISE)
    assert time.monotonic() - t0 < 1.5


def test_retries_stay_within_the_deadline(fake):
    with perturbd.Client(fake.address, retries=50, retry_initial_backoff=0.05,
                         retry_max_backoff=0.05) as c:
        fake.servicer.fail_with = [grpc.StatusCode.UNAVAILABLE] * 1000
        t0 = time.monotonic()
        with pytest.raises(perturbd.PerturbdError) as info:
            c.solve(problems.Argmax(), np.ones(3), timeout=0.5, **NOISE)
        assert time.monotonic() - t0 < 1.5
        assert info.value.code in (grpc.StatusCode.UNAVAILABLE,
                                   grpc.StatusCode.DEADLINE_EXCEEDED)


def test_unreachable_server_is_unavailable():
    # A port nobody listens on (bound then closed).
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with perturbd.Client("127.0.0.1:%d" % port, retries=2, retry_initial_backoff=0.01,
                         timeout=5) as c:
        with pytest.raises(perturbd.Unavailable) as info:
            c.solve(problems.Argmax(), np.ones(3), **NOISE)
        assert info.value.attempts == 3


def test_futures(fake, fclient):
    fake.servicer.delay = 0.2
    thetas = [np.full((2, 3), i, np.float64) for i in range(8)]
    t0 = time.monotonic()
    futs = [fclient.solve_async(problems.Argmax(), th, **NOISE) for th in thetas]
    # the request is encoded at submit time: mutating θ afterwards changes nothing
    for th in thetas:
        th += 100
    results = [f.result(timeout=10) for f in futs]
    assert time.monotonic() - t0 < 8 * 0.2  # they overlapped
    for i, r in enumerate(results):
        np.testing.assert_array_equal(r.solution, np.full((2, 3), i))
    g = fclient.backward_async(problems.Argmax(), np.ones(3), np.ones(3), **NOISE)
    np.testing.assert_array_equal(g.result(timeout=10), 2 * np.ones(3))


def test_future_carries_errors(fake, fclient):
    fake.servicer.fail_with = [grpc.StatusCode.RESOURCE_EXHAUSTED]
    fut = fclient.solve_async(problems.Argmax(), np.ones(3), **NOISE)
    with pytest.raises(perturbd.ResourceExhausted):
        fut.result(timeout=10)


def test_stream_keeps_order(fake, fclient):
    fake.servicer.stream_delay = 0.01
    with fclient.stream(timeout=30) as s:
        futs = [s.submit(problems.Argmax(), np.full(3, i, np.float32), **NOISE)
                for i in range(20)]
        results = [f.result(timeout=10) for f in futs]
    for i, r in enumerate(results):
        np.testing.assert_array_equal(r.solution, np.full(3, i, np.float32))
        assert r.request_id == "s%d" % i


def test_stream_max_pending_blocks_submit(fake, fclient):
    fake.servicer.stream_delay = 0.1
    with fclient.stream(timeout=30, max_pending=2) as s:
        futs = []
        for i in range(6):
            futs.append(s.submit(problems.Argmax(), np.full(3, i, np.float32), **NOISE))
            assert sum(not f.done() for f in futs) <= 2
        for i, f in enumerate(futs):
            np.testing.assert_array_equal(f.result(timeout=10).solution, np.full(3, i))


def test_stream_submit_from_threads(fake, fclient):
    with fclient.stream(timeout=30) as s:
        futs = {}
        lock = threading.Lock()

        def worker(k):
            for j in range(10):
                v = 100 * k + j
                f = s.submit(problems.Argmax(), np.full(2, v, np.float64), **NOISE)
                with lock:
                    futs[v] = f

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        for v, f in futs.items():
            np.testing.assert_array_equal(f.result(timeout=10).solution, np.full(2, v))
    assert len(futs) == 40


def test_stream_error_ends_stream(fclient):
    s = fclient.stream(timeout=30)
    good = [s.submit(problems.Argmax(), np.full(3, i, np.float64), **NOISE) for i in range(3)]
    bad = s.submit(problems.Argmax(), np.array([0.0, np.nan, 1.0]), **NOISE)
    for f in good:
        assert f.result(timeout=10).solution.shape == (3,)
    with pytest.raises(perturbd.InvalidArgument, match="theta"):
        bad.result(timeout=10)
    deadline = time.monotonic() + 10
    while s.error is None and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(perturbd.InvalidArgument):
        s.submit(problems.Argmax(), np.ones(3), **NOISE)
    s.close(5)


def test_stream_cancel_fails_pending(fake, fclient):
    fake.servicer.stream_delay = 0.5
    s = fclient.stream(timeout=30)
    futs = [s.submit(problems.Argmax(), np.ones(3), **NOISE) for _ in range(5)]
    s.cancel()
    errors = 0
    for f in futs:
        try:
            f.result(timeout=10)
        except perturbd.Cancelled:
            errors += 1
    assert errors >= 1


def test_closed_stream_rejects_submit(fclient):
    s = fclient.stream()
    s.close(5)
    with pytest.raises(RuntimeError):
        s.submit(problems.Argmax(), np.ones(3), **NOISE)


def test_list_solvers_and_health(fclient):
    info = fclient.list_solvers()
    assert info.version == "fake" and info.limits.max_work == 123
    s = info.solver("argmax")
    assert s.natural_sense == "maximize" and s.senses == ("maximize", "minimize")
    assert s.backends == ("cpu",) and s.parameters[0].name == "k"
    assert fclient.health() == "SERVING"
    assert fclient.health(perturbd.SERVICE_NAME) == "NOT_SERVING"
    with pytest.raises(perturbd.NotFound):
        fclient.health("nope")


def test_keepalive_floor():
    with pytest.raises(ValueError, match="10"):
        perturbd.Client("127.0.0.1:1", keepalive_time_s=5)
    perturbd.Client("127.0.0.1:1", keepalive_time_s=None).close()
    perturbd.Client("127.0.0.1:1", keepalive_time_s=10).close()


def test_closed_client_rejects_async():
    c = perturbd.Client("127.0.0.1:1")
    c.close()
    with pytest.raises(RuntimeError):
        c.solve_async(problems.Argmax(), np.ones(3), **NOISE)


# ------------------------------------------------------------------------------ TLS


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    import shutil
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    d = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
             "ca.pem", "-days", "2", "-subj", "/CN=perturbd test CA", cwd=d)
    for name in ("server", "client"):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key", "-out",
                 name + ".csr", "-subj", "/CN=%s.perturbd.test" % name, cwd=d)
        (d / (name + ".ext")).write_text("subjectAltName=DNS:%s.perturbd.test\n" % name)
        _openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", name + ".pem", "-days", "2", "-extfile",
                 name + ".ext", cwd=d)
    return d


def test_mutual_tls(pki):
    creds = grpc.ssl_server_credentials(
        [((pki / "server.key").read_bytes(), (pki / "server.pem").read_bytes())],
        root_certificates=(pki / "ca.pem").read_bytes(), require_client_auth=True)
    srv = FakeServer(credentials=creds)
    try:
        with perturbd.Client(srv.address, root_certificates=str(pki / "ca.pem"),
                             private_key=pki / "client.key",
                             certificate_chain=(pki / "client.pem").read_bytes(),
                             server_name_override="server.perturbd.test", timeout=10,
                             retries=0) as c:
            r = c.solve(problems.Argmax(), np.ones(3, np.float32), **NOISE)
            assert r.solution.dtype == np.float32
        # without a client certificate the handshake fails
        with perturbd.Client(srv.address, root_certificates=str(pki / "ca.pem"),
                             server_name_override="server.perturbd.test", timeout=5,
                             retries=0) as c:
            with pytest.raises(perturbd.Unavailable):
                c.solve(problems.Argmax(), np.ones(3), **NOISE)
    finally:
        srv.stop()
