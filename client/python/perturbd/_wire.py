"""Conversions between numpy and the wire messages: tensors, enums, noise settings.

Tensors travel as raw little-endian row-major bytes (``Tensor{dtype, shape, data}``). Encoding
copies the array once into the message's bytes; decoding is zero-copy: ``np.frombuffer`` over
the response's bytes, so decoded arrays are **read-only** (``arr.copy()`` for a writable one).
"""

import math
import operator

import numpy as np

from ._proto import perturbd_pb2 as pb
from .errors import ProtocolError

FLOAT32 = np.dtype("<f4")
FLOAT64 = np.dtype("<f8")
_TO_WIRE = {FLOAT32: pb.FLOAT32, FLOAT64: pb.FLOAT64}
_FROM_WIRE = {pb.FLOAT32: FLOAT32, pb.FLOAT64: FLOAT64}

UINT32_MAX = 2**32 - 1
UINT64_MAX = 2**64 - 1


def as_float_array(x, name="theta", like=None):
    """Returns x as a float32 or float64 ndarray (no copy when it already is one).

    float32 and float64 are kept (float32 stays float32 end to end). float16 becomes float32.
    Integers and booleans become ``like``'s dtype when given (targets/cotangents follow θ),
    float64 otherwise. Anything else is a TypeError naming ``name``.
    """
    a = np.asarray(x)
    kind = a.dtype.kind
    if kind == "f":
        if a.dtype.itemsize == 8:
            return a if a.dtype.byteorder in ("=", "<", "|") else a.astype(FLOAT64)
        if a.dtype.itemsize == 4:
            return a if a.dtype.byteorder in ("=", "<", "|") else a.astype(FLOAT32)
        if a.dtype.itemsize < 4:
            return a.astype(FLOAT32)
        raise TypeError("%s: unsupported dtype %s (use float32 or float64)" % (name, a.dtype))
    if kind in "biu":
        return a.astype(like.dtype if like is not None else FLOAT64)
    raise TypeError("%s: unsupported dtype %s (use float32 or float64)" % (name, a.dtype))


def encode_tensor_into(msg, array, name="theta", like=None):
    """Fills the Tensor message ``msg`` in place from an array-like (float32/float64 kept).

    Returns the float ndarray that was encoded.
    """
    a = as_float_array(array, name, like)
    le = a.dtype.newbyteorder("<")
    if a.dtype != le:  # big-endian host or explicitly big-endian input
        a = a.astype(le)
    msg.dtype = _TO_WIRE[np.dtype(le)]
    del msg.shape[:]
    msg.shape.extend(a.shape)
    msg.data = a.tobytes(order="C")
    return a


def encode_tensor(array, name="theta", like=None):
    """Returns a new ``perturbd_pb2.Tensor`` holding ``array`` (see encode_tensor_into)."""
    msg = pb.Tensor()
    encode_tensor_into(msg, array, name, like)
    return msg


def decode_tensor(msg, name="tensor"):
    """Returns the ndarray view of a ``Tensor`` message (zero-copy, read-only).

    dtype '<f4' for FLOAT32, '<f8' for FLOAT64; shape as sent (``[]`` gives a 0-d array).
    Raises ProtocolError when the dtype is unknown or len(data) != prod(shape)·itemsize.
    """
    dtype = _FROM_WIRE.get(msg.dtype)
    if dtype is None:
        raise ProtocolError("response %s: unsupported dtype %d" % (name, msg.dtype))
    shape = tuple(int(s) for s in msg.shape)
    if any(s < 0 for s in shape):
        raise ProtocolError("response %s: negative shape %s" % (name, shape))
    data = msg.data
    expected = math.prod(shape) * dtype.itemsize
    if len(data) != expected:
        raise ProtocolError("response %s: %d data bytes for shape %s and dtype %s (expected %d)"
                            % (name, len(data), shape, dtype, expected))
    return np.frombuffer(data, dtype=dtype).reshape(shape)


# --------------------------------------------------------------------------- enums


