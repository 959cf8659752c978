"""Experiments: one module per study, each a frozen config dataclass plus `run(cfg)`."""

from . import compare as compare
