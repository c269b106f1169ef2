"""Typed builders for the combinatorial problems (the wire's ``Problem`` message).

Each builder is a small immutable description of the problem *structure*, shared by every
instance of a batch; the per-instance scores/costs are θ, passed to ``Client.solve``. Call
``to_proto()`` for the ``perturbd_pb2.Problem``; the client accepts either form.

``sense``: None (the oracle's natural sense), ``'maximize'`` (y* = argmax ⟨y, θ⟩, θ are scores)
or ``'minimize'`` (y* = argmin ⟨y, θ⟩, θ are costs). The server rejects unsupported pairs
(INVALID_ARGUMENT naming ``problem.sense``).

=====================  ==================  =====================================  =========
builder                d (θ's last axis)   y*(θ)                                  natural
=====================  ==================  =====================================  =========
Argmax()               any ≥ 1             one-hot of the largest θ_i             maximize
TopK(k)                ≥ k                 k-hot of the k largest θ_i             maximize
Threshold()            any ≥ 1             1[θ_i > 0] (minimize: 1[θ_i < 0])      maximize
Ranking()              any ≥ 1             0-based ascending ranks                maximize
GridShortestPath(r,c)  r·c (row-major)     cells on the top-left→bottom-right     minimize
                                           path, both ends included               (only)
GraphShortestPath      number of edges     edges on the source→target path        minimize
Assignment(r, c)       r·c (row-major)     0/1 matching, min(r, c) ones           maximize
SpanningTree           number of edges     edges of a spanning tree (forest)      minimize
Knapsack(w, C)         number of items     chosen items, Σ w·y ≤ C                maximize
LinearProgram          num_variables       optimal vertex / integer point         maximize
=====================  ==================  =====================================  =========

Ties break by lowest index (assignment and linear_program: deterministically, by the
algorithm). Ranking: the smallest θ gets rank 0 (minimize: the largest).
"""

import dataclasses
import math
import operator
from typing import Optional, Tuple

from ._proto import perturbd_pb2 as pb
from ._wire import UINT32_MAX, check_uint, parse_sense

__all__ = ["ProblemSpec", "Argmax", "TopK", "Threshold", "Ranking", "GridShortestPath",
           "GraphShortestPath", "Assignment", "SpanningTree", "Knapsack", "LinearProgram",
           "to_proto"]

INT64_MIN = -2**63
INT64_MAX = 2**63 - 1


def _sense_value(sense):
    return parse_sense(sense)


@dataclasses.dataclass(frozen=True)
class ProblemSpec:
    """Base of the builders. ``sense``: None | 'maximize' | 'minimize'."""

    def to_proto(self):
        """Returns a new ``perturbd_pb2.Problem``."""
        msg = pb.Problem()
        self._fill(msg)
        msg.sense = _sense_value(self.sense)
        return msg

    def _fill(self, msg):  # pragma: no cover - abstract
        raise NotImplementedError

    def dim(self):
        """The length d of θ's last axis this problem expects, or None when any d works."""
        return None


@dataclasses.dataclass(frozen=True)
class Argmax(ProblemSpec):
    """One-hot argmax over the simplex (y ∈ {e_1..e_d}). With GUMBEL noise,
    y_ε(θ) = softmax(θ/ε) exactly in expectation."""
    sense: Optional[str] = None

    def __post_init__(self):
        _sense_value(self.sense)

    def _fill(self, msg):
        msg.argmax.SetInParent()


@dataclasses.dataclass(frozen=True)
class TopK(ProblemSpec):
    """k-hot indicator of the k largest scores (1 ≤ k ≤ d, checked by the server)."""
    k: int
    sense: Optional[str] = None

    def __post_init__(self):
        check_uint(self.k, "k", UINT32_MAX)
        _sense_value(self.sense)

    def _fill(self, msg):
        msg.top_k.k = operator.index(self.k)


