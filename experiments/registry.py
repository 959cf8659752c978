"""Every experiment, listed once: the command line, `sgd-sde list`, every `--help` and the tests are
built from this registry. Each module named here defines `EXPERIMENTS`, a tuple of
`runner.contract.Experiment` records."""

import dataclasses
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

SECTIONS = {
    "paper": "the paper's figures",
    "studies": "beyond the paper: SGD against its SDE",
    "tools": "tools",
}

# Wall time per preset on the 2-core CPU the reference runs were made on, compilation included, as
# measured (README, commit messages); a preset not listed shows "?" in `sgd-sde list`.
TIMES = {
    "fig1": {"tiny": "43 s", "quick": "18 s", "paper": "644 s (beside a sweep)"},
    "fig2": {"tiny": "43 s", "quick": "18 s", "paper": "644 s (beside a sweep)"},
    "fig3": {"tiny": "19 s", "quick": "59 s", "paper": "582 s (2 workers)"},
    "fig8": {"tiny": "27 s", "quick": "60 s", "paper": "584 s (2 workers)"},
    "fig8-l2": {"tiny": "12 s", "quick": "518 s (beside a sweep)", "paper": "~40 min (2 workers)"},
    "fig4": {"tiny": "15 s", "quick": "125 s", "paper": "238 s"},
    "fig5": {
        "tiny": "17 s",
        "quick": "190 s",
        "paper": "1,691 s (2 workers)",
        "quick-leaky": "1,069 s (one core of a loaded machine)",
        "paper-leaky": "4,413 s (one core beside another sweep)",
    },
    "fig6": {
        "tiny": "25 s",
        "quick": "362 s",
        "paper": "1,779 s (2 workers)",
        "paper-epochs": "~2 h",
        "quick-leaky": "801 s (one core of a loaded machine)",
        "quick-landscape": "980 s (a loaded machine)",
        "paper-leaky": "~2 h (one core)",
        "paper-leaky-epochs": "~4.5 h (one core)",
    },
    "fig7": {"tiny": "14 s", "quick": "147 s", "paper": "3,650 s (one core)"},
    "fig9": {"tiny": "17 s", "quick": "99 s", "paper": "403 s"},
    "compare": {"tiny": "22 s", "quick": "~75 s"},
    "side-by-side": {"tiny": "35 s", "quick": "17 s", "net": "359 s"},
    "collapse": {"tiny": "13 s", "quick": "26 s", "net": "362 s"},
    "departure": {"tiny": "21 s", "quick": "75 s", "net": "520 s"},
    "weak-order": {"tiny": "19 s", "quick": "63 s"},
    "noise-shape": {"tiny": "33 s", "quick": "182 s"},
    "svag": {"tiny": "27 s", "quick": "100 s", "net": "900 s"},
    "bopt-prediction": {"tiny": "11 s", "quick": "11 s"},
    "minima": {"tiny": "2 s", "quick": "~20 s", "paper": "~20 s"},
    "fig3-setups": {"tiny": "33 s", "quick": "180 s", "paper": "> 2 h (one core)"},
    "cliff": {"tiny": "55 s", "paper": "> 3 h (one core)"},
    "g-curve": {"tiny": "3 s", "quick": "4 s", "paper": "4 s"},
    "measure": {"tiny": "8 s", "quick": "13 s", "net": "21 s"},
}


def experiments() -> dict[str, Experiment]:
    """name -> Experiment, in the order of `MODULES`, each with its measured `times`."""
    out = {}
    for name in MODULES:
        for experiment in importlib.import_module(name).EXPERIMENTS:
            if experiment.name in out:
                raise TypeError(f"experiment {experiment.name} registered twice")
            if experiment.name in TIMES:
                if experiment.times:
                    raise TypeError(
                        f"experiment {experiment.name}: times given in its module and in TIMES"
                    )
                experiment = dataclasses.replace(experiment, times=TIMES[experiment.name])
            out[experiment.name] = experiment
    return out


def aliases(experiments: dict[str, Experiment]) -> dict[str, str]:
    """Other names the command line takes: the name of a sweep that several experiments share
    (fig1-2, the rows of fig1 and fig2, as its progress lines and its rows file name it) -> the
    first of them."""
    out = {}
    for experiment in experiments.values():
        if experiment.results_name not in experiments:
            out.setdefault(experiment.results_name, experiment.name)
    return out


def get(name: str) -> Experiment:
    """The experiment of that name (or alias, `aliases`)."""
    found = experiments()
    return found[aliases(found).get(name, name)]
