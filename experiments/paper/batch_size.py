"""Figs 4-7 (Smith & Le 2018): test accuracy after a training budget against the batch size B, for one
or more values of a second variable (eps, N or m). Points of one (N, B, steps) share one compiled loop
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
import functools
import math
from collections.abc import Callable

import jax.random as jr
import numpy as np

import models
import sim

from ..runner import common as _common
from ..runner.contract import Experiment, param
from ..runner.sweep import point_hash

checks = sim.checks


@dataclasses.dataclass(frozen=True)
class Config:
    lrs: tuple = param((0.1,), checks.positive, help="learning rates eps")
    momenta: tuple = param((0.9,), checks.momentum, help="momenta m")
    n_trains: tuple = param((1000,), checks.integer, low=10, help="training-set sizes N")
    batch_sizes: tuple = param((1, 3, 10, 30, 100, 300, 1000), checks.integer, help="batch sizes B")
    steps: int = param(2000, checks.integer, help="updates per run (at budget_lr when budget_lr > 0)")
    budget_lr: float = param(0.0, checks.non_negative,
                             help="> 0: equal SDE time, steps scale as steps * budget_lr / lr (Fig 5's rule)")
    budget_n: int = param(0, checks.integer, low=0,
                          help="> 0: equal epochs, steps scale as steps * N / budget_n (the N sweep)")
    l2: float = param(0.0, checks.non_negative, help="L2 lam in the summed cost C")
    seeds: int = param(2, checks.integer, help="seeds (one initialisation each)")
    mnist: str | None = param(None, help="folder of your own MNIST (default: the embedded subset)")

    def check(self):
        for b in self.batch_sizes:
            if b > max(self.n_trains):
                raise sim.InputError(f"batch-sizes: B = {b} exceeds N = {max(self.n_trains)} (impossible point)")

    def steps_for(self, lr, n_train=None):
        if self.budget_n > 0 and n_train is not None:
            return max(1, int(round(self.steps * n_train / self.budget_n)))
        if self.budget_lr > 0:
            return max(1, int(round(self.steps * self.budget_lr / lr)))
        return self.steps


def grid(cfg: Config) -> list[dict]:
    source = _common.data_source(cfg.mnist)
    out = []
    for n in cfg.n_trains:
        for lr in cfg.lrs:
            for m in cfg.momenta:
                for b in cfg.batch_sizes:
                    if b <= n:
                        out.append(dict(lr=lr, momentum=m, n_train=n, batch_size=b, steps=cfg.steps_for(lr, n),
                                        l2=cfg.l2, data=source))
    return out


def evaluate(experiment: str, chunk: list[dict], seeds: list[int]) -> list[list[dict]]:
    """Momentum SGD for a chunk of points of one (N, B, steps), every point and seed side by side in
    one compiled loop with per-run learning rates and momenta; one row per point and seed."""
    first = chunk[0]
    data = models.multiclass_task(_common.pool(first["data"]), n_train=first["n_train"])
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


# Importable by name (a worker process or a Ray task imports them): the chunk's key depends on the
# experiment's name, as it always has, so each figure has its own evaluator.
evaluate_fig4 = functools.partial(evaluate, "fig4")
evaluate_fig5 = functools.partial(evaluate, "fig5")
evaluate_fig6 = functools.partial(evaluate, "fig6")
evaluate_fig7 = functools.partial(evaluate, "fig7")


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


def report(name, numbers, variable) -> str:
    lines = [f"{name}: optimal batch size"]
    for value, o in numbers["optima"].items():
        best = max(s[0] for s in o["accuracy"] if s[2])
        lines.append(f"  {variable} = {value}: B_opt = {o['b_opt']:g} (x/÷ {math.exp(o['log_sigma']):.2f}, "
                     f"{'interior' if o['interior'] else 'AT THE GRID EDGE'}), test accuracy {best:.4f}"
                     + (f", {o['diverged_runs']} runs diverged" if o["diverged_runs"] else ""))
    if "slope" in numbers:
        lines.append(f"  fitted log-log slope of B_opt: {numbers['slope']:.2f} ± {numbers['slope_se']:.2f} (paper: 1)")
    return "\n".join(lines)


@dataclasses.dataclass(frozen=True)
class _Figure:
    """What distinguishes Figs 4-7: the swept variable and how its slope is read."""

    name: str
    number: int
    variable: str
    label: str
    slope_name: str | None = None
    transform: Callable = lambda v: v


def _caption(cfg: Config) -> str:
    return (f"Shallow net, momentum SGD, {cfg.seeds} seed(s), steps {cfg.steps}"
            + (f" x {cfg.budget_lr}/eps" if cfg.budget_lr else "")
            + (f" x N/{cfg.budget_n}" if cfg.budget_n else "") + f", eps {cfg.lrs}, "
            f"m {cfg.momenta}, N {cfg.n_trains}. Shaded: B_opt ± half a grid step.")


def _experiment(fig: _Figure, summary: str, presets: dict) -> Experiment:
    def summarize(rows, cfg):
        return optima(rows, fig.variable)

    def figure(opt, cfg, out):
        plot(fig.name, f"Fig {fig.number}: test accuracy against B", fig.variable, fig.label, opt, out,
             _caption(cfg), transform=fig.transform, slope_name=fig.slope_name)

    def report_(opt, cfg):
        return report(fig.name, _numbers(opt, fig), fig.label)

    return Experiment(
        name=fig.name, summary=summary, config=Config, presets=presets, grid=grid,
        evaluate=f"{__name__}:evaluate_{fig.name}", summarize=summarize, figure=figure, report=report_,
        shape=lambda p: (p["n_train"], p["batch_size"], p["steps"]), chunk_size=6, section="paper")


def _numbers(opt, fig: _Figure) -> dict:
    """The numbers the figure's JSON holds (the slope fit included), without drawing."""
    numbers = {"optima": {str(k): v for k, v in opt.items()}}
    if fig.slope_name:
        x = [fig.transform(v) for v in opt]
        y = [o["b_opt"] for o in opt.values()]
        numbers["slope"], numbers["slope_se"] = _common.loglog_slope(x, y, [o["log_sigma"] for o in opt.values()])
    return numbers


