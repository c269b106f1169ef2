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
=====================  ==================  =====================================  =========

Ties break by lowest index. Ranking: the smallest θ gets rank 0 (minimize: the largest).
"""

import dataclasses
import operator
from typing import Optional, Tuple

from ._proto import perturbd_pb2 as pb
from ._wire import UINT32_MAX, check_uint, parse_sense

__all__ = ["ProblemSpec", "Argmax", "TopK", "Threshold", "Ranking", "GridShortestPath",
           "GraphShortestPath", "to_proto"]


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
        if edges is not None:
            if edge_sources is not None or edge_targets is not None:
                raise ValueError("give either edges or edge_sources/edge_targets, not both")
            pairs = [tuple(e) for e in (edges.tolist() if hasattr(edges, "tolist") else edges)]
            if any(len(p) != 2 for p in pairs):
                raise ValueError("edges: expected (source, target) pairs")
            srcs = tuple(p[0] for p in pairs)
            dsts = tuple(p[1] for p in pairs)
        else:
            if edge_sources is None or edge_targets is None:
                raise ValueError("give edges, or both edge_sources and edge_targets")
            srcs = tuple(edge_sources.tolist() if hasattr(edge_sources, "tolist")
                         else edge_sources)
            dsts = tuple(edge_targets.tolist() if hasattr(edge_targets, "tolist")
                         else edge_targets)
        if len(srcs) != len(dsts):
            raise ValueError("edge_sources and edge_targets differ in length (%d vs %d)"
                             % (len(srcs), len(dsts)))
        if source is None or target is None:
            raise ValueError("source and target are required")
        srcs = tuple(check_uint(s, "edge_sources", UINT32_MAX) for s in srcs)
        dsts = tuple(check_uint(t, "edge_targets", UINT32_MAX) for t in dsts)
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
