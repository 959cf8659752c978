"""Experiments: one module per study, each a frozen config dataclass plus `run(cfg)` and `main(cfg, out)`."""

from . import compare as compare
from . import measure as measure
