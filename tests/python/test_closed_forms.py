"""The service's estimates against closed forms (DESIGN.md §1), through the Python client.

Fixed seeds make every test deterministic; each tolerance is a number of standard errors
(Z_TOL) computed from M and a bound on the per-sample variance, so a correct server fails a
comparison with probability < 1e-6, while the classic bugs (a missing 1/ε, a sum instead of a
mean, a flipped sign, a missing γ offset) are off by far more.
"""

import math

import numpy as np
import pytest

from perturbd import problems

Z_TOL = 5.0
EULER_GAMMA = 0.5772156649015329


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def logsumexp(x):
    m = x.max(-1)
    return m + np.log(np.exp(x - m[..., None]).sum(-1))


def Phi(x):
    return 0.5 * (1.0 + np.vectorize(math.erf)(np.asarray(x) / math.sqrt(2.0)))


def phi(x):
    return np.exp(-0.5 * np.asarray(x) ** 2) / math.sqrt(2 * math.pi)


# ---------------------------------------------------------------------- GUMBEL + argmax

GUMBEL_THETA = np.array([[0.5, -0.3, 1.2, 0.0], [0.0, 0.2, -0.4, 0.1]])
EPS = 0.7
M = 100_000


def test_gumbel_argmax_solution_is_softmax(client):
    r = client.solve(problems.Argmax(), GUMBEL_THETA, epsilon=EPS, num_samples=M, seed=2024,
                     distribution="gumbel", stderr=True)
    p = softmax(GUMBEL_THETA / EPS)
    se = np.sqrt(p * (1 - p) / M)
    assert np.all(np.abs(r.solution - p) <= Z_TOL * se), (r.solution, p)
    # the reported standard error is the Bernoulli one
    np.testing.assert_allclose(r.solution_stderr, se, rtol=0.05)
    # F_ε = ε·logsumexp(θ/ε) + εγ; each sample max_i η_i is Gumbel with scale ε
    f = EPS * logsumexp(GUMBEL_THETA / EPS) + EPS * EULER_GAMMA
    se_f = EPS * math.pi / math.sqrt(6 * M)
    assert np.all(np.abs(r.value - f) <= Z_TOL * se_f), (r.value, f)


@pytest.mark.parametrize("vr", [None, "none", "leave_one_out", "unperturbed"])
def test_gumbel_argmax_jacobian(client, vr):
    r = client.solve(problems.Argmax(), GUMBEL_THETA, epsilon=EPS, num_samples=M, seed=77,
                     distribution="gumbel", variance_reduction=vr, jacobian=True)
    p = softmax(GUMBEL_THETA / EPS)
    want = (np.einsum("bi,ij->bij", p, np.eye(4)) - np.einsum("bi,bj->bij", p, p)) / EPS
    # per-sample term (y_i − c_i)·(1 − e^{−Z_j}) / ε with |y_i − c_i| ≤ 1 and E[(1−e^{−Z})²] = 1
    se = 1.0 / (EPS * math.sqrt(M))
    err = np.abs(r.jacobian - want)
    assert np.all(err <= Z_TOL * se), (vr, err.max(), Z_TOL * se)


def test_gumbel_fenchel_young_loss_is_scaled_cross_entropy(client):
    # E[(1/M) Σ ⟨η_m, y_m − y⟩] = ε·lse(θ/ε) + εγ − ⟨θ, y⟩ − εγ·Σy = ε·CE(softmax(θ/ε), y)
    y = np.eye(4)[[2, 3]]
    r = client.solve(problems.Argmax(), GUMBEL_THETA, targets=y, epsilon=EPS, num_samples=M,
                     seed=5, distribution="gumbel")
    want = EPS * logsumexp(GUMBEL_THETA / EPS) - (GUMBEL_THETA * y).sum(-1)
    se = EPS * math.pi * math.sqrt(2.0 / 3.0) / math.sqrt(M)
    assert np.all(np.abs(r.loss - want) <= Z_TOL * se), (r.loss, want)
    np.testing.assert_allclose(r.loss_grad, r.solution - y, rtol=0, atol=1e-12)


# ---------------------------------------------------------------------- NORMAL + threshold

THRESH_THETA = np.array([-1.5, -0.6, -0.1, 0.0, 0.2, 0.8, 1.7])
T_EPS = 0.8


