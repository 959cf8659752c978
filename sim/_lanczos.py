"""Lanczos with full reorthogonalisation (matfree), cut where the Krylov space closes, and the top
eigenvalues of the Hessian with residual bounds (docs/mathematics.md, "Lanczos breakdown")."""

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
from ._hessian import operator, split_model


def _lanczos_steps(steps, k, p):
    steps = min(p, max(40, 4 * k)) if steps is None else steps
    return _checks.integer("lanczos_steps", steps, low=min(k + 1, p), high=p)


class Tridiagonal(NamedTuple):
    """A Lanczos tridiagonal T from a unit start vector, cut where the Krylov space closes.

    t: (steps, steps); its leading `size` x `size` block is Lanczos' T, the rest a decoupled
        diagonal
    of copies of a value below every eigenvalue of that block (so it sorts last and, the start
    vector having no component there, carries zero quadrature weight).
    size: the Krylov dimension actually used (< steps where the space closed: an invariant
        subspace).
    residual: |A q_size - ...|, the coupling to the next Lanczos vector that was dropped (round-off
        where
    the space closed, else the last step's residual norm); the Ritz value theta_i of the leading
    block is within residual * |s_{size-1, i}| of an eigenvalue of A (s the eigenvectors of the
    block).
    basis: (steps, n) the Lanczos vectors as rows; a Ritz vector of the leading block is s_i^T basis
    (s_i vanishes on the rows past `size`, which are normalised round-off).
    """

    t: Array
    size: Array
    residual: Array
    basis: Array


def _breakdown_tolerance(dtype, scale):
    """A Lanczos coupling beta_j below this is round-off: the Krylov space has closed.

    Dropping a coupling beta moves every Ritz value by at most beta, so a cut near the round-off
    level of one matvec (eps |A|) is harmless by construction. Measured with full
    reorthogonalisation, a genuine breakdown leaves beta from 0.6 eps |A| (float32) to 14 eps |A|
    (float64, a dense rotated 200 x 200 Hessian with three distinct eigenvalues), while a live
    coupling of a net-like float32 spectrum (one outlier 1e5 over 1,999 eigenvalues in [0.2, 5]) is
    ~100 eps |A|: 32 eps |A| lies between the two, a factor 2-3 from each. (The previous cut, 1e3
    eps |A|, cut that spectrum after a few steps; a fixed relative cut cannot do better than this
    window, which is why the result reports the Krylov dimension it used.)"""
    return 32 * jnp.finfo(dtype).eps * scale


def lanczos_tridiagonal(matvec, v, steps: int) -> Tridiagonal:
    """Lanczos with full reorthogonalisation from v/|v| (matfree's Arnoldi, `decomp.hessenberg`).

    The couplings are read from the Hessenberg matrix's SUBdiagonal H[j+1, j] = |r_j|, the true beta
    of each step. (`decomp.tridiag_sym` returns (H + H^T)/2, whose off-diagonal also averages in the
    superdiagonal: past a breakdown both are garbage and the average can pass for a live coupling.)
    At the first beta_j below `_breakdown_tolerance` the Krylov space has closed: T is cut after row
    j, since the Lanczos vectors after it are normalised round-off, not a continuation of the same
    space."""
    basis, h, residual, _ = decomp.hessenberg(steps, reortho="full")(matvec, v / jnp.linalg.norm(v))
    diag = jnp.diagonal(h)
    beta = jnp.diagonal(h, offset=-1)  # beta_j couples rows j and j + 1
    scale = jnp.maximum(jnp.max(jnp.abs(diag)), jnp.max(beta, initial=0.0))
    broken = beta <= _breakdown_tolerance(h.dtype, scale)
    size = jnp.where(jnp.any(broken), jnp.argmax(broken) + 1, steps)
    last = jnp.linalg.norm(residual)
    dropped = (
        jnp.where(size < steps, beta[jnp.minimum(size - 1, steps - 2)], last) if steps > 1 else last
    )
    idx = jnp.arange(steps)
    inside = idx < size
    off = jnp.where(inside[1:], beta, 0.0)
    # Below every eigenvalue of the leading block (Gershgorin: |theta| <= max|alpha| + 2 max beta).
    fill = -(
        2 * (jnp.max(jnp.where(inside, jnp.abs(diag), 0.0)) + 2 * jnp.max(off, initial=0.0)) + 1
    )
    t = jnp.diag(jnp.where(inside, diag, fill)) + jnp.diag(off, 1) + jnp.diag(off, -1)
    return Tridiagonal(t, size, dropped, basis)


class Eigenvalues(NamedTuple):
    """The k largest eigenvalues found by Lanczos, descending, and how far each may be from the
    truth.

    values: (k,) Ritz values; NaN where the Krylov space closed with fewer than k distinct
        eigenvalues in it (a single-vector Krylov method sees each distinct eigenvalue once:
        multiplicities are invisible to it).
    error_bounds: (k,) residual bounds |A y - theta y| (y the Ritz vector): an eigenvalue of A lies
        within each bound of its Ritz value (exact arithmetic); ~0 where the space closed.
    steps_used: the Krylov dimension reached (< steps where the space closed: the result is then
        exact up to round-off); steps: the depth asked for.
    """

    values: np.ndarray
    error_bounds: np.ndarray
    steps_used: int
    steps: int


@eqx.filter_jit
def _top_eigenvalues(flat, w, data, l2, key, *, k, steps, of):
    matvec = operator(flat, w, data, l2, of)
    lz = lanczos_tridiagonal(matvec, jr.normal(key, w.shape, w.dtype), steps)
    theta, s = jnp.linalg.eigh(lz.t)
    theta, s = theta[::-1], s[:, ::-1]  # descending: the leading block's Ritz values come first
    bounds = lz.residual * jnp.abs(s[jnp.maximum(lz.size - 1, 0), :])
    found = jnp.arange(steps) < lz.size
    return (jnp.where(found, theta, jnp.nan)[:k], jnp.where(found, bounds, jnp.nan)[:k], lz.size)


def hessian_top_eigenvalues(
    model: Model,
    data: Dataset,
    *,
    key,
    k: int = 1,
    l2: float = 0.0,
    lanczos_steps: int | None = None,
    of: str = "mean",
) -> Eigenvalues:
    """The k largest Hessian eigenvalues (Lanczos with full reorthogonalisation, matfree),
    descending, with residual error bounds and the Krylov dimension used (`Eigenvalues`).

    of = "mean": Hessian of the mean training loss (sharpness); "cost": of C, lam included.
    lanczos_steps: Krylov depth (default min(p, max(40, 4k))); extreme eigenvalues converge first.
    """
    flat, w = split_model(model, data)
    p = w.shape[0]
    k = _checks.integer("k", k, low=1, high=p)
    l2 = _checks.non_negative("l2", l2)
    steps = _lanczos_steps(lanczos_steps, k, p)
    with jax.default_matmul_precision("highest"):
        values, bounds, used = _top_eigenvalues(
            flat, w, data, jnp.asarray(l2, w.dtype), key, k=k, steps=steps, of=of
        )
    return Eigenvalues(np.asarray(values), np.asarray(bounds), int(used), steps)
