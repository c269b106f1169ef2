"""Pure-Python parts of the client: problem builders, tensor codec, enums, error mapping.
No server needed."""

import os
import pathlib

import grpc
import numpy as np
import pytest

import perturbd
from perturbd import problems
from perturbd._proto import perturbd_pb2 as pb
from perturbd._wire import fill_noise


# ------------------------------------------------------------------------------ package


def test_package_location():
    """In CI (PERTURBD_EXPECT_INSTALLED) the tests must run against the installed package."""
    src = (pathlib.Path(__file__).resolve().parents[2] / "client" / "python").resolve()
    where = pathlib.Path(perturbd.__file__).resolve()
    if os.environ.get("PERTURBD_EXPECT_INSTALLED"):
        assert src not in where.parents, "perturbd imported from the source tree: %s" % where
    assert (where.parent / "_proto" / "perturbd_pb2_grpc.py").is_file()


def test_generated_stubs_are_package_local():
    assert pb.SolveRequest.__module__ == "perturbd._proto.perturbd_pb2"
    assert pb.DESCRIPTOR.name == "perturbd/v1/perturbd.proto"
    assert pb.DESCRIPTOR.package == "perturbd.v1"


# ------------------------------------------------------------------------------ problems


def test_argmax_topk_threshold_ranking():
    assert problems.Argmax().to_proto().WhichOneof("kind") == "argmax"
    assert problems.Argmax().to_proto().sense == pb.SENSE_UNSPECIFIED
    p = problems.TopK(3, sense="maximize").to_proto()
    assert p.WhichOneof("kind") == "top_k" and p.top_k.k == 3 and p.sense == pb.MAXIMIZE
    assert problems.Threshold(sense="minimize").to_proto().sense == pb.MINIMIZE
    assert problems.Threshold().to_proto().WhichOneof("kind") == "threshold"
    assert problems.Ranking(sense="MIN").to_proto().sense == pb.MINIMIZE
    assert problems.Ranking().to_proto().WhichOneof("kind") == "ranking"


def test_grid_shortest_path():
    p = problems.GridShortestPath(3, 4).to_proto()
    assert p.WhichOneof("kind") == "grid_shortest_path"
    g = p.grid_shortest_path
    assert (g.rows, g.cols, g.connectivity) == (3, 4, pb.EIGHT)
    assert problems.GridShortestPath(2, 5, connectivity=4).to_proto() \
        .grid_shortest_path.connectivity == pb.FOUR
    assert problems.GridShortestPath(3, 4).dim() == 12
    with pytest.raises(ValueError, match="connectivity"):
        problems.GridShortestPath(3, 3, connectivity=6)


def test_graph_shortest_path_from_edges_or_lists():
    edges = [(0, 1), (1, 3), (0, 2), (2, 3)]
    a = problems.GraphShortestPath(4, edges, source=0, target=3)
    b = problems.GraphShortestPath(4, source=0, target=3, edge_sources=[0, 1, 0, 2],
                                   edge_targets=np.array([1, 3, 2, 3]))
    c = problems.GraphShortestPath(4, np.array(edges), 0, 3)
    assert a == b == c
    assert a.dim() == 4 and a.edges == edges
    g = a.to_proto().graph_shortest_path
    assert list(g.edge_sources) == [0, 1, 0, 2] and list(g.edge_targets) == [1, 3, 2, 3]
    assert (g.num_nodes, g.source, g.target) == (4, 0, 3)
    with pytest.raises(ValueError):
        problems.GraphShortestPath(4, edges, source=0)           # no target
    with pytest.raises(ValueError):
        problems.GraphShortestPath(4, source=0, target=1, edge_sources=[0], edge_targets=[])
    with pytest.raises(ValueError):
        problems.GraphShortestPath(4, [(0, 1, 2)], 0, 1)
    with pytest.raises(ValueError):
        problems.GraphShortestPath(4, [(0, -1)], 0, 1)


def test_builder_validation():
    with pytest.raises(ValueError, match="sense"):
        problems.Argmax(sense="sideways")
    with pytest.raises(ValueError, match="k"):
        problems.TopK(-1)
    with pytest.raises(TypeError):
        problems.TopK(1.5)
    problems.TopK(0)  # representable: the server judges k = 0 (INVALID_ARGUMENT)


def test_to_proto_passthrough_and_type_error():
    raw = pb.Problem()
    raw.argmax.SetInParent()
    assert problems.to_proto(raw) is raw
    with pytest.raises(TypeError):
        problems.to_proto("argmax")


def test_builders_are_immutable_and_hashable():
    p = problems.TopK(2)
    with pytest.raises(Exception):
        p.k = 3
    assert {problems.TopK(2), problems.TopK(2)} == {p}


