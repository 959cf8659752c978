"""The minimum of the summed cost by damped Newton with the dense Hessian (small models)."""

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from models import Dataset, Model

from . import _checks
from ._hessian import EXACT_MAX_PARAMS, hvp_cost, split_model, summed_cost


class Minimum(NamedTuple):
    model: Model
    cost: float
    grad_norm: float
    iterations: int
    converged: bool


@eqx.filter_jit
def _newton(flat, w, data, l2, *, max_iter, tol):
    cost = lambda u: summed_cost(flat, u, data, l2)  # noqa: E731
    eye = jnp.eye(w.shape[0], dtype=w.dtype)

    def body(state):
        w, it, _ = state
        g = jax.grad(cost)(w)
        h = jax.lax.map(lambda v: hvp_cost(flat, w, v, data, l2), eye, batch_size=64)
        step = jnp.linalg.solve(0.5 * (h + h.T), g)
        c0, slope = cost(w), jnp.dot(g, step)

        # Backtracking (Armijo) on the full Newton step: the cost is convex for the linear model,
        # but far from the minimum (small lam, separable data) a full step can overshoot.
        def shrink(t):
            return t * 0.5

        def too_long(t):
            return (cost(w - t * step) > c0 - 1e-4 * t * slope) & (t > 1e-10)

        t = jax.lax.while_loop(too_long, shrink, jnp.ones((), w.dtype))
        return w - t * step, it + 1, jnp.linalg.norm(g)

    def cond(state):
        _, it, gnorm = state
        return (it < max_iter) & (gnorm > tol)

    w, it, _ = jax.lax.while_loop(
        cond, body, (w, jnp.zeros((), jnp.int32), jnp.full((), jnp.inf, w.dtype))
    )
    return w, it, cost(w), jnp.linalg.norm(jax.grad(cost)(w))


def minimize(
    model: Model, data: Dataset, *, l2: float, max_iter: int = 100, tol: float | None = None
) -> Minimum:
    """The minimum of C(w) = sum_i l_i + (lam/2)|w|^2 by damped Newton with the dense Hessian
    (models with p <= 4000, e.g. the linear model): converged when |grad C| <= tol (default
    sqrt(machine eps) * N)."""
    flat, w = split_model(model, data)
    l2 = _checks.non_negative("l2", l2)
    if w.shape[0] > EXACT_MAX_PARAMS:
        raise _checks.InputError(f"minimize needs p <= {EXACT_MAX_PARAMS} (p = {w.shape[0]})")
    max_iter = _checks.integer("max_iter", max_iter)
    tol = float(np.sqrt(np.finfo(np.dtype(w.dtype)).eps) * data.n_train) if tol is None else tol
    with jax.default_matmul_precision("highest"):
        w_min, it, c, gnorm = _newton(
            flat, w, data, jnp.asarray(l2, w.dtype), max_iter=max_iter, tol=tol
        )
    return Minimum(flat.model(w_min), float(c), float(gnorm), int(it), bool(gnorm <= tol))
