"""Test accuracy after a training budget against the batch size B, for one or more values of a second
variable (eps, N or m): the machinery of Figs 4-7. Points of one (N, B, steps) share one compiled loop
and run together with per-run learning rates and momenta.

784-800-10 net, momentum SGD, embedded MNIST (N = 1000 unless swept), no L2, seeds' mean and standard
error (one initialisation per seed). B_opt is the grid point of highest mean test accuracy; its
uncertainty half a grid step either side (log scale); the slope of ln B_opt against ln x is a least-
squares fit whose error is the larger of the residual and the grid-spacing error. Chosen here (the
paper does not state them): the grids, eps = 0.1 and m = 0.9 unless swept (at the paper's eps = 1,
m = 0.9 this net stays at chance; see fig3), and the budget: the quick variants train for far fewer
updates than the paper's 10,000, so their optimum is that of a shorter run.
"""

import dataclasses
import math
import pathlib

import jax.random as jr
import numpy as np

import models
import sim

from . import _common
from ._sweep import point_hash, run_sweep


@dataclasses.dataclass(frozen=True)
class Config:
    lrs: tuple = (0.1,)
    momenta: tuple = (0.9,)
    n_trains: tuple = (1000,)
    batch_sizes: tuple = (1, 3, 10, 30, 100, 300, 1000)
    steps: int = 2000
    budget_lr: float = 0.0  # > 0: steps scale as steps * budget_lr / lr (Fig 5: 10,000/eps updates)
    l2: float = 0.0
    seeds: int = 2
    mnist: str | None = None

    def validate(self):
        for lr in self.lrs:
            sim._checks.positive("lr", lr)
        for m in self.momenta:
            sim._checks.momentum("momentum", m)
        for n in self.n_trains:
            sim._checks.integer("n-train", n, low=10)
            for b in self.batch_sizes:
                sim._checks.integer("batch-size", b, low=1)
        for b in self.batch_sizes:
            if b > max(self.n_trains):
                raise sim.InputError(f"batch-sizes: B = {b} exceeds N = {max(self.n_trains)} (impossible point)")
        if not (self.lrs and self.momenta and self.n_trains and self.batch_sizes):
            raise sim.InputError("every grid (lrs, momenta, n-trains, batch-sizes) needs at least one value")
        sim._checks.integer("steps", self.steps)
        sim._checks.integer("seeds", self.seeds)
        sim._checks.non_negative("l2", self.l2)
        sim._checks.non_negative("budget-lr", self.budget_lr)
        return self

    def steps_for(self, lr):
        if self.budget_lr > 0:
            return max(1, int(round(self.steps * self.budget_lr / lr)))
        return self.steps


def points(cfg: Config, source: str) -> list[dict]:
    out = []
    for n in cfg.n_trains:
        for lr in cfg.lrs:
            for m in cfg.momenta:
                for b in cfg.batch_sizes:
                    if b <= n:
                        out.append(dict(lr=lr, momentum=m, n_train=n, batch_size=b, steps=cfg.steps_for(lr),
                                        l2=cfg.l2, data=source))
    return out


def _evaluate(experiment, pool):
    def evaluate(chunk, seeds):
        first = chunk[0]
        data = models.multiclass_task(pool, n_train=first["n_train"])
        nets = [models.ShallowNet(key=jr.fold_in(jr.key(0), s)) for s in seeds]
        key = jr.fold_in(jr.key(1), int(point_hash(experiment, first)[:7], 16))
        traj = sim.run_sgd(nets * len(chunk), data, batch_size=first["batch_size"], steps=first["steps"],
                           lr=[p["lr"] for p in chunk for _ in seeds],
                           momentum=[p["momentum"] for p in chunk for _ in seeds],
                           l2=[p["l2"] for p in chunk for _ in seeds], key=key, record_every=first["steps"])
        out = []
        for i, _ in enumerate(chunk):
            per_seed = []
            for j, _ in enumerate(seeds):
                r = i * len(seeds) + j
                div = int(traj.diverged_step[r])
                per_seed.append(dict(test_accuracy=float(traj.test_accuracy[r, -1]),
                                     test_xent=float(traj.test_xent[r, -1]),
                                     train_loss=float(traj.train_loss[r, -1]),
                                     diverged=div >= 0, diverged_step=div if div >= 0 else None))
            out.append(per_seed)
        return out

    return evaluate


def run(experiment: str, cfg: Config, out: pathlib.Path):
    cfg.validate()
    pool = models.load_mnist(cfg.mnist)
    grid = points(cfg, pool.source)
    return run_sweep(experiment, out, grid, seeds=list(range(cfg.seeds)), evaluate=_evaluate(experiment, pool),
                     shape=lambda p: (p["n_train"], p["batch_size"], p["steps"]), chunk_size=6)