@dataclasses.dataclass(frozen=True)
class Threshold(ProblemSpec):
    """Multilabel y_i = 1[θ_i > 0]. With NORMAL noise y_ε(θ) = Φ(θ/ε) coordinatewise."""
    sense: Optional[str] = None

    def __post_init__(self):
        _sense_value(self.sense)

    def _fill(self, msg):
        msg.threshold.SetInParent()


@dataclasses.dataclass(frozen=True)
class Ranking(ProblemSpec):
    """0-based ascending ranks (argsort of argsort): vertices of the permutahedron of
    (0, …, d−1). Maximize: smallest θ gets rank 0; minimize: largest θ gets rank 0."""
    sense: Optional[str] = None

    def __post_init__(self):
        _sense_value(self.sense)

    def _fill(self, msg):
        msg.ranking.SetInParent()


def _as_list(x):
    return x.tolist() if hasattr(x, "tolist") else list(x)


def _edge_lists(edges, edge_sources, edge_targets):
    """(sources, targets) as tuples of uint32 from ``edges`` (pairs or an [E, 2] array) or from
    ``edge_sources`` / ``edge_targets``."""
    if edges is not None:
        if edge_sources is not None or edge_targets is not None:
            raise ValueError("give either edges or edge_sources/edge_targets, not both")
        pairs = [tuple(e) for e in _as_list(edges)]
        if any(len(p) != 2 for p in pairs):
            raise ValueError("edges: expected (source, target) pairs")
        srcs = tuple(p[0] for p in pairs)
        dsts = tuple(p[1] for p in pairs)
    else:
        if edge_sources is None or edge_targets is None:
            raise ValueError("give edges, or both edge_sources and edge_targets")
        srcs = tuple(_as_list(edge_sources))
        dsts = tuple(_as_list(edge_targets))
    if len(srcs) != len(dsts):
        raise ValueError("edge_sources and edge_targets differ in length (%d vs %d)"
                         % (len(srcs), len(dsts)))
    return (tuple(check_uint(s, "edge_sources", UINT32_MAX) for s in srcs),
            tuple(check_uint(t, "edge_targets", UINT32_MAX) for t in dsts))


_CONNECTIVITY = {4: pb.FOUR, 8: pb.EIGHT}


@dataclasses.dataclass(frozen=True)
class GridShortestPath(ProblemSpec):
    """Vertex-cost shortest path on a rows×cols grid from the top-left to the bottom-right cell.

    θ holds the cell costs row-major (d = rows·cols); y marks the cells on the path, both ends
    included. ``connectivity`` is 4 or 8 (neighbours). Minimize only. Negative perturbed costs
    are clamped at zero by the server (counted in ``stats.clamped_costs``): prefer
    ``perturbation='multiplicative'`` for positive costs.
    """
    rows: int
    cols: int
    connectivity: int = 8
    sense: Optional[str] = None

    def __post_init__(self):
        check_uint(self.rows, "rows", UINT32_MAX)
        check_uint(self.cols, "cols", UINT32_MAX)
        if self.connectivity not in _CONNECTIVITY:
            raise ValueError("connectivity: expected 4 or 8, got %r" % (self.connectivity,))
        _sense_value(self.sense)

    def dim(self):
        return self.rows * self.cols

    def _fill(self, msg):
        m = msg.grid_shortest_path
        m.rows = self.rows
        m.cols = self.cols
        m.connectivity = _CONNECTIVITY[self.connectivity]


