"""The SGD noise scale g (Smith & Le 2018, Section 5)."""

from . import _checks


def noise_scale(lr: float, n_train: int, batch_size: int, momentum: float = 0.0) -> float:
    """g = eps (N/B - 1) / (1 - m), the temperature of the SDE that SGD integrates.

    lr is eps, n_train N, batch_size B (distinct examples per step), momentum m. With the summed
    cost C and one SGD step = dt = eps/N of SDE time, dw/dt = -dC/dw + eta(t) with
    <eta(t) eta(t')^T> = g F(w) delta(t - t'), F the per-example gradient covariance (1/(N-1)).
    g = 0 exactly at B = N (full batch: no noise). ~ eps N / (B (1 - m)) for B << N.
    """
    lr = _checks.positive("lr", lr)
    n_train = _checks.integer("n_train", n_train, low=1)
    batch_size = _checks.batch_size(batch_size, n_train)
    momentum = _checks.momentum("momentum", momentum)
    return lr * (n_train / batch_size - 1.0) / (1.0 - momentum)
