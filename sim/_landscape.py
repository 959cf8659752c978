"""Measurements of a landscape at a point w: sharpness, Laplace evidence, gradient noise scale.

Everything works from Hessian-vector products (forward-over-reverse) and per-example gradients in
chunks, never a dense Hessian or an N x p gradient matrix, except the exact evidence for small models
(p <= `EXACT_MAX_PARAMS`), which builds the dense Hessian column by column and calls `eigh`.
Conventions (DESIGN.md): C(w) = sum_i l_i(w) + (lam/2)|w|^2; sharpness is measured on the Hessian of
the MEAN training loss (1/N) sum_i l_i, which is (H_C - lam I)/N; the evidence on H_C itself.
"""

import math
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from matfree import decomp

from models import Dataset, Model

from . import _checks
from ._flat import FlatModel
from ._noise import gradient_covariance_trace
from ._run import check_data_fits

EXACT_MAX_PARAMS = 4000


class Estimate(NamedTuple):
    """A number, its standard error (0 for an exact result) and how it was obtained."""

    value: float
    error: float
    method: str


class Evidence(NamedTuple):
    """Laplace log evidence ln Z = -C(w0) - 1/2 sum_j ln(h_j/lam), against the null model of n equally
    likely classes, ln Z0 = -N ln n. ratio = ln(Z/Z0) = -E; ratio > 0 favours the model.
    n_dropped eigenvalues below lam (away from a minimum) were left out of the sum (an estimate for SLQ)."""

    log_evidence: float
    log_evidence_ratio: float
    error: float
    method: str
    cost: float
    log_det_term: float
    n_dropped: float


def _split(model: Model, data: Dataset):
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


def _operator(flat, w, data, l2, of):
    if of == "mean":
        return lambda v: hvp_mean(flat, w, v, data)
    if of == "cost":
        return lambda v: hvp_cost(flat, w, v, data, l2)
    raise _checks.InputError(f"of must be 'mean' or 'cost' (got {of!r})")


def _lanczos_steps(steps, k, p):
    steps = min(p, max(40, 4 * k)) if steps is None else steps
    return _checks.integer("lanczos_steps", steps, low=min(k + 1, p), high=p)


def lanczos_tridiagonal(matvec, v, steps: int):
    """Lanczos (matfree, full reorthogonalisation) from v/|v|: the steps x steps tridiagonal T.

    If the Krylov space closes early (an invariant subspace of dimension j < steps, e.g. a Hessian with
    many zero-curvature directions), matfree keeps iterating on a zero residual and the trailing block
    of T is garbage (measured: spurious Ritz values between true eigenvalues). We cut T there: the
    coupling is zeroed, and the trailing block is replaced by copies of the smallest leading diagonal
    entry (a Rayleigh quotient, so inside the spectrum) with zero quadrature weight.
    """
    _, t, *_ = decomp.tridiag_sym(steps, reortho="full")(matvec, v / jnp.linalg.norm(v))
    diag, off = jnp.diagonal(t), jnp.abs(jnp.diagonal(t, offset=1))
    scale = jnp.max(jnp.abs(diag))
    broken = off <= 1e3 * jnp.finfo(t.dtype).eps * scale
    # first breakdown index j: rows/cols >= j + 1 are past the invariant subspace
    first = jnp.where(jnp.any(broken), jnp.argmax(broken), steps)
    idx = jnp.arange(steps)
    inside = idx <= first
    fill = jnp.min(jnp.where(inside, diag, jnp.inf))
    both = inside[:, None] & inside[None, :]
    return jnp.where(both, t, 0.0) + jnp.diag(jnp.where(inside, 0.0, fill))


@eqx.filter_jit
def _top_eigenvalues(flat, w, data, l2, key, *, k, steps, of):
    matvec = _operator(flat, w, data, l2, of)
    t = lanczos_tridiagonal(matvec, jr.normal(key, w.shape, w.dtype), steps)
    return jnp.linalg.eigvalsh(t)[::-1][:k]