@dataclasses.dataclass(frozen=True, init=False)
class GraphShortestPath(ProblemSpec):
    """Shortest (or, on a DAG, longest with sense='maximize') path in a directed graph.

    θ holds the edge costs (d = number of edges, in the order given); y marks the edges on the
    path from ``source`` to ``target``. Give the edges either as ``edges`` (pairs (u, v) or an
    [E, 2] array) or as ``edge_sources`` / ``edge_targets``. On a DAG the server uses
    topological DP (any sign); otherwise Dijkstra, clamping negative perturbed costs at zero.
    Self-loops and unreachable targets are INVALID_ARGUMENT; parallel edges are separate
    coordinates; source == target gives the empty path.

        GraphShortestPath(4, [(0, 1), (1, 3), (0, 2), (2, 3)], source=0, target=3)
    """
    num_nodes: int
    edge_sources: Tuple[int, ...]
    edge_targets: Tuple[int, ...]
    source: int
    target: int
    sense: Optional[str]

    def __init__(self, num_nodes, edges=None, source=None, target=None, *, edge_sources=None,
                 edge_targets=None, sense=None):
        srcs, dsts = _edge_lists(edges, edge_sources, edge_targets)
        if source is None or target is None:
            raise ValueError("source and target are required")
        object.__setattr__(self, "num_nodes", check_uint(num_nodes, "num_nodes", UINT32_MAX))
        object.__setattr__(self, "edge_sources", srcs)
        object.__setattr__(self, "edge_targets", dsts)
        object.__setattr__(self, "source", check_uint(source, "source", UINT32_MAX))
        object.__setattr__(self, "target", check_uint(target, "target", UINT32_MAX))
        _sense_value(sense)
        object.__setattr__(self, "sense", sense)

    @property
    def edges(self):
        return list(zip(self.edge_sources, self.edge_targets))

    def dim(self):
        return len(self.edge_sources)

    def _fill(self, msg):
        m = msg.graph_shortest_path
        m.num_nodes = self.num_nodes
        m.edge_sources.extend(self.edge_sources)
        m.edge_targets.extend(self.edge_targets)
        m.source = self.source
        m.target = self.target


@dataclasses.dataclass(frozen=True)
class Assignment(ProblemSpec):
    """Linear assignment: the best 0/1 matching of a rows×cols score matrix.

    θ holds the scores row-major (d = rows·cols); y has at most one 1 per row and per column
    and exactly min(rows, cols) ones (a permutation matrix when rows = cols; a rectangular
    matrix matches its shorter side completely). Maximize (natural) or minimize. Ties are
    broken deterministically by the Jonker–Volgenant algorithm.
    """
    rows: int
    cols: int
    sense: Optional[str] = None

    def __post_init__(self):
        check_uint(self.rows, "rows", UINT32_MAX)
        check_uint(self.cols, "cols", UINT32_MAX)
        _sense_value(self.sense)

    def dim(self):
        return self.rows * self.cols

    def _fill(self, msg):
        msg.assignment.rows = self.rows
        msg.assignment.cols = self.cols


@dataclasses.dataclass(frozen=True, init=False)
class SpanningTree(ProblemSpec):
    """Minimum (natural) or maximum spanning tree of an undirected graph (Kruskal).

    θ holds the edge weights (d = number of edges, in the order given); y marks the edges of
    the tree, or of a spanning forest (one tree per component) when the graph is disconnected.
    Give the edges as ``edges`` (pairs (u, v) or an [E, 2] array) or as ``edge_sources`` /
    ``edge_targets``. Self-loops are INVALID_ARGUMENT; parallel edges are separate coordinates;
    ties go to the lower edge index.

        SpanningTree(4, [(0, 1), (1, 2), (2, 3), (3, 0), (0, 2)])
    """
    num_nodes: int
    edge_sources: Tuple[int, ...]
    edge_targets: Tuple[int, ...]
    sense: Optional[str]

    def __init__(self, num_nodes, edges=None, *, edge_sources=None, edge_targets=None,
                 sense=None):
        srcs, dsts = _edge_lists(edges, edge_sources, edge_targets)
        object.__setattr__(self, "num_nodes", check_uint(num_nodes, "num_nodes", UINT32_MAX))
        object.__setattr__(self, "edge_sources", srcs)
        object.__setattr__(self, "edge_targets", dsts)
        _sense_value(sense)
        object.__setattr__(self, "sense", sense)

    @property
    def edges(self):
        return list(zip(self.edge_sources, self.edge_targets))

    def dim(self):
        return len(self.edge_sources)

    def _fill(self, msg):
        m = msg.spanning_tree
        m.num_nodes = self.num_nodes
        m.edge_sources.extend(self.edge_sources)
        m.edge_targets.extend(self.edge_targets)


