"""The end-to-end training examples (examples/python/) against the real server, in tiny
configurations: each must train (its loss goes down) and beat a trivial baseline.

The examples are imported and their ``main(argv)`` called with the session server's address
(one test also runs a script as a subprocess with ``--spawn``, as a user would). Seeds are
fixed; the whole file takes well under 90 s on two cores.
"""

import importlib
import json
import os
import subprocess
import sys

import pytest

from conftest import REPO, server_binary

EXAMPLES = REPO / "examples" / "python"


@pytest.fixture(scope="module")
def examples():
    """Imports examples by name; restores the global state they set (torch threads, RNGs)."""
    torch = pytest.importorskip("torch")
    import numpy as np
    threads, torch_rng, np_rng = torch.get_num_threads(), torch.get_rng_state(), \
        np.random.get_state()
    sys.path.insert(0, str(EXAMPLES))
    try:
        yield lambda name: importlib.import_module(name)
    finally:
        sys.path.remove(str(EXAMPLES))
        torch.set_num_threads(threads)
        torch.set_rng_state(torch_rng)
        np.random.set_state(np_rng)


def run(examples, name, address, *argv):
    mod = examples(name)
    return mod.main(["--address", address, "--quiet", "--seed", "0", *argv])


@pytest.mark.timeout(60)
def test_shortest_path_spo(examples, address):
    pytest.importorskip("scipy")
    m = run(examples, "shortest_path_spo", address, "--degrees", "4", "--train", "300",
            "--test", "300", "--epochs", "10", "--samples", "4")
    r = m["results"]["deg4"]
    assert r["loss_last_epoch"] < 0.8 * r["loss_first_epoch"]
    # Trained regret: well below predicting the mean cost and below the untrained model.
    assert r["regret"] < 0.5 * r["regret_mean_cost"], r
    assert r["regret"] < 0.5 * r["regret_untrained"], r
    assert 0.0 <= r["regret"] < 0.2, r
    assert "pyepo_published" not in r        # attached only in the published setting


@pytest.mark.timeout(60)
def test_warcraft_grid(examples, address):
    pytest.importorskip("scipy")
    m = run(examples, "warcraft_grid", address, "--train", "600", "--test", "150",
            "--epochs", "8")
    curve = m["loss_curve"]
    assert curve[-1] < 0.8 * curve[0], curve
    base = m["baseline_constant_cost"]
    assert m["path_accuracy"] > base["path_accuracy"] + 0.2, m
    assert m["cell_accuracy"] > base["cell_accuracy"], m
    assert m["rpcs"] == 8 * 12                # 600 maps / batch 50: one Solve per minibatch


@pytest.mark.timeout(60)
def test_label_ranking(examples, address):
    pytest.importorskip("sklearn")
    m = run(examples, "label_ranking", address, "--datasets", "iris,digits",
            "--epochs", "15")
    for name, r in m["spearman"].items():
        assert r["fy_loss_last_epoch"] < 0.7 * r["fy_loss_first_epoch"], (name, r)
        assert r["fy"] > 0.0, (name, r)
        assert r["fy"] > r["constant"] + 0.2, (name, r)
        assert r["squared"] > r["constant"], (name, r)


@pytest.mark.timeout(60)
def test_digits_argmax(examples, address):
    pytest.importorskip("sklearn")
    m = run(examples, "digits_argmax", address, "--epochs", "6", "--train-limit", "900",
            "--samples", "8")
    fy, ce = m["perturbed_fy"], m["cross_entropy"]
    assert fy["loss_last_epoch"] < 0.5 * fy["loss_first_epoch"], fy
    assert fy["test_accuracy"] > 0.8, fy
    assert ce["test_accuracy"] > 0.8, ce
    assert m["majority_class"]["test_accuracy"] < 0.2


@pytest.mark.timeout(60)
def test_example_script_spawns_its_own_server():
    """A user's run: the script starts the binary itself and ends with one JSON line."""
    pytest.importorskip("torch")
    binary = server_binary()
    env = dict(os.environ)
    # The example must find the client package the way this test session does.
    import perturbd
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(os.path.dirname(perturbd.__file__)), env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "shortest_path_spo.py"), "--spawn", str(binary),
         "--degrees", "2", "--train", "100", "--test", "100", "--epochs", "2"],
        capture_output=True, text=True, timeout=50, env=env, cwd=str(REPO))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert any("regret PFYL" in line for line in lines[:-1])    # progress before the result
    result = json.loads(lines[-1])
    assert result["example"] == "shortest_path_spo"
    assert 0.0 <= result["results"]["deg2"]["regret"] < 1.0
