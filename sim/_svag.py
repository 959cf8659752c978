"""SVAG (Li, Malladi & Arora 2021): a second road from SGD to its SDE, at the cost of SGD steps and
without per-example gradients (docs/mathematics.md, "SVAG").

SVAG with parameter l takes l steps of SDE time per SGD step's worth, each with the gradient
c1 g1 + c2 g2 of two independent batches, c = (1 ± sqrt(2l - 1))/2: the mean is unchanged
(c1 + c2 = 1) and the noise covariance is multiplied by c1^2 + c2^2 = l. Plain SGD (m = 0): the
learning rate eps/l, so the time per step eps/(N l) shrinks by l and the noise per unit time is SGD's;
as l grows it converges weakly to dw = -dC/dw dt + sqrt(g) L dW. With momentum m (our paper-form
heavy ball, whose SDE has time step h = sqrt(eps/N) and friction gamma = (1 - m)/h): eps/l^2 and
momentum 1 - (1 - m)/l, so that h -> h/l at fixed gamma, and the amplified noise keeps g' fixed; it
converges to the second-order SDE of `sim.run_sde`. (Our derivation in the same time units as
run_sde; tested: l = 1 is SGD exactly, one step's mean and covariance against the closed form.)
"""

from collections.abc import Sequence

import numpy as np

from models import Dataset, Model

from . import _checks, _run
from ._sgd import sgd_loop
from ._trajectory import Trajectory


def svag_coefficients(l: int) -> tuple[float, float]:
    """(c1, c2) = ((1 + sqrt(2l - 1))/2, (1 - sqrt(2l - 1))/2): c1 + c2 = 1, c1^2 + c2^2 = l."""
    root = np.sqrt(2.0 * l - 1.0)
    return (1.0 + root) / 2.0, (1.0 - root) / 2.0


def run_svag(
    model: Model | Sequence[Model],
    data: Dataset,
    *,
    lr: float,
    batch_size: int,
    steps: int,
    key,
    l: int = 1,
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
    l = _checks.integer("l", l)
    batch_size = _checks.batch_size(batch_size, data.n_train)
    record_every = _run.record_interval(record_every, steps)
    flat, w0, keys = _run.prepare(model, data, key, n_seeds)
    n = data.n_train
    if momentum > 0:
        svag_lr, svag_m = lr / l**2, 1.0 - (1.0 - momentum) / l
        unit = np.sqrt(lr / n)
    else:
        svag_lr, svag_m, unit = lr / l, 0.0, lr / n
    c1, c2 = svag_coefficients(l)
    hyper = tuple(_run.hyper([v] * w0.shape[0], w0) for v in (svag_lr, svag_m, l2, c1, c2))
    mode = _run.seed_mode(seed_batching, w0.shape[-1])
    length, record_steps = _run.run_length(steps * l, record_every * l, record_early)
    with _run.progress_to(progress):
        params, div, records = sgd_loop(flat, w0, keys, data, hyper, None, length, batch_size=batch_size,
                                        mode=mode, svag=True)
    record_steps = np.asarray(record_steps) / l
    div = np.where(np.asarray(div) >= 0, np.asarray(div) // l, -1)
    config = dict(lr=lr, batch_size=batch_size, steps=steps, momentum=momentum, l2=l2, n_train=n,
                  n_seeds=w0.shape[0], record_every=record_every, l=l, svag_lr=svag_lr, svag_momentum=svag_m,
                  noise_scale=lr * (n / batch_size - 1) / (1 - momentum))
    return _run.to_trajectory("svag", flat, records, record_steps, unit, params, div, config)
