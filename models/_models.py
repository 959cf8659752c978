"""The three landscapes: the paper's linear model, its shallow ReLU net, and a quadratic toy."""

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, PRNGKeyArray

from ._base import Constant, Model, as_float, binary_cross_entropy, softmax_cross_entropy


class LogisticRegression(Model):
    """Binary logistic regression: P(y=1 | x) = sigma(w . x + b); 784 weights + 1 bias by default.

    The paper's linear model (Section 4). Initialised at zero: the cost is convex, so the
    initialisation does not change the minimum. `bias=False` fixes b = 0 (not a parameter).
    """

    weight: Float[Array, " d"]
    bias: Float[Array, ""] | Constant

    def __init__(self, n_inputs: int = 784, *, bias: bool = True, dtype=None):
        dtype = jnp.zeros(()).dtype if dtype is None else dtype
        self.weight = jnp.zeros((n_inputs,), dtype)
        self.bias = jnp.zeros((), dtype) if bias else Constant(jnp.zeros((), dtype))

    def logit(self, x: Float[Array, " d"]) -> Float[Array, ""]:
        bias = self.bias.value if isinstance(self.bias, Constant) else self.bias
        return jnp.dot(self.weight, x) + bias

    def loss(self, x, y):
        return binary_cross_entropy(self.logit(x), y)

    def correct(self, x, y):
        return as_float((self.logit(x) > 0) == (y == 1), self.weight)


class ShallowNet(Model):
    """ReLU MLP mapping inputs to class logits; the paper's net is 784-800-10 (one hidden layer).

    Layers are `equinox.nn.Linear` with its default initialisation, U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    for weights and biases (PyTorch's `nn.Linear` default too).
    """

    layers: tuple[eqx.nn.Linear, ...]

    def __init__(
        self,
        n_inputs: int = 784,
        width: int = 800,
        n_classes: int = 10,
        depth: int = 1,
        *,
        key: PRNGKeyArray,
        dtype=None,
    ):
        sizes = [n_inputs] + [width] * depth + [n_classes]
        keys = jr.split(key, len(sizes) - 1)
        self.layers = tuple(
            eqx.nn.Linear(n_in, n_out, key=k, dtype=dtype)
            for n_in, n_out, k in zip(sizes[:-1], sizes[1:], keys)
        )

    def logits(self, x: Float[Array, " d"]) -> Float[Array, " n_classes"]:
        for layer in self.layers[:-1]:
            x = jax.nn.relu(layer(x))
        return self.layers[-1](x)

    def loss(self, x, y):
        return softmax_cross_entropy(self.logits(x), y)

    def correct(self, x, y):
        logits = self.logits(x)
        return as_float(jnp.argmax(logits).astype(y.dtype) == y, logits)


class Quadratic(Model):
    """Quadratic toy with known answers: l_i(w) = w^T A w / (2N) + c_i . w, sum_i c_i = 0.

    Summed over the N examples, C(w) = 1/2 w^T A w (+ prior): A is the Hessian of the summed cost,
    the minimum is w = 0, and the centred per-example gradients are c_i for every w, so the noise
    covariance F = sum_i c_i c_i^T / (N - 1) is constant. The example "inputs" are the c_i (see
    `models.quadratic_problem`). Accuracy is undefined here and recorded as NaN.
    """

    w: Float[Array, " d"]
    hessian_per_example: Constant

    def __init__(self, w0: Float[Array, " d"], hessian: Float[Array, "d d"], n_train: int):
        self.w = jnp.asarray(w0)
        self.hessian_per_example = Constant(jnp.asarray(hessian) / n_train)

    def loss(self, x, y):
        del y
        return 0.5 * self.w @ (self.hessian_per_example.value @ self.w) + x @ self.w

    def correct(self, x, y):
        del x, y
        return jnp.full((), jnp.nan, self.w.dtype)
