"""Fig 5 (Smith & Le 2018): Several eps, updates proportional to 1/eps: B_opt against eps (paper: slope 1).

Grid, budget and the choices the paper leaves open: see `experiments._batch_sweep` (eps = 0.1 and
m = 0.9 unless swept; the quick budget is far below the paper's 10,000 updates; `--paper` runs it).
"""

from . import _batch_sweep
from ._batch_sweep import Config

EXPERIMENT = "fig5"
QUICK = Config(lrs=(0.025, 0.05, 0.1), steps=1000, budget_lr=0.1, batch_sizes=(1, 3, 10, 30, 100, 300))
PAPER = Config(lrs=(0.025, 0.05, 0.1, 0.2), steps=10000, budget_lr=1.0, seeds=3)
TINY = Config(lrs=(0.05, 0.1), steps=10, budget_lr=0.1, batch_sizes=(1, 10, 100), n_trains=(100,), seeds=1)

main = _batch_sweep.main_for(EXPERIMENT, 5, "lr", "eps", slope_name="eps")
