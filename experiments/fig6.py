"""Fig 6 (Smith & Le 2018): Several training-set sizes N: B_opt against N (paper: slope 1).

Grid, budget and the choices the paper leaves open: see `experiments._batch_sweep` (eps = 0.1 and
m = 0.9 unless swept; the quick budget is far below the paper's 10,000 updates; `--paper` runs it).
"""

from . import _batch_sweep
from ._batch_sweep import Config

EXPERIMENT = "fig6"
QUICK = Config(n_trains=(250, 500, 1000), batch_sizes=(1, 3, 10, 30, 100, 300))
PAPER = Config(n_trains=(500, 1000, 2000, 4000), steps=10000, seeds=3)
TINY = Config(n_trains=(50, 100), steps=10, batch_sizes=(1, 10, 50), seeds=1)

main = _batch_sweep.main_for(EXPERIMENT, 6, "n_train", "N", slope_name="N")
