"""The sweep runner shared by every experiment: a grid of points, results appended as JSON lines.

- Each point is a JSON-able dict holding everything that defines it; its hash (with the results
  name and any key rule changed from the original ones: `contract.point_hash`) identifies its
  rows. A changed config or key rule is a different hash, never a silent mix.
- Points run in chunks whose composition depends only on the full grid (points of one shape
  together, `chunk_size` at a time), so a resumed sweep computes exactly the numbers of an
  uninterrupted one. A chunk's rows are appended with one write and an fsync; a crash can leave at
  most a partial last line, which is cut off on the next start. Finished (hash, seed) rows are
  skipped; duplicates (a chunk cut mid-write and recomputed) keep the first row.
- A diverged point is a row with `diverged: true` and its step; the sweep goes on.
- A progress bar with ETA on a terminal; plain lines in CI logs.
"""

import contextlib
import dataclasses
import functools
import json
import os
import pathlib
from collections.abc import Callable, Hashable

from models import DataError

from .contract import Evaluate, RunContext, flag, point_hash
from .keys import KeyRules
from .outputs import Outputs
from .progress import Progress
from .tasks import NetSetup

__all__ = ["Results", "driver_lock", "load_rows", "point_hash", "prepare", "run", "run_sweep"]


class Results:
    """The JSON-lines results file of one experiment in a folder."""

    def __init__(self, experiment: str, out: pathlib.Path):
        self.experiment = experiment
        self.path = pathlib.Path(out) / f"{experiment}.jsonl"

    def check(self) -> None:
        """Refuse a file that holds another experiment's rows or is not a results file (no
        writes)."""
        for row in self._read(repair=False):
            if row.get("experiment") != self.experiment:
                raise DataError(
                    f"{self.path} holds results of experiment {row.get('experiment')!r}, "
                    f"not {self.experiment!r}: choose another --out"
                )

    def _read(self, repair: bool) -> list[dict]:
        if not self.path.exists():
            return []
        raw = self.path.read_bytes()
        complete = raw[: raw.rfind(b"\n") + 1]
        if repair and len(complete) != len(raw):
            with open(self.path, "r+b") as f:  # a crash mid-write: drop the partial last line
                f.truncate(len(complete))
        rows = []
        for number, line in enumerate(complete.splitlines(), 1):
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                raise DataError(
                    f"{self.path} line {number} is not a results row (corrupt file)"
                ) from None
        return rows

    def load(self) -> dict[tuple[str, int], dict]:
        rows = {}
        for row in self._read(repair=True):
            rows.setdefault((row["hash"], row["seed"]), row)
        return rows

    def append(self, rows: list[dict]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows).encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)


