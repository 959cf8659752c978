"""The shape of the batch noise (docs/mathematics.md, "Shape of the batch noise").

SGD's noise along a unit direction v is the mean over a batch of B distinct examples of the centred
per-example projections z_i = (grad l_i - mean_j grad l_j) . v, a finite population of N numbers.
Its exact variance, skewness and excess kurtosis follow from the population's central moments
(`batch_noise_moments`); the projections come from one forward-mode pass per direction
(`gradient_projections`), and the directions that carry most of the noise, the top eigenvectors of
the gradient covariance F = G_c^T G_c / (N - 1) (G_c the N x p centred per-example gradients), from
Lanczos on the N x N matrix K = G_c G_c^T / (N - 1), which has F's non-zero eigenvalues
(`noise_top_directions`). Nothing forms G: a product with G is a JVP of the per-example losses, one
with G^T a VJP.
"""

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np

from models import Dataset, Model

from . import _checks
from ._hessian import split_model
from ._lanczos import lanczos_tridiagonal


class BatchMoments(NamedTuple):
    """Exact moments of the mean of B distinct examples drawn uniformly, minus the population
    mean."""

    variance: np.ndarray
    skewness: np.ndarray
    excess_kurtosis: np.ndarray


def batch_noise_moments(values, batch_size) -> BatchMoments:
    """Variance, skewness and excess kurtosis of the mean of B of the N `values` drawn WITHOUT
    replacement (all subsets of size B equally likely), exactly (Cochran's finite-population
    moments):

        mu2(B) = m2 (N - B) / (B (N - 1))
        mu3(B) = m3 (N - B)(N - 2B) / (B^2 (N - 1)(N - 2))
        mu4(B) = (N - B) [(N^2 + N - 6BN + 6B^2) m4 + 3N(B - 1)(N - B - 1) m2^2]
                 / (B^3 (N-1)(N-2)(N-3))

    with m_k the population's central moments (divisor N). So skewness ~ S_1 / sqrt(B) and excess
    kurtosis ~ K_1 / B for B << N (the central limit); the skewness vanishes at B = N/2, and at
    B = N - 1 the batch mean is minus one left-out value over N - 1, so the kurtosis is the
    population's again. values: (..., N), moments along the last axis, N >= 4;
    batch_size: an integer or an array broadcasting against values' leading axes, 1 <= B < N.
    """
    x = np.asarray(values, float)
    n = x.shape[-1]
    if n < 4:
        raise _checks.InputError(f"batch_noise_moments needs at least 4 values (got {n})")
    b = np.asarray(batch_size, float)
    if np.any(b < 1) or np.any(b >= n) or np.any(b != np.round(b)):
        raise _checks.InputError(f"batch sizes must be integers in [1, {n - 1}] (got {batch_size})")
    c = x - x.mean(axis=-1, keepdims=True)
    m2, m3, m4 = (np.mean(c**k, axis=-1) for k in (2, 3, 4))
    mu2 = m2 * (n - b) / (b * (n - 1))
    mu3 = m3 * (n - b) * (n - 2 * b) / (b**2 * (n - 1) * (n - 2))
    mu4 = (
        (n - b)
        * ((n * n + n - 6 * b * n + 6 * b * b) * m4 + 3 * n * (b - 1) * (n - b - 1) * m2**2)
        / (b**3 * (n - 1) * (n - 2) * (n - 3))
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        return BatchMoments(mu2, mu3 / mu2**1.5, mu4 / mu2**2 - 3)


def _linearised(flat, w, x, y):
    """u -> G_c^T u and v -> G_c v for the centred per-example gradient matrix G_c (never
    formed)."""

    def f(v):
        return flat.losses(v, x, y)

    _, jvp = jax.linearize(f, w)
    _, vjp = jax.vjp(f, w)

    def centre(z):
        return z - jnp.mean(z)

    # G_c v = centre(G v); G_c^T u = G^T u - g_bar sum(u) = G^T centre(u).
    return (lambda u: vjp(centre(u))[0]), (lambda v: centre(jvp(v)))


@eqx.filter_jit
def _projections(flat, w, x, y, directions):
    _, times = _linearised(flat, w, x, y)
    unit = directions / jnp.linalg.norm(directions, axis=1, keepdims=True)
    return jax.lax.map(times, unit)


def gradient_projections(model: Model, data: Dataset, directions) -> np.ndarray:
    """(d, N) centred per-example gradient projections z_i = (grad l_i - mean) . v on each of the d
    directions (rows of `directions`, (d, p), normalised here), over the training set, mean loss
    l_i."""
    flat, w = split_model(model, data)
    directions = jnp.asarray(directions, w.dtype)
    if directions.ndim != 2 or directions.shape[1] != w.shape[0]:
        raise _checks.InputError(
            f"directions must be (d, {w.shape[0]}) (got {tuple(directions.shape)})"
        )
    return np.asarray(_projections(flat, w, data.x_train, data.y_train, directions))


class NoiseDirections(NamedTuple):
    """The k top eigenvalues of the gradient covariance F (1/(N - 1)) and the noise along each.

    values: (k,) eigenvalues, descending (Rayleigh quotients of the returned directions; NaN where
        the Krylov space closed with fewer than k distinct ones).
    error_bounds: (k,) Lanczos residual bounds of the Ritz values of K (an eigenvalue of F lies
        within).
    projections: (k, N) centred per-example gradient projections on each unit direction v_k
        (sign arbitrary); values_k = |projections_k|^2 / (N - 1).
    directions: (k, p) the unit directions v_k = G_c^T y_k / |G_c^T y_k| (y_k a Ritz vector of K).
    steps_used, steps: the Krylov dimension reached and asked for.
    """

    values: np.ndarray
    error_bounds: np.ndarray
    projections: np.ndarray
    directions: np.ndarray
    steps_used: int
    steps: int


@eqx.filter_jit
def _top_directions(flat, w, x, y, key, *, k, steps):
    n = x.shape[0]
    transpose, times = _linearised(flat, w, x, y)

    def matvec(u):  # K u
        return times(transpose(u)) / (n - 1)

    start = jr.normal(key, (n,), w.dtype)
    lz = lanczos_tridiagonal(matvec, start - jnp.mean(start), steps)
    theta, s = jnp.linalg.eigh(lz.t)
    theta, s = theta[::-1], s[:, ::-1]
    bounds = lz.residual * jnp.abs(s[jnp.maximum(lz.size - 1, 0), :k])
    ritz = s[:, :k].T @ lz.basis  # (k, N)
    v = jax.lax.map(transpose, ritz)
    v = v / jnp.linalg.norm(v, axis=1, keepdims=True)
    z = jax.lax.map(times, v)
    found = jnp.arange(k) < lz.size
    values = jnp.where(found, jnp.sum(z * z, axis=1) / (n - 1), jnp.nan)
    return values, jnp.where(found, bounds, jnp.nan), z, v, lz.size


def noise_top_directions(
    model: Model, data: Dataset, *, key, k: int = 1, lanczos_steps: int | None = None
) -> NoiseDirections:
    """The k directions of largest gradient noise (top eigenvectors of F, Lanczos with full
    reorthogonalisation on the N x N matrix K = G_c G_c^T / (N - 1)) and the per-example noise along
    each (`NoiseDirections`). Cost: per Lanczos step one JVP and one VJP of the N per-example losses
    (about two full-batch gradients). lanczos_steps: default min(N - 1, max(40, 4k))."""
    flat, w = split_model(model, data)
    n = data.n_train
    k = _checks.integer("k", k, low=1, high=n - 1)
    steps = min(n - 1, max(40, 4 * k)) if lanczos_steps is None else lanczos_steps
    steps = _checks.integer("lanczos_steps", steps, low=min(k + 1, n - 1), high=n - 1)
    with jax.default_matmul_precision("highest"):
        values, bounds, z, v, used = _top_directions(
            flat, w, data.x_train, data.y_train, key, k=k, steps=steps
        )
    return NoiseDirections(
        np.asarray(values), np.asarray(bounds), np.asarray(z), np.asarray(v), int(used), steps
    )
