"""pytest fixtures for the perturbd Python client tests.

Environment:
  PERTURBD_BIN               server binary (default build/server/perturbd, relative to the
                             repository root).
  PERTURBD_REQUIRE_SERVER    set (CI): a missing binary fails the server tests instead of
                             skipping them.
  PERTURBD_EXPECT_INSTALLED  set (CI): `perturbd` must be the installed package, not the source
                             tree; without it an uninstalled source tree is used (after
                             generating its stubs with client/python/build_stubs.py).
  PERTURBD_TEST_TIMEOUT      per-test time limit in seconds (default 120).

Every test runs under a SIGALRM time limit (the `timeout` marker overrides it), every RPC
under a deadline, and every started server is stopped at the end.
"""

import os
import pathlib
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
SOURCE_PKG = REPO / "client" / "python"
DEFAULT_TIMEOUT = float(os.environ.get("PERTURBD_TEST_TIMEOUT", "120"))
LISTENING = re.compile(r"perturbd listening on (\S+):(\d+)")


def _import_perturbd():
    try:
        import perturbd  # noqa: F401
        return
    except ImportError:
        if os.environ.get("PERTURBD_EXPECT_INSTALLED"):
            raise
    sys.path.insert(0, str(SOURCE_PKG))
    import build_stubs
    build_stubs.generate()
    import perturbd  # noqa: F401


_import_perturbd()

import perturbd  # noqa: E402


# ----------------------------------------------------------------------------- time limits


def pytest_configure(config):
    config.addinivalue_line("markers", "timeout(seconds): per-test time limit (SIGALRM)")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    if item.config.pluginmanager.hasplugin("timeout") or not hasattr(signal, "SIGALRM"):
        yield
        return
    marker = item.get_closest_marker("timeout")
    limit = float(marker.args[0]) if marker else DEFAULT_TIMEOUT

    def on_alarm(signum, frame):
        raise TimeoutError("test exceeded its %g s time limit" % limit)

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# ----------------------------------------------------------------------------- the server


def server_binary():
    """The server binary's path, or skip/fail as the environment asks."""
    path = pathlib.Path(os.environ.get("PERTURBD_BIN") or "build/server/perturbd")
    if not path.is_absolute():
        path = REPO / path
    if not path.is_file() or not os.access(path, os.X_OK):
        msg = ("perturbd server binary not found at %s (set PERTURBD_BIN, or build it)" % path)
        if os.environ.get("PERTURBD_REQUIRE_SERVER"):
            pytest.fail(msg + "; PERTURBD_REQUIRE_SERVER is set", pytrace=False)
        pytest.skip(msg)
    return path


class ServerProcess:
    """A perturbd server on 127.0.0.1 with a free port; output captured in `.log`."""

    def __init__(self, *extra_args, startup_timeout=60.0):
        binary = server_binary()
        self.args = [str(binary), "--listen=127.0.0.1:0", "--metrics_listen=",
                     "--drain_seconds=0", "--shutdown_grace_seconds=5", *extra_args]
        self.log = []
        self._ready = threading.Event()
        self.address = None
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, text=True, bufsize=1)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + startup_timeout
        while not self._ready.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("perturbd did not start (%s); output:\n%s"
                                   % (" ".join(self.args), "".join(self.log)))

    def _read(self):
        for line in self.proc.stdout:
            self.log.append(line)
            m = LISTENING.search(line)
            if m and not self._ready.is_set():
                host = m.group(1)
                if host in ("0.0.0.0", "[::]", ""):
                    host = "127.0.0.1"
                self.address = "%s:%s" % (host, m.group(2))
                self._ready.set()

    def signal(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)

    def stop(self, timeout=20.0):
        """SIGTERM, then SIGKILL after `timeout`; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._reader.join(5)
        return self.proc.returncode


@pytest.fixture(scope="session")
def server():
    srv = ServerProcess()
    yield srv
    rc = srv.stop()
    if rc != 0:
        sys.stderr.write("perturbd exited with %s; output:\n%s" % (rc, "".join(srv.log)))


@pytest.fixture(scope="session")
def address(server):
    return server.address


@pytest.fixture(scope="session")
def client(address):
    c = perturbd.Client(address, timeout=60)
    c.wait_ready(30)
    yield c
    c.close()


@pytest.fixture(scope="session")
def server_info(client):
    return client.list_solvers()
