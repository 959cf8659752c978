"""Fig 4 (Smith & Le 2018): Test accuracy after a fixed number of updates against B: an interior optimum.

Grid, budget and the choices the paper leaves open: see `experiments._batch_sweep` (eps = 0.1 and
m = 0.9 unless swept; the quick budget is far below the paper's 10,000 updates; `--paper` runs it).
"""

from . import _batch_sweep
from ._batch_sweep import Config

EXPERIMENT = "fig4"
QUICK = Config()
PAPER = Config(steps=10000, seeds=3)
TINY = Config(batch_sizes=(1, 10, 100), steps=10, n_trains=(100,), seeds=1)

main = _batch_sweep.main_for(EXPERIMENT, 4, "lr", "eps", slope_name=None)