def hessian_top_eigenvalues(model: Model, data: Dataset, *, key, k: int = 1, l2: float = 0.0,
                            lanczos_steps: int | None = None, of: str = "mean") -> np.ndarray:
    """The k largest Hessian eigenvalues (Lanczos with full reorthogonalisation, matfree), descending.

    of = "mean": Hessian of the mean training loss (sharpness); "cost": of C, lam included.
    lanczos_steps: Krylov depth (default min(p, max(40, 4k))); extreme eigenvalues converge first.
    """
    flat, w = _split(model, data)
    p = w.shape[0]
    k = _checks.integer("k", k, low=1, high=p)
    l2 = _checks.non_negative("l2", l2)
    steps = _lanczos_steps(lanczos_steps, k, p)
    with jax.default_matmul_precision("highest"):
        out = _top_eigenvalues(flat, w, data, jnp.asarray(l2, w.dtype), key, k=k, steps=steps, of=of)
    return np.asarray(out)


def _probe_values(fn, key, p, dtype, probes, batch):
    """fn(v) for Rademacher probes v in [-1, 1]^p, `batch` probes at a time."""
    signs = jr.rademacher(key, (probes, p), dtype=dtype)
    return jax.lax.map(fn, signs, batch_size=min(batch, probes))


@eqx.filter_jit
def _hutchinson(flat, w, data, l2, key, *, probes, batch, of):
    matvec = _operator(flat, w, data, l2, of)
    values = _probe_values(lambda v: jnp.dot(v, matvec(v)), key, w.shape[0], w.dtype, probes, batch)
    return jnp.mean(values), jnp.std(values, ddof=1) / jnp.sqrt(probes)


def hessian_trace(model: Model, data: Dataset, *, key, probes: int = 100, l2: float = 0.0,
                  of: str = "mean", probe_batch: int = 10) -> Estimate:
    """Hutchinson estimate of tr H with Rademacher probes: mean of v^T H v and its standard error."""
    flat, w = _split(model, data)
    probes = _checks.integer("probes", probes, low=2)
    l2 = _checks.non_negative("l2", l2)
    with jax.default_matmul_precision("highest"):
        mean, se = _hutchinson(flat, w, data, jnp.asarray(l2, w.dtype), key, probes=probes,
                               batch=probe_batch, of=of)
    return Estimate(float(mean), float(se), f"Hutchinson, {probes} Rademacher probes")


def _kept(h, lam, scale):
    """Eigenvalues that count: h > lam up to rounding (relative to the spectrum's scale). Directions
    the data never touch have h = lam exactly (ln 1 = 0 either way) and must not count as dropped."""
    return h > lam - 1e3 * jnp.finfo(h.dtype).eps * scale


def _log_ratio_and_dropped(theta, l2):
    keep = _kept(theta, l2, jnp.max(jnp.abs(theta)))
    safe = jnp.where(keep, theta, l2)
    return jnp.where(keep, jnp.log(safe / l2), 0.0), jnp.where(keep, 0.0, 1.0)


@eqx.filter_jit
def _slq(flat, w, data, l2, key, *, probes, steps, batch):
    matvec = lambda v: hvp_cost(flat, w, v, data, l2)  # noqa: E731

    def quadrature(v):
        # Gauss quadrature from the Lanczos tridiagonal T: nodes = eig(T), weights = (first
        # eigenvector components)^2, scaled by |v|^2 = p for a Rademacher probe.
        t = lanczos_tridiagonal(matvec, v, steps)
        theta, vecs = jnp.linalg.eigh(t)
        tau = vecs[0, :] ** 2 * jnp.dot(v, v)
        log_term, dropped = _log_ratio_and_dropped(theta, l2)
        return jnp.stack([jnp.dot(tau, log_term), jnp.dot(tau, dropped)])

    values = _probe_values(quadrature, key, w.shape[0], w.dtype, probes, batch)
    return jnp.mean(values, axis=0), jnp.std(values, axis=0, ddof=1) / jnp.sqrt(probes)


@eqx.filter_jit
def _dense_spectrum(flat, w, data, l2, *, batch):
    eye = jnp.eye(w.shape[0], dtype=w.dtype)
    hessian = jax.lax.map(lambda v: hvp_cost(flat, w, v, data, l2), eye, batch_size=batch)
    return jnp.linalg.eigvalsh(0.5 * (hessian + hessian.T))


