"""Experiments: the paper's figures (`experiments.paper`), the studies beyond the paper
(`experiments.studies`) and the machinery that runs them (`experiments.runner`), every one an
`Experiment` record listed in `experiments.registry`. `load_results` reads a sweep's rows as a
table."""

from .runner.table import load_results as load_results
