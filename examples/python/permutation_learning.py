#!/usr/bin/env python3
"""Permutation learning (learning to sort) with a perturbed assignment Fenchel-Young loss
through perturbd, against an independent per-item cross-entropy baseline.

Data: each instance is a set of n items with features x_i ~ N(0, I_f); a hidden linear score
s_i = <w*, x_i> + noise orders them, and the target is the n x n permutation matrix that puts
item i at position rank(s_i) (0 = smallest). The model only ever sees one item at a time.

Model: theta_ij = (W x_i + b)_j, the score of placing item i at position j (n x n per instance,
row-major: d = n^2). This family contains the exact solution theta_ij = <w*, x_i> (j - c): by
the rearrangement inequality, the assignment maximising sum_i theta_i,pi(i) then sorts by s.
* perturbed FY: `Assignment(n, n)` (MAXIMIZE) with NORMAL additive noise; the loss gradient is
  E[y*(theta + eps Z)] - y, one Solve RPC per minibatch (the whole minibatch in one request);
* cross-entropy: each row of theta is a softmax over positions, trained independently per item
  (what one would do without a combinatorial layer); computed locally.
Both use the same model, init, optimizer and minibatches. Evaluation decodes theta with an
exact assignment (the same oracle, computed locally with scipy or brute force) and, for the
baseline, also with a per-row argmax (which need not be a permutation). Metrics on held-out
instances: exact-permutation accuracy, position accuracy, and Spearman correlation.

    python3 permutation_learning.py --spawn build/server/perturbd
    python3 permutation_learning.py --address localhost:50051 --items 8 --full
"""

import itertools
import sys
import time

import numpy as np

import _example_common as common

perturbd = common.perturbd


def make_data(rng, instances, n, features, noise, w_star):
    """x [N, n, f]; target permutation matrices y [N, n*n] (row-major: item, position)."""
    x = rng.normal(size=(instances, n, features))
    s = x @ w_star + noise * rng.normal(size=(instances, n))
    positions = np.argsort(np.argsort(s, axis=1, kind="stable"), axis=1, kind="stable")
    y = np.zeros((instances, n, n), np.float32)
    y[np.arange(instances)[:, None], np.arange(n)[None, :], positions] = 1.0
    return x.astype(np.float32), y.reshape(instances, n * n), positions


def best_assignment(theta):
    """Exact max-score assignment of each [n, n] matrix: positions [B, n]."""
    B, n, _ = theta.shape
    try:
        from scipy.optimize import linear_sum_assignment
        return np.stack([linear_sum_assignment(t, maximize=True)[1] for t in theta])
    except ImportError:  # brute force (small n only)
        perms = np.array(list(itertools.permutations(range(n))))
        scores = theta[:, np.arange(n)[None, :], perms].sum(-1)   # [B, n!]
        return perms[np.argmax(scores, axis=1)]


def metrics(pred_positions, true_positions):
    n = true_positions.shape[1]
    exact = (pred_positions == true_positions).all(1).mean()
    position = (pred_positions == true_positions).mean()
    d = pred_positions - true_positions
    spearman = (1.0 - 6.0 * (d ** 2).sum(1) / (n * (n ** 2 - 1))).mean() if n > 1 else 1.0
    return {"exact_permutation": float(exact), "position_accuracy": float(position),
            "spearman": float(spearman)}


def train(client, loss_name, xtr, ytr, args, seed):
    import torch
    from perturbd import problems
    from perturbd.torch import FenchelYoungLoss

    gen = common.seed_everything(seed, args.torch_threads)
    n = args.items
    model = torch.nn.Linear(xtr.shape[2], n)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    fy = FenchelYoungLoss(client, problems.Assignment(n, n), epsilon=args.epsilon,
                          num_samples=args.samples, generator=gen)
    X, Y = torch.from_numpy(xtr), torch.from_numpy(ytr)
    order = torch.Generator().manual_seed(seed)       # same minibatches for both losses
    losses, rpcs = [], 0
    for _ in range(args.epochs):
        perm = torch.randperm(len(X), generator=order)
        total = 0.0
        for i in range(0, len(X), args.batch):
            idx = perm[i:i + args.batch]
            theta = model(X[idx])                      # [b, n items, n positions]
            if loss_name == "fy":
                loss = fy(theta.reshape(len(idx), n * n), Y[idx])   # one Solve per minibatch
                rpcs += 1
            else:
                target = Y[idx].reshape(len(idx), n, n).argmax(-1)   # position of each item
                loss = torch.nn.functional.cross_entropy(theta.reshape(-1, n),
                                                         target.reshape(-1))
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss) * len(idx)
        losses.append(total / len(X))
    return model, losses, rpcs


def build_parser():
    p = common.make_parser(__doc__.split("\n\n")[0])
    p.add_argument("--items", type=int, default=5, help="n: items per instance (d = n^2)")
    p.add_argument("--features", type=int, default=6)
    p.add_argument("--label-noise", type=float, default=0.1,
                   help="std of the noise added to the hidden scores")
    p.add_argument("--train", type=int, default=600, help="training instances")
    p.add_argument("--test", type=int, default=300, help="test instances")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--batch", type=int, default=30)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--epsilon", type=float, default=0.5)
    p.add_argument("--samples", type=int, default=8)
    return p


def main(argv=None):
    args = common.parse(build_parser(), argv)
    if args.full:
        args.train, args.test, args.epochs = 5000, 1000, 40
    log = common.Logger(args.quiet)
    rng = np.random.RandomState(args.seed)
    w_star = rng.normal(size=args.features)
    xtr, ytr, _ = make_data(rng, args.train, args.items, args.features, args.label_noise,
                            w_star)
    xte, _, pte = make_data(rng, args.test, args.items, args.features, args.label_noise, w_star)
    import torch

    results, curves, rpcs = {}, {}, 0
    t0 = time.monotonic()
    with common.service(args) as client:
        for loss_name in ("fy", "cross_entropy"):
            model, losses, r = train(client, loss_name, xtr, ytr, args, args.seed)
            rpcs += r
            curves[loss_name] = losses
            with torch.no_grad():
                theta = model(torch.from_numpy(xte)).numpy().astype(np.float64)
            results[loss_name] = metrics(best_assignment(theta), pte)
            if loss_name == "cross_entropy":
                results["cross_entropy_rowwise_argmax"] = metrics(theta.argmax(-1), pte)
            log("%-13s loss %.4f -> %.4f | test exact %.3f, positions %.3f, Spearman %.3f",
                loss_name, losses[0], losses[-1], results[loss_name]["exact_permutation"],
                results[loss_name]["position_accuracy"], results[loss_name]["spearman"])
    untrained = np.random.RandomState(args.seed + 1).permutation(args.items)
    results["random"] = metrics(np.tile(untrained, (args.test, 1)), pte)
    return common.emit({
        "example": "permutation_learning", "items": args.items, "epsilon": args.epsilon,
        "samples": args.samples, "epochs": args.epochs, "rpcs": rpcs,
        "seconds": time.monotonic() - t0,
        "loss_curve": curves["fy"], "cross_entropy_curve": curves["cross_entropy"],
        "test": results})


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