def log_evidence(model: Model, data: Dataset, *, l2: float, key=None, method: str = "auto",
                 probes: int = 30, lanczos_steps: int = 60, probe_batch: int = 5) -> Evidence:
    """Laplace log evidence of the model at its parameters (meant to be a minimum of C).

    ln Z = -C(w0) - 1/2 sum_j ln(h_j / lam), h_j the eigenvalues of the Hessian of C (lam included);
    eigenvalues <= lam (negative curvature away from a minimum) are dropped and counted.
    method: "exact" (dense Hessian and eigh; p <= 4000), "slq" (stochastic Lanczos quadrature with
    `probes` Rademacher probes and `lanczos_steps` Lanczos steps; the error is the standard error of
    the 1/2 sum ln term), "auto" (exact when p <= 4000). lam must be > 0 (the prior must be proper).
    """
    flat, w = _split(model, data)
    l2 = _checks.positive("l2", l2)
    p = w.shape[0]
    if method == "auto":
        method = "exact" if p <= EXACT_MAX_PARAMS else "slq"
    lam = jnp.asarray(l2, w.dtype)
    cost = float(summed_cost(flat, w, data, lam))
    with jax.default_matmul_precision("highest"):
        if method == "exact":
            if p > EXACT_MAX_PARAMS:
                raise _checks.InputError(f"method 'exact' needs p <= {EXACT_MAX_PARAMS} (p = {p}); use 'slq'")
            h = np.asarray(_dense_spectrum(flat, w, data, lam, batch=64))
            keep = np.asarray(_kept(jnp.asarray(h), lam, jnp.max(jnp.abs(jnp.asarray(h)))))
            half_log_det = 0.5 * float(np.sum(np.log(h[keep] / l2)))
            error, dropped, label = 0.0, float(np.sum(~keep)), f"exact (dense Hessian, eigh, p = {p})"
        elif method == "slq":
            if key is None:
                raise _checks.InputError("key is required for method 'slq'")
            probes = _checks.integer("probes", probes, low=2)
            steps = _checks.integer("lanczos_steps", lanczos_steps, low=2, high=p)
            mean, se = _slq(flat, w, data, lam, key, probes=probes, steps=steps, batch=probe_batch)
            half_log_det, error = 0.5 * float(mean[0]), 0.5 * float(se[0])
            dropped = float(mean[1])
            label = f"SLQ ({probes} Rademacher probes, {steps} Lanczos steps)"
        else:
            raise _checks.InputError(f"method must be 'auto', 'exact' or 'slq' (got {method!r})")
    log_z = -cost - half_log_det
    log_z0 = -data.n_train * math.log(data.n_classes)
    return Evidence(log_z, log_z - log_z0, error, label, cost, half_log_det, dropped)


class NoiseScale(NamedTuple):
    """Gradient noise scale (McCandlish et al. 2018) of the mean loss (1/N) C at w.

    b_simple = tr(Sigma)/|G|^2 (exact, per-example gradients in chunks); b_noise = tr(H Sigma)/(G^T H G),
    with tr(H Sigma) estimated from `probes` Gaussian probes (error: its propagated standard error).
    Sigma is F, the per-example gradient covariance (1/(N-1)); G = grad C / N; H the Hessian of the mean
    training loss plus lam/N (the Hessian of C / N)."""

    b_simple: float
    b_noise: float
    b_noise_error: float
    trace_sigma: float
    grad_norm_sq: float


@eqx.filter_jit
def _noise_scale(flat, w, data, l2, key, *, chunk, probes):
    n = data.n_train
    ones = jnp.ones((n,), w.dtype)
    loss_grad_sum = flat.weighted_loss_grad(w, ones, data.x_train, data.y_train)
    trace = gradient_covariance_trace(flat, w, data.x_train, data.y_train, chunk=chunk,
                                      total=loss_grad_sum)
    mean_grad = (loss_grad_sum + l2 * w) / n
    hess = lambda v: hvp_cost(flat, w, v, data, l2) / n  # noqa: E731

    def h_sigma_probe(z):
        # L z with L L^T = Sigma: one VJP of the centred per-example losses (as in the SDE's noise).
        lz = flat.weighted_loss_grad(w, (z - jnp.mean(z)) / jnp.sqrt(n - 1.0), data.x_train, data.y_train)
        return jnp.dot(lz, hess(lz))

    values = jax.lax.map(h_sigma_probe, jr.normal(key, (probes, n), w.dtype))
    curvature = jnp.dot(mean_grad, hess(mean_grad))
    return (trace, jnp.dot(mean_grad, mean_grad), jnp.mean(values),
            jnp.std(values, ddof=1) / jnp.sqrt(probes), curvature)