def _int64(value, name):
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError("%s: expected an integer, got %r" % (name, value)) from None
    if not INT64_MIN <= v <= INT64_MAX:
        raise ValueError("%s: %d does not fit in int64" % (name, v))
    return v


@dataclasses.dataclass(frozen=True, init=False)
class Knapsack(ProblemSpec):
    """0/1 knapsack: the items of largest total value θ whose weights fit the capacity.

    θ holds the item values (d = len(weights)); y marks the chosen items, Σ weights·y ≤
    capacity. Weights and capacity are non-negative integers (the server checks the sign); the
    server's dynamic program needs a table of about (items + 64)·(capacity/g + 1) bits (g the
    gcd of the weights), and a larger one is RESOURCE_EXHAUSTED: use ``LinearProgram`` with
    integer variables instead. Maximize (natural) or minimize. Ties leave out the
    highest-index items first.
    """
    weights: Tuple[int, ...]
    capacity: int
    sense: Optional[str]

    def __init__(self, weights, capacity, *, sense=None):
        object.__setattr__(self, "weights",
                           tuple(_int64(w, "weights") for w in _as_list(weights)))
        object.__setattr__(self, "capacity", _int64(capacity, "capacity"))
        _sense_value(sense)
        object.__setattr__(self, "sense", sense)

    def dim(self):
        return len(self.weights)

    def _fill(self, msg):
        msg.knapsack.weights.extend(self.weights)
        msg.knapsack.capacity = self.capacity


def _floats(values, name):
    out = []
    for v in _as_list(values):
        try:
            out.append(float(v))
        except (TypeError, ValueError):
            raise TypeError("%s: expected numbers, got %r" % (name, v)) from None
    return tuple(out)


