"""perturbd: Python client for the perturbd differentiable perturbed optimizer service.

    import perturbd
    from perturbd import problems

    client = perturbd.Client("localhost:50051", timeout=30)
    result = client.solve(problems.TopK(2), theta, epsilon=0.5, num_samples=200, seed=1)

Modules: ``perturbd.problems`` (problem builders), ``perturbd.errors`` (exceptions),
``perturbd.torch`` (PyTorch layers; imports torch, so it is not imported here).
"""

try:
    from ._proto import perturbd_pb2 as _pb  # noqa: F401
except ImportError as _e:  # pragma: no cover - only in an unbuilt source tree
    raise ImportError(
        "perturbd: the gRPC stubs in perturbd/_proto/ are missing. Install the package "
        "(pip install --no-build-isolation ./client/python) or run "
        "client/python/build_stubs.py first.") from _e

from . import errors, problems  # noqa: E402
from ._wire import decode_tensor, encode_tensor  # noqa: E402
from .client import (DEFAULT_MAX_MESSAGE_BYTES, MIN_KEEPALIVE_TIME_S, SERVICE_NAME,  # noqa: E402
                     Client, Limits, ServerInfo, SolverInfo, SolverParameter, SolveResult,
                     SolveStats, SolveStream)
from .errors import *  # noqa: E402,F401,F403
from .errors import __all__ as _errors_all  # noqa: E402

__version__ = "0.1.0"

__all__ = ["Client", "SolveResult", "SolveStats", "SolveStream", "ServerInfo", "SolverInfo",
           "SolverParameter", "Limits", "SERVICE_NAME", "DEFAULT_MAX_MESSAGE_BYTES",
           "MIN_KEEPALIVE_TIME_S", "encode_tensor", "decode_tensor", "errors", "problems",
           "__version__"] + list(_errors_all)

from .sharded import ShardedClient, derive_instance_seeds  # noqa: E402  (scale-out)
__all__ += ["ShardedClient", "derive_instance_seeds"]
