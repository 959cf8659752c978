"""The net's setup (activation, initialisation, input preprocessing) and the dead-unit diagnostic.

A ReLU unit inactive on every training example gets a zero gradient from every batch, and the SDE's
noise g F has no component along its weights either (F is built from per-example gradients): SGD and
the SDE leave its incoming weights exactly where they are, and the recorded dead fraction can only
rise."""

import equinox as eqx
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

import models
import sim
from experiments.paper import batch_size
from experiments.runner import tasks


@pytest.fixture(scope="module")
def data():
    return models.multiclass_task(n_train=100)


def _half_dead(key, width=8):
    """A ReLU net whose first width/2 hidden units are dead on every input in [0, 1]^784: zero
    incoming weights and bias -1, so their pre-activation is -1 on every example."""
    net = models.ShallowNet(width=width, key=key)
    first = net.layers[0]
    weight = first.weight.at[: width // 2].set(0.0)
    bias = first.bias.at[: width // 2].set(-1.0)
    return eqx.tree_at(lambda n: (n.layers[0].weight, n.layers[0].bias), net, (weight, bias))


def test_dead_fraction_is_exact_and_dead_units_stay_dead(data):
    """Half the units dead at initialisation: recorded 0.5 at step 0 (exact: a count over 8 units),
    never below afterwards, and their incoming weights unchanged bit for bit, under SGD and under
    the SDE."""
    net = _half_dead(jr.key(0))
    assert float(net.diagnostics(data.x_train)[0]) == 0.5
    for run in (sim.run_sgd, sim.run_sde):
        traj = run(
            net, data, lr=0.1, momentum=0.9, batch_size=10, steps=40, key=jr.key(1), record_every=10
        )
        dead = traj.diagnostics["dead_fraction"][0]
        assert dead[0] == 0.5 and np.all(dead >= 0.5) and np.all(np.diff(dead) >= 0)
        trained = traj.model(0).layers[0]
        assert np.array_equal(np.asarray(trained.weight[:4]), np.zeros((4, 784)))
        assert np.array_equal(np.asarray(trained.bias[:4]), -np.ones(4))
        assert traj.finals(0)["dead_fraction"] == dead[-1]


def test_diagnostics_per_model():
    """ReLU: dead_fraction; two hidden layers: overall and per layer; tanh: negative_fraction; the
    logistic model: none (the hook is general, nothing ShallowNet-specific in sim/)."""
    x = jnp.asarray(np.random.default_rng(0).random((50, 784)), jnp.zeros(()).dtype)
    deep = models.ShallowNet(width=6, depth=2, key=jr.key(0))
    names = deep.diagnostic_names()
    assert names == ("dead_fraction", "dead_fraction_layer1", "dead_fraction_layer2")
    values = np.asarray(deep.diagnostics(x))
    # equal widths: the overall is the mean
    assert values[0] == pytest.approx((values[1] + values[2]) / 2)
    assert models.ShallowNet(width=6, activation="tanh", key=jr.key(0)).diagnostic_names() == (
        "negative_fraction",
    )
    assert models.LogisticRegression().diagnostic_names() == ()
    data = models.binary_task(n_train=20)
    traj = sim.run_sgd(
        models.LogisticRegression(), data, lr=0.1, batch_size=5, steps=5, key=jr.key(0)
    )
    assert traj.diagnostics == {} and set(traj.finals(0)) == set(sim.METRICS)


def test_initialisations():
    """default: equinox.nn.Linear's own (same key, same numbers); glorot: U(+-sqrt(6/(fan_in +
        fan_out)))
    with zero biases; he: N(0, 2/fan_in) with zero biases. The sample variance of 627,200 weights
    has a relative standard error of ~0.2% (uniform) and ~0.18% (normal): 2% is a 10-sigma bound.
    The plausible bugs are far outside it: He without its factor 2 (x0.5), Glorot's limit without
    the 6 (x1/6), He's variance for Glorot (x1.6); the glorot/he swap is also caught by the bound on
    |w|."""
    key = jr.key(3)
    default = models.ShallowNet(key=key)
    reference = eqx.nn.Linear(784, 800, key=jr.split(key, 2)[0])
    assert np.array_equal(np.asarray(default.layers[0].weight), np.asarray(reference.weight))
    glorot = models.ShallowNet(key=key, init="glorot").layers[0]
    limit = np.sqrt(6 / (784 + 800))
    w = np.asarray(glorot.weight)
    assert np.abs(w).max() <= limit and np.abs(w).max() > 0.99 * limit
    assert w.var() == pytest.approx(limit**2 / 3, rel=0.02)
    assert not np.any(np.asarray(glorot.bias))
    he = models.ShallowNet(key=key, init="he").layers[0]
    assert np.asarray(he.weight).var() == pytest.approx(2 / 784, rel=0.02)
    assert not np.any(np.asarray(he.bias))
    with pytest.raises(ValueError, match="activation must be one of"):
        models.ShallowNet(key=key, activation="sigmoid")


def test_input_preprocessing():
    """pixels: as before; centred: the training mean of every pixel is 0 and the test set is shifted
        by
    the same (training) mean; standardised: the training pixels have mean 0 and std 1 overall."""
    pixels = models.multiclass_task(n_train=200)
    centred = models.multiclass_task(n_train=200, inputs="centred")
    std = models.multiclass_task(n_train=200, inputs="standardised")
    x, xt = np.asarray(pixels.x_train, float), np.asarray(pixels.x_test, float)
    assert np.abs(np.asarray(centred.x_train).mean(axis=0)).max() < 1e-6
    np.testing.assert_allclose(np.asarray(centred.x_test), xt - x.mean(axis=0), atol=1e-6)
    s = np.asarray(std.x_train, float)
    assert abs(s.mean()) < 1e-5 and s.std() == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(np.asarray(std.x_test), (xt - x.mean()) / x.std(), atol=1e-5)
    with pytest.raises(models.DataError, match="inputs must be one of"):
        models.multiclass_task(n_train=200, inputs="whitened")


def test_default_setup_keeps_the_point_and_its_hash():
    """A default config's points hold no setup key (so every committed row keeps its hash); a
    non-default one records only what differs."""
    points = batch_size.grid(batch_size.Config())
    assert not any({"activation", "init", "inputs", "landscape"} & set(p) for p in points)
    leaky = batch_size.grid(batch_size.Config(activation="leaky_relu", landscape=True))
    assert all(
        p["activation"] == "leaky_relu" and p["landscape"] and "init" not in p for p in leaky
    )
    assert tasks.setup_of({"activation": "relu", "inputs": "centred"}) == {"inputs": "centred"}


def test_landscape_of_a_quadratic_is_its_hessian():
    """On the quadratic toy the mean-loss Hessian is A/N exactly: the top eigenvalue from Lanczos
    matches eigh within its residual bound, the trace is within 4 standard errors of tr(A)/N, |w|^2
    is exact."""
    a = np.diag([3.0, 2.0, 1.0, 0.5]) * 40
    model, data = models.quadratic_problem(
        a, np.eye(4), n_train=40, w0=jnp.asarray([1.0, 2.0, 0.0, -1.0])
    )
    out = tasks.landscape(model, data, key=jr.key(0))
    assert out["sharpness"] == pytest.approx(3.0, abs=1e-4 + out["sharpness_bound"])
    assert abs(out["hessian_trace"] - 6.5) <= 4 * out["hessian_trace_se"] + 1e-4
    assert out["w_norm_sq"] == pytest.approx(6.0)
