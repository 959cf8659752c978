"""Fig 5 (Smith & Le 2018): Several eps, updates proportional to 1/eps: B_opt against eps.

784-800-10 net, momentum SGD, embedded MNIST (N = 1000 unless swept), no L2, seeds' mean and
standard error; B_opt is the grid point of highest mean test accuracy, its uncertainty half a grid
step either side (log scale). Chosen here (the paper does not state them): the grids below, eps = 0.1
and m = 0.9 unless swept (at the paper's eps = 1, m = 0.9 this net stays at chance; see fig3), and the
budget: the quick variant trains for far fewer updates than the paper's 10,000, so its optimum is that
of a shorter run; `--paper` runs the paper's budget.
"""

import pathlib

from . import _batch_sweep
from ._batch_sweep import Config

EXPERIMENT = "fig5"
QUICK = Config(lrs=(0.025, 0.05, 0.1), steps=1000, budget_lr=0.1, batch_sizes=(1, 3, 10, 30, 100, 300))
PAPER = Config(lrs=(0.025, 0.05, 0.1, 0.2), steps=10000, budget_lr=1.0, seeds=3)
TINY = Config(lrs=(0.05, 0.1), steps=10, budget_lr=0.1, batch_sizes=(1, 10, 100), n_trains=(100,), seeds=1)


def main(cfg: Config, out: pathlib.Path) -> None:
    rows = _batch_sweep.run(EXPERIMENT, cfg, out)
    opt = _batch_sweep.optima(rows, "lr")
    caption = (f"Shallow net, momentum SGD, {cfg.seeds} seed(s), steps {cfg.steps}"
               + (f" x {cfg.budget_lr}/eps" if cfg.budget_lr else "") + f", eps {cfg.lrs}, m {cfg.momenta}, "
               f"N {cfg.n_trains}. Shaded: B_opt ± half a grid step.")
    numbers = _batch_sweep.plot(EXPERIMENT, "Fig 5: test accuracy against B", "lr", "eps", opt, out,
                                caption, transform=lambda v: v, slope_name="eps")
    _batch_sweep.report(EXPERIMENT, numbers, "eps")
