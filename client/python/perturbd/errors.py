"""Exceptions raised by the perturbd client.

Every failed RPC is raised as a subclass of :class:`PerturbdError`, one per gRPC status code
(``InvalidArgument``, ``ResourceExhausted``, ``DeadlineExceeded``, ...). Each carries

* ``code``: the :class:`grpc.StatusCode`,
* ``details``: the server's message (for ``InvalidArgument`` it names the offending field, e.g.
  ``noise.epsilon``),
* ``debug_error_string``: gRPC's debug string when there is one.

Client-side mistakes that never reach the server (an array of strings as θ, a negative seed)
raise the usual ``TypeError`` / ``ValueError``.
"""

import grpc

__all__ = [
    "PerturbdError", "Cancelled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound",
    "AlreadyExists", "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted",
    "OutOfRange", "Unimplemented", "Internal", "Unavailable", "DataLoss", "Unauthenticated",
    "ProtocolError", "error_from_rpc", "error_class",
]


class PerturbdError(Exception):
    """A perturbd RPC failed with a non-OK gRPC status.

    Attributes:
      code: grpc.StatusCode of the failure.
      details: the status message (the server's words).
      debug_error_string: gRPC's debug information, or None.
      attempts: for unary calls, the number of attempts made (1 + retries used).
    """

    code = grpc.StatusCode.UNKNOWN
    attempts = 1  # unary calls: how many attempts were made (retries on UNAVAILABLE)

    def __init__(self, details="", code=None, debug_error_string=None):
        super().__init__(details)
        if code is not None:
            self.code = code
        self.details = details
        self.debug_error_string = debug_error_string

    def __str__(self):
        return "%s: %s" % (self.code.name, self.details)

    def _clone(self):
        """A fresh exception with the same contents (one per future that fails with it)."""
        return type(self)(self.details, self.code, self.debug_error_string)


class Cancelled(PerturbdError):
    code = grpc.StatusCode.CANCELLED


class Unknown(PerturbdError):
    code = grpc.StatusCode.UNKNOWN


class InvalidArgument(PerturbdError):
    """Malformed request; the message names the field (e.g. ``theta.shape``)."""
    code = grpc.StatusCode.INVALID_ARGUMENT


class DeadlineExceeded(PerturbdError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class NotFound(PerturbdError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(PerturbdError):
    code = grpc.StatusCode.ALREADY_EXISTS


class PermissionDenied(PerturbdError):
    code = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhausted(PerturbdError):
    """The request exceeds the server's work/size limits, or its admission queue is full."""
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class FailedPrecondition(PerturbdError):
    """E.g. backend='gpu' on a server without a GPU."""
    code = grpc.StatusCode.FAILED_PRECONDITION


class Aborted(PerturbdError):
    code = grpc.StatusCode.ABORTED


class OutOfRange(PerturbdError):
    code = grpc.StatusCode.OUT_OF_RANGE


class Unimplemented(PerturbdError):
    code = grpc.StatusCode.UNIMPLEMENTED


class Internal(PerturbdError):
    code = grpc.StatusCode.INTERNAL


class Unavailable(PerturbdError):
    """Server unreachable or draining; retried by the client (bounded) before being raised."""
    code = grpc.StatusCode.UNAVAILABLE


class DataLoss(PerturbdError):
    code = grpc.StatusCode.DATA_LOSS


class Unauthenticated(PerturbdError):
    code = grpc.StatusCode.UNAUTHENTICATED


class ProtocolError(Internal):
    """The response broke the wire contract (e.g. a tensor whose data does not match its shape)."""


_BY_CODE = {cls.code: cls for cls in (
    Cancelled, Unknown, InvalidArgument, DeadlineExceeded, NotFound, AlreadyExists,
    PermissionDenied, ResourceExhausted, FailedPrecondition, Aborted, OutOfRange, Unimplemented,
    Internal, Unavailable, DataLoss, Unauthenticated)}


def error_class(code):
    """The PerturbdError subclass for a grpc.StatusCode (PerturbdError for unmapped codes)."""
    return _BY_CODE.get(code, PerturbdError)


def error_from_rpc(err):
    """Converts a grpc.RpcError (or anything with code()/details()) into a PerturbdError."""
    code = None
    details = ""
    debug = None
    try:
        code = err.code()
        details = err.details() or ""
    except Exception:  # a bare RpcError without call information
        details = str(err)
    if code != grpc.StatusCode.CANCELLED:
        # A locally cancelled stream never gets a debug string, and asking for it blocks.
        try:
            debug = err.debug_error_string()
        except Exception:
            pass
    if not isinstance(code, grpc.StatusCode):
        code = grpc.StatusCode.UNKNOWN
    return error_class(code)(details, code, debug)
