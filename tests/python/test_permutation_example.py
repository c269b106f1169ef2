"""examples/python/permutation_learning.py against the real server, in a tiny configuration:
the assignment Fenchel–Young loss must train and its exact-assignment decoding must beat a
random permutation by far (a few seconds on two cores)."""

import importlib
import sys

import pytest

from conftest import REPO

EXAMPLES = REPO / "examples" / "python"


@pytest.fixture()
def example():
    torch = pytest.importorskip("torch")
    import numpy as np
    threads, torch_rng, np_rng = torch.get_num_threads(), torch.get_rng_state(), \
        np.random.get_state()
    sys.path.insert(0, str(EXAMPLES))
    try:
        yield importlib.import_module("permutation_learning")
    finally:
        sys.path.remove(str(EXAMPLES))
        torch.set_num_threads(threads)
        torch.set_rng_state(torch_rng)
        np.random.set_state(np_rng)


@pytest.mark.timeout(60)
def test_permutation_learning(example, address):
    m = example.main(["--address", address, "--quiet", "--seed", "0", "--train", "240",
                      "--test", "120", "--epochs", "6", "--batch", "30"])
    curve = m["loss_curve"]
    assert curve[-1] < 0.6 * curve[0], curve
    fy, random = m["test"]["fy"], m["test"]["random"]
    assert fy["position_accuracy"] > 0.7, fy
    assert fy["exact_permutation"] > random["exact_permutation"] + 0.3, m["test"]
    assert fy["spearman"] > 0.9, fy
    assert m["rpcs"] == 6 * 8                 # 240 instances / batch 30: one Solve per batch
