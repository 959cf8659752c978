"""Fig 6 (Smith & Le 2018): Several training-set sizes N: B_opt against N.

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

EXPERIMENT = "fig6"
QUICK = Config(n_trains=(250, 500, 1000), batch_sizes=(1, 3, 10, 30, 100, 300))
PAPER = Config(n_trains=(500, 1000, 2000, 4000), steps=10000, seeds=3)
TINY = Config(n_trains=(50, 100), steps=10, batch_sizes=(1, 10, 50), seeds=1)


def main(cfg: Config, out: pathlib.Path) -> None:
    rows = _batch_sweep.run(EXPERIMENT, cfg, out)
    opt = _batch_sweep.optima(rows, "n_train")
    caption = (f"Shallow net, momentum SGD, {cfg.seeds} seed(s), steps {cfg.steps}"
               + (f" x {cfg.budget_lr}/eps" if cfg.budget_lr else "") + f", eps {cfg.lrs}, m {cfg.momenta}, "
               f"N {cfg.n_trains}. Shaded: B_opt ± half a grid step.")
    numbers = _batch_sweep.plot(EXPERIMENT, "Fig 6: test accuracy against B", "n_train", "N", opt, out,
                                caption, transform=lambda v: v, slope_name="N")
    _batch_sweep.report(EXPERIMENT, numbers, "N")
