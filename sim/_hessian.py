"""The Hessian of a landscape at a point, from Hessian-vector products (forward-over-reverse), never
a dense matrix: the operators, and Hutchinson's trace.

Conventions (docs/mathematics.md, "Sharpness and the gradient noise scale"): C(w) =
sum_i l_i(w) + (lam/2)|w|^2; sharpness is measured on the Hessian of the MEAN training loss
(1/N) sum_i l_i, which is (H_C - lam I)/N; the evidence on H_C itself.
"""

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr

from models import Dataset, Model

from . import _checks
from ._flat import FlatModel, check_data_fits

EXACT_MAX_PARAMS = 4000


class Estimate(NamedTuple):
    """A number, its standard error (0 for an exact result) and how it was obtained."""

    value: float
    error: float
    method: str


def split_model(model: Model, data: Dataset):
    if not isinstance(model, Model):
        raise _checks.InputError(f"model must be a models.Model (got {type(model).__name__})")
    flat, w = FlatModel.split(model)
    check_data_fits(flat, w, data)
    return flat, w


def summed_cost(flat: FlatModel, w, data: Dataset, l2):
    """C(w) = sum_i l_i(w) + (lam/2)|w|^2."""
    return jnp.sum(flat.losses(w, data.x_train, data.y_train)) + 0.5 * l2 * jnp.dot(w, w)


def hvp_cost(flat: FlatModel, w, v, data: Dataset, l2):
    """H_C v, the Hessian of the summed cost C (prior included) times v (forward-over-reverse)."""
    grad = jax.grad(lambda u: summed_cost(flat, u, data, l2))
    return jax.jvp(grad, (w,), (v,))[1]


def hvp_mean(flat: FlatModel, w, v, data: Dataset):
    """H v for the Hessian of the mean training loss (1/N) sum_i l_i (no prior)."""
    zero = jnp.zeros((), w.dtype)
    return hvp_cost(flat, w, v, data, zero) / data.n_train


def operator(flat, w, data, l2, of):
    if of == "mean":
        return lambda v: hvp_mean(flat, w, v, data)
    if of == "cost":
        return lambda v: hvp_cost(flat, w, v, data, l2)
    raise _checks.InputError(f"of must be 'mean' or 'cost' (got {of!r})")


def probe_values(fn, key, p, dtype, probes, batch):
    """fn(v) for Rademacher probes v in [-1, 1]^p, `batch` probes at a time."""
    signs = jr.rademacher(key, (probes, p), dtype=dtype)
    return jax.lax.map(fn, signs, batch_size=min(batch, probes))


@eqx.filter_jit
def _hutchinson(flat, w, data, l2, key, *, probes, batch, of):
    matvec = operator(flat, w, data, l2, of)
    values = probe_values(lambda v: jnp.dot(v, matvec(v)), key, w.shape[0], w.dtype, probes, batch)
    return jnp.mean(values), jnp.std(values, ddof=1) / jnp.sqrt(probes)


def hessian_trace(
    model: Model,
    data: Dataset,
    *,
    key,
    probes: int = 100,
    l2: float = 0.0,
    of: str = "mean",
    probe_batch: int = 10,
) -> Estimate:
    """Hutchinson estimate of tr H with Rademacher probes: mean of v^T H v and its standard
    error."""
    flat, w = split_model(model, data)
    probes = _checks.integer("probes", probes, low=2)
    l2 = _checks.non_negative("l2", l2)
    with jax.default_matmul_precision("highest"):
        mean, se = _hutchinson(
            flat, w, data, jnp.asarray(l2, w.dtype), key, probes=probes, batch=probe_batch, of=of
        )
    return Estimate(float(mean), float(se), f"Hutchinson, {probes} Rademacher probes")