@dataclasses.dataclass(frozen=True, init=False)
class LinearProgram(ProblemSpec):
    """A linear or mixed-integer program over a fixed feasible set (COIN-OR Clp / Cbc):

        y*(θ) = argmax (or argmin) ⟨θ, y⟩  s.t.  row_lower ≤ A y ≤ row_upper,
                variable_lower ≤ y ≤ variable_upper,  y_j integer where integer[j].

    d = num_variables. Give A either dense (``A``: an [m, n] array-like; a scipy.sparse
    matrix works too) or as triplets ``row_index``, ``column_index``, ``coefficient``
    (duplicates are summed; then m = len(row_lower)). ``row_lower`` / ``row_upper`` default to
    −∞ / +∞ for every row when only the other one is given. ``variable_lower`` /
    ``variable_upper``: empty means 0 / +∞ for every variable. ``integer``: a sequence of bools
    or one bool for every variable (empty: all continuous). Infinite bounds are ±inf.

    The server checks feasibility once (an infeasible structure is INVALID_ARGUMENT); a sample
    whose perturbed objective is unbounded fails the request with FAILED_PRECONDITION, so
    bound the variables when θ can point anywhere. y is a vertex (LP) or an integer point
    (MILP): not 0/1 in general.

        # max ⟨θ, y⟩ over {y ∈ [0, 1]^3 : y0 + y1 + y2 ≤ 2}
        LinearProgram(A=[[1, 1, 1]], row_upper=[2], variable_upper=[1, 1, 1])
    """
    num_variables: int
    row_index: Tuple[int, ...]
    column_index: Tuple[int, ...]
    coefficient: Tuple[float, ...]
    row_lower: Tuple[float, ...]
    row_upper: Tuple[float, ...]
    variable_lower: Tuple[float, ...]
    variable_upper: Tuple[float, ...]
    integer: Tuple[bool, ...]
    sense: Optional[str]

    def __init__(self, num_variables=None, *, A=None, row_index=None, column_index=None,
                 coefficient=None, row_lower=None, row_upper=None, variable_lower=(),
                 variable_upper=(), integer=(), sense=None):
        if A is not None:
            if row_index is not None or column_index is not None or coefficient is not None:
                raise ValueError("give either A or row_index/column_index/coefficient, not both")
            if hasattr(A, "tocoo"):  # scipy.sparse
                coo = A.tocoo()
                shape = coo.shape
                rows, cols, vals = _as_list(coo.row), _as_list(coo.col), _as_list(coo.data)
            else:
                dense = [_floats(r, "A") for r in _as_list(A)]
                if len({len(r) for r in dense}) > 1:
                    raise ValueError("A: rows of different lengths")
                shape = (len(dense), len(dense[0]) if dense else 0)
                rows, cols, vals = [], [], []
                for i, r in enumerate(dense):
                    for j, v in enumerate(r):
                        if v != 0.0:
                            rows.append(i)
                            cols.append(j)
                            vals.append(v)
            num_rows = shape[0]
            if num_variables is None:
                num_variables = shape[1]
            elif num_variables != shape[1]:
                raise ValueError("num_variables (%r) differs from A's %d columns"
                                 % (num_variables, shape[1]))
        else:
            rows = _as_list(row_index) if row_index is not None else []
            cols = _as_list(column_index) if column_index is not None else []
            vals = _as_list(coefficient) if coefficient is not None else []
            num_rows = None
        if num_variables is None:
            raise ValueError("num_variables is required (or give A)")
        if row_lower is None and row_upper is None:
            if num_rows is None:
                num_rows = 0
            row_lower, row_upper = [-math.inf] * num_rows, [math.inf] * num_rows
        elif row_lower is None:
            row_lower = [-math.inf] * len(_as_list(row_upper))
        elif row_upper is None:
            row_upper = [math.inf] * len(_as_list(row_lower))
        n = check_uint(num_variables, "num_variables", UINT32_MAX)
        if isinstance(integer, bool):
            integer = [integer] * n
        set_ = object.__setattr__
        set_(self, "num_variables", n)
        set_(self, "row_index", tuple(check_uint(r, "row_index", UINT32_MAX) for r in rows))
        set_(self, "column_index",
             tuple(check_uint(c, "column_index", UINT32_MAX) for c in cols))
        set_(self, "coefficient", _floats(vals, "coefficient"))
        set_(self, "row_lower", _floats(row_lower, "row_lower"))
        set_(self, "row_upper", _floats(row_upper, "row_upper"))
        set_(self, "variable_lower", _floats(variable_lower, "variable_lower"))
        set_(self, "variable_upper", _floats(variable_upper, "variable_upper"))
        set_(self, "integer", tuple(bool(b) for b in _as_list(integer)))
        _sense_value(sense)
        set_(self, "sense", sense)

    def dim(self):
        return self.num_variables

    def _fill(self, msg):
        m = msg.linear_program
        m.num_variables = self.num_variables
        m.row_index.extend(self.row_index)
        m.column_index.extend(self.column_index)
        m.coefficient.extend(self.coefficient)
        m.row_lower.extend(self.row_lower)
        m.row_upper.extend(self.row_upper)
        m.variable_lower.extend(self.variable_lower)
        m.variable_upper.extend(self.variable_upper)
        m.integer.extend(self.integer)


def to_proto(problem):
    """A ``perturbd_pb2.Problem`` from a builder, or the message itself (passed through)."""
    if isinstance(problem, pb.Problem):
        return problem
    if hasattr(problem, "to_proto"):
        msg = problem.to_proto()
        if isinstance(msg, pb.Problem):
            return msg
    raise TypeError("problem: expected a perturbd.problems builder or a perturbd_pb2.Problem, "
                    "got %r" % (problem,))
