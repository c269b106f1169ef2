"""PyTorch layers backed by a perturbd server.

    import torch, perturbd
    from perturbd import problems
    from perturbd.torch import PerturbedOptimizer, FenchelYoungLoss

    client = perturbd.Client("localhost:50051", timeout=60)
    topk = PerturbedOptimizer(client, problems.TopK(3), epsilon=0.5, num_samples=100)
    y = topk(theta)                    # θ [B, d] or [d] -> y_ε(θ), same shape/dtype/device
    y.sum().backward()                 # one Backward RPC, same seed => same noise

    fy = FenchelYoungLoss(client, problems.Ranking(), epsilon=1.0, num_samples=100)
    loss = fy(theta, y_true)           # one Solve with targets; backward uses its loss_grad

Conventions:

* θ is [B, d] or [d] (one instance); float32 and float64 are kept (float16/bfloat16 are sent as
  float32 and the result cast back). CPU and CUDA tensors work: θ is copied to the host, results
  copied back to θ's device.
* Seeds: ``seed=None`` (default) draws a fresh uint63 seed per forward call from
  ``generator`` (a ``torch.Generator``; default: torch's global RNG, so ``torch.manual_seed``
  makes a run reproducible). An integer ``seed`` is used for every call: a sample-average
  approximation with a deterministic, piecewise-constant y_ε. The seed of the last forward is
  in ``.last_seed``.
* ``PerturbedOptimizer``'s backward sends the SAME problem, θ, seed and noise settings to
  ``Backward``, so the gradient is Jᵀg of the very estimate the forward returned
  (jacobian[b, i, j] = ∂y_i/∂θ_j). It is once-differentiable (no double backward).
* ``FenchelYoungLoss`` returns the per-instance loss ([B], or [] for θ [d]) reduced by
  ``reduction``; its gradient w.r.t. θ is the server's ``loss_grad`` from the same Solve
  (y_ε − y for MAXIMIZE, y − y_ε for MINIMIZE), no second RPC. No gradient flows to the targets.
* To overlap the training step with solves, use ``client.solve_async`` /
  ``client.stream()`` directly; these layers are synchronous.
* A server on the training job's own cores (loopback, few cores): torch's OpenMP workers spin
  for milliseconds after each parallel op (a ``clone`` of 64,000 floats is one), taking a core
  from the server while it solves. These layers make no torch ops of their own around the
  calls (the copies are numpy's), but the training step's do: a 64×1000 argmax forward
  measured 6.9–9.3 ms after such a clone against 4.5–5.7 ms without, on 2 cores.
  ``OMP_WAIT_POLICY=PASSIVE`` in the training job's environment (before torch loads) removes
  the spin. A server on its own cores or machine is unaffected.
"""

import numpy as np
import torch
from torch import nn
from torch.autograd.function import once_differentiable

from .problems import to_proto as _problem_proto

__all__ = ["PerturbedOptimizer", "FenchelYoungLoss", "draw_seed"]

_SEED_HIGH = 2**63 - 1


def draw_seed(generator=None):
    """A uniformly drawn seed in [0, 2⁶³ − 1) from ``generator`` (default: torch's global RNG)."""
    device = generator.device if generator is not None else "cpu"
    return int(torch.randint(0, _SEED_HIGH, (1,), generator=generator, device=device).item())


def _to_numpy(t):
    """Host numpy view/copy of a tensor, float32 or float64."""
    t = t.detach()
    if t.dtype not in (torch.float32, torch.float64):
        t = t.to(torch.float32)
    return t.cpu().contiguous().numpy()


def _to_torch(a, like):
    # The decoded arrays are read-only views over response bytes, so they are copied: by numpy
    # (one thread), not torch.tensor, whose parallel copy wakes torch's OpenMP workers, which
    # then spin for milliseconds on the cores a loopback server is solving on.
    out = torch.from_numpy(np.array(a))
    if out.dtype != like.dtype:
        out = out.to(like.dtype)
    return out if like.device.type == "cpu" else out.to(like.device)


_NUMPY_FLOATS = (torch.float16, torch.float32, torch.float64)


