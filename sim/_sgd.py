"""Discrete SGD in the paper's parameterisation: one compiled loop for all seeds (vmapped or
mapped), records in a `lax.scan` over record intervals, steps in a `fori_loop`; SVAG (`sim._svag`)
runs the same loop with its own gradient estimate."""

import abc
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from jaxtyping import ArrayLike

from models import Dataset, Model

from . import _checks, _run
from ._flat import FlatModel
from ._trajectory import Trajectory


def run_sgd(
    model: Model | Sequence[Model],
    data: Dataset,
    *,
    lr: float,
    batch_size: int,
    steps: int,
    key,
    n_seeds: int = 1,
    momentum: float = 0.0,
    l2: float = 0.0,
    record_every: int | None = None,
    record_early: bool = False,
    schedule=None,
    seed_batching: str = "auto",
    progress=None,
) -> Trajectory:
    """Minibatch SGD (with momentum) on C(w) = sum_i l_i(w) + (lam/2)|w|^2, for several seeds at
    once.

    Each step draws B = batch_size DISTINCT examples uniformly (steps independent) and, with
    C^ = (N/B) sum_{i in batch} C_i and C_i = l_i + lam |w|^2 / (2N),

        v <- m v + (1/N) dC^/dw = m v + (1/B) sum_{i in batch} grad l_i(w) + lam w / N
        w <- w - eps v

    (eps = lr, m = momentum, lam = l2; m = 0 is plain SGD). This is PyTorch's
    SGD(lr=eps, momentum=m, dampening=0) on the mean batch loss + lam |w|^2 / (2N). One step is
    dt = eps/N of time in the SDE dw/dt = -dC/dw + eta (m = 0), or h = sqrt(eps/N) in the
    second-order SDE (m > 0); its noise scale is g = eps (N/B - 1)/(1 - m).

    model: one Model (every seed starts there) or a sequence of Models (one initialisation per
        seed).
    lr, momentum, l2: a number, or one value per run (a sequence of length n_seeds, or of any length
        with a single Model): runs of one shape with different hyperparameters share one compiled
        loop (the sweep runner's grouping).
    key: a `jax.random.key`; seed s draws its batches from `jr.split(key, n_seeds)[s]`.
    schedule: optional int array (steps, B) or (n_seeds, steps, B) of example indices, replacing the
        random draws (to replay a run or cross-check another implementation).
    record_every: record train loss, test accuracy and test cross-entropy every so many steps
        (default: steps // 20), at step 0 and at the last step, without leaving the compiled loop.
    record_early: also record at steps 1, 2, 4, ... below the first regular record (where the
        metrics change fastest; a curve recorded every k steps from step 0 is a straight line over
        the first k).
    progress: optional callable, called with the number of steps done as the run goes, from inside
        the compiled loop: after each twentieth of every record interval (at most 20 calls per
        interval, fewer for an interval of under 20 steps), not once per record.
    seed_batching: "vmap", "map" (seeds one after another in the compiled loop) or "auto" (map on
        CPU, vmap elsewhere; see `_run.seed_mode` for the measurement).
    Returns a `Trajectory`; a seed whose parameters become non-finite is marked diverged, with
    the first step whose batch loss was non-finite, and its later metrics are NaN.
    """
    lrs = _run.per_run("lr", lr, _checks.positive)
    moms = _run.per_run("momentum", momentum, _checks.momentum)
    l2s = _run.per_run("l2", l2, _checks.non_negative)
    steps = _checks.integer("steps", steps)
    batch_size = _checks.batch_size(batch_size, data.n_train)
    record_every = _run.record_interval(record_every, steps)
    runs = {len(v) for v in (lrs, moms, l2s) if len(v) > 1}
    if len(runs) > 1:
        raise _checks.InputError("lr, momentum and l2 given per run must have the same length")
    if runs and isinstance(model, Model):
        n_seeds = runs.pop()
    flat, w0, keys = _run.prepare(model, data, key, n_seeds)
    n_runs = w0.shape[0]
    lrs, moms, l2s = (
        _run.broadcast_runs(name, v, n_runs)
        for name, v in (("lr", lrs), ("momentum", moms), ("l2", l2s))
    )
    if schedule is not None:
        schedule = _check_schedule(schedule, steps, batch_size, data.n_train, w0.shape[0])
    hyper = SGDHyper(lr=_run.hyper(lrs, w0), momentum=_run.hyper(moms, w0), l2=_run.hyper(l2s, w0))
    mode = _run.seed_mode(seed_batching, w0.shape[-1])
    length, record_steps = _run.run_length(steps, record_every, record_early)
    with _run.progress_to(progress):
        params, div, records = sgd_loop(
            flat,
            w0,
            keys,
            data,
            hyper,
            MinibatchGradient(),
            schedule,
            length,
            batch_size=batch_size,
            mode=mode,
        )
    n = data.n_train
    lr_a, m_a = np.asarray(lrs), np.asarray(moms)
    time_per_step = np.where(m_a > 0, np.sqrt(lr_a / n), lr_a / n)
    single = lambda v: v[0] if np.all(np.asarray(v) == v[0]) else list(v)  # noqa: E731
    config = dict(
        lr=single(lrs),
        batch_size=batch_size,
        steps=steps,
        momentum=single(moms),
        l2=single(l2s),
        n_train=n,
        n_seeds=n_runs,
        record_every=record_every,
        noise_scale=single([a * (n / batch_size - 1) / (1 - b) for a, b in zip(lrs, moms)]),
    )
    return _run.to_trajectory(
        "sgd", flat, records, record_steps, time_per_step, params, div, config
    )


