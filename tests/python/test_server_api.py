"""The client against the real perturbd binary: round trips, dtypes, shapes, errors, streams,
futures, health, reproducibility, drain. (Numerical closed forms: test_closed_forms.py.)"""

import time

import grpc
import numpy as np
import pytest

import perturbd
from perturbd import problems

from conftest import ServerProcess

NOISE = dict(epsilon=0.5, num_samples=16, seed=11)
ALL_OUTPUTS = dict(jacobian=True, samples=True, stderr=True)


def _theta(shape, dtype, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(dtype)


# ------------------------------------------------------------------------------ discovery


def test_list_solvers(server_info):
    names = {s.name for s in server_info.solvers}
    assert {"argmax", "top_k", "threshold", "ranking", "grid_shortest_path",
            "graph_shortest_path"} <= names
    assert server_info.solver("argmax").natural_sense == "maximize"
    assert server_info.solver("grid_shortest_path").natural_sense == "minimize"
    assert server_info.solver("grid_shortest_path").senses == ("minimize",)
    assert "cpu" in server_info.solver("top_k").backends
    assert any(p.name == "k" for p in server_info.solver("top_k").parameters)
    assert server_info.limits.max_work > 0 and server_info.limits.max_inflight > 0
    assert server_info.threads >= 1 and server_info.version


def test_health(client):
    assert client.health() == "SERVING"
    assert client.health(perturbd.SERVICE_NAME) == "SERVING"
    with pytest.raises(perturbd.NotFound):
        client.health("no.such.Service")


# ------------------------------------------------------------------------------ round trips


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batched_shapes_and_dtypes(client, dtype):
    B, d, M = 3, 5, 8
    theta = _theta((B, d), dtype)
    targets = np.eye(d, dtype=np.float64)[[0, 2, 4]]  # the other float dtype is accepted
    r = client.solve(problems.TopK(2), theta, targets=targets, request_id="rt-1",
                     epsilon=0.5, num_samples=M, seed=3, **ALL_OUTPUTS)
    assert r.request_id == "rt-1"
    expected = dict(solution=(B, d), value=(B,), jacobian=(B, d, d), loss=(B,),
                    loss_grad=(B, d), solution_stderr=(B, d), samples=(B, M, d))
    for name, shape in expected.items():
        arr = getattr(r, name)
        assert arr.shape == shape, name
        assert arr.dtype == np.dtype(dtype), name           # float32 stays float32
    np.testing.assert_allclose(r.solution.sum(-1), 2, rtol=1e-6)   # k-hot average
    np.testing.assert_allclose(r.samples.mean(1), r.solution, rtol=1e-6, atol=1e-7)
    assert set(np.unique(r.samples)) <= {0.0, 1.0}
    assert r.stats.solves == B * M and r.stats.backend in ("cpu", "gpu")
    g = client.backward(problems.TopK(2), theta, np.ones((B, d), np.float64), epsilon=0.5,
                        num_samples=M, seed=3)
    assert g.shape == (B, d) and g.dtype == np.dtype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_single_instance_drops_batch_axis(client, dtype):
    d, M = 4, 6
    theta = _theta(d, dtype)
    r = client.solve(problems.Argmax(), theta, targets=np.eye(d)[1], epsilon=1.0,
                     num_samples=M, seed=5, **ALL_OUTPUTS)
    expected = dict(solution=(d,), value=(), jacobian=(d, d), loss=(), loss_grad=(d,),
                    solution_stderr=(d,), samples=(M, d))
    for name, shape in expected.items():
        arr = getattr(r, name)
        assert arr.shape == shape and arr.dtype == np.dtype(dtype), name
    g = client.backward(problems.Argmax(), theta, np.ones(d, dtype), epsilon=1.0,
                        num_samples=M, seed=5)
    assert g.shape == (d,) and g.dtype == np.dtype(dtype)
    # the single instance equals row 0 of the same θ sent as a batch of one
    rb = client.solve(problems.Argmax(), theta[None], epsilon=1.0, num_samples=M, seed=5)
    np.testing.assert_array_equal(rb.solution[0], r.solution)


def test_outputs_not_asked_for_are_none(client):
    r = client.solve(problems.Argmax(), np.ones((2, 3)), **NOISE)
    assert r.solution is not None and r.value is not None
    assert r.jacobian is None and r.loss is None and r.loss_grad is None
    assert r.samples is None and r.solution_stderr is None


def test_integer_theta_is_sent_as_float64(client):
    r = client.solve(problems.Argmax(), [3, 1, 2], epsilon=1e-3, num_samples=2, seed=0)
    assert r.solution.dtype == np.float64
    np.testing.assert_array_equal(r.solution, [1, 0, 0])


def test_small_epsilon_recovers_the_oracle(client):
    theta = np.array([[0.1, 0.9, -0.5, 0.3], [2.0, -1.0, -0.2, 1.5]])
    kw = dict(epsilon=1e-6, num_samples=4, seed=1)
    np.testing.assert_array_equal(client.solve(problems.Argmax(), theta, **kw).solution,
                                  [[0, 1, 0, 0], [1, 0, 0, 0]])
    np.testing.assert_array_equal(client.solve(problems.TopK(2), theta, **kw).solution,
                                  [[0, 1, 0, 1], [1, 0, 0, 1]])
    np.testing.assert_array_equal(client.solve(problems.Threshold(), theta, **kw).solution,
                                  [[1, 1, 0, 1], [1, 0, 0, 1]])
    np.testing.assert_array_equal(client.solve(problems.Ranking(), theta, **kw).solution,
                                  [[1, 3, 0, 2], [3, 0, 1, 2]])
    np.testing.assert_array_equal(
        client.solve(problems.Ranking(sense="minimize"), theta, **kw).solution,
        [[2, 0, 3, 1], [0, 3, 2, 1]])


def test_grid_shortest_path(client):
    grid = problems.GridShortestPath(3, 3, connectivity=4)
    costs = np.array([[1, 9, 9], [1, 9, 9], [1, 1, 1]], np.float64).reshape(-1)
    r = client.solve(grid, costs, epsilon=1e-3, num_samples=4, seed=0,
                     perturbation="multiplicative")
    np.testing.assert_array_equal(r.solution.reshape(3, 3),
                                  [[1, 0, 0], [1, 0, 0], [1, 1, 1]])
    assert r.stats.clamped_costs == 0
    # additive noise much larger than the costs produces negative costs, clamped and counted
    r = client.solve(grid, costs * 0.01, epsilon=5.0, num_samples=64, seed=0)
    assert r.stats.clamped_costs > 0
    with pytest.raises(perturbd.InvalidArgument, match="problem.sense"):
        client.solve(problems.GridShortestPath(3, 3, sense="maximize"), costs, **NOISE)


def test_graph_shortest_path(client):
    #   0 -> 1 -> 3 (cost 1 + 1) ;  0 -> 2 -> 3 (cost 5 + 5)
    g = problems.GraphShortestPath(4, [(0, 1), (1, 3), (0, 2), (2, 3)], source=0, target=3)
    costs = np.array([1.0, 1.0, 5.0, 5.0])
    r = client.solve(g, costs, epsilon=1e-3, num_samples=4, seed=0)
    np.testing.assert_array_equal(r.solution, [1, 1, 0, 0])
    r = client.solve(problems.GraphShortestPath(4, g.edges, 0, 3, sense="maximize"), costs,
                     epsilon=1e-3, num_samples=4, seed=0)  # longest path on a DAG
    np.testing.assert_array_equal(r.solution, [0, 0, 1, 1])


# ------------------------------------------------------------------------------ reproducibility


def test_same_request_same_response(client):
    theta = _theta((4, 6), np.float64)
    kw = dict(epsilon=0.3, num_samples=50, seed=123, jacobian=True)
    a = client.solve(problems.TopK(3), theta, **kw)
    b = client.solve(problems.TopK(3), theta, **kw)
    np.testing.assert_array_equal(a.solution, b.solution)
    np.testing.assert_array_equal(a.jacobian, b.jacobian)
    c = client.solve(problems.TopK(3), theta, **{**kw, "seed": 124})
    assert not np.array_equal(a.solution, c.solution)


def test_instance_seeds_follow_the_instance(client):
    theta = _theta((4, 5), np.float64, seed=3)
    seeds = np.array([10, 20, 30, 40], np.uint64)
    kw = dict(epsilon=0.5, num_samples=40, seed=0)
    a = client.solve(problems.Argmax(), theta, instance_seeds=seeds, **kw)
    perm = [2, 0, 3, 1]
    b = client.solve(problems.Argmax(), theta[perm], instance_seeds=seeds[perm], **kw)
    np.testing.assert_array_equal(a.solution[perm], b.solution)
    one = client.solve(problems.Argmax(), theta[1:2], instance_seeds=seeds[1:2], **kw)
    np.testing.assert_array_equal(one.solution[0], a.solution[1])


def test_backward_matches_jacobian(client):
    theta = _theta((3, 5), np.float64, seed=7)
    cot = _theta((3, 5), np.float64, seed=8)
    for vr in (None, "none", "leave_one_out", "unperturbed"):
        kw = dict(epsilon=0.4, num_samples=64, seed=9, variance_reduction=vr)
        jac = client.solve(problems.TopK(2), theta, jacobian=True, **kw).jacobian
        g = client.backward(problems.TopK(2), theta, cot, **kw)
        np.testing.assert_allclose(g, np.einsum("bi,bij->bj", cot, jac), rtol=1e-9,
                                   atol=1e-12, err_msg=str(vr))


# ------------------------------------------------------------------------------ errors


@pytest.mark.parametrize("change,field", [
    (dict(epsilon=0.0), "noise.epsilon"),
    (dict(epsilon=float("nan")), "noise.epsilon"),
    (dict(num_samples=0), "noise.num_samples"),
    (dict(num_samples=3, antithetic=True), "noise.antithetic"),
    (dict(instance_seeds=[1, 2, 3]), "noise.instance_seeds"),
    (dict(stderr=True, num_samples=1), "outputs.stderr"),
    (dict(targets=np.zeros((2, 3))), "targets.shape"),
])
def test_invalid_argument_names_the_field(client, change, field):
    kw = dict(epsilon=0.5, num_samples=4, seed=1)
    kw.update(change)
    with pytest.raises(perturbd.InvalidArgument) as info:
        client.solve(problems.Argmax(), np.ones((2, 4)), **kw)
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert field in info.value.details, info.value.details


@pytest.mark.parametrize("problem,theta,field", [
    (problems.TopK(0), np.ones(4), "problem.top_k.k"),
    (problems.TopK(5), np.ones(4), "problem.top_k.k"),
    (problems.GridShortestPath(2, 3), np.ones(5), "problem.grid_shortest_path.rows"),
    (problems.Argmax(), np.ones((2, 2, 2)), "theta.shape"),
    (problems.Argmax(), np.array([1.0, np.nan]), "theta.data"),
    (problems.Argmax(), np.array([1.0, np.inf]), "theta.data"),
    (problems.Argmax(), np.ones((0, 3)), "theta.shape"),
    (problems.Argmax(), np.ones(0), "theta.shape"),
    (perturbd._proto.perturbd_pb2.Problem(), np.ones(3), "problem.kind"),
    (problems.GraphShortestPath(3, [(0, 0), (0, 2)], 0, 2), np.ones(2),
     "problem.graph_shortest_path.edge"),
    (problems.GraphShortestPath(3, [(0, 1)], 0, 2), np.ones(1),
     "problem.graph_shortest_path.target"),
])
def test_invalid_problems(client, problem, theta, field):
    with pytest.raises(perturbd.InvalidArgument) as info:
        client.solve(problem, theta, **NOISE)
    assert field in info.value.details, info.value.details


def test_multiplicative_zero_theta_needs_no_derivative(client):
    theta = np.array([1.0, 0.0, 2.0])
    kw = dict(epsilon=0.5, num_samples=4, seed=1, perturbation="multiplicative")
    client.solve(problems.Argmax(), theta, **kw)                  # fine without derivatives
    with pytest.raises(perturbd.InvalidArgument, match="theta"):
        client.solve(problems.Argmax(), theta, jacobian=True, **kw)
    with pytest.raises(perturbd.InvalidArgument, match="theta"):
        client.backward(problems.Argmax(), theta, np.ones(3), **kw)


def test_backward_cotangent_shape(client):
    with pytest.raises(perturbd.InvalidArgument, match="cotangent"):
        client.backward(problems.Argmax(), np.ones((2, 3)), np.ones((3, 2)), **NOISE)


def test_resource_exhausted_after_invalid_argument(client, server_info):
    max_work = server_info.limits.max_work
    d = 8
    m = max_work // d + 1
    if m > 2**32 - 1:
        pytest.skip("max_work too large to exceed with a uint32 num_samples")
    with pytest.raises(perturbd.ResourceExhausted, match="max_work"):
        client.solve(problems.Argmax(), np.ones(d), epsilon=0.5, num_samples=m, seed=0)
    # every INVALID_ARGUMENT check comes first
    with pytest.raises(perturbd.InvalidArgument, match="epsilon"):
        client.solve(problems.Argmax(), np.ones(d), epsilon=-1.0, num_samples=m, seed=0)


def test_response_size_limit(client, server_info):
    d = int(np.sqrt(server_info.limits.max_response_values)) + 2
    with pytest.raises(perturbd.ResourceExhausted, match="jacobian"):
        client.solve(problems.Argmax(), np.ones(d, np.float32), epsilon=0.5, num_samples=1,
                     seed=0, jacobian=True)


def test_gpu_backend(client, server_info):
    if server_info.devices:
        r = client.solve(problems.Argmax(), np.ones(3), backend="gpu", **NOISE)
        assert r.stats.backend == "gpu"
    else:
        with pytest.raises(perturbd.FailedPrecondition, match="GPU"):
            client.solve(problems.Argmax(), np.ones(3), backend="gpu", **NOISE)
    assert client.solve(problems.Argmax(), np.ones(3), backend="cpu",
                        **NOISE).stats.backend == "cpu"


def test_deadline_exceeded(client):
    # 10⁴ rankings of 1,000 scores (a sort each, every Z transformed): far longer than the
    # 5 ms deadline. (Argmax of the same size no longer is: its forward pass transforms a few
    # Z per sample and runs in ≈ 2 ms.)
    theta = np.zeros((10, 1000))
    t0 = time.monotonic()
    with pytest.raises(perturbd.DeadlineExceeded):
        client.solve(problems.Ranking(), theta, epsilon=1.0, num_samples=1000, seed=0,
                     timeout=0.005)
    assert time.monotonic() - t0 < 5
    # the server is still healthy afterwards
    assert client.solve(problems.Argmax(), np.ones(3), **NOISE).solution.shape == (3,)


# ------------------------------------------------------------------------------ streams, futures


def test_stream_responses_in_request_order(client):
    reqs = []
    for i in range(16):
        dtype = np.float32 if i % 2 else np.float64
        shape = (1 + i % 3, 3 + i % 4) if i % 5 else (4,)
        reqs.append((problems.TopK(2), _theta(shape, dtype, seed=i),
                     dict(epsilon=0.5, num_samples=20 + 40 * (i % 4), seed=i)))
    with client.stream(timeout=60) as s:
        futs = [s.submit(p, th, **kw) for p, th, kw in reqs]
        got = [f.result(timeout=30) for f in futs]
    for (p, th, kw), r in zip(reqs, got):
        want = client.solve(p, th, **kw)
        assert r.solution.dtype == th.dtype and r.solution.shape == th.shape
        np.testing.assert_array_equal(r.solution, want.solution)
        np.testing.assert_array_equal(r.value, want.value)


def test_stream_error_keeps_earlier_results(client):
    with client.stream(timeout=60) as s:
        ok = [s.submit(problems.Argmax(), np.ones(3) * i, **NOISE) for i in range(3)]
        bad = s.submit(problems.Argmax(), np.ones(3), epsilon=0.0, num_samples=1, seed=0)
        later = s.submit(problems.Argmax(), np.ones(3), **NOISE)
        for f in ok:
            assert f.result(timeout=30).solution.shape == (3,)
        with pytest.raises(perturbd.InvalidArgument, match="epsilon"):
            bad.result(timeout=30)
        with pytest.raises(perturbd.PerturbdError):
            later.result(timeout=30)
        with pytest.raises(perturbd.InvalidArgument):
            s.submit(problems.Argmax(), np.ones(3), **NOISE)


def test_solve_async_futures(client):
    thetas = [_theta((2, 6), np.float32, seed=i) for i in range(6)]
    futs = [client.solve_async(problems.TopK(3), th, epsilon=0.5, num_samples=200, seed=i)
            for i, th in enumerate(thetas)]
    bfut = client.backward_async(problems.TopK(3), thetas[0], np.ones((2, 6)), epsilon=0.5,
                                 num_samples=200, seed=0)
    for i, (th, f) in enumerate(zip(thetas, futs)):
        want = client.solve(problems.TopK(3), th, epsilon=0.5, num_samples=200, seed=i)
        np.testing.assert_array_equal(f.result(timeout=30).solution, want.solution)
    want = client.backward(problems.TopK(3), thetas[0], np.ones((2, 6)), epsilon=0.5,
                           num_samples=200, seed=0)
    np.testing.assert_array_equal(bfut.result(timeout=30), want)
    bad = client.solve_async(problems.TopK(3), thetas[0], epsilon=0.5, num_samples=0, seed=0)
    with pytest.raises(perturbd.InvalidArgument):
        bad.result(timeout=30)


# ------------------------------------------------------------------------------ drain


@pytest.mark.timeout(60)
def test_drain_readiness_then_unavailable():
    srv = ServerProcess("--drain_seconds=3")
    try:
        with perturbd.Client(srv.address, timeout=10, retries=2, retry_initial_backoff=0.05,
                             retry_max_backoff=0.1) as c:
            assert c.health(perturbd.SERVICE_NAME) == "SERVING"
            srv.signal()
            deadline = time.monotonic() + 2.5
            while c.health(perturbd.SERVICE_NAME) == "SERVING":
                assert time.monotonic() < deadline, "readiness still SERVING during drain"
                time.sleep(0.05)
            assert c.health(perturbd.SERVICE_NAME) == "NOT_SERVING"
            assert c.health("") == "SERVING"                      # liveness stays up
            c.solve(problems.Argmax(), np.ones(3), **NOISE)       # still served while draining
            assert srv.proc.wait(20) == 0
            with pytest.raises(perturbd.Unavailable) as info:
                c.solve(problems.Argmax(), np.ones(3), **NOISE)
            assert info.value.attempts == 3                       # 1 + 2 retries
    finally:
        srv.stop()


# ------------------------------------------------------------------------------ keep-alive


@pytest.mark.timeout(120)
def test_idle_stream_survives_keepalive_pings(address):
    """Contract: the server accepts keep-alive pings every >= 10 s on an idle connection.

    With gRPC's default server policy (one ping per 5 minutes, 2 strikes) the fourth ping of an
    11 s keep-alive arrives at 44 s and the server answers GOAWAY too_many_pings, ending the
    stream with UNAVAILABLE; a server that allows pings every 10 s keeps it open.
    """
    noise = dict(epsilon=0.5, num_samples=4, seed=1)
    with perturbd.Client(address, timeout=30, keepalive_time_s=11, retries=0) as c:
        with c.stream(timeout=100) as s:
            assert s.submit(problems.Argmax(), np.ones(3), **noise).result(30) is not None
            time.sleep(50)
            r = s.submit(problems.Argmax(), np.ones(3), **noise).result(30)
            assert r.solution.shape == (3,)