def optima(rows, variable: str):
    """Per value of `variable`: B grid, mean ± s.e. test accuracy, B_opt and its log-uncertainty."""
    result = {}
    for value, sel in sorted(_common.group_rows(rows, lambda c: c[variable]).items()):
        by_b = _common.group_rows(sel, lambda c: c["batch_size"])
        grid = sorted(by_b)
        stats = [_common.mean_se([r["test_accuracy"] for r in by_b[b] if not r["diverged"]]) for b in grid]
        diverged = sum(r["diverged"] for r in sel)
        scores = [s[0] if s[2] else -math.inf for s in stats]
        b_opt, log_sigma, index = _common.optimum_on_grid(grid, scores)
        result[value] = dict(batch_sizes=grid, accuracy=stats, b_opt=b_opt, log_sigma=log_sigma,
                             interior=0 < index < len(grid) - 1, diverged_runs=diverged)
    return result


def plot(name, title, variable, label, opt, out, caption, transform=lambda v: v, slope_name=None):
    plt = _common.pyplot()
    ncols = 2 if slope_name else 1
    fig, axes = plt.subplots(1, ncols, figsize=(5.2 * ncols, 3.9), squeeze=False)
    ax = axes[0, 0]
    for k, (value, o) in enumerate(opt.items()):
        mean = np.array([s[0] for s in o["accuracy"]])
        se = np.nan_to_num(np.array([s[1] for s in o["accuracy"]]))
        ax.errorbar(o["batch_sizes"], mean, yerr=se, marker="o", ms=3, color=f"C{k}",
                    label=f"{label} = {value:g}" if len(opt) > 1 else None)
        lo, hi = o["b_opt"] * math.exp(-o["log_sigma"]), o["b_opt"] * math.exp(o["log_sigma"])
        ax.axvspan(lo, hi, color=f"C{k}", alpha=0.12)
    ax.set_xscale("log")
    ax.set_xlabel("batch size B")
    ax.set_ylabel("test accuracy")
    ax.set_title(title)
    if len(opt) > 1:
        ax.legend(fontsize=8)
    numbers = {"optima": {str(k): v for k, v in opt.items()}}
    if slope_name:
        x = [transform(v) for v in opt]
        y = [o["b_opt"] for o in opt.values()]
        slope, se = _common.loglog_slope(x, y, [o["log_sigma"] for o in opt.values()])
        ax2 = axes[0, 1]
        ax2.errorbar(x, y, yerr=[[b - b * math.exp(-o["log_sigma"]) for b, o in zip(y, opt.values())],
                                 [b * math.exp(o["log_sigma"]) - b for b, o in zip(y, opt.values())]],
                     marker="o", ls="none")
        xs = np.geomspace(min(x), max(x), 20)
        centre_x, centre_y = np.exp(np.mean(np.log(x))), np.exp(np.mean(np.log(y)))  # the fit's centroid
        ax2.plot(xs, centre_y * (xs / centre_x) ** slope, ls="--", color="grey",
                 label=f"fit: slope {slope:.2f} ± {se:.2f}")
        ax2.set_xscale("log")
        ax2.set_yscale("log")
        ax2.set_xlabel(slope_name)
        ax2.set_ylabel("optimal B")
        ax2.set_title("paper: slope 1")
        ax2.legend(fontsize=8)
        numbers["slope"] = slope
        numbers["slope_se"] = se
    _common.save(fig, out, name, numbers, caption)
    return numbers


def report(name, numbers, variable):
    print(f"{name}: optimal batch size")
    for value, o in numbers["optima"].items():
        best = max(s[0] for s in o["accuracy"] if s[2])
        print(f"  {variable} = {value}: B_opt = {o['b_opt']:g} (x/÷ {math.exp(o['log_sigma']):.2f}, "
              f"{'interior' if o['interior'] else 'AT THE GRID EDGE'}), test accuracy {best:.4f}"
              + (f", {o['diverged_runs']} runs diverged" if o["diverged_runs"] else ""))
    if "slope" in numbers:
        print(f"  fitted log-log slope of B_opt: {numbers['slope']:.2f} ± {numbers['slope_se']:.2f} (paper: 1)")


def main_for(experiment: str, number: int, variable: str, label: str, *, transform=lambda v: v,
             slope_name: str | None = None):
    """The `main(cfg, out)` of one of Figs 4-7."""

    def main(cfg: Config, out: pathlib.Path) -> None:
        rows = run(experiment, cfg, out)
        opt = optima(rows, variable)
        caption = (f"Shallow net, momentum SGD, {cfg.seeds} seed(s), steps {cfg.steps}"
                   + (f" x {cfg.budget_lr}/eps" if cfg.budget_lr else "") + f", eps {cfg.lrs}, "
                   f"m {cfg.momenta}, N {cfg.n_trains}. Shaded: B_opt ± half a grid step.")
        numbers = plot(experiment, f"Fig {number}: test accuracy against B", variable, label, opt, out,
                       caption, transform=transform, slope_name=slope_name)
        report(experiment, numbers, label)

    return main
