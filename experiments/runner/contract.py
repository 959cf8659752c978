"""The one contract every experiment follows: a typed `Experiment` record, a base `Config`, and the
run context its evaluate receives.

An experiment is a sweep of independent points. The runner (`experiments.runner.sweep.run`) calls
its stages, each a plain top-level function, exactly so, in this order:

    validate(cfg)                        every field's check, then cfg.check()
    reads(**rows)                        with `reads`: the rows of the experiments it names, read
                                         from the output folder before anything is written
    grid(cfg) -> points                  every point a JSON-able dict holding all that defines it;
                                         a point that draws data names its pool: "data" (and its
                                         N, "n_train"), so that any worker can load it
    seeds(cfg, point) -> [int]           the seeds of a point; shape(point), its chunk's key;
                                         cost(point), its relative run time (for the ETA)
    evaluate(run, points, seeds) -> rows for each unfinished chunk (points of one shape and one
                                         list of seeds, at most `chunk_size`): per point, one dict
                                         per seed. `run` is the record's `context`, a
                                         `RunContext`. A top-level function: a worker process or a
                                         Ray task receives it pickled by reference
    refine(rows, cfg) -> points          optional: more points chosen from the rows so far (an
                                         adaptive grid), asked again until it adds nothing new
    summarize(rows, cfg) -> summary      numbers from the rows (a JSON-able dict); with `reads`,
    summarize(rows, cfg, reads) -> ...   also that instance of it
    figure(summary, cfg, out)            the PNGs and their JSON, written through `out`,
                                         `outputs.Outputs.of(folder, preset)` (which names them)
    report(summary, cfg) -> str          what the command prints

`rows` are every point's rows in grid order (refined points last), seeds in order, each
{"experiment": results name, "hash", "seed", "config": the point, "diverged", "diverged_step"} and
evaluate's dict for that point and seed.

A config is a frozen dataclass deriving from `Config` (which declares `seeds` and `mnist`), its
fields declared with `param(default, check, ...)`: the check runs on the value (on every element
of a tuple), the flag and its help come from the field, and cross-field rules live in
`check(self)`. Nothing is discovered from attributes: every stage above is a field of the record.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Hashable, Mapping
from typing import Any, Protocol

import sim

from .keys import KeyRule, KeyRules

Rows = list[dict]


def param(default, check: Callable | None = None, *, help: str = "", low: int | None = None):
    """A config field: its default, its check (`sim.checks.positive`, ... or any callable
    `check(name, value)` raising `sim.InputError`), and its help text. For integers, `low` is passed
    to `sim.checks.integer`."""
    return dataclasses.field(default=default, metadata={"check": check, "help": help, "low": low})


def choice(options):
    """A field check: the value is one of `options`."""

    def check(name: str, value) -> None:
        if value not in options:
            raise sim.InputError(f"{name} must be one of {', '.join(options)} (got {value!r})")

    return check


def flag(name: str) -> str:
    return name.replace("_", "-")


@dataclasses.dataclass(frozen=True)
class Config:
    """What every experiment's config declares: its seeds (the default `seeds` stage runs seeds
    0 ... seeds - 1 at every point) and its data source, and `check()`, the cross-field rules
    (none here). A subclass redeclares `seeds` with its own default and help."""

    seeds: int = param(1, sim.checks.integer, help="seeds (one initialisation each)")
    mnist: str | None = param(None, help="folder of your own MNIST (default: the embedded subset)")

    def check(self) -> None:
        """Raise `sim.InputError` for a combination of fields that cannot run."""


def validate(cfg: Config) -> Config:
    """Run every declared field check, then the config's own `check()`; returns cfg."""
    for field in dataclasses.fields(cfg):
        check = field.metadata.get("check")
        if check is None:
            continue
        value = getattr(cfg, field.name)
        name = flag(field.name)
        low = field.metadata.get("low")
        kwargs = {"low": low} if low is not None else {}
        if isinstance(field.default, tuple):
            if not value:
                raise sim.InputError(f"{name} needs at least one value")
            for v in value:
                check(name, v, **kwargs)
        elif value is not None:
            check(name, value, **kwargs)
    cfg.check()
    return cfg


