"""Plumbing shared by SGD and the SDE: inputs, the record loop, progress, the Trajectory."""

import contextlib
from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np

from models import Dataset, Model

from . import _checks
from ._flat import FlatModel, check_data_fits
from ._trajectory import Trajectory

# Host callbacks run on JAX's own threads, where context variables set by the caller are not seen:
# the active progress callbacks live in module-level stacks, pushed and popped around each run.
_progress: list[Callable[[int], None] | None] = []
_listeners: list[Callable[[int, int], None]] = []


def _report_host(done, total) -> None:
    callback = _progress[-1] if _progress else None
    if callback is not None:
        callback(int(done))
    for listener in _listeners:
        listener(int(done), int(total))


def report(done, total) -> None:
    """Tell the host how many of the run's `total` SGD-equivalent steps are done (from inside a
    compiled loop)."""
    jax.debug.callback(_report_host, done, total, ordered=True)


@contextlib.contextmanager
def progress_to(callback: Callable[[int], None] | None):
    _progress.append(callback)
    try:
        yield
    finally:
        _progress.pop()


@contextlib.contextmanager
def on_progress(listener: Callable[[int, int], None]):
    """Within the block, every run (SGD or SDE, any seeds) calls `listener(done, total)` as it goes:
    `done` of its `total` SGD-equivalent steps, about 20 times per record interval, from inside the
    compiled loop (the sweep runner's progress and ETA come from here)."""
    _listeners.append(listener)
    try:
        yield
    finally:
        _listeners.remove(listener)


def prepare(model: Model | Sequence[Model], data: Dataset, key, n_seeds: int):
    """Flatten the model(s) and split the key: returns (flat, w0 (S, p), keys (S,))."""
    if isinstance(model, Model):
        n_seeds = _checks.integer("n_seeds", n_seeds)
        flat, w = FlatModel.split(model)
        w0 = jnp.broadcast_to(w, (n_seeds,) + w.shape)
    else:
        models = list(model)
        if not models:
            raise _checks.InputError("model must be a Model or a non-empty sequence of Models")
        pairs = [FlatModel.split(m) for m in models]
        flat = pairs[0][0]
        if any(p[0].treedef != flat.treedef or p[0].shapes != flat.shapes for p in pairs):
            raise _checks.InputError(
                "model: every model of an ensemble must share one architecture"
            )
        w0 = jnp.stack([p[1] for p in pairs])
        n_seeds = len(models)
    check_data_fits(flat, w0[0], data)
    return flat, w0, jr.split(key, n_seeds)


