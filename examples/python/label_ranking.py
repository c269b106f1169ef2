#!/usr/bin/env python3
"""Label ranking with a perturbed ranking Fenchel-Young loss through perturbd (Berthet et al.
2020, section 5.2), against a squared-loss baseline.

Data: scikit-learn's bundled classification sets (iris: 3 labels, wine: 3, digits: 10) turned
into label-ranking data the way the label-ranking literature does it (Cheng, Huehn & Huellermeier
2009, "Decision tree and instance-based learning for label ranking"): a naive Bayes classifier
is fitted on the whole data set and each instance's labels are ranked by its predicted class
probability. (--ranker distance ranks the labels by the distance of x to each class mean
instead.) Features are standardised on the training split.

Model: linear scores theta = W x + b in R^L (L labels). The ranking oracle y*(theta) =
argmax_{y in permutations of (0..L-1)} <y, theta> gives rank L-1 to the largest score; the target
is the rank vector of the true preference scores in the same convention.
* perturbed FY: `Ranking()` with NORMAL additive noise, gradient E[y*(theta + eps Z)] - y,
  one Solve per minibatch;
* squared loss: ||theta - (y - (L-1)/2)||^2 (the paper's baseline), computed locally.
Both use the same model, init, optimizer and minibatches. Metric: mean Spearman rank
correlation between the predicted ranking (the order of theta) and the true one on held-out
data, next to a constant ranking (the mean training rank vector's order).

    python3 label_ranking.py --spawn build/server/perturbd         # 70/30 split, 3 data sets
    python3 label_ranking.py --address localhost:50051 --full      # 10-fold cross-validation
"""

import sys
import time

import numpy as np

import _example_common as common

perturbd = common.perturbd


def ranks(scores):
    """0-based ascending ranks of each row (argsort of argsort): the largest gets L-1."""
    return np.argsort(np.argsort(scores, axis=1, kind="stable"), axis=1,
                      kind="stable").astype(np.float32)


def spearman(pred_scores, true_ranks):
    L = true_ranks.shape[1]
    d = ranks(pred_scores) - true_ranks
    return 1.0 - 6.0 * (d ** 2).sum(1) / (L * (L ** 2 - 1))


def load(name, ranker):
    from sklearn import datasets
    from sklearn.naive_bayes import GaussianNB
    loader = {"iris": datasets.load_iris, "wine": datasets.load_wine,
              "digits": datasets.load_digits, "breast_cancer": datasets.load_breast_cancer}
    X, t = loader[name](return_X_y=True)
    X = X.astype(np.float64)
    if ranker == "naive_bayes":
        score = GaussianNB().fit(X, t).predict_log_proba(X)
    elif ranker == "distance":
        means = np.stack([X[t == k].mean(0) for k in np.unique(t)])
        score = -((X[:, None, :] - means[None]) ** 2).sum(-1)
    else:
        raise ValueError(ranker)
    return X, ranks(score)


def train_one(client, loss_name, xtr, ytr, xte, args, seed):
    import torch
    from perturbd import problems
    from perturbd.torch import FenchelYoungLoss

    gen = common.seed_everything(seed, args.torch_threads)
    L = ytr.shape[1]
    model = torch.nn.Linear(xtr.shape[1], L)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    fy = FenchelYoungLoss(client, problems.Ranking(), epsilon=args.epsilon,
                          num_samples=args.samples, generator=gen)
    X, Y = torch.from_numpy(xtr), torch.from_numpy(ytr)
    center = (L - 1) / 2.0
    order = torch.Generator().manual_seed(seed)       # same minibatches for both losses
    losses, rpcs = [], 0
    for _ in range(args.epochs):
        perm = torch.randperm(len(X), generator=order)
        total = 0.0
        for i in range(0, len(X), args.batch):
            idx = perm[i:i + args.batch]
            theta = model(X[idx])
            if loss_name == "fy":
                loss = fy(theta, Y[idx])               # one Solve for the whole minibatch
                rpcs += 1
            else:
                loss = ((theta - (Y[idx] - center)) ** 2).sum(1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss) * len(idx)
        losses.append(total / len(X))
    with torch.no_grad():
        pred = model(torch.from_numpy(xte)).numpy()
    return pred, losses, rpcs


