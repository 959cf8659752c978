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

    def grad_sq_norms(self, x, y):
        # grad_w l_i = (sigma(logit_i) - y_i) (x_i, 1): its norm needs no per-example gradient.
        residual = jax.nn.sigmoid(jax.vmap(self.logit)(x)) - y.astype(x.dtype)
        extra = 0.0 if isinstance(self.bias, Constant) else 1.0
        return residual**2 * (jnp.sum(x**2, axis=1) + extra)


ACTIVATIONS = {
    "relu": jax.nn.relu,
    "leaky_relu": lambda z: jax.nn.leaky_relu(z, 0.01),
    "tanh": jnp.tanh,
    "gelu": jax.nn.gelu,
    "softplus": jax.nn.softplus,
}
INITS = ("default", "glorot", "he")


class ShallowNet(Model):
    """MLP mapping inputs to class logits; the paper's net is 784-800-10 (one hidden ReLU layer).

    activation: "relu" (default), "leaky_relu" (negative slope 0.01), "tanh", "gelu" or "softplus".
    init: "default" is `equinox.nn.Linear`'s own, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and
    biases (PyTorch's `nn.Linear` default too); "glorot" is Glorot-uniform weights,
    U(-sqrt(6/(fan_in + fan_out)), +), with zero biases (TensorFlow/Keras' default); "he" is
    He-normal weights, N(0, 2/fan_in), with zero biases. The weights of every init come from the
    same key.

    Diagnostics (`diagnostic_names`): a ReLU unit inactive on every training example is dead (its
    gradient is zero on every batch, so SGD can never revive it): `dead_fraction` is the fraction of
    hidden units dead, over all hidden layers (with `dead_fraction_layer<k>` per layer when there
    are several). Other activations have no dead units; for them the same count, a unit whose
    pre-activation is negative on every training example, is `negative_fraction`.
    """

    layers: tuple[eqx.nn.Linear, ...]
    activation: str = eqx.field(static=True)

    def __init__(
        self,
        n_inputs: int = 784,
        width: int = 800,
        n_classes: int = 10,
        depth: int = 1,
        *,
        key: PRNGKeyArray,
        activation: str = "relu",
        init: str = "default",
        dtype=None,
    ):
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {', '.join(ACTIVATIONS)} (got {activation!r})"
            )
        if init not in INITS:
            raise ValueError(f"init must be one of {', '.join(INITS)} (got {init!r})")
        sizes = [n_inputs] + [width] * depth + [n_classes]
        keys = jr.split(key, len(sizes) - 1)
        layers = []
        for n_in, n_out, k in zip(sizes[:-1], sizes[1:], keys):
            layer = eqx.nn.Linear(n_in, n_out, key=k, dtype=dtype)
            if init != "default":
                shape, dt = layer.weight.shape, layer.weight.dtype
                if init == "glorot":
                    limit = (6.0 / (n_in + n_out)) ** 0.5
                    weight = jr.uniform(k, shape, dt, -limit, limit)
                else:
                    weight = jr.normal(k, shape, dt) * (2.0 / n_in) ** 0.5
                layer = eqx.tree_at(
                    lambda lin: (lin.weight, lin.bias), layer, (weight, jnp.zeros_like(layer.bias))
                )
            layers.append(layer)
        self.layers = tuple(layers)
        self.activation = activation

    def diagnostic_names(self) -> tuple[str, ...]:
        name = "dead_fraction" if self.activation == "relu" else "negative_fraction"
        hidden = len(self.layers) - 1
        return (name,) + (
            tuple(f"{name}_layer{k + 1}" for k in range(hidden)) if hidden > 1 else ()
        )

    def diagnostics(self, x):
        """Fraction of hidden units whose pre-activation is <= 0 on every example of x (n, d):
        overall, then per layer when there are several (`diagnostic_names`)."""
        per_layer, h = [], x
        for layer in self.layers[:-1]:
            z = h @ layer.weight.T + (0.0 if layer.bias is None else layer.bias)
            per_layer.append(jnp.all(z <= 0, axis=0))
            h = ACTIVATIONS[self.activation](z)
        overall = jnp.mean(jnp.concatenate(per_layer)).astype(x.dtype)
        parts = [overall] + (
            [jnp.mean(d).astype(x.dtype) for d in per_layer] if len(per_layer) > 1 else []
        )
        return jnp.stack(parts)

    def logits(self, x: Float[Array, " d"]) -> Float[Array, " n_classes"]:
        return self._forward(x)[0]

    def _forward(self, x, shifts=None):
        """Logits of one example and each layer's input; `shifts` (one per layer) are added to the
        pre-activations (zero shifts change nothing; their gradient is dl/d(pre-activation))."""
        inputs = []
        for k, layer in enumerate(self.layers):
            inputs.append(x)
            z = layer(x) if shifts is None else layer(x) + shifts[k]
            x = ACTIVATIONS[self.activation](z) if k < len(self.layers) - 1 else z
        return x, inputs

    def loss(self, x, y):
        return softmax_cross_entropy(self.logits(x), y)

    def correct(self, x, y):
        logits = self.logits(x)
        return as_float(jnp.argmax(logits).astype(y.dtype) == y, logits)

    def grad_sq_norms(self, x, y):
        """Per-example |grad_w l_i|^2 in ONE backward pass: a dense layer's per-example gradient is
        delta_i a_i^T (weight) and delta_i (bias), so its squared norm is |delta_i|^2 (|a_i|^2 + 1),
        with a_i the layer's input and delta_i = dl_i/d(pre-activation), read off as the gradient of
        sum_i l_i with respect to a zero shift added to each layer's pre-activations."""

        def total(shifts):
            logits, inputs = jax.vmap(self._forward)(x, shifts)
            return jnp.sum(jax.vmap(softmax_cross_entropy)(logits, y)), inputs

        shifts = [jnp.zeros((x.shape[0], layer.out_features), x.dtype) for layer in self.layers]
        deltas, inputs = jax.grad(total, has_aux=True)(shifts)
        return sum(
            jnp.sum(d**2, axis=1) * (jnp.sum(a**2, axis=1) + (0.0 if layer.bias is None else 1.0))
            for d, a, layer in zip(deltas, inputs, self.layers)
        )


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


