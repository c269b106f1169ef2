"""The assignment, spanning_tree, knapsack and linear_program builders: what they put on the
wire (no server), and one round trip each against the real server, checking every per-sample
solution against the problem's constraints."""

import itertools
import math

import numpy as np
import pytest

import perturbd
from perturbd import problems
from perturbd._proto import perturbd_pb2 as pb

NOISE = dict(epsilon=0.05, num_samples=16, seed=7)


# ------------------------------------------------------------------------------ builders


def test_assignment_builder():
    p = problems.Assignment(2, 3, sense="minimize")
    msg = p.to_proto()
    assert msg.WhichOneof("kind") == "assignment"
    assert (msg.assignment.rows, msg.assignment.cols, msg.sense) == (2, 3, pb.MINIMIZE)
    assert p.dim() == 6
    with pytest.raises(ValueError):
        problems.Assignment(-1, 3)


def test_spanning_tree_builder_from_edges_or_lists():
    edges = [(0, 1), (1, 2), (0, 2)]
    a = problems.SpanningTree(3, edges)
    b = problems.SpanningTree(3, edge_sources=[0, 1, 0], edge_targets=[1, 2, 2])
    c = problems.SpanningTree(3, np.array(edges))
    assert a == b == c and hash(a) == hash(c)
    msg = a.to_proto()
    assert msg.WhichOneof("kind") == "spanning_tree"
    assert list(msg.spanning_tree.edge_sources) == [0, 1, 0]
    assert list(msg.spanning_tree.edge_targets) == [1, 2, 2]
    assert msg.spanning_tree.num_nodes == 3 and a.dim() == 3 and a.edges == edges
    assert problems.SpanningTree(3, edges, sense="max").to_proto().sense == pb.MAXIMIZE
    with pytest.raises(ValueError):
        problems.SpanningTree(3, [(0, 1, 2)])
    with pytest.raises(ValueError):
        problems.SpanningTree(3, edge_sources=[0], edge_targets=[])


def test_knapsack_builder():
    p = problems.Knapsack(np.array([2, 3, 4]), 5)
    msg = p.to_proto()
    assert list(msg.knapsack.weights) == [2, 3, 4] and msg.knapsack.capacity == 5
    assert p.dim() == 3 and p.weights == (2, 3, 4)
    problems.Knapsack([-1], 0)  # representable: the server judges the sign
    with pytest.raises(ValueError):
        problems.Knapsack([2**63], 1)
    with pytest.raises(TypeError):
        problems.Knapsack([1.5], 1)


def test_linear_program_builder_dense_and_triplets():
    dense = problems.LinearProgram(A=[[1, 0, 2], [0, 3, 0]], row_upper=[4, 5],
                                   variable_upper=[1, 1, 1], integer=True, sense="min")
    triplets = problems.LinearProgram(3, row_index=[0, 0, 1], column_index=[0, 2, 1],
                                      coefficient=[1, 2, 3], row_lower=[-math.inf] * 2,
                                      row_upper=[4, 5], variable_upper=[1, 1, 1],
                                      integer=[True] * 3, sense="min")
    assert dense == triplets
    msg = dense.to_proto().linear_program
    assert msg.num_variables == 3 and dense.dim() == 3
    assert list(msg.row_index) == [0, 0, 1] and list(msg.coefficient) == [1.0, 2.0, 3.0]
    assert list(msg.row_lower) == [-math.inf, -math.inf] and list(msg.row_upper) == [4.0, 5.0]
    assert list(msg.integer) == [True, True, True]
    # Only lower bounds given: the uppers are +inf; no rows at all is fine.
    ge = problems.LinearProgram(A=np.eye(2), row_lower=[1, 1]).to_proto().linear_program
    assert list(ge.row_upper) == [math.inf, math.inf]
    box = problems.LinearProgram(2, variable_upper=[1, 2]).to_proto().linear_program
    assert len(box.row_lower) == 0 and list(box.variable_upper) == [1.0, 2.0]
    with pytest.raises(ValueError):
        problems.LinearProgram(A=[[1, 2]], row_index=[0])
    with pytest.raises(ValueError):
        problems.LinearProgram(row_index=[0], column_index=[0], coefficient=[1.0])
    with pytest.raises(ValueError):
        problems.LinearProgram(3, A=[[1, 2]])


def test_linear_program_builder_takes_scipy_sparse():
    sparse = pytest.importorskip("scipy.sparse")
    a = sparse.csr_matrix(np.array([[1.0, 0.0], [0.0, 2.0]]))
    p = problems.LinearProgram(A=a, row_upper=[1, 1])
    assert p.num_variables == 2 and sorted(p.coefficient) == [1.0, 2.0]


