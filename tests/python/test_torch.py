"""perturbd.torch layers against the real server."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import perturbd  # noqa: E402
from perturbd import problems  # noqa: E402
from perturbd.torch import FenchelYoungLoss, PerturbedOptimizer, draw_seed  # noqa: E402

DTYPES = [torch.float32, torch.float64]
SHAPES = [(3, 6), (6,)]


def _theta(shape, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=dtype)


class CountingClient:
    """Wraps a Client and counts its RPCs."""

    def __init__(self, client):
        self._client = client
        self.calls = []

    def solve(self, *a, **kw):
        self.calls.append(("solve", kw.get("seed")))
        return self._client.solve(*a, **kw)

    def backward(self, *a, **kw):
        self.calls.append(("backward", kw.get("seed")))
        return self._client.backward(*a, **kw)


# ------------------------------------------------------------------------- PerturbedOptimizer


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_gradient_equals_service_backward(client, dtype, shape):
    counting = CountingClient(client)
    layer = PerturbedOptimizer(counting, problems.TopK(2), epsilon=0.5, num_samples=300)
    theta = _theta(shape, dtype).requires_grad_()
    y = layer(theta)
    assert y.shape == theta.shape and y.dtype == dtype and y.device == theta.device
    assert y.requires_grad
    g = _theta(shape, dtype, seed=1)
    (y * g).sum().backward()
    assert theta.grad.dtype == dtype and theta.grad.shape == theta.shape
    seed = layer.last_seed
    assert counting.calls == [("solve", seed), ("backward", seed)]   # the SAME seed
    want = client.backward(problems.TopK(2), theta.detach().numpy(), g.numpy(), epsilon=0.5,
                           num_samples=300, seed=seed)
    np.testing.assert_array_equal(theta.grad.numpy(), want)
    fwd = client.solve(problems.TopK(2), theta.detach().numpy(), epsilon=0.5, num_samples=300,
                       seed=seed)
    np.testing.assert_array_equal(y.detach().numpy(), fwd.solution)


def test_gradient_through_a_graph(client):
    """The layer inside a larger graph: grad = Wᵀ-chain of the service VJP."""
    torch.manual_seed(0)
    lin = torch.nn.Linear(4, 5).double()
    layer = PerturbedOptimizer(client, problems.Argmax(), epsilon=0.3, num_samples=500, seed=3)
    x = torch.randn(2, 4, dtype=torch.float64)
    theta = lin(x)
    w = torch.randn(2, 5, dtype=torch.float64)
    loss = (layer(theta) * w).sum()
    loss.backward()
    vjp = client.backward(problems.Argmax(), theta.detach().numpy(), w.numpy(), epsilon=0.3,
                          num_samples=500, seed=3)
    want_w = torch.from_numpy(np.array(vjp)).T @ x        # ∂loss/∂W = vjpᵀ x
    np.testing.assert_allclose(lin.weight.grad.numpy(), want_w.numpy(), rtol=1e-12, atol=1e-12)


def test_fixed_seed_is_deterministic_fresh_seed_is_not(client):
    theta = torch.zeros(2, 10, dtype=torch.float64)     # all ties: the noise decides
    fixed = PerturbedOptimizer(client, problems.Argmax(), epsilon=1.0, num_samples=8, seed=42)
    a, b = fixed(theta), fixed(theta)
    assert torch.equal(a, b) and fixed.last_seed == 42
    fresh = PerturbedOptimizer(client, problems.Argmax(), epsilon=1.0, num_samples=8)
    c, d = fresh(theta), fresh(theta)
    assert not torch.equal(c, d)
    # fresh seeds come from torch's global RNG: manual_seed makes them reproducible
    torch.manual_seed(7)
    e = fresh(theta)
    s1 = fresh.last_seed
    torch.manual_seed(7)
    f = fresh(theta)
    assert fresh.last_seed == s1 and torch.equal(e, f)
    # ... or from a private generator
    gen = torch.Generator().manual_seed(5)
    own = PerturbedOptimizer(client, problems.Argmax(), epsilon=1.0, num_samples=8,
                             generator=gen)
    g1 = own(theta)
    gen.manual_seed(5)
    assert torch.equal(own(theta), g1)
    # the forward's seed argument overrides, and backward follows it
    theta.requires_grad_()
    y = fresh(theta, seed=123)
    assert fresh.last_seed == 123
    assert torch.equal(y, fixed(theta, seed=123))


def test_fresh_seed_backward_uses_forward_seed(client):
    counting = CountingClient(client)
    layer = PerturbedOptimizer(counting, problems.Argmax(), epsilon=1.0, num_samples=16)
    theta = torch.zeros(2, 5, dtype=torch.float64, requires_grad=True)
    y1 = layer(theta)
    y2 = layer(theta)
    w = torch.arange(5.0, dtype=torch.float64)
    (y1 * w).sum().backward()
    (y2 * w).sum().backward()
    seeds = [s for _, s in counting.calls]
    assert seeds[0] != seeds[1]
    assert sorted(seeds[2:]) == sorted(seeds[:2])    # each backward replays its forward's seed


def test_instance_seeds_pass_through(client):
    theta = _theta((3, 5), torch.float64)
    seeds = [7, 8, 9]
    layer = PerturbedOptimizer(client, problems.Argmax(), epsilon=0.5, num_samples=20, seed=0,
                               instance_seeds=seeds)
    y = layer(theta)
    y_rev = layer(theta.flip(0), instance_seeds=seeds[::-1])
    assert torch.equal(y.flip(0), y_rev)


def test_no_grad_and_half_precision(client):
    layer = PerturbedOptimizer(client, problems.Threshold(), epsilon=0.5, num_samples=50, seed=1)
    with torch.no_grad():
        y = layer(_theta((2, 4), torch.float32).requires_grad_())
    assert not y.requires_grad
    h = layer(_theta((2, 4), torch.float32).half())
    assert h.dtype == torch.float16


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_gradients_follow_float32(client, dtype):
    # float16/bfloat16 travel as float32, so outputs and gradients are the float32 ones rounded
    # to θ's dtype (the copies back go through numpy, which has no bfloat16). θ, g and the
    # weights are exact in both dtypes and the weights are powers of two: equality is exact.
    theta32 = _theta((3, 6), torch.float32, seed=4).to(dtype).float()
    g = torch.arange(18, dtype=torch.float32).reshape(3, 6) / 8 - 1
    w = torch.tensor([1.0, -2.0, 0.5])
    kw = dict(epsilon=0.5, num_samples=200, seed=8)
    layer = PerturbedOptimizer(client, problems.TopK(2), **kw)
    x = theta32.clone().requires_grad_()
    want = layer(x)
    want.backward(g)
    t = theta32.to(dtype).requires_grad_()
    y = layer(t)
    y.backward(g.to(dtype))
    assert y.dtype == dtype and t.grad.dtype == dtype
    assert torch.equal(y, want.detach().to(dtype))
    assert torch.equal(t.grad, x.grad.to(dtype))
    target = torch.zeros(3, 6)
    target[:, 1] = 1
    fy = FenchelYoungLoss(client, problems.TopK(2), reduction="none", **kw)
    x = theta32.clone().requires_grad_()
    (fy(x, target) * w).sum().backward()
    t = theta32.to(dtype).requires_grad_()
    loss = fy(t, target.to(dtype))
    (loss * w.to(dtype)).sum().backward()
    assert loss.dtype == dtype and t.grad.dtype == dtype
    assert torch.equal(t.grad, x.grad.to(dtype))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_tensors(client):
    layer = PerturbedOptimizer(client, problems.TopK(2), epsilon=0.5, num_samples=100, seed=2)
    theta = _theta((3, 6), torch.float32).cuda().requires_grad_()
    y = layer(theta)
    assert y.is_cuda and y.dtype == torch.float32
    y.sum().backward()
    assert theta.grad.is_cuda
    cpu = layer(theta.detach().cpu())
    assert torch.equal(y.detach().cpu(), cpu)


def test_jacobian_via_autograd_matches_service(client):
    theta = _theta(5, torch.float64, seed=9)
    layer = PerturbedOptimizer(client, problems.TopK(2), epsilon=0.5, num_samples=400, seed=11)
    jac = torch.autograd.functional.jacobian(layer, theta).numpy()
    want = client.solve(problems.TopK(2), theta.numpy(), epsilon=0.5, num_samples=400, seed=11,
                        jacobian=True).jacobian
    np.testing.assert_allclose(jac, want, rtol=1e-9, atol=1e-12)


# ------------------------------------------------------------------------- FenchelYoungLoss


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("sense", ["maximize", "minimize"])
def test_fenchel_young_gradient(client, dtype, shape, sense):
    problem = problems.TopK(2, sense=sense)
    theta = _theta(shape, dtype).requires_grad_()
    target = torch.zeros(shape, dtype=dtype)
    target[..., 1] = 1
    target[..., 4] = 1
    counting = CountingClient(client)
    fy = FenchelYoungLoss(counting, problem, epsilon=0.4, num_samples=300, seed=21,
                          reduction="sum")
    loss = fy(theta, target)
    assert loss.shape == () and loss.dtype == dtype
    loss.backward()
    assert counting.calls == [("solve", 21)]          # backward makes no second call
    res = client.solve(problem, theta.detach().numpy(), epsilon=0.4, num_samples=300, seed=21)
    y_eps = torch.from_numpy(res.solution.copy())
    want = y_eps - target if sense == "maximize" else target - y_eps
    if dtype == torch.float64:
        np.testing.assert_allclose(theta.grad.numpy(), want.numpy(), rtol=0, atol=1e-12)
    else:
        np.testing.assert_allclose(theta.grad.numpy(), want.numpy(), rtol=0, atol=1e-6)
    # the loss is the service's, summed
    res_t = client.solve(problem, theta.detach().numpy(), targets=target.numpy(), epsilon=0.4,
                         num_samples=300, seed=21)
    np.testing.assert_allclose(loss.item(), res_t.loss.sum(), rtol=1e-6)
    np.testing.assert_array_equal(fy.last_result.loss_grad, res_t.loss_grad)


def test_fenchel_young_reductions(client):
    theta = _theta((4, 5), torch.float64)
    target = torch.nn.functional.one_hot(torch.tensor([0, 1, 2, 3]), 5).double()
    kw = dict(epsilon=0.5, num_samples=100, seed=3)
    per = FenchelYoungLoss(client, problems.Argmax(), reduction="none", **kw)(theta, target)
    assert per.shape == (4,)
    assert torch.all(per >= 0)
    th = theta.clone().requires_grad_()
    mean = FenchelYoungLoss(client, problems.Argmax(), **kw)(th, target)
    assert torch.allclose(mean, per.mean())
    mean.backward()
    th2 = theta.clone().requires_grad_()
    FenchelYoungLoss(client, problems.Argmax(), reduction="sum", **kw)(th2, target).backward()
    np.testing.assert_allclose(th.grad.numpy(), th2.grad.numpy() / 4, rtol=1e-12)
    # weighted per-instance losses scale the per-instance gradients
    th3 = theta.clone().requires_grad_()
    w = torch.tensor([1.0, 2.0, 0.0, -1.0], dtype=torch.float64)
    (FenchelYoungLoss(client, problems.Argmax(), reduction="none", **kw)(th3, target)
     * w).sum().backward()
    np.testing.assert_allclose(th3.grad.numpy(), th2.grad.numpy() * w[:, None].numpy(),
                               rtol=1e-12)
    with pytest.raises(ValueError):
        FenchelYoungLoss(client, problems.Argmax(), reduction="max", **kw)


def test_fenchel_young_trains(client):
    """A few SGD steps on a linear model reduce the Fenchel–Young loss (sanity, not speed)."""
    torch.manual_seed(0)
    x = torch.randn(32, 6, dtype=torch.float64)
    w_true = torch.randn(6, 5, dtype=torch.float64)
    target = torch.nn.functional.one_hot((x @ w_true).argmax(-1), 5).double()
    model = torch.nn.Linear(6, 5, bias=False).double()
    fy = FenchelYoungLoss(client, problems.Argmax(), epsilon=0.5, num_samples=50)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = fy(model(x), target)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:5]), losses


def test_draw_seed_range():
    gen = torch.Generator().manual_seed(0)
    seeds = {draw_seed(gen) for _ in range(100)}
    assert len(seeds) == 100 and all(0 <= s < 2**63 for s in seeds)


def test_layers_are_modules(client):
    layer = PerturbedOptimizer(client, problems.TopK(3), epsilon=0.5, num_samples=10)
    assert isinstance(layer, torch.nn.Module)
    assert "TopK(k=3" in repr(layer) and "fresh" in repr(layer)
    assert isinstance(FenchelYoungLoss(client, problems.Ranking(), epsilon=1, num_samples=2),
                      torch.nn.Module)
    assert isinstance(client, perturbd.Client)
