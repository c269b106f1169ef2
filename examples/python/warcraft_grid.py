#!/usr/bin/env python3
"""Warcraft-style shortest paths on 12x12 terrain maps (Berthet et al. 2020, section 5.3),
learned through perturbd with the perturbed Fenchel-Young loss.

The Warcraft II tile dataset of Vlastelica et al. cannot be downloaded here, so this example
generates maps of the same shape: 12x12 cells, each of one of five terrain types whose costs
are the dataset's {0.8, 1.2, 5.3, 7.7, 9.2}. Terrain is spatially coherent (a smoothed Gaussian
random field cut at fixed quantiles). Each map is shown to the model as a 48x48 RGB image,
4x4 pixels per cell: the terrain's colour, a per-map brightness change and per-pixel noise, with
two cheap and two expensive terrains of similar colour. The model never sees a cost, only the
optimal path of each training map (cells on the path, both ends included).

Model: a tiny CNN (4x4 stride-4 patch embedding, one 3x3 conv, a 1x1 head, softplus so costs
stay positive) predicting the 144 cell costs. Loss: perturbed FY on `grid_shortest_path`
(8-neighbour, top-left -> bottom-right, MINIMIZE), with the paper's settings: NORMAL additive
noise, eps = 0.1, M = 3 (--epsilon, --samples, --perturbation to change). One Solve per
minibatch. The service clamps negative perturbed costs at zero for its Dijkstra oracle and
counts them (reported as `clamped_costs`); with softplus costs and eps = 0.1 that is rare.

Metrics on held-out maps, with the predicted costs solved exactly (no noise):
* path accuracy: the predicted path's cost under the TRUE costs equals the optimal cost
  (within 1e-6 relative) -- a different but equally cheap path counts as correct;
* per-cell accuracy: fraction of the 144 cells whose on-path/off-path status matches the
  label path.
Baselines: constant costs (the straight diagonal) and the untrained model.

    python3 warcraft_grid.py --spawn build/server/perturbd
    python3 warcraft_grid.py --address localhost:50051 --full    # 10000 / 1000 maps
"""

import sys
import time

import numpy as np

import _example_common as common

perturbd = common.perturbd

ROWS = COLS = 12
PIX = 4                                             # pixels per cell side
TERRAIN_COSTS = np.array([0.8, 1.2, 5.3, 7.7, 9.2])
TERRAIN_SHARE = np.array([0.30, 0.25, 0.20, 0.15, 0.10])
# RGB prototypes: grass, road (cheap), forest, hills, water (expensive).
TERRAIN_RGB = np.array([[0.20, 0.70, 0.20],
                        [0.70, 0.60, 0.40],
                        [0.05, 0.35, 0.10],
                        [0.45, 0.35, 0.25],
                        [0.10, 0.30, 0.80]])


def gen_maps(n, seed, pixel_noise=0.25, smooth=1.5):
    """n maps: terrain [n, 12, 12] (int), costs [n, 144], images [n, 3, 48, 48] float32."""
    from scipy.ndimage import gaussian_filter
    rng = np.random.default_rng(seed)
    field = gaussian_filter(rng.standard_normal((n, ROWS, COLS)), sigma=(0, smooth, smooth),
                            mode="reflect")
    field = (field - field.mean(axis=(1, 2), keepdims=True)) / \
        field.std(axis=(1, 2), keepdims=True)
    # Cut each map at its own quantiles into five levels with fixed shares; which terrain
    # occupies which level is drawn per map, so cheap terrain is not always the lowest level.
    cuts = np.quantile(field.reshape(n, -1), np.cumsum(TERRAIN_SHARE)[:-1], axis=1).T
    level = (field[..., None] > cuts[:, None, None, :]).sum(-1)          # 0..4
    order = np.argsort(rng.random((n, len(TERRAIN_COSTS))), axis=1)
    terrain = np.take_along_axis(order, level.reshape(n, -1), axis=1).reshape(n, ROWS, COLS)
    costs = TERRAIN_COSTS[terrain].reshape(n, -1)
    rgb = TERRAIN_RGB[terrain]                                            # [n, 12, 12, 3]
    img = np.repeat(np.repeat(rgb, PIX, axis=1), PIX, axis=2)             # [n, 48, 48, 3]
    img = img * rng.uniform(0.9, 1.1, (n, 1, 1, 1))                       # lighting
    img = img + pixel_noise * rng.standard_normal(img.shape)
    return terrain, costs.astype(np.float32), img.transpose(0, 3, 1, 2).astype(np.float32)


def build_model():
    import torch
    from torch import nn

    class CostNet(nn.Module):
        """Per-cell MLP on the cell's 4x4 pixels, as convolutions (cost of a cell = its
        terrain's, so no spatial context is needed)."""

        def __init__(self, width=32):
            super().__init__()
            self.patch = nn.Conv2d(3, width, PIX, stride=PIX)        # one vector per cell
            self.hidden = nn.Conv2d(width, width, 1)
            self.head = nn.Conv2d(width, 1, 1)

        def forward(self, img):
            h = torch.relu(self.patch((img - 0.4) / 0.3))          # roughly standardised
            h = torch.relu(self.hidden(h))
            return nn.functional.softplus(self.head(h)).flatten(1)   # [B, 144] costs > 0

    return CostNet()


