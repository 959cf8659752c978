"""The one contract every experiment follows: a typed `Experiment` record and declared config
fields.

An experiment is a sweep of independent points. Its stages, each a plain top-level function:

    grid(cfg) -> points                 every point a JSON-able dict holding all that defines it
    evaluate(points, seeds) -> rows     one chunk of points (of one `shape`) x seeds; importable by
                                        name, so a process pool or a Ray worker can run it
    refine(rows, cfg) -> points         optional: more points chosen from the rows so far (an
                                        adaptive grid); they run as ordinary rows, and refine is
                                        asked again
    summarize(rows, cfg) -> summary     numbers from the rows (a JSON-able dict)
    figure(summary, cfg, out)           the PNG and its JSON of numbers
    report(summary, cfg) -> str         what the command prints

The runner (`experiments.runner.sweep.run`) strings them together; the results file is resumable.
A config is a frozen dataclass whose fields are declared with `param(default, check, ...)`: the
check runs on the value (on every element of a tuple), the flag and its help come from the field,
and cross-field rules live in an optional `check(self)` method. Nothing is discovered with
`hasattr`."""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Hashable, Mapping
from typing import Any

import sim


def param(default, check: Callable | None = None, *, help: str = "", low: int | None = None):
    """A config field: its default, its check (`sim.checks.positive`, ... or any callable
    `check(name, value)` raising `sim.InputError`), and its help text. For integers, `low` is passed
    to `sim.checks.integer`."""
    return dataclasses.field(default=default, metadata={"check": check, "help": help, "low": low})


def flag(name: str) -> str:
    return name.replace("_", "-")


def validate(cfg):
    """Run every declared field check, then the config's own `check()` if it defines one; returns
    cfg."""
    for field in dataclasses.fields(cfg):
        check = field.metadata.get("check")
        if check is None:
            continue
        value = getattr(cfg, field.name)
        name = flag(field.name)
        kwargs = {"low": field.metadata["low"]} if field.metadata.get("low") is not None else {}
        if isinstance(field.default, tuple):
            if not value:
                raise sim.InputError(f"{name} needs at least one value")
            for v in value:
                check(name, v, **kwargs)
        elif value is not None:
            check(name, value, **kwargs)
    own = getattr(type(cfg), "check", None)
    if own is not None:
        own(cfg)
    return cfg


@dataclasses.dataclass(frozen=True)
class Experiment:
    """One experiment: its name on the command line, a one-line summary, the config class, named
    presets ("tiny" and "quick" always; "paper" for the paper's figures; others such as "net"), and
    its stages. `needs` names experiments whose rows this one reads (from the same output folder),
    `optional` those it reads where they are there. `times`: the measured wall time of each preset
    on 2 cores, compilation included (`sgd-sde list` shows them; a preset without one shows "?").
    `evaluate` is given as "module:function" so that it can be shipped to a worker by name."""

    name: str
    summary: str
    config: type
    presets: Mapping[str, Any]
    grid: Callable[[Any], list[dict]]
    evaluate: str
    summarize: Callable[[list[dict], Any], dict]
    figure: Callable[[dict, Any, Any], None] | None
    report: Callable[[dict, Any], str]
    shape: Callable[[dict], Hashable] = lambda point: 0
    chunk_size: int = 8
    seeds: Callable[[Any, dict], list[int]] = lambda cfg, point: list(range(cfg.seeds))
    needs: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()  # experiments whose rows are read where the folder has them
    section: str = "studies"  # "paper" (the paper's figures), "studies" or "tools"
    # more points, from the rows so far
    refine: Callable[[list[dict], Any], list[dict]] | None = None
    # relative run time (ETA)
    cost: Callable[[dict], float] = lambda point: float(point.get("steps", 1))
    results: str | None = None  # results file stem, when several experiments share one sweep
    # preset -> wall time on 2 cores ("~85 s")
    times: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        missing = {"tiny", "quick"} - set(self.presets)
        if missing:
            raise TypeError(f"experiment {self.name}: presets {sorted(missing)} missing")
        unknown = set(self.times) - set(self.presets)
        if unknown:
            raise TypeError(
                f"experiment {self.name}: times of presets {sorted(unknown)} it does not have"
            )

    @property
    def results_name(self) -> str:
        return self.results or self.name

    def evaluator(self) -> Callable:
        module, function = self.evaluate.split(":")
        return getattr(importlib.import_module(module), function)
