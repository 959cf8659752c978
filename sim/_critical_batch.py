"""McCandlish et al.'s (2018) gradient noise scale of a landscape at a point: B_simple and B_noise,
the batch sizes beyond which larger batches stop paying. Not Smith & Le's noise scale g of the SDE
(`sim.noise_scale`): another quantity that the literature happens to call by a similar name."""

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr

from models import Dataset, Model

from . import _checks
from ._hessian import hvp_cost, split_model
from ._noise import gradient_covariance_trace


class CriticalBatchSize(NamedTuple):
    """Gradient noise scale (McCandlish et al. 2018) of the mean loss (1/N) C at w.

    b_simple = tr(Sigma)/|G|^2 (exact, per-example gradients in chunks); b_noise = tr(H Sigma)/(G^T
    H G), with tr(H Sigma) estimated from `probes` Gaussian probes (error: its propagated standard
    error). Sigma is F, the per-example gradient covariance (1/(N-1)); G = grad C / N; H the Hessian
    of the mean training loss plus lam/N (the Hessian of C / N)."""

    b_simple: float
    b_noise: float
    b_noise_error: float
    trace_sigma: float
    grad_norm_sq: float


@eqx.filter_jit
def _critical_batch(flat, w, data, l2, key, *, chunk, probes):
    n = data.n_train
    ones = jnp.ones((n,), w.dtype)
    loss_grad_sum = flat.weighted_loss_grad(w, ones, data.x_train, data.y_train)
    trace = gradient_covariance_trace(
        flat, w, data.x_train, data.y_train, chunk=chunk, total=loss_grad_sum
    )
    mean_grad = (loss_grad_sum + l2 * w) / n
    hess = lambda v: hvp_cost(flat, w, v, data, l2) / n  # noqa: E731

    def h_sigma_probe(z):
        # L z with L L^T = Sigma: one VJP of the centred per-example losses (as in the SDE's noise).
        lz = flat.weighted_loss_grad(
            w, (z - jnp.mean(z)) / jnp.sqrt(n - 1.0), data.x_train, data.y_train
        )
        return jnp.dot(lz, hess(lz))

    values = jax.lax.map(h_sigma_probe, jr.normal(key, (probes, n), w.dtype))
    curvature = jnp.dot(mean_grad, hess(mean_grad))
    return (
        trace,
        jnp.dot(mean_grad, mean_grad),
        jnp.mean(values),
        jnp.std(values, ddof=1) / jnp.sqrt(probes),
        curvature,
    )


def critical_batch_size(
    model: Model, data: Dataset, *, key, l2: float = 0.0, chunk: int = 100, probes: int = 20
) -> CriticalBatchSize:
    """B_simple and B_noise of McCandlish et al. (2018) at the model's parameters."""
    flat, w = split_model(model, data)
    l2 = _checks.non_negative("l2", l2)
    probes = _checks.integer("probes", probes, low=2)
    chunk = _checks.integer("chunk", chunk)
    if data.n_train < 2:
        raise _checks.InputError(
            "data: the gradient noise scale needs at least 2 training examples"
        )
    with jax.default_matmul_precision("highest"):
        trace, g2, h_sigma, h_sigma_se, curvature = (
            float(x)
            for x in _critical_batch(
                flat, w, data, jnp.asarray(l2, w.dtype), key, chunk=chunk, probes=probes
            )
        )
    return CriticalBatchSize(
        trace / g2, h_sigma / curvature, h_sigma_se / abs(curvature), trace, g2
    )
