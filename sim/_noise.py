"""Noise models of the SDE: the exact gradient covariance F (the paper's) and isotropic noise."""

import abc

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from ._flat import FlatModel


class AbstractNoise(eqx.Module):
    """How one Euler–Maruyama step turns a Brownian increment into a parameter increment."""

    @abc.abstractmethod
    def brownian_dim(self, n_train: int, n_params: int) -> int:
        """Dimension of the Brownian motion W driving the SDE."""

    @abc.abstractmethod
    def increment(self, flat: FlatModel, w, x, y, l2, dt, dW, g) -> Float[Array, " p"]:
        """-dC/dw dt + sqrt(g) L dW, computed as cheaply as the noise model allows."""


class GradientCovarianceNoise(AbstractNoise):
    """Noise covariance g F(w), F the per-example gradient covariance (1/(N-1)), exact and
    matrix-free.

    With G the N x p matrix of centred per-example gradients, L = G^T / sqrt(N-1) has L L^T = F, and
    L dW for an N-dimensional Brownian increment is one vector-Jacobian product. Drift and noise
    together are ONE weighted VJP:
        dw = -grad_w sum_i a_i C_i(w),  a_i = dt - sqrt(g / (N-1)) (dW_i - mean(dW)),
        dW ~ N(0, dt I_N).
    The prior part of C_i is the same for every i: it cancels from the noise and its drift is
    -lam w dt exactly.
    """

    def brownian_dim(self, n_train, n_params):
        return n_train

    def increment(self, flat, w, x, y, l2, dt, dW, g):
        n = x.shape[0]
        weights = dt - jnp.sqrt(g / (n - 1)) * (dW - jnp.mean(dW))
        return -flat.weighted_loss_grad(w, weights, x, y) - l2 * w * dt


class IsotropicNoise(AbstractNoise):
    """Noise covariance g (tr F(w) / p) I: the same total variance as F, spread evenly (Zhu et al.
    2019).

    tr F = (sum_i |grad l_i|^2 - |sum_i grad l_i|^2 / N) / (N - 1) is computed exactly at every
    step. The per-example norms come from the model's one-pass fast path where it has one (the
    linear model and the ReLU net: a step then costs about two full-batch gradients), else from
    per-example gradients, `chunk` examples at a time (never an N x p matrix).
    """

    chunk: int = eqx.field(static=True, default=100)

    def brownian_dim(self, n_train, n_params):
        return n_params

    def increment(self, flat, w, x, y, l2, dt, dW, g):
        n, p = x.shape[0], w.shape[0]
        ones = jnp.ones((n,), w.dtype)
        loss_sum_grad = flat.weighted_loss_grad(w, ones, x, y)
        trace = gradient_covariance_trace(flat, w, x, y, chunk=self.chunk, total=loss_sum_grad)
        return -(loss_sum_grad + l2 * w) * dt + jnp.sqrt(g * trace / p) * dW


def gradient_covariance_trace(flat: FlatModel, w, x, y, *, chunk: int = 100, total=None):
    """tr F(w) with F = sum_i (grad l_i - mean)(...)^T / (N - 1), from per-example gradients in
    chunks."""
    n = x.shape[0]
    if total is None:
        total = flat.weighted_loss_grad(w, jnp.ones((n,), w.dtype), x, y)

    sum_sq = jnp.sum(flat.grad_sq_norms(w, x, y, chunk))
    return (sum_sq - jnp.dot(total, total) / n) / (n - 1)
