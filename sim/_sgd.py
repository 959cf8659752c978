"""Discrete SGD in the paper's parameterisation, one `lax.scan` per record interval, vmapped over seeds."""

from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np

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
    """Minibatch SGD (with momentum) on C(w) = sum_i l_i(w) + (lam/2)|w|^2, for several seeds at once.

    Each step draws B = batch_size DISTINCT examples uniformly (steps independent) and, with
    C^ = (N/B) sum_{i in batch} C_i and C_i = l_i + lam |w|^2 / (2N),

        v <- m v + (1/N) dC^/dw = m v + (1/B) sum_{i in batch} grad l_i(w) + lam w / N
        w <- w - eps v

    (eps = lr, m = momentum, lam = l2; m = 0 is plain SGD). This is PyTorch's
    SGD(lr=eps, momentum=m, dampening=0) on the mean batch loss + lam |w|^2 / (2N). One step is
    dt = eps/N of time in the SDE dw/dt = -dC/dw + eta (m = 0), or h = sqrt(eps/N) in the
    second-order SDE (m > 0); its noise scale is g = eps (N/B - 1)/(1 - m).

    model: one Model (every seed starts there) or a sequence of Models (one initialisation per seed).
    lr, momentum, l2: a number, or one value per run (a sequence of length n_seeds, or of any length
        with a single Model): runs of one shape with different hyperparameters share one compiled
        loop (the sweep runner's grouping).
    key: a `jax.random.key`; seed s draws its batches from `jr.split(key, n_seeds)[s]`.
    schedule: optional int array (steps, B) or (n_seeds, steps, B) of example indices, replacing the
        random draws (to replay a run or cross-check another implementation).
    record_every: record train loss, test accuracy and test cross-entropy every so many steps
        (default: steps // 20), at step 0 and at the last step, without leaving the compiled loop.
    record_early: also record at steps 1, 2, 4, ... below the first regular record (where the metrics
        change fastest; a curve recorded every k steps from step 0 is a straight line over the first k).
    progress: optional callable, called with the number of steps done after each record.
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
    lrs, moms, l2s = (_run.broadcast_runs(name, v, n_runs) for name, v in
                      (("lr", lrs), ("momentum", moms), ("l2", l2s)))
    if schedule is not None:
        schedule = _check_schedule(schedule, steps, batch_size, data.n_train, w0.shape[0])
    hyper = tuple(_run.hyper(v, w0) for v in (lrs, moms, l2s))
    mode = _run.seed_mode(seed_batching, w0.shape[-1])
    length, record_steps = _run.run_length(steps, record_every, record_early)
    with _run.progress_to(progress):
        params, div, records = sgd_loop(flat, w0, keys, data, hyper, schedule, length,
                                        batch_size=batch_size, mode=mode)
    n = data.n_train
    lr_a, m_a = np.asarray(lrs), np.asarray(moms)
    time_per_step = np.where(m_a > 0, np.sqrt(lr_a / n), lr_a / n)
    single = lambda v: v[0] if np.all(np.asarray(v) == v[0]) else list(v)  # noqa: E731
    config = dict(lr=single(lrs), batch_size=batch_size, steps=steps, momentum=single(moms),
                  l2=single(l2s), n_train=n, n_seeds=n_runs, record_every=record_every,
                  noise_scale=single([a * (n / batch_size - 1) / (1 - b) for a, b in zip(lrs, moms)]))
    return _run.to_trajectory("sgd", flat, records, record_steps, time_per_step, params, div, config)


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


def _update(w, v, grad, lr, momentum, l2, n_train):
    """The momentum update, leaf by leaf: v <- m v + g + lam w / N, w <- w - eps v."""
    v = tuple(momentum * vi + gi + l2 * wi / n_train for vi, gi, wi in zip(v, grad, w))
    return tuple(wi - lr * vi for wi, vi in zip(w, v)), v


def _leaf_sgd_step(flat, w, v, batch_x, batch_y, lr, momentum, l2, n_train):
    b = batch_x.shape[0]
    weights = jnp.full((b,), 1.0 / b, w[0].dtype)
    loss, grad = flat.leaf_loss_and_grad(w, weights, batch_x, batch_y)
    return *_update(w, v, grad, lr, momentum, l2, n_train), loss


def _leaf_svag_step(flat, w, v, x1, y1, x2, y2, lr, momentum, l2, n_train, c1, c2):
    b = x1.shape[0]
    weights = jnp.full((b,), 1.0 / b, w[0].dtype)
    loss, g1 = flat.leaf_loss_and_grad(w, weights, x1, y1)
    _, g2 = flat.leaf_loss_and_grad(w, weights, x2, y2)
    grad = tuple(c1 * a + c2 * b for a, b in zip(g1, g2))
    return *_update(w, v, grad, lr, momentum, l2, n_train), loss


def sgd_step(flat: FlatModel, w, v, batch_x, batch_y, lr, momentum, l2, n_train):
    """One step of momentum SGD (paper's form) on a given batch, flat w and v; returns (w, v, batch loss
    at the old w). (The training loop carries the parameters leaf by leaf; the arithmetic is this.)"""
    w, v, loss = _leaf_sgd_step(flat, flat.leaves(w), flat.leaves(v), batch_x, batch_y, lr, momentum, l2, n_train)
    return flat.flatten(w), flat.flatten(v), loss


def svag_step(flat: FlatModel, w, v, x1, y1, x2, y2, lr, momentum, l2, n_train, c1, c2):
    """One SVAG step (Li, Malladi & Arora 2021): the gradient c1 g1 + c2 g2 of two independent batches,
    c = (1 ± sqrt(2l - 1))/2, then the momentum-SGD update. At l = 1 (c1 = 1, c2 = 0) exactly `sgd_step`
    on the first batch (1 x g1 + 0 x g2 = g1 in floating point)."""
    w, v, loss = _leaf_svag_step(flat, flat.leaves(w), flat.leaves(v), x1, y1, x2, y2, lr, momentum, l2,
                                 n_train, c1, c2)
    return flat.flatten(w), flat.flatten(v), loss


def distinct_batch(key, n_train: int, batch_size: int):
    """B distinct indices, uniformly: the positions of the B largest of N iid uniforms (a uniformly
    random B-subset; ~10x cheaper than a permutation of N on CPU for B << N)."""
    return jax.lax.top_k(jr.uniform(key, (n_train,)), batch_size)[1]


@eqx.filter_jit
def sgd_loop(flat, w0, keys, data, hyper, schedule, length: _run.RunLength, *, batch_size, mode, svag=False):
    n = data.n_train
    per_seed_schedule = schedule is not None and schedule.ndim == 3

    def one_seed(state, key, hyper, seed_schedule, start, length):
        lr, momentum, l2 = hyper[:3]

        def step(state, t):
            w, v, div = state
            if seed_schedule is None:
                idx = distinct_batch(jr.fold_in(key, t), n, batch_size)
            else:
                idx = seed_schedule[t]
            if svag:  # a second, independent batch from its own stream (see sim.run_svag)
                second = distinct_batch(jr.fold_in(jr.fold_in(key, t), 1), n, batch_size)
                w, v, loss = _leaf_svag_step(flat, w, v, data.x_train[idx], data.y_train[idx],
                                             data.x_train[second], data.y_train[second], lr, momentum, l2, n,
                                             hyper[3], hyper[4])
            else:
                w, v, loss = _leaf_sgd_step(flat, w, v, data.x_train[idx], data.y_train[idx], lr, momentum, l2, n)
            # The batch loss at w_t is a free by-product: non-finite means w_t is (NaN and inf
            # propagate through every model here). No per-step pass over the parameters.
            div = jnp.where((div < 0) & ~jnp.isfinite(loss), t, div)
            return (w, v, div), None

        w, v, div = jax.lax.fori_loop(start, start + length, lambda t, s: step(s, t)[0], state)
        return w, v, _run.mark_non_finite(flat.flatten(w), div, start + length)

    def advance(state, start, length):
        if per_seed_schedule:
            return _run.over_seeds(lambda s, k, h, sch: one_seed(s, k, h, sch, start, length), mode)(
                state, keys, hyper, schedule)
        return _run.over_seeds(lambda s, k, h: one_seed(s, k, h, schedule, start, length), mode)(
            state, keys, hyper)

    def measure(state):
        w, _, div = state
        return _run.nan_if_diverged(_run.over_seeds(lambda w: flat.metrics(flat.flatten(w), data), mode)(w), div)

    # The loop carries parameters and momentum leaf by leaf (seed axis first on every leaf).
    div0 = jnp.full((w0.shape[0],), -1, jnp.int32)
    leaves0 = jax.vmap(flat.leaves)(w0)
    state = (leaves0, tuple(jnp.zeros_like(leaf) for leaf in leaves0), div0)
    (w, _, div), records = _run.scan_records_traced(advance, measure, state, length)
    return jax.vmap(flat.flatten)(w), div, records