def run_sweep(
    experiment: str,
    out: pathlib.Path,
    points: list[dict],
    *,
    seeds: list[int] | Callable[[dict], list[int]],
    evaluate: Evaluate,
    keys: KeyRules = KeyRules(),
    shape: Callable[[dict], Hashable] = lambda point: 0,
    chunk_size: int = 8,
    label: str | None = None,
    executor=None,
    cost: Callable[[dict], float] = lambda point: 1.0,
    announce: bool = True,
) -> list[dict]:
    """Run `evaluate(run, chunk, seeds)` on every chunk of the grid that is not finished, with `run`
    the `RunContext` of `experiment` (the results name) and `keys`; return all rows of the grid
    (point order, then seed order). `evaluate` returns, per point, one dict of results per seed
    (with `diverged` and `diverged_step` where a run can diverge); worker processes and Ray receive
    it pickled, so there it must be a top-level function. `seeds` is one list for every point
    or a function of the point (points of one chunk share their seeds). `executor`: where chunks run
    (`workers.Serial()` by default, `workers.LocalWorkers(n)`, `workers.RayWorkers(address)`); this
    process alone appends rows, each chunk's as soon as it finishes. `cost(point)`: its relative run
    time, for the progress bar's ETA (progress is shown in points, weighted by cost). `announce`:
    say how many points the file already holds (`run` says it itself, first)."""
    from . import workers

    seeds_of = seeds if callable(seeds) else (lambda point: seeds)
    results = Results(experiment, out)
    results.check()
    done = results.load()
    context = RunContext(experiment, keys)
    hashes = [context.point_hash(p) for p in points]
    by_shape: dict[Hashable, list[int]] = {}
    for i, p in enumerate(points):
        by_shape.setdefault((shape(p), tuple(seeds_of(p))), []).append(i)
    chunks = [
        idx[k : k + chunk_size] for idx in by_shape.values() for k in range(0, len(idx), chunk_size)
    ]
    todo = [
        c for c in chunks if any((hashes[i], s) not in done for i in c for s in seeds_of(points[i]))
    ]
    n_todo = sum(len(c) for c in todo)
    if announce and n_todo < len(points):
        print(
            f"{experiment}: {len(points) - n_todo} of {len(points)} points already in "
            f"{results.path}",
            flush=True,
        )
    if not todo:
        return [done[(h, s)] for h, p in zip(hashes, points) for s in seeds_of(p)]
    executor = executor if executor is not None else workers.Serial()
    tasks = [([points[i] for i in chunk], seeds_of(points[chunk[0]])) for chunk in todo]
    n_seeds = sorted({len(seeds_of(p)) for p in points}) or [0]
    with executor:
        title = label or (
            f"{experiment} ({len(points)} points x {'/'.join(map(str, n_seeds))} seeds"
            + (f", {executor.workers} workers)" if executor.workers > 1 else ")")
        )
        weight = [sum(cost(points[i]) for i in chunk) for chunk in todo]
        # progress in points, each chunk weighted by its cost
        scale = n_todo / max(sum(weight), 1e-300)
        with Progress(max(n_todo, 1), title, unit="point") as advance:
            finished, partial = 0.0, {}

            def report(index, fraction):
                partial[index] = min(fraction, 1.0) * weight[index] * scale
                advance(finished + sum(partial.values()))

            for index, outputs in executor.run(functools.partial(evaluate, context), tasks, report):
                chunk, (_, chunk_seeds) = todo[index], tasks[index]
                rows = []
                for i, per_seed in zip(chunk, outputs):
                    for seed, values in zip(chunk_seeds, per_seed):
                        if (hashes[i], seed) in done:
                            continue
                        row = {
                            "experiment": experiment,
                            "hash": hashes[i],
                            "seed": seed,
                            "config": points[i],
                            "diverged": False,
                            "diverged_step": None,
                            **values,
                        }
                        rows.append(row)
                        done[(hashes[i], seed)] = row
                results.append(rows)
                partial.pop(index, None)
                finished += weight[index] * scale
                advance(finished + sum(partial.values()))
    return [done[(h, s)] for h, p in zip(hashes, points) for s in seeds_of(p)]


@contextlib.contextmanager
def driver_lock(out: pathlib.Path, stem: str):
    """One driver per results file: a second one on the same folder fails at once with one line.
    The lock is an flock on OUT/.<stem>.lock, released by the OS if the driver dies. A run that
    fails (an exception, Ctrl-C) leaves the folder as it found it: it removes the lock file if it
    made it, and the folders it made if they are still empty. Removing a lock file is safe because a
    driver holds the lock only while the path still names the file it locked (else it opens the new
    one)."""
    import fcntl

    import sim

    created = [d for d in (out, *out.parents) if not d.exists()]  # innermost first
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise sim.InputError(f"cannot create the output folder {out} ({err.strerror})") from None
    path = out / f".{stem}.lock"
    while True:
        made = not path.exists()
        handle = open(path, "a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise sim.InputError(
                f"another sgd-sde is already running {stem} in {out}: wait for it to finish, "
                f"or choose another --out"
            ) from None
        try:
            if os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino:
                break
        except FileNotFoundError:  # a failed driver removed it after we opened it
            pass
        handle.close()
    failed = True
    try:
        yield
        failed = False
    finally:
        if failed and made:
            os.unlink(path)
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()
        for folder in created if failed else ():
            try:
                folder.rmdir()
            except OSError:  # not empty: rows were written
                break


def check_data(points: list[dict]) -> None:
    """Refuse, before anything is written, a point whose training set its MNIST cannot supply (a
    point that draws MNIST names it, "data", with its N, "n_train", and its binary split, "split",
    where it has one): `models.check_draw`."""
    import models

    from . import pools

    for source, n_train, split in sorted(
        {
            (p["data"], p["n_train"], p.get("split"))
            for p in points
            if "data" in p and "n_train" in p
        },
        key=repr,
    ):
        models.check_draw(pools.load(source), n_train, split=split)


def prepare(experiment, cfg, out: pathlib.Path, *, preset: str | None = None) -> tuple:
    """What `run` reads before it writes anything: the config's checks, the rows of the experiments
    this one reads (`experiment.reads`: a field without default must be there, the others are read
    where they are), the grid and the data its points draw. Bad input raises `sim.InputError` or
    `models.DataError` here, with nothing written. Returns (reads, points): an instance of
    `experiment.reads` (None when it reads nothing) and the points."""
    from .contract import validate

    validate(cfg)
    out = pathlib.Path(out)
    Results(experiment.results_name, out).check()
    reads = None
    if experiment.reads is not None:
        found = {}
        for field in dataclasses.fields(experiment.reads):
            name = flag(field.name)
            if field.default is dataclasses.MISSING:
                found[field.name] = load_rows(name, out, needed_by=experiment.name, preset=preset)
            elif Results(name, out).path.exists():
                found[field.name] = load_rows(name, out)
        reads = experiment.reads(**found)
    points = experiment.grid(cfg)
    check_data(points)
    return reads, points