# ------------------------------------------------------------------------------ tensors


@pytest.mark.parametrize("dtype,wire", [(np.float32, pb.FLOAT32), (np.float64, pb.FLOAT64)])
@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 3, 4), (), (0, 3)])
def test_tensor_round_trip(dtype, wire, shape):
    a = np.asarray(np.arange(int(np.prod(shape))).reshape(shape) * 0.5 - 1, dtype=dtype)
    t = perturbd.encode_tensor(a)
    assert t.dtype == wire and tuple(t.shape) == shape
    assert len(t.data) == a.size * np.dtype(dtype).itemsize
    assert t.data == a.astype(np.dtype(dtype).newbyteorder("<")).tobytes()
    b = perturbd.decode_tensor(t)
    assert b.dtype == np.dtype(dtype) and b.shape == shape
    np.testing.assert_array_equal(a, b)


def test_decode_is_zero_copy_and_read_only():
    t = perturbd.encode_tensor(np.ones((4, 3), np.float32))
    data = t.data
    a = perturbd.decode_tensor(t)
    assert not a.flags.writeable
    assert a.base is not None
    # the array views a bytes object with the payload: no intermediate copy into numpy memory
    base = a
    while isinstance(base, np.ndarray):
        base = base.base
    assert isinstance(base, bytes) and base == data


def test_encode_non_contiguous_big_endian_and_integers():
    a = np.arange(12, dtype=np.float64).reshape(3, 4)[:, ::2]   # non-contiguous
    np.testing.assert_array_equal(perturbd.decode_tensor(perturbd.encode_tensor(a)), a)
    be = np.arange(4, dtype=">f4")
    t = perturbd.encode_tensor(be)
    assert t.dtype == pb.FLOAT32
    np.testing.assert_array_equal(perturbd.decode_tensor(t), be.astype(np.float32))
    assert perturbd.encode_tensor([1, 2, 3]).dtype == pb.FLOAT64
    assert perturbd.encode_tensor(np.array([1, 2], np.int32)).dtype == pb.FLOAT64
    assert perturbd.encode_tensor(np.array([1, 2], np.float16)).dtype == pb.FLOAT32
    like = np.zeros(2, np.float32)
    assert perturbd._wire.encode_tensor(np.array([0, 1]), "targets", like=like).dtype == pb.FLOAT32
    with pytest.raises(TypeError, match="theta"):
        perturbd.encode_tensor(np.array(["a"]))
    with pytest.raises(TypeError):
        perturbd.encode_tensor(np.array([1j]))


def test_decode_rejects_inconsistent_tensors():
    t = pb.Tensor(dtype=pb.FLOAT32, shape=[2, 2], data=b"\0" * 12)
    with pytest.raises(perturbd.ProtocolError, match="data bytes"):
        perturbd.decode_tensor(t)
    with pytest.raises(perturbd.ProtocolError, match="dtype"):
        perturbd.decode_tensor(pb.Tensor(dtype=pb.DTYPE_UNSPECIFIED, shape=[1], data=b"\0" * 4))


# ------------------------------------------------------------------------------ framing
# The client frames its requests' tensors and reads its responses' tensors itself (_wire);
# protobuf's parser and serializer are the reference.


def _solve_response(**tensors):
    resp = pb.SolveResponse(request_id="r7")
    for name, a in tensors.items():
        perturbd._wire.encode_tensor_into(getattr(resp, name), a, name)
    resp.stats.solves = 12
    resp.stats.backend = "cpu"
    return resp


def test_encoded_request_parses_as_protobufs_own():
    th = np.arange(12, dtype=np.float64).reshape(3, 4)[:, ::2]      # non-contiguous
    targets = np.arange(6, dtype=">f8").reshape(3, 2)                # big-endian
    got = pb.SolveRequest.FromString(perturbd.Client._solve_request(
        problems.Argmax(), th, epsilon=0.5, num_samples=3, seed=4, targets=targets,
        request_id="x"))
    want = pb.SolveRequest(request_id="x")
    want.problem.argmax.SetInParent()
    perturbd._wire.encode_tensor_into(want.theta, th)
    perturbd._wire.encode_tensor_into(want.targets, targets)
    fill_noise(want.noise, epsilon=0.5, num_samples=3, seed=4, distribution="normal",
               perturbation="additive")
    want.outputs.SetInParent()
    want.backend = pb.AUTO
    assert got == want


