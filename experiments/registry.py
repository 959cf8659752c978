"""Every experiment, listed once: the command line, `sgd-sde list`, every `--help` and the tests are
built from this registry. Each module named here defines `EXPERIMENTS`, a tuple of
`runner.contract.Experiment` records."""

import importlib

from .runner.contract import Experiment

MODULES = (
    "experiments.paper.fig1_2",
    "experiments.paper.fig3",
    "experiments.paper.setups",
    "experiments.paper.batch_size",
    "experiments.paper.fig9",
    "experiments.paper.l2_gap",
    "experiments.paper.g_curve",
    "experiments.paper.minima",
    "experiments.studies.compare",
    "experiments.studies.measure",
    "experiments.studies.side_by_side",
    "experiments.studies.collapse",
    "experiments.studies.departure",
    "experiments.studies.weak_order",
    "experiments.studies.noise_shape",
    "experiments.studies.svag",
    "experiments.studies.bopt_prediction",
    "experiments.studies.cliff",
)

SECTIONS = {"paper": "the paper's figures", "studies": "beyond the paper: SGD against its SDE",
            "tools": "tools"}


def experiments() -> dict[str, Experiment]:
    """name -> Experiment, in the order of `MODULES`."""
    out = {}
    for name in MODULES:
        for experiment in importlib.import_module(name).EXPERIMENTS:
            if experiment.name in out:
                raise TypeError(f"experiment {experiment.name} registered twice")
            out[experiment.name] = experiment
    return out


def get(name: str) -> Experiment:
    return experiments()[name]