def _resume_note(experiment, cfg, out: pathlib.Path, points: list[dict]) -> str | None:
    """The first line of a run that finds rows in its file: how many of its points are there (the
    refinements they imply included), whether it resumes or only redraws, and how to recompute."""
    name = experiment.results_name
    context = experiment.context
    results = Results(name, out)
    done = results.load()
    if not done:
        return None
    known = list(points)
    for round_ in range(9):  # the points `run` would reach without computing anything new
        hashes = [context.point_hash(p) for p in known]
        complete = [
            all((h, s) in done for s in experiment.seeds(cfg, p)) for h, p in zip(hashes, known)
        ]
        if not all(complete) or not experiment.refine or round_ == 8:
            break
        rows = [done[(h, s)] for h, p in zip(hashes, known) for s in experiment.seeds(cfg, p)]
        extra = [
            p for p in experiment.refine(rows, cfg) if context.point_hash(p) not in set(hashes)
        ]
        if not extra:
            break
        known += extra
    finished = sum(complete)
    if finished == 0:
        return None
    if finished == len(known):
        return (
            f"{name}: all {finished} points already in {results.path}: redrawing; "
            "delete that file or pass --out to recompute"
        )
    return (
        f"{name}: {finished} of {len(known)} points already in {results.path}: resuming; "
        "delete that file or pass --out to recompute"
    )


def run(
    experiment,
    cfg,
    out: pathlib.Path,
    *,
    executor=None,
    preset: str | None = None,
    prepared: tuple | None = None,
) -> dict:
    """All stages of one experiment (`contract.Experiment`) on a validated config: the grid, the
    sweep (resumable, rows in OUT/<results name>.jsonl; chunks where `executor` runs them), the
    summary (with the rows it reads), the figure (through `Outputs.of(out, preset)`); prints the
    report and returns the summary. `prepared`: what `prepare`
    returned for these arguments (the command line prepares first, so that bad input fails before
    JAX is imported)."""
    out = pathlib.Path(out)
    reads, points = (
        prepared if prepared is not None else prepare(experiment, cfg, out, preset=preset)
    )
    points = list(points)
    with driver_lock(out, experiment.results_name):
        note = _resume_note(experiment, cfg, out, points)
        if note:
            print(note, flush=True)

        def sweep(points):
            return run_sweep(
                experiment.results_name,
                out,
                points,
                seeds=lambda p: experiment.seeds(cfg, p),
                evaluate=experiment.evaluate,
                keys=experiment.keys,
                shape=experiment.shape,
                chunk_size=experiment.chunk_size,
                executor=executor,
                cost=experiment.cost,
                announce=False,
            )

        rows = sweep(points)
        # an adaptive grid: refine until nothing is new
        for _ in range(8 if experiment.refine else 0):
            known = {experiment.context.point_hash(p) for p in points}
            extra = [
                p
                for p in experiment.refine(rows, cfg)
                if experiment.context.point_hash(p) not in known
            ]
            if not extra:
                break
            points += extra
            rows += sweep(extra)
    if experiment.reads is None:
        summary = experiment.summarize(rows, cfg)
    else:
        summary = experiment.summarize(rows, cfg, reads)
    if experiment.figure is not None:
        out.mkdir(parents=True, exist_ok=True)
        setup = cfg.net_setup() if isinstance(cfg, NetSetup) else None
        experiment.figure(summary, cfg, Outputs.of(out, preset, setup))
    print(experiment.report(summary, cfg))
    return summary


def load_rows(
    name: str, out: pathlib.Path, *, needed_by: str | None = None, preset: str | None = None
) -> list[dict]:
    """The rows of experiment `name` in folder `out`; a missing file is an InputError that says how
    to make it (with the same preset as the experiment that needs them)."""
    import sim

    results = Results(name, out)
    if not results.path.exists():
        flag = (
            ""
            if preset in (None, "quick")
            else (f" --{preset}" if preset in ("tiny", "paper") else f" --preset {preset}")
        )
        who = f"{needed_by} reads the" if needed_by else "no"
        raise sim.InputError(
            f"{who} rows of {name}, not in {out}: run `sgd-sde {name}{flag} --out {out}` first"
        )
    results.check()
    return list(results.load().values())