def gradient_noise_scale(model: Model, data: Dataset, *, key, l2: float = 0.0, chunk: int = 100,
                         probes: int = 20) -> NoiseScale:
    """B_simple and B_noise of McCandlish et al. (2018) at the model's parameters."""
    flat, w = _split(model, data)
    l2 = _checks.non_negative("l2", l2)
    probes = _checks.integer("probes", probes, low=2)
    chunk = _checks.integer("chunk", chunk)
    if data.n_train < 2:
        raise _checks.InputError("data: the gradient noise scale needs at least 2 training examples")
    with jax.default_matmul_precision("highest"):
        trace, g2, h_sigma, h_sigma_se, curvature = (
            float(x) for x in _noise_scale(flat, w, data, jnp.asarray(l2, w.dtype), key,
                                           chunk=chunk, probes=probes)
        )
    return NoiseScale(trace / g2, h_sigma / curvature, h_sigma_se / abs(curvature), trace, g2)


def summary(model: Model, data: Dataset, *, key, l2: float = 0.0, k: int = 1, probes: int = 30,
            lanczos_steps: int | None = None) -> dict:
    """One call for a trained model: accuracy and cross-entropy on train and test, top Hessian
    eigenvalue(s) and trace (mean loss), Laplace log evidence ratio (when lam > 0), B_simple and
    B_noise; each entry a number or an `Estimate`/`Evidence` with its method and error."""
    flat, w = _split(model, data)
    eig_key, trace_key, ev_key, noise_key = jr.split(key, 4)
    test = np.asarray(jax.jit(flat.metrics)(w, data))
    train_acc = float(jnp.mean(jax.vmap(flat.model(w).correct)(data.x_train, data.y_train)))
    top = hessian_top_eigenvalues(model, data, key=eig_key, k=k, lanczos_steps=lanczos_steps)
    out = {
        "train_accuracy": train_acc,
        "test_accuracy": float(test[1]),
        "train_xent": float(test[0]),
        "test_xent": float(test[2]),
        "top_eigenvalues": Estimate(float(top[0]), float("nan"), f"Lanczos (top {k}: {top.tolist()})"),
        "hessian_trace": hessian_trace(model, data, key=trace_key, probes=probes),
        "noise_scale": gradient_noise_scale(model, data, key=noise_key, l2=l2),
    }
    if l2 > 0:
        out["evidence"] = log_evidence(model, data, l2=l2, key=ev_key)
    return out


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

    w, it, _ = jax.lax.while_loop(cond, body, (w, jnp.zeros((), jnp.int32), jnp.full((), jnp.inf, w.dtype)))
    return w, it, cost(w), jnp.linalg.norm(jax.grad(cost)(w))


def minimize(model: Model, data: Dataset, *, l2: float, max_iter: int = 100,
             tol: float | None = None) -> Minimum:
    """The minimum of C(w) = sum_i l_i + (lam/2)|w|^2 by damped Newton with the dense Hessian
    (models with p <= 4000, e.g. the linear model): converged when |grad C| <= tol (default
    sqrt(machine eps) * N)."""
    flat, w = _split(model, data)
    l2 = _checks.non_negative("l2", l2)
    if w.shape[0] > EXACT_MAX_PARAMS:
        raise _checks.InputError(f"minimize needs p <= {EXACT_MAX_PARAMS} (p = {w.shape[0]})")
    max_iter = _checks.integer("max_iter", max_iter)
    tol = float(np.sqrt(np.finfo(np.dtype(w.dtype)).eps) * data.n_train) if tol is None else tol
    with jax.default_matmul_precision("highest"):
        w_min, it, c, gnorm = _newton(flat, w, data, jnp.asarray(l2, w.dtype), max_iter=max_iter, tol=tol)
    return Minimum(flat.model(w_min), float(c), float(gnorm), int(it), bool(gnorm <= tol))
