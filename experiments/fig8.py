"""Fig 8: Fig 3 with L2 regularisation lam = 0.1 (in the summed cost C), which closes the gap between
small-batch and full-batch training in the paper. Same net, data and caveats as `fig3`."""

import dataclasses
import pathlib

from . import fig3

Config = fig3.Config
EXPERIMENT = "fig8"
QUICK = dataclasses.replace(fig3.QUICK, l2=0.1)
PAPER = dataclasses.replace(fig3.PAPER, l2=0.1)
TINY = dataclasses.replace(fig3.TINY, l2=0.1)


def main(cfg, out: pathlib.Path) -> None:
    fig3.main(cfg, out, name=EXPERIMENT)