@pytest.mark.parametrize("shape", [(5,), (3, 4), (), (0, 3)])
def test_encode_message_tensor_shapes(shape):
    a = np.asarray(np.arange(int(np.prod(shape))).reshape(shape) * 0.5, np.float32)
    raw = perturbd._wire.encode_message(pb.BackwardRequest(request_id="q"),
                                        [("theta", a), ("cotangent", a.astype(np.float64))])
    req = pb.BackwardRequest.FromString(raw)
    assert req.request_id == "q" and req.HasField("theta") and req.HasField("cotangent")
    assert req.theta == perturbd.encode_tensor(a)
    assert req.cotangent == perturbd.encode_tensor(a.astype(np.float64))


# Both paths of the decoder: Python framing (small_bytes=0) and protobuf's parser (small).
DECODER_PATHS = pytest.mark.parametrize("small_bytes", [0, 64 * 1024])


@DECODER_PATHS
@pytest.mark.parametrize("request_id", ["", "a", "ab", "abc", "s1234"])  # every alignment
def test_response_decoder_matches_protobuf(request_id, small_bytes):
    resp = _solve_response(solution=np.arange(12, dtype=np.float32).reshape(3, 4),
                           value=np.arange(3, dtype=np.float64), loss=np.float32(2.5),
                           samples=np.zeros((3, 0, 4), np.float32))
    resp.request_id = request_id
    decode = perturbd._wire.ResponseDecoder(pb.SolveResponse, small_bytes=small_bytes)
    msg, tensors = decode(resp.SerializeToString())
    assert msg.request_id == request_id and msg.stats == resp.stats
    assert not msg.HasField("solution")    # tensors come apart from the message
    assert sorted(tensors) == ["loss", "samples", "solution", "value"]
    for name, a in tensors.items():
        want = perturbd.decode_tensor(getattr(resp, name))
        assert a.dtype == want.dtype and a.shape == want.shape
        np.testing.assert_array_equal(a, want)
        assert not a.flags.writeable and a.flags.aligned


@DECODER_PATHS
def test_response_decoder_unusual_encodings(small_bytes):
    decode = perturbd._wire.ResponseDecoder(pb.SolveResponse, small_bytes=small_bytes)
    y = np.arange(6, dtype=np.float32).reshape(2, 3)
    # A Tensor field split over two occurrences merges (protobuf semantics).
    head = pb.SolveResponse(solution=pb.Tensor(dtype=pb.FLOAT32, shape=[2, 3]))
    tail = pb.SolveResponse(solution=pb.Tensor(data=y.tobytes()))
    msg, tensors = decode(head.SerializeToString() + tail.SerializeToString())
    np.testing.assert_array_equal(tensors["solution"], y)
    # Unknown fields (a newer server) are skipped, inside and outside tensors.
    unknown = bytes([15 << 3 | 0, 5])  # field 15, a varint
    t = perturbd.encode_tensor(y).SerializeToString() + unknown
    raw = bytes([2 << 3 | 2, len(t)]) + t + unknown
    msg, tensors = decode(raw)
    np.testing.assert_array_equal(tensors["solution"], y)
    # An empty response has no tensors.
    assert decode(b"") == (pb.SolveResponse(), {})


@DECODER_PATHS
def test_response_decoder_rejects_bad_responses(small_bytes):
    decode = perturbd._wire.ResponseDecoder(pb.SolveResponse, small_bytes=small_bytes)
    raw = _solve_response(solution=np.ones((2, 2), np.float32)).SerializeToString()
    with pytest.raises(perturbd.ProtocolError, match="malformed"):
        decode(raw[:-3])
    bad = pb.SolveResponse(solution=pb.Tensor(dtype=pb.FLOAT32, shape=[2, 2], data=b"\0" * 12))
    with pytest.raises(perturbd.ProtocolError, match="solution: 12 data bytes"):
        decode(bad.SerializeToString())
    with pytest.raises(perturbd.ProtocolError, match="dtype"):
        decode(pb.SolveResponse(value=pb.Tensor(shape=[1], data=b"\0" * 4)).SerializeToString())


# ------------------------------------------------------------------------------ noise / enums


