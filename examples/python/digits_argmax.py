#!/usr/bin/env python3
"""Classification with a perturbed argmax Fenchel-Young loss through perturbd, against
cross-entropy (Berthet et al. 2020, section 5.1), on scikit-learn's bundled 8x8 digits.

The paper's CIFAR-10 experiment replaces the softmax cross-entropy by the FY loss of the
perturbed argmax over the simplex, y*(theta) = one-hot(argmax theta), with NORMAL noise:

    L(theta; y) = E[max_i (theta + eps Z)_i] - <theta, y>,   gradient E[y*(theta + eps Z)] - y

(with GUMBEL noise the same construction is exactly the softmax cross-entropy at temperature
eps, up to a constant; --distribution gumbel shows it). The service computes the loss and its
gradient for the whole minibatch in one Solve; the model is a small MLP (64-128-10). The
cross-entropy baseline trains the same model from the same initialisation on the same
minibatches. The data: 1797 grey-level 8x8 digits, a stratified 70/30 split (--full: the mean
over 5 stratified splits).

    python3 digits_argmax.py --spawn build/server/perturbd
    python3 digits_argmax.py --address localhost:50051 --full
"""

import copy
import sys
import time

import numpy as np

import _example_common as common

perturbd = common.perturbd


def split(y, test_fraction, seed):
    """Stratified split: the same fraction of every class held out."""
    rng = np.random.RandomState(seed)
    te = []
    for k in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == k))
        te.extend(idx[:int(round(len(idx) * test_fraction))])
    te = np.sort(np.array(te))
    tr = np.setdiff1d(np.arange(len(y)), te)
    return tr, te


def run_split(client, X, y, k, args, log):
    import torch
    from torch import nn
    from perturbd import problems
    from perturbd.torch import FenchelYoungLoss

    seed = args.seed + k
    gen = common.seed_everything(seed, args.torch_threads)
    tr, te = split(y, args.test_fraction, seed)
    Xtr, Xte = torch.from_numpy(X[tr]), torch.from_numpy(X[te])
    ytr, yte = torch.from_numpy(y[tr]), y[te]
    Ytr = nn.functional.one_hot(ytr, 10).float()
    init = nn.Sequential(nn.Linear(64, args.hidden), nn.ReLU(), nn.Linear(args.hidden, 10))
    fy = FenchelYoungLoss(client, problems.Argmax(), epsilon=args.epsilon,
                          num_samples=args.samples, distribution=args.distribution,
                          generator=gen)
    out = {}
    for name in ("perturbed_fy", "cross_entropy"):
        model = copy.deepcopy(init)
        opt = torch.optim.Adam(model.parameters(), lr=args.lr)
        order = torch.Generator().manual_seed(seed)     # same minibatches for both losses
        losses, rpcs, t0 = [], 0, time.monotonic()
        for _ in range(args.epochs):
            perm = torch.randperm(len(Xtr), generator=order)
            total = 0.0
            for i in range(0, len(Xtr), args.batch):
                idx = perm[i:i + args.batch]
                theta = model(Xtr[idx])
                if name == "perturbed_fy":
                    loss = fy(theta, Ytr[idx])        # one Solve for the whole minibatch
                    rpcs += 1
                else:
                    loss = nn.functional.cross_entropy(theta, ytr[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss) * len(idx)
            losses.append(total / len(Xtr))
        with torch.no_grad():
            acc = float((model(Xte).argmax(1).numpy() == yte).mean())
            train_acc = float((model(Xtr).argmax(1) == ytr).float().mean())
        out[name] = dict(test_accuracy=acc, train_accuracy=train_acc, loss_curve=losses,
                         rpcs=rpcs, seconds=time.monotonic() - t0)
        log("split %d %-13s: test accuracy %.4f (train %.4f), loss %.4f -> %.4f, %d Solve "
            "RPCs, %.1f s", k, name, acc, train_acc, losses[0], losses[-1], rpcs,
            out[name]["seconds"])
    majority = np.bincount(y[tr]).argmax()
    out["majority_class"] = dict(test_accuracy=float((yte == majority).mean()))
    return out


def build_parser():
    p = common.make_parser(__doc__.split("\n\n")[0])
    p.add_argument("--splits", type=int, default=None,
                   help="stratified train/test splits averaged (1; 5 with --full)")
    p.add_argument("--test-fraction", type=float, default=0.3)
    p.add_argument("--train-limit", type=int, default=None,
                   help="use only the first N instances (quick runs)")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.003)
    p.add_argument("--epsilon", type=float, default=1.0)
    p.add_argument("--samples", type=int, default=16)
    p.add_argument("--distribution", choices=("normal", "gumbel"), default="normal")
    return p


def main(argv=None):
    from sklearn.datasets import load_digits
    args = common.parse(build_parser(), argv)
    if args.splits is None:
        args.splits = 5 if args.full else 1
    log = common.Logger(args.quiet)
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    if args.train_limit:
        X, y = X[:args.train_limit], y[:args.train_limit]
    with common.service(args) as client:
        runs = [run_split(client, X, y, k, args, log) for k in range(args.splits)]

    def agg(name, key):
        return float(np.mean([r[name][key] for r in runs]))

    result = {"example": "digits_argmax", "instances": len(y), "splits": args.splits,
              "epochs": args.epochs, "epsilon": args.epsilon, "samples": args.samples,
              "distribution": args.distribution}
    for name in ("perturbed_fy", "cross_entropy"):
        result[name] = dict(
            test_accuracy=agg(name, "test_accuracy"),
            test_accuracy_std=float(np.std([r[name]["test_accuracy"] for r in runs])),
            train_accuracy=agg(name, "train_accuracy"),
            loss_first_epoch=float(np.mean([r[name]["loss_curve"][0] for r in runs])),
            loss_last_epoch=float(np.mean([r[name]["loss_curve"][-1] for r in runs])),
            rpcs=int(sum(r[name]["rpcs"] for r in runs)),
            seconds=float(sum(r[name]["seconds"] for r in runs)))
    result["majority_class"] = dict(test_accuracy=agg("majority_class", "test_accuracy"))
    return common.emit(result)


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
