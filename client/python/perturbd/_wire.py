"""Conversions between numpy and the wire messages: tensors, enums, noise settings.

Tensors travel as raw little-endian row-major bytes (``Tensor{dtype, shape, data}``). Encoding
copies the array once into the message's bytes; decoding is zero-copy: ``np.frombuffer`` over
the response's bytes, so decoded arrays are **read-only** (``arr.copy()`` for a writable one).

The client's own requests and responses skip protobuf for the tensors' bytes (``encode_message``,
``ResponseDecoder``): through the message, a 256 KB θ is copied three times before gRPC sees it
(``tobytes``, the message's field, ``SerializeToString``) and a response tensor twice after
gRPC hands over the bytes (into the parsed message, out to a Python ``bytes``). Each copy is a
fresh large allocation, which glibc serves from newly mapped, page-faulting memory once it has
trimmed its heap: for argmax d=1000, B=64 (256 KB each way) that was ≈ 0.4 ms a call on the
development VM, against ≈ 1 ms for the whole round trip of a trivial solve. Response tensors
are then views over the whole received message, copied only where their data is misaligned.
Responses of at most 64 KiB are parsed by protobuf instead (``ResponseDecoder.small_bytes``):
their tensors are views over the parsed fields' bytes.
"""

import collections
import math
import operator

import numpy as np
from google.protobuf import message

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


def wire_array(array, name="theta", like=None):
    """Returns ``as_float_array(array)`` as a C-contiguous little-endian array: exactly the bytes
    that travel (no copy when it already is one)."""
    a = as_float_array(array, name, like)
    le = a.dtype.newbyteorder("<")
    if a.dtype != le:  # big-endian host or explicitly big-endian input
        a = a.astype(le)
    return a if a.flags.c_contiguous else a.copy(order="C")  # ascontiguousarray makes 0-d 1-d


def encode_tensor_into(msg, array, name="theta", like=None):
    """Fills the Tensor message ``msg`` in place from an array-like (float32/float64 kept).

    Returns the float ndarray that was encoded.
    """
    a = wire_array(array, name, like)
    msg.dtype = _TO_WIRE[a.dtype]
    del msg.shape[:]
    msg.shape.extend(a.shape)
    msg.data = a.tobytes()
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
    data = msg.data
    return _tensor_view(msg, data, 0, len(data), name)