def test_fill_noise():
    n = fill_noise(pb.Noise(), epsilon=0.5, num_samples=10, seed=2**64 - 1,
                   instance_seeds=np.array([1, 2], np.uint64), distribution="GUMBEL",
                   perturbation="multiplicative", variance_reduction="leave-one-out",
                   antithetic=True)
    assert (n.epsilon, n.num_samples, n.seed) == (0.5, 10, 2**64 - 1)
    assert list(n.instance_seeds) == [1, 2]
    assert (n.distribution, n.perturbation, n.variance_reduction, n.antithetic) == (
        pb.GUMBEL, pb.MULTIPLICATIVE, pb.LEAVE_ONE_OUT, True)
    n = fill_noise(pb.Noise(), epsilon=1, num_samples=1, seed=0)
    assert n.variance_reduction == pb.VARIANCE_REDUCTION_UNSPECIFIED
    assert n.distribution == pb.DISTRIBUTION_UNSPECIFIED
    # ε and M are the server's to judge; only what the wire cannot carry is rejected here
    fill_noise(pb.Noise(), epsilon=0.0, num_samples=0, seed=0)
    with pytest.raises(ValueError, match="seed"):
        fill_noise(pb.Noise(), epsilon=1, num_samples=1, seed=-1)
    with pytest.raises(ValueError, match="num_samples"):
        fill_noise(pb.Noise(), epsilon=1, num_samples=2**32, seed=0)
    with pytest.raises(ValueError, match="distribution"):
        fill_noise(pb.Noise(), epsilon=1, num_samples=1, seed=0, distribution="cauchy")
    with pytest.raises(ValueError, match="variance_reduction"):
        fill_noise(pb.Noise(), epsilon=1, num_samples=1, seed=0, variance_reduction="lol")


def test_request_building():
    # Requests are built serialized (bytes): parse them back to inspect them.
    req = pb.SolveRequest.FromString(perturbd.Client._solve_request(
        problems.TopK(2), np.zeros((3, 4), np.float32), epsilon=0.1, num_samples=5, seed=9,
        targets=np.zeros((3, 4), np.int64), jacobian=True, stderr=True, backend="cpu",
        request_id="abc"))
    assert req.request_id == "abc" and req.problem.top_k.k == 2
    assert req.theta.dtype == pb.FLOAT32 and list(req.theta.shape) == [3, 4]
    assert req.targets.dtype == pb.FLOAT32  # integer targets follow θ's dtype
    assert req.outputs.jacobian and req.outputs.stderr and not req.outputs.samples
    assert req.backend == pb.CPU and req.noise.seed == 9
    req = pb.BackwardRequest.FromString(perturbd.Client._backward_request(
        problems.Argmax(), np.zeros(4), np.ones(4, np.float32), epsilon=1, num_samples=2,
        seed=1))
    assert req.theta.dtype == pb.FLOAT64 and req.cotangent.dtype == pb.FLOAT32


# ------------------------------------------------------------------------------ errors


class _FakeRpcError(grpc.RpcError):
    def __init__(self, code, details):
        self._code, self._details = code, details

    def code(self):
        return self._code

    def details(self):
        return self._details

    def debug_error_string(self):
        return "debug"


@pytest.mark.parametrize("code,cls", [
    (grpc.StatusCode.INVALID_ARGUMENT, perturbd.InvalidArgument),
    (grpc.StatusCode.RESOURCE_EXHAUSTED, perturbd.ResourceExhausted),
    (grpc.StatusCode.FAILED_PRECONDITION, perturbd.FailedPrecondition),
    (grpc.StatusCode.DEADLINE_EXCEEDED, perturbd.DeadlineExceeded),
    (grpc.StatusCode.UNAVAILABLE, perturbd.Unavailable),
    (grpc.StatusCode.CANCELLED, perturbd.Cancelled),
    (grpc.StatusCode.INTERNAL, perturbd.Internal),
    (grpc.StatusCode.UNIMPLEMENTED, perturbd.Unimplemented),
    (grpc.StatusCode.NOT_FOUND, perturbd.NotFound),
])
def test_error_mapping(code, cls):
    err = perturbd.errors.error_from_rpc(_FakeRpcError(code, "noise.epsilon: must be > 0"))
    assert type(err) is cls and isinstance(err, perturbd.PerturbdError)
    assert err.code == code and err.details == "noise.epsilon: must be > 0"
    # (a locally cancelled stream has no debug string, and asking for one would block)
    assert err.debug_error_string == (None if code == grpc.StatusCode.CANCELLED else "debug")
    assert code.name in str(err) and "noise.epsilon" in str(err)
    clone = err._clone()
    assert type(clone) is cls and clone.details == err.details and clone is not err


def test_error_mapping_without_call_info():
    err = perturbd.errors.error_from_rpc(grpc.RpcError("boom"))
    assert type(err) is perturbd.Unknown and err.code == grpc.StatusCode.UNKNOWN
    assert issubclass(perturbd.ProtocolError, perturbd.Internal)


def test_instance_seeds_mixing_large_and_small_ints_keep_every_bit():
    msg = pb.Noise()
    seeds = [3, 2**64 - 1, 2**63 + 5, 0]
    fill_noise(msg, epsilon=1.0, num_samples=2, seed=1, instance_seeds=seeds)
    assert list(msg.instance_seeds) == seeds