# The paper-scale batch-size grid: a factor 2 apart, from below to well above every expected optimum
# (refined around each peak afterwards).
PAPER_B = (2, 4, 8, 16, 32, 64, 128, 256)

EXPERIMENTS = (
    _experiment(_Figure("fig4", 4, "lr", "eps"),
                "Fig 4: test accuracy after a fixed budget against B: an interior optimum",
                {"tiny": Config(batch_sizes=(1, 10, 100), steps=10, n_trains=(100,), seeds=1),
                 "quick": Config(),
                 "paper": Config(batch_sizes=PAPER_B, steps=10000, seeds=4)}),
    _experiment(_Figure("fig5", 5, "lr", "eps", slope_name="eps"),
                "Fig 5: optimal B against eps (updates proportional to 1/eps), fitted slope",
                {"tiny": Config(lrs=(0.05, 0.1), steps=10, budget_lr=0.1, batch_sizes=(1, 10, 100),
                                n_trains=(100,), seeds=1),
                 "quick": Config(lrs=(0.025, 0.05, 0.1), steps=1000, budget_lr=0.1,
                                 batch_sizes=(1, 3, 10, 30, 100, 300)),
                 # The paper's rule, updates proportional to 1/eps (equal SDE time; 10,000 at eps = 0.1),
                 # and the fixed budget of 10,000 updates at every eps.
                 "paper": Config(lrs=(0.025, 0.05, 0.1, 0.2), batch_sizes=PAPER_B, steps=10000, budget_lr=0.1,
                                 seeds=4),
                 "paper-updates": Config(lrs=(0.025, 0.05, 0.1, 0.2), batch_sizes=PAPER_B, steps=10000,
                                         seeds=4)}),
    _experiment(_Figure("fig6", 6, "n_train", "N", slope_name="N"),
                "Fig 6: optimal B against N, fitted slope",
                {"tiny": Config(n_trains=(50, 100), steps=10, batch_sizes=(1, 10, 50), seeds=1),
                 "quick": Config(n_trains=(250, 500, 1000), batch_sizes=(1, 3, 10, 30, 100, 300)),
                 # 10,000 updates at every N (the paper's), and equal epochs (10,000 updates at N = 1000).
                 "paper": Config(n_trains=(500, 1000, 2000, 4000), batch_sizes=PAPER_B + (512, 1024), steps=10000,
                                 seeds=4),
                 "paper-epochs": Config(n_trains=(500, 1000, 2000, 4000), batch_sizes=PAPER_B + (512, 1024),
                                        steps=10000, budget_n=1000, seeds=4)}),
    _experiment(_Figure("fig7", 7, "momentum", "m", slope_name="1/(1 - m)", transform=lambda m: 1 / (1 - m)),
                "Fig 7: optimal B against 1/(1 - m), fitted slope",
                {"tiny": Config(momenta=(0.0, 0.9), steps=10, batch_sizes=(1, 10, 100), n_trains=(100,), seeds=1),
                 "quick": Config(momenta=(0.0, 0.5, 0.9), batch_sizes=(1, 3, 10, 30, 100, 300)),
                 # 1/(1 - m) = 1, 2, 4, 8: 10,000 updates each.
                 "paper": Config(momenta=(0.0, 0.5, 0.75, 0.875), batch_sizes=PAPER_B, steps=10000, seeds=4)}),
)