def evaluate(pred_costs, true_costs, true_paths, true_opt):
    y_hat, _ = common.grid_shortest_path(pred_costs, ROWS, COLS, 8)
    realized = (y_hat * true_costs).sum(1)
    path_acc = float(np.mean(realized <= true_opt * (1 + 1e-6)))
    cell_acc = float(np.mean(y_hat == true_paths))
    return path_acc, cell_acc


def build_parser():
    p = common.make_parser(__doc__.split("\n\n")[0])
    p.add_argument("--train", type=int, default=None, help="training maps (2000; 10000 --full)")
    p.add_argument("--test", type=int, default=None, help="held-out maps (500; 1000 --full)")
    p.add_argument("--epochs", type=int, default=None, help="epochs (15; 30 with --full)")
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--epsilon", type=float, default=0.1)
    p.add_argument("--samples", type=int, default=3)
    p.add_argument("--perturbation", choices=("additive", "multiplicative"),
                   default="additive")
    p.add_argument("--pixel-noise", type=float, default=0.25)
    return p


def main(argv=None):
    args = common.parse(build_parser(), argv)
    args.train = args.train or (10000 if args.full else 2000)
    args.test = args.test or (1000 if args.full else 500)
    args.epochs = args.epochs or (30 if args.full else 15)
    log = common.Logger(args.quiet)

    import torch
    from perturbd import problems
    from perturbd.torch import FenchelYoungLoss

    gen = common.seed_everything(args.seed, args.torch_threads)
    _, ctr, itr = gen_maps(args.train, args.seed, args.pixel_noise)
    _, cte, ite = gen_maps(args.test, args.seed + 1, args.pixel_noise)
    ytr, _ = common.grid_shortest_path(ctr, ROWS, COLS, 8)
    yte, zte = common.grid_shortest_path(cte, ROWS, COLS, 8)
    log("%d training / %d test maps; mean optimal path: %.1f cells", args.train, args.test,
        yte.sum(1).mean())

    model = build_model()
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    problem = problems.GridShortestPath(ROWS, COLS, connectivity=8)
    X, Y, Xte = torch.from_numpy(itr), torch.from_numpy(ytr), torch.from_numpy(ite)

    def predict(images):
        with torch.no_grad():
            return torch.cat([model(images[i:i + 500]) for i in range(0, len(images), 500)]
                             ).numpy()

    acc0 = evaluate(predict(Xte), cte, yte, zte)
    const = evaluate(np.ones_like(cte), cte, yte, zte)
    log("before training: path accuracy %.3f, cell accuracy %.3f (constant costs: %.3f, %.3f)",
        acc0[0], acc0[1], const[0], const[1])

    losses, clamped, rpcs = [], 0, 0
    with common.service(args) as client:
        fy = FenchelYoungLoss(client, problem, epsilon=args.epsilon, num_samples=args.samples,
                              perturbation=args.perturbation, generator=gen)
        t0 = time.monotonic()
        for epoch in range(args.epochs):
            perm = torch.randperm(len(X))
            total = 0.0
            for i in range(0, len(X), args.batch):
                idx = perm[i:i + args.batch]
                loss = fy(model(X[idx]), Y[idx])      # one Solve for the whole minibatch
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss) * len(idx)
                clamped += fy.last_result.stats.clamped_costs
                rpcs += 1
            losses.append(total / len(X))
            log("epoch %d/%d: FY loss %.4f", epoch + 1, args.epochs, losses[-1])
        train_s = time.monotonic() - t0
    path_acc, cell_acc = evaluate(predict(Xte), cte, yte, zte)
    train_path_acc, _ = evaluate(predict(X[:500]), ctr[:500], ytr[:500],
                                 (ytr[:500] * ctr[:500]).sum(1))
    log("test: path accuracy %.3f, cell accuracy %.3f (train path accuracy %.3f); "
        "%d Solve RPCs in %.1f s, %d clamped perturbed costs", path_acc, cell_acc,
        train_path_acc, rpcs, train_s, clamped)
    return common.emit({
        "example": "warcraft_grid", "train": args.train, "test": args.test,
        "epochs": args.epochs, "epsilon": args.epsilon, "samples": args.samples,
        "perturbation": args.perturbation,
        "path_accuracy": path_acc, "cell_accuracy": cell_acc,
        "train_path_accuracy": train_path_acc,
        "baseline_constant_cost": {"path_accuracy": const[0], "cell_accuracy": const[1]},
        "untrained": {"path_accuracy": acc0[0], "cell_accuracy": acc0[1]},
        "loss_curve": losses, "clamped_costs": clamped, "rpcs": rpcs,
        "train_seconds": train_s})


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