def _enum_parser(kind, table, unspecified):
    def parse(value):
        if value is None:
            return unspecified
        if isinstance(value, str):
            key = value.strip().lower().replace("-", "_")
            if key in table:
                return table[key]
            raise ValueError("%s: unknown value %r (one of %s)"
                             % (kind, value, ", ".join(sorted(table))))
        try:
            v = operator.index(value)
        except TypeError:
            raise TypeError("%s: expected a string or None, got %r" % (kind, value)) from None
        if v not in set(table.values()) | {unspecified}:
            raise ValueError("%s: unknown enum value %d" % (kind, v))
        return v
    return parse


parse_distribution = _enum_parser(
    "distribution", {"normal": pb.NORMAL, "gaussian": pb.NORMAL, "gumbel": pb.GUMBEL},
    pb.DISTRIBUTION_UNSPECIFIED)
parse_perturbation = _enum_parser(
    "perturbation", {"additive": pb.ADDITIVE, "multiplicative": pb.MULTIPLICATIVE},
    pb.PERTURBATION_UNSPECIFIED)
parse_variance_reduction = _enum_parser(
    "variance_reduction", {"none": pb.NONE, "leave_one_out": pb.LEAVE_ONE_OUT,
                           "unperturbed": pb.UNPERTURBED},
    pb.VARIANCE_REDUCTION_UNSPECIFIED)
parse_backend = _enum_parser(
    "backend", {"auto": pb.AUTO, "cpu": pb.CPU, "gpu": pb.GPU}, pb.BACKEND_UNSPECIFIED)
parse_sense = _enum_parser(
    "sense", {"maximize": pb.MAXIMIZE, "max": pb.MAXIMIZE, "minimize": pb.MINIMIZE,
              "min": pb.MINIMIZE}, pb.SENSE_UNSPECIFIED)

_SENSE_NAMES = {pb.SENSE_UNSPECIFIED: None, pb.MAXIMIZE: "maximize", pb.MINIMIZE: "minimize"}
_BACKEND_NAMES = {pb.BACKEND_UNSPECIFIED: "auto", pb.AUTO: "auto", pb.CPU: "cpu", pb.GPU: "gpu"}


def sense_name(value):
    return _SENSE_NAMES.get(value, str(value))


def backend_name(value):
    return _BACKEND_NAMES.get(value, str(value))


def check_uint(value, name, maximum):
    """Returns value as an int in [0, maximum] or raises ValueError/TypeError naming it."""
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError("%s: expected an integer, got %r" % (name, value)) from None
    if not 0 <= v <= maximum:
        raise ValueError("%s: %d is outside [0, %d]" % (name, v, maximum))
    return v


def fill_noise(msg, *, epsilon, num_samples, seed, instance_seeds=None, distribution=None,
               perturbation=None, variance_reduction=None, antithetic=False):
    """Fills a ``Noise`` message in place. Only what the wire cannot represent is checked here
    (integer ranges, enum names); ε > 0, M ≥ 1, even M with antithetic... are the server's to
    judge (INVALID_ARGUMENT naming the field)."""
    msg.epsilon = float(epsilon)
    msg.num_samples = check_uint(num_samples, "num_samples", UINT32_MAX)
    msg.seed = check_uint(seed, "seed", UINT64_MAX)
    del msg.instance_seeds[:]
    if instance_seeds is not None:
        # Elementwise, never through np.asarray of the whole list: a list mixing ints ≥ 2⁶³
        # with small ones would become float64 and lose bits.
        if isinstance(instance_seeds, np.ndarray):
            if instance_seeds.ndim != 1:
                raise ValueError("instance_seeds: expected a 1-d sequence, got shape %s"
                                 % (instance_seeds.shape,))
            items = instance_seeds.tolist()
        else:
            items = list(instance_seeds)
            if any(isinstance(s, (list, tuple, np.ndarray)) for s in items):
                raise ValueError("instance_seeds: expected a 1-d sequence")
        msg.instance_seeds.extend(check_uint(s, "instance_seeds", UINT64_MAX) for s in items)
    msg.distribution = parse_distribution(distribution)
    msg.perturbation = parse_perturbation(perturbation)
    msg.variance_reduction = parse_variance_reduction(variance_reduction)
    msg.antithetic = bool(antithetic)
    return msg