def point_hash(results: str, point: dict, keys: KeyRules | None = None) -> str:
    """The 16-hex-digit identity of a point's rows: the results name, the point and the key rules
    that differ from the original ones (`KeyRules.changed`: none for every stored row)."""
    changed = keys.changed() if keys is not None else {}
    payload = {
        "experiment": results,
        **point,
        **({"key_rules": changed} if changed else {}),
    }
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclasses.dataclass(frozen=True)
class RunContext:
    """What an evaluate receives besides its chunk: the results name (the rows file's stem, part of
    every point's hash), the experiment's key rules, and the data pools its points name."""

    results: str
    keys: KeyRules = KeyRules()

    def pool(self, source: str):
        """The MNIST pool a point names (`point["data"]`), loaded once per process."""
        from . import pools

        return pools.load(source)

    def point_hash(self, point: dict) -> str:
        return point_hash(self.results, point, self.keys)

    def point_key(self, rule: KeyRule, point: dict):
        """A key of the point's own: 28 bits of its hash as the rule's index (Figs 4-7 draw each
        chunk's batches from its first point's)."""
        return rule(int(self.point_hash(point)[:7], 16))


class Evaluate(Protocol):
    """One chunk of points (of one shape) x seeds -> per point, one dict of results per seed (with
    `diverged` and `diverged_step` where a run can diverge)."""

    def __call__(self, run: RunContext, points: Rows, seeds: list[int], /) -> list[Rows]: ...


def _all_seeds(cfg: Config, point: dict) -> list[int]:
    return list(range(cfg.seeds))


def _steps(point: dict) -> float:
    return float(point.get("steps", 1))


@dataclasses.dataclass(frozen=True)
class Experiment:
    """One experiment: its name on the command line, a one-line title, the config class, named
    presets ("tiny" and "quick" always; "paper" for the paper's figures; others such as "net"), and
    its stages (see the module docstring).

    Optional: `reads`, a frozen dataclass whose fields name the experiments whose rows `summarize`
    reads from the same folder (field `fig5` for fig5's rows; a field without default is needed, one
    defaulting to None read where the folder has it); `keys`, the key rules its evaluate uses (part
    of every point's hash); `shape` and `chunk_size`, which points share a chunk (and a compiled
    loop); `seeds(cfg, point)`, the seeds of a point (0 ... cfg.seeds - 1 by default); `refine`;
    `cost(point)`, its relative run time (for the ETA); `results`, the rows file's stem when several
    experiments share one sweep; `section`; `times`, the measured wall time of each preset on 2
    cores, compilation included (`sgd-sde list` shows them; a preset without one shows "?")."""

    name: str
    title: str
    config: type[Config]
    presets: Mapping[str, Config]
    grid: Callable[[Config], Rows]
    evaluate: Evaluate
    summarize: Callable[..., dict]
    figure: Callable[[dict, Any, Any], None] | None
    report: Callable[[dict, Any], str]
    reads: type | None = None
    keys: KeyRules = KeyRules()
    shape: Callable[[dict], Hashable] = lambda point: 0
    chunk_size: int = 8
    seeds: Callable[[Any, dict], list[int]] = _all_seeds
    section: str = "studies"  # "paper" (the paper's figures), "studies" or "tools"
    refine: Callable[[Rows, Any], Rows] | None = None
    cost: Callable[[dict], float] = _steps
    results: str | None = None
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
        if not (isinstance(self.config, type) and issubclass(self.config, Config)):
            raise TypeError(f"experiment {self.name}: its config must derive from contract.Config")
        if self.reads is not None and not dataclasses.is_dataclass(self.reads):
            raise TypeError(f"experiment {self.name}: reads must be a dataclass of rows")

    @property
    def results_name(self) -> str:
        return self.results or self.name

    @property
    def context(self) -> RunContext:
        """The context its evaluate receives."""
        return RunContext(self.results_name, self.keys)

    def _read(self, required: bool) -> tuple[str, ...]:
        if self.reads is None:
            return ()
        return tuple(
            flag(f.name)
            for f in dataclasses.fields(self.reads)
            if (f.default is dataclasses.MISSING) == required
        )

    @property
    def needs(self) -> tuple[str, ...]:
        """The experiments whose rows it needs (`reads` fields without a default)."""
        return self._read(True)

    @property
    def optional(self) -> tuple[str, ...]:
        """The experiments whose rows it reads where the folder has them."""
        return self._read(False)