def run_dataset(client, name, args, log):
    X, Y = load(name, args.ranker)
    rng = np.random.RandomState(args.seed)
    n = len(X)
    perm = rng.permutation(n)
    if args.folds:
        splits = [(np.setdiff1d(perm, f), f) for f in np.array_split(perm, args.folds)]
    else:
        cut = int(round(n * (1 - args.test_fraction)))
        splits = [(perm[:cut], perm[cut:])]
    rows = {"fy": [], "squared": [], "constant": []}
    curves = {"fy": [], "squared": []}
    rpcs = 0
    t0 = time.monotonic()
    for k, (tr, te) in enumerate(splits):
        mu, sd = X[tr].mean(0), X[tr].std(0) + 1e-8
        xtr = ((X[tr] - mu) / sd).astype(np.float32)
        xte = ((X[te] - mu) / sd).astype(np.float32)
        for loss_name in ("fy", "squared"):
            pred, losses, r = train_one(client, loss_name, xtr, Y[tr], xte, args,
                                        args.seed + k)
            rows[loss_name].append(spearman(pred, Y[te]).mean())
            curves[loss_name].append(losses)
            rpcs += r
        const = np.tile(Y[tr].mean(0), (len(te), 1))
        rows["constant"].append(spearman(const, Y[te]).mean())
    out = {k: float(np.mean(v)) for k, v in rows.items()}
    out.update(labels=int(Y.shape[1]), instances=n, splits=len(splits), rpcs=rpcs,
               seconds=time.monotonic() - t0,
               fy_loss_first_epoch=float(np.mean([c[0] for c in curves["fy"]])),
               fy_loss_last_epoch=float(np.mean([c[-1] for c in curves["fy"]])),
               squared_loss_first_epoch=float(np.mean([c[0] for c in curves["squared"]])),
               squared_loss_last_epoch=float(np.mean([c[-1] for c in curves["squared"]])))
    log("%-7s L=%2d n=%4d: Spearman perturbed-FY %.4f | squared %.4f | constant %.4f "
        "(FY loss %.3f -> %.3f; %d Solve RPCs, %.1f s)", name, out["labels"], n, out["fy"],
        out["squared"], out["constant"], out["fy_loss_first_epoch"],
        out["fy_loss_last_epoch"], rpcs, out["seconds"])
    return out


def build_parser():
    p = common.make_parser(__doc__.split("\n\n")[0])
    p.add_argument("--datasets", default="iris,wine,digits",
                   help="comma-separated: iris, wine, digits, breast_cancer")
    p.add_argument("--ranker", choices=("naive_bayes", "distance"), default="naive_bayes",
                   help="how class labels become label rankings")
    p.add_argument("--folds", type=int, default=None,
                   help="k-fold cross-validation (default: one 70/30 split; 10 with --full)")
    p.add_argument("--test-fraction", type=float, default=0.3)
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--epsilon", type=float, default=1.0)
    p.add_argument("--samples", type=int, default=16)
    return p


def main(argv=None):
    args = common.parse(build_parser(), argv)
    if args.folds is None and args.full:
        args.folds = 10
    log = common.Logger(args.quiet)
    results = {}
    with common.service(args) as client:
        for name in args.datasets.split(","):
            results[name] = run_dataset(client, name, args, log)
    return common.emit({
        "example": "label_ranking", "ranker": args.ranker, "epsilon": args.epsilon,
        "samples": args.samples, "epochs": args.epochs,
        "protocol": ("%d-fold CV" % args.folds) if args.folds else
                    ("%.0f/%.0f split" % (100 * (1 - args.test_fraction),
                                          100 * args.test_fraction)),
        "spearman": results})


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
