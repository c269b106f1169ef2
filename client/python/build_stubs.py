#!/usr/bin/env python3
"""Generates the gRPC/protobuf stubs of perturbd/v1/perturbd.proto into perturbd/_proto/.

Used by setup.py's build step (every `pip install`) and directly, to use the package from the
source tree:

    /usr/bin/python3 client/python/build_stubs.py        # then PYTHONPATH=client/python

The generated files are git-ignored and never committed. The proto is looked for in
$PERTURBD_PROTO_ROOT, then in ../../proto (the repository layout). Two generators are tried in
order: the system `protoc` with `grpc_python_plugin` (Debian's protobuf-compiler and
protobuf-compiler-grpc, whose protoc matches Debian's protobuf runtime) and
`python3 -m grpc_tools.protoc` (python3-grpc-tools or PyPI's grpcio-tools).

protoc names the modules after the proto package (`perturbd.v1.perturbd_pb2`), which would
collide with this package's own name, so the gRPC module's import is rewritten to a relative one
and the module name baked into the message classes to `perturbd._proto.perturbd_pb2`. The file
keeps its canonical descriptor name `perturbd/v1/perturbd.proto`.
"""

import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_REL = os.path.join("perturbd", "v1", "perturbd.proto")
OUT_DIR = os.path.join(HERE, "perturbd", "_proto")

_INIT = '''"""Generated from perturbd/v1/perturbd.proto by build_stubs.py. Do not edit."""
'''


def find_proto_root():
    """Returns the directory that holds perturbd/v1/perturbd.proto, or None."""
    candidates = []
    env = os.environ.get("PERTURBD_PROTO_ROOT")
    if env:
        candidates.append(env)
    candidates.append(os.path.join(HERE, "..", "..", "proto"))
    for root in candidates:
        root = os.path.abspath(root)
        if os.path.isfile(os.path.join(root, PROTO_REL)):
            return root
    return None


def _generators(proto_root, out):
    proto = os.path.join(proto_root, PROTO_REL)
    protoc = shutil.which("protoc")
    plugin = shutil.which("grpc_python_plugin")
    if protoc and plugin:
        yield [protoc, "-I" + proto_root, "--python_out=" + out, "--grpc_python_out=" + out,
               "--plugin=protoc-gen-grpc_python=" + plugin, proto]
    yield [sys.executable, "-m", "grpc_tools.protoc", "-I" + proto_root, "--python_out=" + out,
           "--grpc_python_out=" + out, proto]


def generate(out_dir=OUT_DIR, proto_root=None, verbose=False):
    """Generates perturbd_pb2.py and perturbd_pb2_grpc.py into out_dir; returns out_dir.

    Raises RuntimeError when the proto or every generator is missing.
    """
    proto_root = proto_root or find_proto_root()
    if proto_root is None:
        if _already_generated(out_dir):
            return out_dir  # an sdist that shipped its stubs
        raise RuntimeError(
            "perturbd: cannot find proto/perturbd/v1/perturbd.proto; build from the repository "
            "checkout or set PERTURBD_PROTO_ROOT")
    errors = []
    with tempfile.TemporaryDirectory() as tmp:
        for cmd in _generators(proto_root, tmp):
            proc = subprocess.run(cmd, capture_output=True, text=True)
            gen = os.path.join(tmp, "perturbd", "v1")
            if proc.returncode == 0 and os.path.isfile(os.path.join(gen, "perturbd_pb2_grpc.py")):
                if verbose:
                    print("generated stubs with:", " ".join(cmd))
                _install(gen, out_dir)
                return out_dir
            errors.append("%s -> rc %d: %s" % (" ".join(cmd), proc.returncode,
                                                 (proc.stderr or proc.stdout).strip()))
    raise RuntimeError("perturbd: could not generate the gRPC stubs:\n  " + "\n  ".join(errors))


def _already_generated(out_dir):
    return all(os.path.isfile(os.path.join(out_dir, f))
               for f in ("__init__.py", "perturbd_pb2.py", "perturbd_pb2_grpc.py"))


def _install(gen, out_dir):
    with open(os.path.join(gen, "perturbd_pb2.py"), encoding="utf-8") as f:
        pb2 = f.read()
    with open(os.path.join(gen, "perturbd_pb2_grpc.py"), encoding="utf-8") as f:
        grpc_src = f.read()
    # Module name baked in by protoc >= 3.20 (used for __module__ of the message classes).
    pb2 = pb2.replace("'perturbd.v1.perturbd_pb2'", "'perturbd._proto.perturbd_pb2'")
    old_import = "from perturbd.v1 import perturbd_pb2 as"
    if old_import not in grpc_src:
        raise RuntimeError("perturbd: unexpected grpc stub layout (no %r)" % old_import)
    grpc_src = grpc_src.replace(old_import, "from . import perturbd_pb2 as")
    os.makedirs(out_dir, exist_ok=True)
    for name, text in (("__init__.py", _INIT), ("perturbd_pb2.py", pb2),
                       ("perturbd_pb2_grpc.py", grpc_src)):
        path = os.path.join(out_dir, name)
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)


if __name__ == "__main__":
    out = generate(verbose=True)
    print("stubs in", out)
