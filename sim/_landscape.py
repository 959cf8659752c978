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
from jaxtyping import Array
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
    n_dropped eigenvalues below lam (away from a minimum) were left out of the sum (an estimate for SLQ).

    error: the standard error of the 1/2 sum ln term over probes (0 when exact). For SLQ the quadrature
    can also be biased by stopping Lanczos early, which the standard error does not see: `truncation`
    is how much the 1/2 sum ln term moved between half and full depth (mean over probes; Gauss
    quadrature of ln converges geometrically, so the remaining bias is typically well below it: treat
    |truncation| comparable to `error` or larger as a sign to raise `lanczos_steps`), and `steps_used`
    the smallest Krylov dimension reached over probes (below `lanczos_steps` where the space closed, which
    makes that probe's quadrature exact). For the exact method truncation = 0 and steps_used = p."""

    log_evidence: float
    log_evidence_ratio: float
    error: float
    method: str
    cost: float
    log_det_term: float
    n_dropped: float
    truncation: float = 0.0
    steps_used: int = 0


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


class Tridiagonal(NamedTuple):
    """A Lanczos tridiagonal T from a unit start vector, cut where the Krylov space closes.

    t: (steps, steps); its leading `size` x `size` block is Lanczos' T, the rest a decoupled diagonal
    of copies of a value below every eigenvalue of that block (so it sorts last and, the start vector
    having no component there, carries zero quadrature weight).
    size: the Krylov dimension actually used (< steps where the space closed: an invariant subspace).
    residual: |A q_size - ...|, the coupling to the next Lanczos vector that was dropped (round-off where
    the space closed, else the last step's residual norm); the Ritz value theta_i of the leading block
    is within residual * |s_{size-1, i}| of an eigenvalue of A (s the eigenvectors of the block).
    """

    t: Array
    size: Array
    residual: Array


def _breakdown_tolerance(dtype, scale):
    """A Lanczos coupling beta_j below this is round-off: the Krylov space has closed.

    Dropping a coupling beta moves every Ritz value by at most beta, so a cut near the round-off level
    of one matvec (eps |A|) is harmless by construction. Measured with full reorthogonalisation, a
    genuine breakdown leaves beta from 0.6 eps |A| (float32) to 14 eps |A| (float64, a dense rotated
    200 x 200 Hessian with three distinct eigenvalues), while a live coupling of a net-like float32
    spectrum (one outlier 1e5 over 1,999 eigenvalues in [0.2, 5]) is ~100 eps |A|: 32 eps |A| lies
    between the two, a factor 2-3 from each. (The previous cut, 1e3 eps |A|, cut that spectrum after
    a few steps; a fixed relative cut cannot do better than this window, which is why the result
    reports the Krylov dimension it used.)"""
    return 32 * jnp.finfo(dtype).eps * scale


def lanczos_tridiagonal(matvec, v, steps: int) -> Tridiagonal:
    """Lanczos with full reorthogonalisation from v/|v| (matfree's Arnoldi, `decomp.hessenberg`).

    The couplings are read from the Hessenberg matrix's SUBdiagonal H[j+1, j] = |r_j|, the true beta
    of each step. (`decomp.tridiag_sym` returns (H + H^T)/2, whose off-diagonal also averages in the
    superdiagonal: past a breakdown both are garbage and the average can pass for a live coupling.)
    At the first beta_j below `_breakdown_tolerance` the Krylov space has closed: T is cut after row j,
    since the Lanczos vectors after it are normalised round-off, not a continuation of the same space.
    """
    _, h, residual, _ = decomp.hessenberg(steps, reortho="full")(matvec, v / jnp.linalg.norm(v))
    diag = jnp.diagonal(h)
    beta = jnp.diagonal(h, offset=-1)  # beta_j couples rows j and j + 1
    scale = jnp.maximum(jnp.max(jnp.abs(diag)), jnp.max(beta, initial=0.0))
    broken = beta <= _breakdown_tolerance(h.dtype, scale)
    size = jnp.where(jnp.any(broken), jnp.argmax(broken) + 1, steps)
    last = jnp.linalg.norm(residual)
    dropped = jnp.where(size < steps, beta[jnp.minimum(size - 1, steps - 2)], last) if steps > 1 else last
    idx = jnp.arange(steps)
    inside = idx < size
    off = jnp.where(inside[1:], beta, 0.0)
    # Below every eigenvalue of the leading block (Gershgorin: |theta| <= max|alpha| + 2 max beta).
    fill = -(2 * (jnp.max(jnp.where(inside, jnp.abs(diag), 0.0)) + 2 * jnp.max(off, initial=0.0)) + 1)
    t = jnp.diag(jnp.where(inside, diag, fill)) + jnp.diag(off, 1) + jnp.diag(off, -1)
    return Tridiagonal(t, size, dropped)


class Eigenvalues(NamedTuple):
    """The k largest eigenvalues found by Lanczos, descending, and how far each may be from the truth.

    values: (k,) Ritz values; NaN where the Krylov space closed with fewer than k distinct eigenvalues
        in it (a single-vector Krylov method sees each distinct eigenvalue once: multiplicities are
        invisible to it).
    error_bounds: (k,) residual bounds |A y - theta y| (y the Ritz vector): an eigenvalue of A lies
        within each bound of its Ritz value (exact arithmetic); ~0 where the space closed.
    steps_used: the Krylov dimension reached (< steps where the space closed: the result is then exact
        up to round-off); steps: the depth asked for.
    """

    values: np.ndarray
    error_bounds: np.ndarray
    steps_used: int
    steps: int


@eqx.filter_jit
def _top_eigenvalues(flat, w, data, l2, key, *, k, steps, of):
    matvec = _operator(flat, w, data, l2, of)
    lz = lanczos_tridiagonal(matvec, jr.normal(key, w.shape, w.dtype), steps)
    theta, s = jnp.linalg.eigh(lz.t)
    theta, s = theta[::-1], s[:, ::-1]  # descending: the leading block's Ritz values come first
    bounds = lz.residual * jnp.abs(s[jnp.maximum(lz.size - 1, 0), :])
    found = jnp.arange(steps) < lz.size
    return (jnp.where(found, theta, jnp.nan)[:k], jnp.where(found, bounds, jnp.nan)[:k], lz.size)


def hessian_top_eigenvalues(model: Model, data: Dataset, *, key, k: int = 1, l2: float = 0.0,
                            lanczos_steps: int | None = None, of: str = "mean") -> Eigenvalues:
    """The k largest Hessian eigenvalues (Lanczos with full reorthogonalisation, matfree), descending,
    with residual error bounds and the Krylov dimension used (`Eigenvalues`).

    of = "mean": Hessian of the mean training loss (sharpness); "cost": of C, lam included.
    lanczos_steps: Krylov depth (default min(p, max(40, 4k))); extreme eigenvalues converge first.
    """
    flat, w = _split(model, data)
    p = w.shape[0]
    k = _checks.integer("k", k, low=1, high=p)
    l2 = _checks.non_negative("l2", l2)
    steps = _lanczos_steps(lanczos_steps, k, p)
    with jax.default_matmul_precision("highest"):
        values, bounds, used = _top_eigenvalues(flat, w, data, jnp.asarray(l2, w.dtype), key, k=k,
                                                steps=steps, of=of)
    return Eigenvalues(np.asarray(values), np.asarray(bounds), int(used), steps)


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


def _log_ratio_and_dropped(h, lam):
    """Per eigenvalue h of H_C: ln(h / lam) where h > lam, else 0; and 1 where h is dropped.

    Directions the data never touch have h = lam exactly (ln 1 = 0 either way) and must not count as
    dropped, so h within a round-off band below lam (1e3 eps max|h|, at most lam / 2) counts as lam;
    h below that (negative curvature away from a minimum, negative h included) is dropped and counted.
    No logarithm is ever taken of h <= lam, so a negative Ritz value cannot produce a NaN.
    """
    band = jnp.minimum(1e3 * jnp.finfo(h.dtype).eps * jnp.max(jnp.abs(h)), 0.5 * lam)
    above = h > lam
    log_term = jnp.where(above, jnp.log(jnp.where(above, h, lam) / lam), 0.0)
    return log_term, jnp.where(h < lam - band, 1.0, 0.0)


@eqx.filter_jit
def _slq(flat, w, data, l2, key, *, probes, steps, batch):
    matvec = lambda v: hvp_cost(flat, w, v, data, l2)  # noqa: E731
    half = max(1, steps // 2)

    def gauss(t, norm_sq):
        # Gauss quadrature from a Lanczos tridiagonal T: nodes = eig(T), weights = (first eigenvector
        # components)^2, scaled by |v|^2 (= p for a Rademacher probe).
        theta, vecs = jnp.linalg.eigh(t)
        log_term, dropped = _log_ratio_and_dropped(theta, l2)
        tau = vecs[0, :] ** 2 * norm_sq
        return jnp.dot(tau, log_term), jnp.dot(tau, dropped)

    def quadrature(v):
        lz = lanczos_tridiagonal(matvec, v, steps)
        norm_sq = jnp.dot(v, v)
        log_det, dropped = gauss(lz.t, norm_sq)
        # The same quadrature at half the depth: the leading block of T is Lanczos' T after `half`
        # steps, so the change from half to full depth costs no matvec and shows convergence.
        log_det_half, _ = gauss(lz.t[:half, :half], norm_sq)
        return jnp.stack([log_det, dropped, log_det - log_det_half, lz.size.astype(w.dtype)])

    values = _probe_values(quadrature, key, w.shape[0], w.dtype, probes, batch)
    return (jnp.mean(values, axis=0), jnp.std(values, axis=0, ddof=1) / jnp.sqrt(probes),
            jnp.min(values[:, 3]))


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
            h = _dense_spectrum(flat, w, data, lam, batch=64)
            log_term, dropped = (np.asarray(a) for a in _log_ratio_and_dropped(h, lam))
            half_log_det, error, dropped = 0.5 * float(np.sum(log_term)), 0.0, float(np.sum(dropped))
            truncation, used, label = 0.0, p, f"exact (dense Hessian, eigh, p = {p})"
        elif method == "slq":
            if key is None:
                raise _checks.InputError("key is required for method 'slq'")
            probes = _checks.integer("probes", probes, low=2)
            steps = _checks.integer("lanczos_steps", lanczos_steps, low=2, high=p)
            mean, se, used = _slq(flat, w, data, lam, key, probes=probes, steps=steps, batch=probe_batch)
            half_log_det, error = 0.5 * float(mean[0]), 0.5 * float(se[0])
            dropped, truncation, used = float(mean[1]), 0.5 * float(mean[2]), int(used)
            label = f"SLQ ({probes} Rademacher probes, {steps} Lanczos steps)"
        else:
            raise _checks.InputError(f"method must be 'auto', 'exact' or 'slq' (got {method!r})")
    log_z = -cost - half_log_det
    log_z0 = -data.n_train * math.log(data.n_classes)
    return Evidence(log_z, log_z - log_z0, error, label, cost, half_log_det, dropped, truncation, used)


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
    eigenvalue(s) (`Eigenvalues`, with error bounds) and trace (mean loss), Laplace log evidence ratio
    (when lam > 0), B_simple and B_noise; each entry a number or a result with its method and error."""
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
        "top_eigenvalues": top,
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