def record_interval(record_every: int | None, steps: int) -> int:
    """The record interval, by default steps // 20 (at least 1)."""
    return _checks.integer(
        "record_every", record_every if record_every is not None else max(1, steps // 20)
    )


def early_steps(record_every: int, steps: int) -> list[int]:
    """The geometric records before the first regular one: 1, 2, 4, ... below min(record_every,
    steps)."""
    out, k = [], 1
    while k < min(record_every, steps):
        out.append(k)
        k *= 2
    return out


def scan_records(advance, measure, state, *, steps: int, record_every: int, early: bool = False):
    """Run `steps` SGD-equivalent steps, measuring every `record_every` steps and at the end.

    advance(state, start, length) -> state moves all seeds on by `length` steps (length static);
    measure(state) -> (S, M). Returns (final state, records (R, S, M), record steps (R,) numpy, from
    `record_steps_of`, as for `scan_records_traced`).
    early: also measure at steps 1, 2, 4, ... below the first regular record (where the metrics move
    fastest), each interval a scan of its own static length, inside the same compiled loop.
    Progress is reported about 20 times per record interval: each interval runs as sub-intervals of
    ceil(record_every / 20) steps. Every step is keyed by its absolute index, so how an interval is
    cut never changes a number.
    """
    lay = layout(steps, record_every, early)

    def run_interval(state, start, length):
        piece = -(-length // 20)
        n_pieces, tail = divmod(length, piece)

        def body(state, k):
            state = advance(state, start + k * piece, piece)
            report(start + (k + 1) * piece, steps)
            return state, None

        state, _ = jax.lax.scan(body, state, jnp.arange(n_pieces, dtype=jnp.int32))
        if tail:
            state = advance(state, start + n_pieces * piece, tail)
            report(start + length, steps)
        return state

    def body(state, chunk):
        state = run_interval(state, chunk * record_every, record_every)
        return state, measure(state)

    parts = [measure(state)[None]]
    for a, b in early_intervals(lay, record_every):
        state = run_interval(state, a, b - a)
        parts.append(measure(state)[None])
    state, records = jax.lax.scan(
        body, state, jnp.arange(first_regular(lay), lay.n_full, dtype=jnp.int32)
    )
    parts.append(records)
    if lay.tail:
        state = run_interval(state, lay.n_full * record_every, steps - lay.n_full * record_every)
        parts.append(measure(state)[None])
    return state, jnp.concatenate(parts), record_steps_of(lay, steps, record_every)


class Layout(NamedTuple):
    """The static shape of a record schedule: what must be known at compile time. Everything else
    (the number of steps and the record interval) can be a traced integer, so a new budget with the
    same layout reuses the compiled loop.

    n_full: regular records after step 0; tail: whether a last, shorter interval ends the run;
    early: the geometric records 1, 2, 4, ... below the first regular one (their steps are static).
    """

    n_full: int
    tail: bool
    early: tuple


def layout(steps: int, record_every: int, early: bool) -> Layout:
    n_full, rem = divmod(steps, record_every)
    marks = tuple(early_steps(record_every, steps)) if early and n_full else ()
    return Layout(n_full, bool(rem), marks)


def early_intervals(lay: Layout, record_every) -> list[tuple]:
    """The intervals (start, end) that run before the regular records: 0-1, 1-2, 2-4, ..., the last
    early step to record_every (none without early records). Their ends are records."""
    if not lay.early:
        return []
    return list(zip([0, *lay.early], [*lay.early, record_every]))


def first_regular(lay: Layout) -> int:
    """The first regular record interval the record loop scans over: 1 when the early intervals
    already ran the first one, else 0."""
    return 1 if lay.early else 0


def record_steps_of(lay: Layout, steps: int, record_every: int) -> np.ndarray:
    """The steps at which both record loops (`scan_records`, `scan_records_traced`) measure: step 0,
    the early steps and record_every (with early records), the multiples of record_every, and
    `steps` after a shorter last interval."""
    out = [0] + [b for _, b in early_intervals(lay, record_every)]
    out += [k * record_every for k in range(first_regular(lay) + 1, lay.n_full + 1)]
    return np.asarray(out + ([steps] if lay.tail else []))


class RunLength(NamedTuple):
    """A run's length as the compiled SGD loop takes it: `steps` and `record_every` as traced int32
    scalars (a new budget with the same layout does not recompile) and the static `layout`."""

    steps: jax.Array
    record_every: jax.Array
    layout: Layout


def run_length(steps: int, record_every: int, early: bool) -> tuple[RunLength, np.ndarray]:
    """The compiled loop's `RunLength` for a run of `steps` recorded every `record_every` steps, and
    its record steps (numpy)."""
    lay = layout(steps, record_every, early)
    return (
        RunLength(jnp.int32(steps), jnp.int32(record_every), lay),
        record_steps_of(lay, steps, record_every),
    )


def scan_records_traced(advance, measure, state, length: RunLength):
    """`scan_records` with `length.steps` and `length.record_every` traced int32 scalars and the
    layout static: advance(state, start, length) must accept a traced length (a loop with a dynamic
    trip count). Each interval runs as 20 pieces (their ends at start + k length // 20), progress
    reported after each non-empty one. Returns (final state, records (R, S, M)); the record steps
    are `record_steps_of(length.layout, ...)` (`run_length` returns them)."""
    steps, record_every, lay = length

    def run_interval(state, start, length):
        def body(state, k):
            a = start + (k * length) // 20
            b = start + ((k + 1) * length) // 20
            state = advance(state, a, b - a)
            jax.lax.cond(b > a, lambda: report(b, steps), lambda: None)
            return state, None

        state, _ = jax.lax.scan(body, state, jnp.arange(20, dtype=jnp.int32))
        return state

    def body(state, chunk):
        state = run_interval(state, chunk * record_every, record_every)
        return state, measure(state)

    parts = [measure(state)[None]]
    for a, b in early_intervals(lay, record_every):
        state = run_interval(state, jnp.int32(a), b - a)
        parts.append(measure(state)[None])
    state, records = jax.lax.scan(
        body, state, jnp.arange(first_regular(lay), lay.n_full, dtype=jnp.int32)
    )
    parts.append(records)
    if lay.tail:
        state = run_interval(state, lay.n_full * record_every, steps - lay.n_full * record_every)
        parts.append(measure(state)[None])
    return state, jnp.concatenate(parts)


def freeze_diverged(new_w, diverged_step, candidate_step):
    """For a seed still alive: take the new parameters if finite, else note the step it diverged."""
    alive = diverged_step < 0
    finite = jnp.all(jnp.isfinite(new_w))
    diverged_step = jnp.where(alive & ~finite, candidate_step, diverged_step)
    return alive & finite, diverged_step


def mark_non_finite(w, diverged_step, step):
    """Catch, at a record, any non-finite parameters that the per-step check missed."""
    missed = (diverged_step < 0) & ~jnp.all(jnp.isfinite(w))
    return jnp.where(missed, step, diverged_step)


def nan_if_diverged(values, diverged_step):
    return jnp.where((diverged_step < 0)[..., None], values, jnp.nan)


def to_trajectory(kind, flat, records, record_steps, time_per_step, params, diverged_step, config):
    records = np.asarray(records)
    record_steps = np.asarray(record_steps)
    return Trajectory(
        kind=kind,
        steps=record_steps,
        time=np.broadcast_to(
            np.asarray(time_per_step, dtype=float).reshape(-1, 1) * record_steps,
            (np.shape(params)[0], record_steps.shape[0]),
        ).copy(),
        train_loss=records[:, :, 0].T.copy(),
        test_accuracy=records[:, :, 1].T.copy(),
        test_xent=records[:, :, 2].T.copy(),
        params=np.asarray(params),
        diverged_step=np.asarray(diverged_step),
        config=config,
        flat=flat,
        diagnostics={
            name: records[:, :, 3 + k].T.copy() for k, name in enumerate(flat.diagnostic_names)
        },
    )


def seed_mode(mode: str, n_params: int) -> str:
    """How seeds run side by side: "vmap" (batched) or "map" (one after another inside the compiled
    loop). On CPU, map was measured 2.25x faster than vmap for 3 seeds of SGD at B = 30 on the
    784-800-10 net (XLA:CPU runs batched matmuls poorly), while for tiny models with thousands of
    seeds vmap is ~10x faster (per-step overhead dominates). "auto": map on CPU for models of
    >= 10,000 parameters, vmap otherwise and on accelerators."""
    if mode == "auto":
        big = n_params >= 10_000
        return "map" if jax.default_backend() == "cpu" and big else "vmap"
    if mode not in ("vmap", "map"):
        raise _checks.InputError(f"seed_batching must be 'auto', 'vmap' or 'map' (got {mode!r})")
    return mode


def over_seeds(fn, mode: str):
    """fn applied to every seed: all arguments carry a leading seed axis."""
    if mode == "vmap":
        return jax.vmap(fn)
    return lambda *args: jax.lax.map(lambda a: fn(*a), args)


def per_run(name, value, check) -> list[float]:
    """A hyperparameter given as a number or one value per run, each checked."""
    if isinstance(value, (list, tuple, np.ndarray, jax.Array)):
        values = [
            check(name, v.item() if hasattr(v, "item") else v) for v in np.asarray(value).ravel()
        ]
        if not values:
            raise _checks.InputError(f"{name} must not be empty")
        return values
    return [check(name, value)]


def broadcast_runs(name, values, n_runs):
    if len(values) == 1:
        return values * n_runs
    if len(values) != n_runs:
        raise _checks.InputError(f"{name} has {len(values)} values for {n_runs} runs")
    return values


def hyper(value, like) -> jax.Array:
    """A hyperparameter as a traced array of the parameters' dtype (no recompile per value)."""
    return jnp.asarray(value, dtype=like.dtype)