# ------------------------------------------------------------------------------ round trips


def test_assignment_round_trip(client):
    rng = np.random.default_rng(1)
    theta = rng.normal(size=(2, 9))  # two 3×3 score matrices
    r = client.solve(problems.Assignment(3, 3), theta, samples=True, **NOISE)
    assert r.solution.shape == (2, 9) and r.samples.shape == (2, 16, 9)
    for b in range(2):
        perms = [np.array(p) for p in itertools.permutations(range(3))]
        best = max(perms, key=lambda p: theta[b].reshape(3, 3)[range(3), p].sum())
        for y in r.samples[b].reshape(16, 3, 3):
            assert set(np.unique(y)) <= {0.0, 1.0}
            np.testing.assert_array_equal(y.sum(0), 1)  # a permutation matrix
            np.testing.assert_array_equal(y.sum(1), 1)
        # ε small: every sample is the unperturbed optimum.
        expected = np.zeros((3, 3))
        expected[range(3), best] = 1
        np.testing.assert_allclose(r.solution[b].reshape(3, 3), expected)


def test_spanning_tree_round_trip(client):
    edges = [(0, 1), (1, 2), (2, 3), (3, 0), (0, 2), (4, 5)]  # two components
    theta = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 1.0])
    r = client.solve(problems.SpanningTree(6, edges), theta, samples=True, **NOISE)
    np.testing.assert_allclose(r.solution, [1, 1, 1, 0, 0, 1])  # minimum spanning forest
    assert (r.samples.sum(-1) == 4).all()                       # V − c = 6 − 2 edges
    rmax = client.solve(problems.SpanningTree(6, edges, sense="maximize"), theta, **NOISE)
    np.testing.assert_allclose(rmax.solution, [0, 1, 0, 1, 1, 1])  # 2–3 would close 0–2–3


def test_knapsack_round_trip(client):
    weights, capacity = np.array([2, 3, 4, 5]), 7
    theta = np.array([[3.0, 4.0, 5.5, 6.0], [1.0, -1.0, 1.0, 0.5]])
    r = client.solve(problems.Knapsack(weights, capacity), theta, samples=True, **NOISE)
    assert ((r.samples @ weights) <= capacity).all()
    np.testing.assert_allclose(r.solution, [[0, 1, 1, 0], [1, 0, 1, 0]])
    rmin = client.solve(problems.Knapsack(weights, capacity, sense="min"), theta[1], **NOISE)
    np.testing.assert_allclose(rmin.solution, [0, 1, 0, 0])  # the only negative value


def test_linear_program_round_trip(client):
    # max ⟨θ, y⟩ over y ∈ [0, 1]^3, y0 + y1 + y2 ≤ 1.5: a fractional vertex when the two best
    # scores are positive.
    lp = problems.LinearProgram(A=[[1, 1, 1]], row_upper=[1.5], variable_upper=[1, 1, 1])
    theta = np.array([1.0, 0.5, -1.0])
    r = client.solve(lp, theta, samples=True, jacobian=True, **NOISE)
    np.testing.assert_allclose(r.solution, [1.0, 0.5, 0.0])
    assert r.jacobian.shape == (3, 3)
    # The same with integer variables: y0 only.
    milp = problems.LinearProgram(A=[[1, 1, 1]], row_upper=[1.5], variable_upper=[1, 1, 1],
                                  integer=True)
    np.testing.assert_allclose(client.solve(milp, theta, **NOISE).solution, [1, 0, 0])


def test_linear_program_infeasible_is_invalid_argument(client):
    lp = problems.LinearProgram(A=[[1.0]], row_lower=[2.0], variable_upper=[1.0])
    with pytest.raises(perturbd.InvalidArgument, match="problem.linear_program"):
        client.solve(lp, np.ones(1), **NOISE)


def test_linear_program_unbounded_sample_is_failed_precondition(client):
    lp = problems.LinearProgram(1)  # y ≥ 0, no upper bound: max θ·y is unbounded for θ > 0
    theta = np.array([[-1.0], [1.0]])  # instance 0 is bounded (y = 0), instance 1 is not
    with pytest.raises(perturbd.FailedPrecondition, match=r"unbounded.*instance 1"):
        client.solve(lp, theta, **NOISE)
    r = client.solve(lp, theta[:1], **NOISE)
    np.testing.assert_array_equal(r.solution, [[0.0]])
