"""Fig 7 (Smith & Le 2018): Several momenta m: B_opt against 1/(1 - m) (paper: slope 1).

Grid, budget and the choices the paper leaves open: see `experiments._batch_sweep` (eps = 0.1 and
m = 0.9 unless swept; the quick budget is far below the paper's 10,000 updates; `--paper` runs it).
"""

from . import _batch_sweep
from ._batch_sweep import Config

EXPERIMENT = "fig7"
QUICK = Config(momenta=(0.0, 0.5, 0.9), batch_sizes=(1, 3, 10, 30, 100, 300))
PAPER = Config(momenta=(0.0, 0.5, 0.8, 0.9), steps=10000, seeds=3)
TINY = Config(momenta=(0.0, 0.9), steps=10, batch_sizes=(1, 10, 100), n_trains=(100,), seeds=1)

main = _batch_sweep.main_for(EXPERIMENT, 7, "momentum", "m", transform=lambda m: 1 / (1 - m), slope_name="1/(1 - m)")