def test_normal_threshold_is_Phi(client):
    r = client.solve(problems.Threshold(), THRESH_THETA, epsilon=T_EPS, num_samples=M, seed=31,
                     jacobian=True)
    p = Phi(THRESH_THETA / T_EPS)
    se = np.sqrt(p * (1 - p) / M)
    assert np.all(np.abs(r.solution - p) <= Z_TOL * se), (r.solution, p)
    # J = diag(φ(θ/ε)/ε); per-sample term (y_i − c_i)·Z_j/ε has variance ≤ E[Z²]/ε² = 1/ε²
    want = np.diag(phi(THRESH_THETA / T_EPS) / T_EPS)
    assert np.all(np.abs(r.jacobian - want) <= Z_TOL / (T_EPS * math.sqrt(M)))
    # F_ε = Σ_i E[max(θ_i + εZ, 0)] = Σ_i θ_i Φ(θ_i/ε) + ε φ(θ_i/ε)
    f = np.sum(THRESH_THETA * p + T_EPS * phi(THRESH_THETA / T_EPS))
    se_f = T_EPS * math.sqrt(len(THRESH_THETA) / M)
    assert abs(float(r.value) - f) <= Z_TOL * se_f


def test_normal_threshold_minimize_flips(client):
    r = client.solve(problems.Threshold(sense="minimize"), THRESH_THETA, epsilon=T_EPS,
                     num_samples=M, seed=32)
    p = Phi(-THRESH_THETA / T_EPS)     # MINIMIZE: y = 1[η < 0]
    se = np.sqrt(p * (1 - p) / M)
    assert np.all(np.abs(r.solution - p) <= Z_TOL * se)


def test_normal_two_way_argmax(client):
    theta = np.array([[0.3, 0.0], [-0.2, 0.5]])
    eps = 0.5
    r = client.solve(problems.Argmax(), theta, epsilon=eps, num_samples=M, seed=8)
    p1 = Phi((theta[:, 0] - theta[:, 1]) / (math.sqrt(2) * eps))
    se = np.sqrt(p1 * (1 - p1) / M)
    assert np.all(np.abs(r.solution[:, 0] - p1) <= Z_TOL * se)
    np.testing.assert_allclose(r.solution.sum(-1), 1.0, rtol=1e-12)


def test_antithetic_normal_is_unbiased(client):
    r = client.solve(problems.Threshold(), THRESH_THETA, epsilon=T_EPS, num_samples=M, seed=33,
                     antithetic=True)
    p = Phi(THRESH_THETA / T_EPS)
    se = np.sqrt(p * (1 - p) / M) * math.sqrt(2)   # pairs: at worst half as many draws
    assert np.all(np.abs(r.solution - p) <= Z_TOL * se)


# ---------------------------------------------------------------------- structure


def test_ranking_fenchel_young_gradient_sums_to_zero(client):
    rng = np.random.default_rng(4)
    theta = rng.normal(size=(3, 6))
    y = np.stack([rng.permutation(6) for _ in range(3)]).astype(float)
    r = client.solve(problems.Ranking(), theta, targets=y, epsilon=0.5, num_samples=500,
                     seed=4)
    np.testing.assert_allclose(r.loss_grad.sum(-1), 0.0, atol=1e-9)
    assert np.all(r.loss >= 0)


def test_fenchel_young_loss_is_nonnegative(client):
    rng = np.random.default_rng(5)
    theta = rng.normal(size=(4, 8))
    y = np.zeros((4, 8))
    y[np.arange(4), rng.integers(0, 8, 4)] = 1
    for sense in ("maximize", "minimize"):
        r = client.solve(problems.TopK(1, sense=sense), theta, targets=y, epsilon=0.3,
                         num_samples=200, seed=6)
        assert np.all(r.loss >= -1e-12), sense


# ---------------------------------------------------------------------- autograd Jacobian


def test_autograd_jacobian_of_perturbed_argmax(client):
    torch = pytest.importorskip("torch")
    from perturbd.torch import PerturbedOptimizer

    theta = GUMBEL_THETA[0]
    layer = PerturbedOptimizer(client, problems.Argmax(), epsilon=EPS, num_samples=M, seed=99,
                               distribution="gumbel")
    th = torch.tensor(theta, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(layer, th).numpy()   # jac[i, j] = ∂y_i/∂θ_j
    p = softmax(theta / EPS)
    want = (np.diag(p) - np.outer(p, p)) / EPS
    assert np.all(np.abs(jac - want) <= Z_TOL / (EPS * math.sqrt(M))), (jac, want)
    # and it is exactly the server's own Jacobian for the same noise (row i = Jᵀe_i)
    server_jac = client.solve(problems.Argmax(), theta, epsilon=EPS, num_samples=M, seed=99,
                              distribution="gumbel", jacobian=True).jacobian
    np.testing.assert_allclose(jac, server_jac, rtol=1e-9, atol=1e-12)
    # Σ_i y_i = 1 for every sample, so every column sums to zero (leave-one-out: exactly)
    np.testing.assert_allclose(jac.sum(0), 0.0, atol=1e-9)
