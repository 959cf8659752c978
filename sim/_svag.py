"""SVAG (Li, Malladi & Arora 2021): a second road from SGD to its SDE, at the cost of SGD steps and
without per-example gradients (docs/mathematics.md, "SVAG").

SVAG with parameter l takes l steps of SDE time per SGD step's worth, each with the gradient
c1 g1 + c2 g2 of two independent batches, c = (1 ± sqrt(2l - 1))/2: the mean is unchanged
(c1 + c2 = 1) and the noise covariance is multiplied by c1^2 + c2^2 = l. Plain SGD (m = 0): the
learning rate eps/l, so the time per step eps/(N l) shrinks by l and the noise per unit time is
SGD's; as l grows it converges weakly to dw = -dC/dw dt + sqrt(g) L dW. With momentum m (our
paper-form heavy ball, whose SDE has time step h = sqrt(eps/N) and friction gamma = (1 - m)/h):
eps/l^2 and momentum 1 - (1 - m)/l, so that h -> h/l at fixed gamma, and the amplified noise keeps
g' fixed; it converges to the second-order SDE of `sim.run_sde`. (Our derivation in the same time
units as run_sde; tested: l = 1 is SGD exactly, one step's mean and covariance against the closed
form.)"""

from collections.abc import Sequence

import jax.random as jr
import numpy as np
from jaxtyping import Array

from models import Dataset, Model

from . import _checks, _run
from ._flat import FlatModel
from ._sgd import (
    AbstractBatchGradient,
    SGDHyper,
    batch_loss_and_grad,
    distinct_batch,
    momentum_update,
    sgd_loop,
)
from ._trajectory import Trajectory


def svag_coefficients(l: int) -> tuple[float, float]:  # noqa: E741  (public: the paper's l)
    """(c1, c2) = ((1 + sqrt(2l - 1))/2, (1 - sqrt(2l - 1))/2): c1 + c2 = 1, c1^2 + c2^2 = l."""
    root = np.sqrt(2.0 * l - 1.0)
    return (1.0 + root) / 2.0, (1.0 - root) / 2.0


def svag_gradient(flat: FlatModel, w, x1, y1, x2, y2, c1, c2):
    """(batch loss at w on the first batch, c1 g1 + c2 g2), g1 and g2 the mean gradients of the two
    batches, leaf by leaf."""
    loss, g1 = batch_loss_and_grad(flat, w, x1, y1)
    _, g2 = batch_loss_and_grad(flat, w, x2, y2)
    return loss, tuple(c1 * a + c2 * b for a, b in zip(g1, g2))


class SVAGGradient(AbstractBatchGradient):
    """SVAG's gradient estimate in the SGD loop: `svag_gradient` of step t's batch and a second,
    independent one drawn from fold_in(fold_in(key_s, t), 1). c1, c2: `svag_coefficients(l)`, one
    value per run in the loop."""

    c1: Array
    c2: Array

    def __call__(self, flat, w, data, idx, step_key, batch_size):
        second = distinct_batch(jr.fold_in(step_key, 1), data.n_train, batch_size)
        return svag_gradient(
            flat,
            w,
            data.x_train[idx],
            data.y_train[idx],
            data.x_train[second],
            data.y_train[second],
            self.c1,
            self.c2,
        )


def svag_step(flat: FlatModel, w, v, x1, y1, x2, y2, lr, momentum, l2, n_train, c1, c2):
    """One SVAG step (Li, Malladi & Arora 2021): the gradient c1 g1 + c2 g2 of two independent
    batches, c = (1 ± sqrt(2l - 1))/2, then the momentum-SGD update (lr, momentum: SVAG's, not
    SGD's); flat w and v, returns (w, v, first batch's loss at the old w). At l = 1 (c1 = 1, c2 = 0)
    exactly `sgd_step` on the first batch (1 x g1 + 0 x g2 = g1 in floating point)."""
    w, v = flat.leaves(w), flat.leaves(v)
    loss, grad = svag_gradient(flat, w, x1, y1, x2, y2, c1, c2)
    w, v = momentum_update(w, v, grad, SGDHyper(lr=lr, momentum=momentum, l2=l2), n_train)
    return flat.flatten(w), flat.flatten(v), loss


def run_svag(
    model: Model | Sequence[Model],
    data: Dataset,
    *,
    lr: float,
    batch_size: int,
    steps: int,
    key,
    l: int = 1,  # noqa: E741  (public keyword: the SVAG paper's l, `run_svag(..., l=L)`)
    n_seeds: int = 1,
    momentum: float = 0.0,
    l2: float = 0.0,
    record_every: int | None = None,
    record_early: bool = False,
    seed_batching: str = "auto",
    progress=None,
) -> Trajectory:
    """SVAG with parameter l of SGD(lr, batch_size, momentum, l2): steps counts SGD-equivalent steps
    (the run takes l * steps SVAG steps, reaching the same SDE time); records every record_every
    SGD-equivalent steps. Batches: SVAG step t draws its first batch as SGD's step t would
    (fold_in(key_s, t)) and its second from fold_in(fold_in(key_s, t), 1). Other arguments and the
    returned `Trajectory` as `run_sgd` (steps and times in SGD-equivalent units)."""
    lr = _checks.positive("lr", lr)
    momentum = _checks.momentum("momentum", momentum)
    l2 = _checks.non_negative("l2", l2)
    steps = _checks.integer("steps", steps)
    ell = _checks.integer("l", l)
    batch_size = _checks.batch_size(batch_size, data.n_train)
    record_every = _run.record_interval(record_every, steps)
    flat, w0, keys = _run.prepare(model, data, key, n_seeds)
    n = data.n_train
    if momentum > 0:
        svag_lr, svag_m = lr / ell**2, 1.0 - (1.0 - momentum) / ell
        unit = np.sqrt(lr / n)
    else:
        svag_lr, svag_m, unit = lr / ell, 0.0, lr / n
    c1, c2 = svag_coefficients(ell)
    lr_s, m_s, l2_s, c1_s, c2_s = (
        _run.hyper([v] * w0.shape[0], w0) for v in (svag_lr, svag_m, l2, c1, c2)
    )
    hyper = SGDHyper(lr=lr_s, momentum=m_s, l2=l2_s)
    gradient = SVAGGradient(c1=c1_s, c2=c2_s)
    mode = _run.seed_mode(seed_batching, w0.shape[-1])
    length, record_steps = _run.run_length(steps * ell, record_every * ell, record_early)
    with _run.progress_to(progress):
        params, div, records = sgd_loop(
            flat, w0, keys, data, hyper, gradient, None, length, batch_size=batch_size, mode=mode
        )
    record_steps = np.asarray(record_steps) / ell
    div = np.where(np.asarray(div) >= 0, np.asarray(div) // ell, -1)
    config = dict(
        lr=lr,
        batch_size=batch_size,
        steps=steps,
        momentum=momentum,
        l2=l2,
        n_train=n,
        n_seeds=w0.shape[0],
        record_every=record_every,
        l=ell,
        svag_lr=svag_lr,
        svag_momentum=svag_m,
        noise_scale=lr * (n / batch_size - 1) / (1 - momentum),
    )
    return _run.to_trajectory("svag", flat, records, record_steps, unit, params, div, config)
