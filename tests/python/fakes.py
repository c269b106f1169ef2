"""An in-process fake perturbd server (Python gRPC) for testing the client machinery —
retries, deadlines, error mapping, streams, futures, TLS, health — without the C++ binary.

Its arithmetic is NOT the perturbed optimizer: Solve echoes θ as the solution (value = Σθ),
Backward returns 2·cotangent. Only the plumbing is under test here.
"""

import concurrent.futures
import threading
import time

import grpc
import numpy as np

import perturbd
from perturbd._proto import perturbd_pb2 as pb
from perturbd._proto import perturbd_pb2_grpc as pb_grpc


def echo_response(req):
    theta = perturbd.decode_tensor(req.theta)
    resp = pb.SolveResponse(request_id=req.request_id)
    perturbd._wire.encode_tensor_into(resp.solution, theta)
    perturbd._wire.encode_tensor_into(resp.value, theta.sum(axis=-1))
    if req.outputs.jacobian:
        d = theta.shape[-1]
        jac = np.broadcast_to(np.eye(d, dtype=theta.dtype), theta.shape + (d,))
        perturbd._wire.encode_tensor_into(resp.jacobian, jac)
    if req.HasField("targets"):
        y = perturbd.decode_tensor(req.targets).astype(theta.dtype)
        perturbd._wire.encode_tensor_into(resp.loss_grad, theta - y)
        perturbd._wire.encode_tensor_into(resp.loss, ((theta - y) ** 2).sum(axis=-1))
    resp.stats.solves = int(req.noise.num_samples)
    resp.stats.backend = "fake"
    return resp


class FakeServicer(pb_grpc.PerturbedOptimizerServicer):

    def __init__(self):
        self.lock = threading.Lock()
        self.fail_with = []   # status codes for the next unary calls, consumed in order
        self.calls = 0
        self.delay = 0.0
        self.requests = []
        self.stream_delay = 0.0

    def _unary_prologue(self, request, context):
        with self.lock:
            self.calls += 1
            self.requests.append(request)
            code = self.fail_with.pop(0) if self.fail_with else None
        if self.delay:
            time.sleep(self.delay)
        if code is not None:
            context.abort(code, "fake failure %s" % code.name)

    def Solve(self, request, context):
        self._unary_prologue(request, context)
        if request.noise.epsilon <= 0:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "noise.epsilon: must be > 0")
        return echo_response(request)

    def Backward(self, request, context):
        self._unary_prologue(request, context)
        g = perturbd.decode_tensor(request.cotangent)
        resp = pb.BackwardResponse(request_id=request.request_id)
        perturbd._wire.encode_tensor_into(resp.grad_theta, 2 * g)
        return resp

    def SolveStream(self, request_iterator, context):
        for i, req in enumerate(request_iterator):
            theta = perturbd.decode_tensor(req.theta)
            if np.isnan(theta).any():
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "theta: NaN at request %d" % i)
            if self.stream_delay:
                time.sleep(self.stream_delay * ((i * 7) % 3))  # uneven pace
            yield echo_response(req)

    def ListSolvers(self, request, context):
        resp = pb.ListSolversResponse(version="fake", threads=1)
        s = resp.solvers.add(name="argmax", natural_sense=pb.MAXIMIZE)
        s.senses.extend([pb.MAXIMIZE, pb.MINIMIZE])
        s.backends.append(pb.CPU)
        s.parameters.add(name="k", type="uint32", description="d")
        resp.limits.max_work = 123
        return resp


def _health_handler(known):
    def check(raw, context):
        # raw: serialized HealthCheckRequest (field 1: service name)
        name = raw[2:].decode() if raw else ""
        if name not in known:
            context.abort(grpc.StatusCode.NOT_FOUND, "unknown service")
        return b"\x08" + bytes([known[name]])
    handler = grpc.unary_unary_rpc_method_handler(check, request_deserializer=None,
                                                  response_serializer=None)
    return grpc.method_handlers_generic_handler("grpc.health.v1.Health", {"Check": handler})


class FakeServer:
    """Starts a FakeServicer on 127.0.0.1 (insecure, or TLS with `credentials`)."""

    def __init__(self, credentials=None):
        self.servicer = FakeServicer()
        self.server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=8))
        pb_grpc.add_PerturbedOptimizerServicer_to_server(self.servicer, self.server)
        self.server.add_generic_rpc_handlers(
            (_health_handler({"": 1, perturbd.SERVICE_NAME: 2}),))
        if credentials is None:
            port = self.server.add_insecure_port("127.0.0.1:0")
        else:
            port = self.server.add_secure_port("127.0.0.1:0", credentials)
        self.address = "127.0.0.1:%d" % port
        self.server.start()

    def stop(self):
        self.server.stop(grace=None).wait(5)