class _NoiseSettings:
    """The noise settings shared by a layer's forward and backward."""

    def __init__(self, epsilon, num_samples, seed, generator, distribution, perturbation,
                 variance_reduction, antithetic, instance_seeds):
        self.epsilon = float(epsilon)
        self.num_samples = int(num_samples)
        self.seed = seed
        self.generator = generator
        self.distribution = distribution
        self.perturbation = perturbation
        self.variance_reduction = variance_reduction
        self.antithetic = bool(antithetic)
        self.instance_seeds = instance_seeds

    def kwargs(self, seed, instance_seeds):
        return dict(epsilon=self.epsilon, num_samples=self.num_samples, seed=seed,
                    instance_seeds=instance_seeds, distribution=self.distribution,
                    perturbation=self.perturbation, variance_reduction=self.variance_reduction,
                    antithetic=self.antithetic)

    def next_seed(self, override):
        if override is not None:
            return int(override)
        if self.seed is not None:
            return int(self.seed)
        return draw_seed(self.generator)

    def extra_repr(self):
        return ("epsilon=%g, num_samples=%d, seed=%s, distribution=%r, perturbation=%r, "
                "variance_reduction=%r, antithetic=%s"
                % (self.epsilon, self.num_samples, "fresh" if self.seed is None else self.seed,
                   self.distribution, self.perturbation, self.variance_reduction,
                   self.antithetic))


class _PerturbedFunction(torch.autograd.Function):

    @staticmethod
    def forward(ctx, theta, client, problem, call_kwargs):
        res = client.solve(problem, _to_numpy(theta), **call_kwargs)
        ctx.client = client
        ctx.problem = problem
        ctx.call_kwargs = call_kwargs
        ctx.save_for_backward(theta)
        return _to_torch(res.solution, theta)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        (theta,) = ctx.saved_tensors
        theta_np = _to_numpy(theta)
        dtype = torch.float64 if theta_np.dtype.itemsize == 8 else torch.float32
        g = grad_output.detach().to(device="cpu", dtype=dtype).contiguous().numpy()
        grad = ctx.client.backward(ctx.problem, theta_np, g, **ctx.call_kwargs)
        return _to_torch(grad, theta), None, None, None


class PerturbedOptimizer(nn.Module):
    """y_ε(θ) = E[y*(θ + εZ)] computed by the server, differentiable w.r.t. θ.

    Args:
      client: a ``perturbd.Client``.
      problem: a ``perturbd.problems`` builder (or a Problem message).
      epsilon, num_samples, distribution, perturbation, variance_reduction, antithetic:
        as in ``Client.solve``.
      seed: None for a fresh seed per forward (from ``generator``), or a fixed integer.
      generator: optional ``torch.Generator`` the fresh seeds are drawn from.
      instance_seeds: optional fixed per-instance seeds (length B), passed to the server.
      backend: 'auto' | 'cpu' | 'gpu'.  timeout: per-RPC deadline in seconds.

    forward(theta [B, d] or [d], *, seed=None, instance_seeds=None) -> y_ε, θ's shape,
    dtype and device. ``seed``/``instance_seeds`` given to forward override the layer's for
    that call (backward reuses them).
    """

    def __init__(self, client, problem, *, epsilon, num_samples, seed=None, generator=None,
                 distribution="normal", perturbation="additive", variance_reduction=None,
                 antithetic=False, instance_seeds=None, backend="auto", timeout=None):
        super().__init__()
        self.client = client
        self.problem = _problem_proto(problem)
        self._problem_spec = problem
        self.noise = _NoiseSettings(epsilon, num_samples, seed, generator, distribution,
                                    perturbation, variance_reduction, antithetic,
                                    instance_seeds)
        self.backend = backend
        self.timeout = timeout
        self.last_seed = None

    def forward(self, theta, *, seed=None, instance_seeds=None):
        s = self.noise.next_seed(seed)
        self.last_seed = s
        kw = self.noise.kwargs(s, instance_seeds if instance_seeds is not None
                               else self.noise.instance_seeds)
        kw.update(backend=self.backend, timeout=self.timeout)
        return _PerturbedFunction.apply(theta, self.client, self.problem, kw)

    def extra_repr(self):
        return "problem=%r, %s" % (self._problem_spec, self.noise.extra_repr())