def _check_schedule(schedule, steps, batch_size, n_train, n_seeds):
    schedule = np.asarray(schedule)
    if not np.issubdtype(schedule.dtype, np.integer):
        raise _checks.InputError("schedule must be an integer array of example indices")
    if schedule.shape not in ((steps, batch_size), (n_seeds, steps, batch_size)):
        raise _checks.InputError(
            f"schedule must have shape (steps, batch_size) = ({steps}, {batch_size}) or "
            f"(n_seeds, steps, batch_size) (got {schedule.shape})"
        )
    if schedule.min() < 0 or schedule.max() >= n_train:
        raise _checks.InputError(f"schedule holds indices outside [0, {n_train})")
    return jnp.asarray(schedule, jnp.int32)


class SGDHyper(eqx.Module):
    """Momentum SGD's hyperparameters in the paper's form: lr = eps, momentum = m, l2 = lam. In the
    compiled loop, traced arrays of the parameters' dtype (a new value never recompiles), each with
    a leading run axis (one value per seed) mapped with the seeds; numbers in `sgd_step`."""

    lr: ArrayLike
    momentum: ArrayLike
    l2: ArrayLike


def momentum_update(w, v, grad, hyper: SGDHyper, n_train: int):
    """The momentum update, leaf by leaf: v <- m v + g + lam w / N, w <- w - eps v."""
    v = tuple(hyper.momentum * vi + gi + hyper.l2 * wi / n_train for vi, gi, wi in zip(v, grad, w))
    return tuple(wi - hyper.lr * vi for wi, vi in zip(w, v)), v


def batch_loss_and_grad(flat: FlatModel, w, batch_x, batch_y):
    """The mean loss (1/B) sum_{i in batch} l_i(w) and its gradient, leaf by leaf."""
    b = batch_x.shape[0]
    weights = jnp.full((b,), 1.0 / b, w[0].dtype)
    return flat.leaf_loss_and_grad(w, weights, batch_x, batch_y)


class AbstractBatchGradient(eqx.Module):
    """The gradient estimate that one step of the SGD loop feeds to `momentum_update`: SGD's
    minibatch mean (`MinibatchGradient`) or SVAG's combination of two batches (`sim._svag`). Array
    fields carry a leading run axis in the loop, mapped with the seeds like `SGDHyper`."""

    @abc.abstractmethod
    def __call__(self, flat: FlatModel, w, data: Dataset, idx, step_key, batch_size: int):
        """(batch loss at w on the batch `idx`, gradient leaves) for step t; step_key =
        fold_in(key_s, t) (the key that drew `idx`, unless a schedule gave it)."""