class TwoWells(Model):
    """Escape toy (Zhu et al. 2019): a sharp and a flat minimum along w_1, quadratic valleys
    elsewhere.

        U(w) = -ln( exp(-h_sharp w_1^2 / 2) + exp(-h_flat (w_1 - distance)^2 / 2) )
               + 1/2 sum_j>1 h_j w_j^2,
        l_i(w) = U(w)/N + c_i . w,   sum_i c_i = 0,

    so C(w) = sum_i l_i = U(w), the Hessian at the sharp minimum is about diag(h_sharp, h_2, ...),
    and the SGD noise covariance F = sum_i c_i c_i^T / (N - 1) is constant (see
    `models.escape_problem`). "Accuracy" here is 1.0 while w_1 lies beyond the barrier between the
    wells (escaped), else 0.0."""

    w: Float[Array, " d"]
    shape: Constant  # (h_sharp, h_flat, distance, barrier position, n_train)
    valley: Constant  # (h_2, ..., h_d)

    def __init__(self, w0, *, h_sharp: float, h_flat: float, distance: float, valley, n_train: int):
        w0 = jnp.asarray(w0)
        self.w = w0
        barrier = two_wells_profile(h_sharp, h_flat, distance)["barrier_at"]
        self.shape = Constant(jnp.asarray([h_sharp, h_flat, distance, barrier, n_train], w0.dtype))
        self.valley = Constant(jnp.asarray(valley, w0.dtype))

    def potential(self):
        h_sharp, h_flat, distance, _, _ = self.shape.value
        x = self.w[0]
        wells = -jnp.logaddexp(-0.5 * h_sharp * x**2, -0.5 * h_flat * (x - distance) ** 2)
        return wells + 0.5 * jnp.sum(self.valley.value * self.w[1:] ** 2)

    def loss(self, x, y):
        del y
        return self.potential() / self.shape.value[4] + x @ self.w

    def correct(self, x, y):
        del x, y
        return as_float(self.w[0] > self.shape.value[3], self.w)


def two_wells_profile(h_sharp: float, h_flat: float, distance: float, points: int = 20001) -> dict:
    """The 1-D profile U_1(x) of `TwoWells` along w_1, in float64 numpy: positions and curvatures of
    the sharp minimum, the barrier and the flat minimum, and the barrier height seen from the sharp
    minimum (for Kramers' escape rate)."""
    import numpy as np

    def u(x):
        return -np.logaddexp(-0.5 * h_sharp * x**2, -0.5 * h_flat * (x - distance) ** 2)

    def curvature(x, h=1e-4):
        return (u(x + h) - 2 * u(x) + u(x - h)) / h**2

    xs = np.linspace(-0.5 * distance, 1.5 * distance, points)
    values = u(xs)
    inner = (xs > 0) & (xs < distance)
    barrier = float(xs[inner][np.argmax(values[inner])])
    sharp = float(xs[xs < barrier][np.argmin(values[xs < barrier])])
    flat = float(xs[xs > barrier][np.argmin(values[xs > barrier])])
    return dict(
        sharp_at=sharp,
        barrier_at=barrier,
        flat_at=flat,
        height=float(u(barrier) - u(sharp)),
        curvature_sharp=float(curvature(sharp)),
        curvature_barrier=float(curvature(barrier)),
        curvature_flat=float(curvature(flat)),
        depth_difference=float(u(flat) - u(sharp)),
    )