def _tensor_view(header, buf, offset, length, name):
    """The read-only ndarray over ``buf[offset:offset + length]`` that the Tensor ``header``
    (dtype, shape) describes, after checking both against the length."""
    dtype = _FROM_WIRE.get(header.dtype)
    if dtype is None:
        raise ProtocolError("response %s: unsupported dtype %d" % (name, header.dtype))
    shape = tuple(int(s) for s in header.shape)
    if any(s < 0 for s in shape):
        raise ProtocolError("response %s: negative shape %s" % (name, shape))
    expected = math.prod(shape) * dtype.itemsize
    if length != expected:
        raise ProtocolError("response %s: %d data bytes for shape %s and dtype %s (expected %d)"
                            % (name, length, shape, dtype, expected))
    a = np.frombuffer(buf, dtype=dtype, count=length // dtype.itemsize, offset=offset)
    if not a.flags.aligned:
        # The data sits wherever the framing before it left it inside a received message. An
        # aligned copy keeps the arrays as usable as ever (C extensions may assume alignment,
        # and numpy's own loops are slower on misaligned data), read-only like the views.
        a = a.copy()
        a.flags.writeable = False
    return a.reshape(shape)


# --------------------------------------------------------------------------- framing
# Protobuf's wire format (https://protobuf.dev/programming-guides/encoding/), as much of it as
# framing Tensor fields by hand takes: a field is a varint key (number << 3 | wire type) then
# its payload; LEN payloads (wire type 2: bytes, messages, packed repeated) are a varint length
# and that many bytes.

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5
_TENSOR_DATA_KEY = 3 << 3 | _LEN  # Tensor.data


def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _read_varint(buf, pos):
    """(value, next position); IndexError past the end, ValueError past 10 bytes."""
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise ValueError("varint longer than 10 bytes")


def _skip_field(buf, pos, wire_type):
    """The position after a field's payload; ValueError for groups and unknown wire types."""
    if wire_type == _VARINT:
        return _read_varint(buf, pos)[1]
    if wire_type == _LEN:
        n, pos = _read_varint(buf, pos)
        return pos + n
    if wire_type == _I64:
        return pos + 8
    if wire_type == _I32:
        return pos + 4
    raise ValueError("wire type %d" % wire_type)


def _tensor_fields(message_class):
    """{field number: name} of ``message_class``'s Tensor fields."""
    return {f.number: f.name for f in message_class.DESCRIPTOR.fields
            if f.message_type is not None and f.message_type.full_name == "perturbd.v1.Tensor"}


def encode_message(msg, tensors):
    """Serializes ``msg`` with Tensor fields ``tensors``, (field name, ``wire_array``) pairs that
    ``msg`` itself leaves unset, as one ``bytes``: each array is copied once, straight into it.

    The tensor fields follow the others, each once and complete (``Tensor{dtype, shape, data}``
    in field order); protobuf parsers accept fields in any order.
    """
    fields = msg.DESCRIPTOR.fields_by_name
    parts = [msg.SerializeToString()]
    for name, a in tensors:
        header = pb.Tensor(dtype=_TO_WIRE[a.dtype], shape=a.shape).SerializeToString()
        data_prefix = bytes([_TENSOR_DATA_KEY]) + _varint(a.nbytes)
        parts += [_varint(fields[name].number << 3 | _LEN),
                  _varint(len(header) + len(data_prefix) + a.nbytes),
                  header, data_prefix, a]  # bytes.join reads the array's buffer in place
    return b"".join(parts)


Decoded = collections.namedtuple("Decoded", "message tensors")
Decoded.__doc__ = """A decoded response: ``message`` without its Tensor fields; ``tensors``, a
dict from field name to the read-only ndarray of each Tensor field present."""


class ResponseDecoder:
    """Decodes a serialized ``message_class`` (what gRPC receives with no deserializer) into a
    ``Decoded``, each tensor a zero-copy view over those bytes, checked as by ``decode_tensor``
    (ProtocolError). It runs after the call, not as gRPC's deserializer, so that its
    ProtocolErrors reach the caller as such.

    Only the tensors' framing is read here; the rest of the message, a few dozen bytes, is
    parsed by protobuf. Anything out of the ordinary (a Tensor field split over several
    occurrences, a malformed buffer) is left to protobuf's parser whole: the same result, or
    ProtocolError for bytes that do not parse.

    Responses of at most ``small_bytes`` bytes go to protobuf's parser whole anyway: copying
    their few kilobytes costs less than framing them in Python, whose code runs cache-cold
    after each call (argmax d = 10 or a 30×30 grid, B = 4: ≈ 80 µs a call framed, ≈ 58 µs
    parsed, measured right after the RPC; 16 and 12 µs in a warm loop).
    """

    def __init__(self, message_class, small_bytes=64 * 1024):
        self.message_class = message_class
        self.small_bytes = small_bytes
        self._tensor_fields = _tensor_fields(message_class)

    def __call__(self, buf):
        if len(buf) > self.small_bytes:
            try:
                return self._split(buf)
            except (IndexError, ValueError, message.DecodeError):
                pass
        try:
            msg = self.message_class.FromString(buf)
        except message.DecodeError as e:
            raise ProtocolError("response: malformed %s (%s)"
                                % (self.message_class.DESCRIPTOR.name, e)) from None
        tensors = {}
        for name in self._tensor_fields.values():
            if msg.HasField(name):
                tensors[name] = decode_tensor(getattr(msg, name), name)
                msg.ClearField(name)  # as from _split: the tensors apart from the message
        return Decoded(msg, tensors)

    def _split(self, buf):
        view = memoryview(buf)
        rest, spans = [], {}
        pos, end = 0, len(buf)
        while pos < end:
            start = pos
            key, pos = _read_varint(buf, pos)
            name = self._tensor_fields.get(key >> 3)
            if name is None or key & 7 != _LEN:
                pos = _skip_field(buf, pos, key & 7)
                rest.append(view[start:pos])
                continue
            if name in spans:
                raise ValueError("%s occurs twice" % name)  # a merge: protobuf's job
            n, pos = _read_varint(buf, pos)
            spans[name] = (pos, pos + n)
            pos += n
        if pos != end:
            raise ValueError("truncated")
        tensors = {name: self._tensor(buf, view, start, stop, name)
                   for name, (start, stop) in spans.items()}
        msg = self.message_class.FromString(b"".join(rest) if tensors else buf)
        return Decoded(msg, tensors)

    @staticmethod
    def _tensor(buf, view, pos, end, name):
        header, data = [], (end, 0)
        while pos < end:
            start = pos
            key, pos = _read_varint(buf, pos)
            if key == _TENSOR_DATA_KEY:
                n, pos = _read_varint(buf, pos)
                data = (pos, n)  # the last occurrence wins, as in protobuf
                pos += n
            else:
                pos = _skip_field(buf, pos, key & 7)
                header.append(view[start:pos])
        if pos != end:
            raise ValueError("truncated tensor")
        return _tensor_view(pb.Tensor.FromString(b"".join(header)), buf, data[0], data[1], name)


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