class MinibatchGradient(AbstractBatchGradient):
    """SGD's estimate: the mean gradient of the batch `idx`."""

    def __call__(self, flat, w, data, idx, step_key, batch_size):
        return batch_loss_and_grad(flat, w, data.x_train[idx], data.y_train[idx])


def sgd_step(flat: FlatModel, w, v, batch_x, batch_y, lr, momentum, l2, n_train):
    """One step of momentum SGD (paper's form) on a given batch, flat w and v; returns (w, v, batch
    loss at the old w). (The training loop carries the parameters leaf by leaf; the arithmetic is
    this.)"""
    w, v = flat.leaves(w), flat.leaves(v)
    loss, grad = batch_loss_and_grad(flat, w, batch_x, batch_y)
    w, v = momentum_update(w, v, grad, SGDHyper(lr=lr, momentum=momentum, l2=l2), n_train)
    return flat.flatten(w), flat.flatten(v), loss


def distinct_batch(key, n_train: int, batch_size: int):
    """B distinct indices, uniformly: the positions of the B largest of N iid uniforms (a uniformly
    random B-subset; ~10x cheaper than a permutation of N on CPU for B << N)."""
    return jax.lax.top_k(jr.uniform(key, (n_train,)), batch_size)[1]


@eqx.filter_jit
def sgd_loop(
    flat: FlatModel,
    w0,
    keys,
    data: Dataset,
    hyper: SGDHyper,
    gradient: AbstractBatchGradient,
    schedule,
    length: _run.RunLength,
    *,
    batch_size: int,
    mode: str,
):
    """The compiled momentum-SGD loop for S runs (shared by SGD and SVAG): step t of run s takes the
    batch schedule[(s,) t] or distinct_batch(fold_in(keys[s], t), N, B), the gradient estimate
    `gradient` on it and `momentum_update` with `hyper`. w0 (S, p), keys (S,); hyper's and
    gradient's arrays (S,). Returns (final w (S, p), diverged step (S,), records (R, S, M)) with
    records at `_run.run_length`'s record steps."""
    n = data.n_train
    per_seed_schedule = schedule is not None and schedule.ndim == 3

    def one_seed(state, key, hyper, gradient, seed_schedule, start, length):
        def step(state, t):
            w, v, div = state
            step_key = jr.fold_in(key, t)
            if seed_schedule is None:
                idx = distinct_batch(step_key, n, batch_size)
            else:
                idx = seed_schedule[t]
            loss, grad = gradient(flat, w, data, idx, step_key, batch_size)
            w, v = momentum_update(w, v, grad, hyper, n)
            # The batch loss at w_t is a free by-product: non-finite means w_t is (NaN and inf
            # propagate through every model here). No per-step pass over the parameters.
            div = jnp.where((div < 0) & ~jnp.isfinite(loss), t, div)
            return (w, v, div), None

        w, v, div = jax.lax.fori_loop(start, start + length, lambda t, s: step(s, t)[0], state)
        return w, v, _run.mark_non_finite(flat.flatten(w), div, start + length)

    def advance(state, start, length):
        if per_seed_schedule:
            return _run.over_seeds(
                lambda s, k, h, gr, sch: one_seed(s, k, h, gr, sch, start, length), mode
            )(state, keys, hyper, gradient, schedule)
        return _run.over_seeds(
            lambda s, k, h, gr: one_seed(s, k, h, gr, schedule, start, length), mode
        )(state, keys, hyper, gradient)

    def measure(state):
        w, _, div = state
        return _run.nan_if_diverged(
            _run.over_seeds(lambda w: flat.metrics(flat.flatten(w), data), mode)(w), div
        )

    # The loop carries parameters and momentum leaf by leaf (seed axis first on every leaf).
    div0 = jnp.full((w0.shape[0],), -1, jnp.int32)
    leaves0 = jax.vmap(flat.leaves)(w0)
    state = (leaves0, tuple(jnp.zeros_like(leaf) for leaf in leaves0), div0)
    (w, _, div), records = _run.scan_records_traced(advance, measure, state, length)
    return jax.vmap(flat.flatten)(w), div, records
