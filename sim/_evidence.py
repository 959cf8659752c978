"""The Laplace evidence of a model at a minimum: exact (dense Hessian) for small models, stochastic
Lanczos quadrature otherwise (docs/mathematics.md, "Laplace evidence")."""

import math
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from models import Dataset, Model

from . import _checks
from ._hessian import EXACT_MAX_PARAMS, hvp_cost, probe_values, split_model, summed_cost
from ._lanczos import lanczos_tridiagonal


class Evidence(NamedTuple):
    """Laplace log evidence ln Z = -C(w0) - 1/2 sum_j ln(h_j/lam), against the null model of n
    equally likely classes, ln Z0 = -N ln n. ratio = ln(Z/Z0) = -E; ratio > 0 favours the model.
    n_dropped eigenvalues below lam (away from a minimum) were left out of the sum (an estimate for
    SLQ).

    error: the standard error of the 1/2 sum ln term over probes (0 when exact). For SLQ the
        quadrature
    can also be biased by stopping Lanczos early, which the standard error does not see:
    `truncation` is how much the 1/2 sum ln term moved between half and full depth (mean over
    probes; Gauss quadrature of ln converges geometrically, so the remaining bias is typically well
    below it: treat |truncation| comparable to `error` or larger as a sign to raise
    `lanczos_steps`), and `steps_used` the smallest Krylov dimension reached over probes (below
    `lanczos_steps` where the space closed, which makes that probe's quadrature exact). For the
    exact method truncation = 0 and steps_used = p."""

    log_evidence: float
    log_evidence_ratio: float
    error: float
    method: str
    cost: float
    log_det_term: float
    n_dropped: float
    truncation: float = 0.0
    steps_used: int = 0


def _log_ratio_and_dropped(h, lam):
    """Per eigenvalue h of H_C: ln(h / lam) where h > lam, else 0; and 1 where h is dropped.

    Directions the data never touch have h = lam exactly (ln 1 = 0 either way) and must not count as
    dropped, so h within a round-off band below lam (1e3 eps max|h|, at most lam / 2) counts as lam;
    h below that (negative curvature away from a minimum, negative h included) is dropped and
    counted. No logarithm is ever taken of h <= lam, so a negative Ritz value cannot produce a NaN.
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
        # Gauss quadrature from a Lanczos tridiagonal T: nodes = eig(T), weights = (first
        # eigenvector components)^2, scaled by |v|^2 (= p for a Rademacher probe).
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

    values = probe_values(quadrature, key, w.shape[0], w.dtype, probes, batch)
    return (
        jnp.mean(values, axis=0),
        jnp.std(values, axis=0, ddof=1) / jnp.sqrt(probes),
        jnp.min(values[:, 3]),
    )


@eqx.filter_jit
def _dense_spectrum(flat, w, data, l2, *, batch):
    eye = jnp.eye(w.shape[0], dtype=w.dtype)
    hessian = jax.lax.map(lambda v: hvp_cost(flat, w, v, data, l2), eye, batch_size=batch)
    return jnp.linalg.eigvalsh(0.5 * (hessian + hessian.T))


def log_evidence(
    model: Model,
    data: Dataset,
    *,
    l2: float,
    key=None,
    method: str = "auto",
    probes: int = 30,
    lanczos_steps: int = 60,
    probe_batch: int = 5,
) -> Evidence:
    """Laplace log evidence of the model at its parameters (meant to be a minimum of C).

    ln Z = -C(w0) - 1/2 sum_j ln(h_j / lam), h_j the eigenvalues of the Hessian of C (lam included);
    eigenvalues <= lam (negative curvature away from a minimum) are dropped and counted.
    method: "exact" (dense Hessian and eigh; p <= 4000), "slq" (stochastic Lanczos quadrature with
    `probes` Rademacher probes and `lanczos_steps` Lanczos steps; the error is the standard error of
    the 1/2 sum ln term), "auto" (exact when p <= 4000). lam must be > 0 (the prior must be proper).
    """
    flat, w = split_model(model, data)
    l2 = _checks.positive("l2", l2)
    p = w.shape[0]
    if method == "auto":
        method = "exact" if p <= EXACT_MAX_PARAMS else "slq"
    lam = jnp.asarray(l2, w.dtype)
    cost = float(summed_cost(flat, w, data, lam))
    with jax.default_matmul_precision("highest"):
        if method == "exact":
            if p > EXACT_MAX_PARAMS:
                raise _checks.InputError(
                    f"method 'exact' needs p <= {EXACT_MAX_PARAMS} (p = {p}); use 'slq'"
                )
            h = _dense_spectrum(flat, w, data, lam, batch=64)
            log_term, dropped = (np.asarray(a) for a in _log_ratio_and_dropped(h, lam))
            half_log_det, error, dropped = (
                0.5 * float(np.sum(log_term)),
                0.0,
                float(np.sum(dropped)),
            )
            truncation, used, label = 0.0, p, f"exact (dense Hessian, eigh, p = {p})"
        elif method == "slq":
            if key is None:
                raise _checks.InputError("key is required for method 'slq'")
            probes = _checks.integer("probes", probes, low=2)
            steps = _checks.integer("lanczos_steps", lanczos_steps, low=2, high=p)
            mean, se, used = _slq(
                flat, w, data, lam, key, probes=probes, steps=steps, batch=probe_batch
            )
            half_log_det, error = 0.5 * float(mean[0]), 0.5 * float(se[0])
            dropped, truncation, used = float(mean[1]), 0.5 * float(mean[2]), int(used)
            label = f"SLQ ({probes} Rademacher probes, {steps} Lanczos steps)"
        else:
            raise _checks.InputError(f"method must be 'auto', 'exact' or 'slq' (got {method!r})")
    log_z = -cost - half_log_det
    log_z0 = -data.n_train * math.log(data.n_classes)
    return Evidence(
        log_z, log_z - log_z0, error, label, cost, half_log_det, dropped, truncation, used
    )
