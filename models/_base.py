"""The abstract model: a landscape C(w) = sum_i l_i(w) + (lam/2)|w|^2 given by per-example
losses."""

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float


class Constant(eqx.Module):
    """An array that belongs to a model but is not a parameter w (never trained, never in |w|^2)."""

    value: Array


def is_constant(leaf) -> bool:
    return isinstance(leaf, Constant)


def trainable_filter(model: eqx.Module):
    """Filter spec for `eqx.partition`: True on the floating-point arrays that make up w."""
    return jax.tree.map(
        lambda leaf: (not is_constant(leaf)) and eqx.is_inexact_array(leaf),
        model,
        is_leaf=is_constant,
    )


class Model(eqx.Module):
    """A model of P(y | x, w): per-example loss l_i(w) = -ln P(y_i | x_i, w) and a correctness test.

    Concrete models are final; sim/ only ever calls `loss` and `correct` on a single example
    (and vmaps them).
    """

    @abc.abstractmethod
    def loss(self, x: Array, y: Array) -> Float[Array, ""]:
        """l_i(w) = -ln P(y_i | x_i, w) for one example (no prior term)."""

    @abc.abstractmethod
    def correct(self, x: Array, y: Array) -> Float[Array, ""]:
        """1.0 if the most probable class is y, else 0.0 (NaN where accuracy is undefined)."""

    def grad_sq_norms(self, x: Array, y: Array) -> Float[Array, " n"] | None:
        """Optional fast path: |grad_w l_i(w)|^2 for each example of a BATCH (x: (n, ...)), without
        forming per-example gradients. None (the default) lets sim/ fall back to per-example
        VJPs."""
        return None

    def diagnostic_names(self) -> tuple[str, ...]:
        """Names of the model's own diagnostics (e.g. the fraction of dead ReLU units), recorded
        beside the metrics at every record step; () (the default) records none."""
        return ()

    def diagnostics(self, x: Array) -> Float[Array, " k"]:
        """The diagnostics named by `diagnostic_names`, for the training inputs x (n, ...)."""
        return jnp.zeros((0,), x.dtype)


def softmax_cross_entropy(logits: Float[Array, " n"], label: Array) -> Float[Array, ""]:
    return jax.nn.logsumexp(logits) - logits[label]


def binary_cross_entropy(logit: Float[Array, ""], label: Array) -> Float[Array, ""]:
    """-ln sigma(logit) for label 1, -ln(1 - sigma(logit)) for label 0, stable for any logit."""
    return jax.nn.softplus(logit) - label.astype(logit.dtype) * logit


def as_float(flag: Array, like: Array) -> Array:
    return jnp.asarray(flag, dtype=like.dtype)