class _FenchelYoungFunction(torch.autograd.Function):

    @staticmethod
    def forward(ctx, theta, target, client, problem, call_kwargs, holder):
        theta_np = _to_numpy(theta)
        res = client.solve(problem, theta_np, targets=_to_numpy(target), **call_kwargs)
        holder.last_result = res
        if res.loss is None or res.loss_grad is None:
            raise RuntimeError("perturbd: Solve with targets returned no loss/loss_grad")
        ctx.save_for_backward(_to_torch(res.loss_grad, theta))
        return _to_torch(res.loss, theta)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        (loss_grad,) = ctx.saved_tensors
        # loss [B] -> loss_grad [B, d]; loss [] -> loss_grad [d].
        g = grad_output.unsqueeze(-1) if grad_output.dim() else grad_output
        if (loss_grad.device.type == "cpu" and g.device.type == "cpu"
                and loss_grad.dtype in _NUMPY_FLOATS and g.dtype == loss_grad.dtype):
            # numpy, for the reason of _to_torch: no OpenMP workers left spinning.
            grad = torch.from_numpy(g.detach().numpy() * loss_grad.numpy())
        else:
            grad = g * loss_grad
        return grad, None, None, None, None, None


class FenchelYoungLoss(nn.Module):
    """Fenchel–Young loss of the perturbed optimizer against target solutions y.

    Value (per instance, from the server): MAXIMIZE (1/M) Σ_m ⟨η_m, y_m − y⟩, MINIMIZE
    (1/M) Σ_m ⟨η_m, y − y_m⟩; ≥ 0 sample by sample. Its expectation is F_ε(θ) − ⟨θ, y⟩ for
    centred noise; GUMBEL (mean γ) adds εγ·Σ y_m. Gradient w.r.t. θ: y_ε(θ) − y (MAXIMIZE),
    y − y_ε(θ) (MINIMIZE); with multiplicative noise (1/M) Σ w_m ⊙ y_m replaces y_ε.

    Args: as ``PerturbedOptimizer``, plus ``reduction``: 'mean' (default) | 'sum' | 'none'.

    forward(theta [B, d] or [d], target of θ's shape) -> loss: [] after 'mean'/'sum', [B]
    (or []) with 'none'. ``.last_result`` holds the SolveResult of the last call (solution
    y_ε, ...), e.g. for metrics.
    """

    def __init__(self, client, problem, *, epsilon, num_samples, seed=None, generator=None,
                 distribution="normal", perturbation="additive", variance_reduction=None,
                 antithetic=False, instance_seeds=None, reduction="mean", backend="auto",
                 timeout=None):
        super().__init__()
        if reduction not in ("mean", "sum", "none"):
            raise ValueError("reduction must be 'mean', 'sum' or 'none', got %r" % (reduction,))
        self.client = client
        self.problem = _problem_proto(problem)
        self._problem_spec = problem
        self.noise = _NoiseSettings(epsilon, num_samples, seed, generator, distribution,
                                    perturbation, variance_reduction, antithetic,
                                    instance_seeds)
        self.reduction = reduction
        self.backend = backend
        self.timeout = timeout
        self.last_seed = None
        self.last_result = None

    def forward(self, theta, target, *, seed=None, instance_seeds=None):
        s = self.noise.next_seed(seed)
        self.last_seed = s
        kw = self.noise.kwargs(s, instance_seeds if instance_seeds is not None
                               else self.noise.instance_seeds)
        kw.update(backend=self.backend, timeout=self.timeout)
        loss = _FenchelYoungFunction.apply(theta, target, self.client, self.problem, kw, self)
        if self.reduction == "mean":
            return loss.mean()
        if self.reduction == "sum":
            return loss.sum()
        return loss

    def extra_repr(self):
        return "problem=%r, reduction=%r, %s" % (self._problem_spec, self.reduction,
                                                 self.noise.extra_repr())
