"""The compiled path: momentum SGD step for step against a plain numpy loop,
Diffrax against the hand-written scan, Brownian increments, divergence, no recompiles."""

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

import models
import sim
from _helpers import logistic_per_example_grads, small_logistic

N, D = 12, 3


def _logistic(w, b, x, y):
    model = eqx.tree_at(
        lambda m: (m.weight, m.bias), models.LogisticRegression(D), (jnp.asarray(w), jnp.asarray(b))
    )
    return model, models.Dataset(jnp.asarray(x), jnp.asarray(y), jnp.asarray(x), jnp.asarray(y), 2)


def test_momentum_sgd_matches_numpy_loop():
    """The paper's momentum SGD, v <- m v + (1/B) sum grad l_i + lam w / N, w <- w - eps v, written
    independently in numpy with analytic logistic gradients, on the same explicit batch schedule.
    float64 on both sides: agreement to 1e-12 relative (rounding only)."""
    x, y, w, b = small_logistic(N, D)
    lr, m, lam, batch, steps = 0.8, 0.9, 0.3, 5, 40
    rng = np.random.default_rng(5)
    schedule = np.stack([rng.choice(N, batch, replace=False) for _ in range(steps)])
    params = np.append(w, b)
    v = np.zeros_like(params)
    losses = []
    for t in range(steps):
        idx = schedule[t]
        grad = logistic_per_example_grads(params[:-1], params[-1], x[idx], y[idx]).mean(axis=0)
        v = m * v + grad + lam * params / N
        params = params - lr * v
        z = x @ params[:-1] + params[-1]
        losses.append(np.mean(np.logaddexp(0, z) - y * z))
    model, data = _logistic(w, b, x, y)
    traj = sim.run_sgd(
        model,
        data,
        lr=lr,
        momentum=m,
        l2=lam,
        batch_size=batch,
        steps=steps,
        key=jr.key(0),
        schedule=schedule,
        record_every=1,
    )
    np.testing.assert_allclose(traj.params[0], params, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(traj.train_loss[0, 1:], losses, rtol=1e-12)
    z = x @ params[:-1] + params[-1]
    assert traj.test_accuracy[0, -1] == pytest.approx(np.mean((z > 0) == (y == 1)))


def test_dampened_momentum_at_eps_is_ours_at_eps_times_one_minus_m():
    """Dampened momentum, v <- m v + (1 - m) grad, w <- w - eps v (PyTorch's dampening = m; not the
    paper's, TensorFlow's or Keras' form, which are undampened), at eps = 1 moves w exactly as our
    undampened momentum at eps (1 - m) = 0.1 (v_dampened = (1 - m) v_ours). Written independently in
    numpy, float64: 1e-12 relative. Dampened at the SAME eps differs by a factor ~10 in the step
        (checked too)."""
    x, y, w, b = small_logistic(N, D)
    eps, m, batch, steps = 1.0, 0.9, 5, 40
    rng = np.random.default_rng(6)
    schedule = np.stack([rng.choice(N, batch, replace=False) for _ in range(steps)])
    params, v = np.append(w, b), np.zeros(D + 1)
    for t in range(steps):
        grad = logistic_per_example_grads(
            params[:-1], params[-1], x[schedule[t]], y[schedule[t]]
        ).mean(axis=0)
        v = m * v + (1 - m) * grad
        params = params - eps * v
    model, data = _logistic(w, b, x, y)
    ours = sim.run_sgd(
        model,
        data,
        lr=eps * (1 - m),
        momentum=m,
        batch_size=batch,
        steps=steps,
        key=jr.key(0),
        schedule=schedule,
    )
    np.testing.assert_allclose(ours.params[0], params, rtol=1e-12, atol=1e-14)
    same_eps = sim.run_sgd(
        model,
        data,
        lr=eps,
        momentum=m,
        batch_size=batch,
        steps=steps,
        key=jr.key(0),
        schedule=schedule,
    )
    assert np.abs(same_eps.params[0] - params).max() > 0.1 * np.abs(params - np.append(w, b)).max()
    assert sim.noise_scale(eps * (1 - m), N, batch, m) == pytest.approx(eps * (N / batch - 1))


def test_explicit_schedule_reproduces_random_draws():
    """Replaying a run: the batches that run_sgd drew at random (seed s: key_s = split(key, S)[s];
    step t: distinct_batch(fold_in(key_s, t), N, B), sim/_sgd.py), rebuilt here as a (seeds, steps,
    B) schedule and passed back, reproduce that run exactly: same final parameters and same records,
    bit for bit (the same compiled step on the same batches). A different schedule does not."""
    x, y, w, b = small_logistic(N, D)
    model, data = _logistic(w, b, x, y)
    n_seeds, steps, batch = 3, 10, 4
    kw = dict(
        lr=0.5,
        batch_size=batch,
        steps=steps,
        key=jr.key(7),
        n_seeds=n_seeds,
        momentum=0.5,
        l2=0.1,
        record_every=3,
    )
    drawn = sim.run_sgd(model, data, **kw)
    keys = jr.split(jr.key(7), n_seeds)
    draw = lambda key_s, t: sim.distinct_batch(jr.fold_in(key_s, t), N, batch)  # noqa: E731
    schedule = np.asarray([[draw(keys[s], t) for t in range(steps)] for s in range(n_seeds)])
    assert schedule.shape == (n_seeds, steps, batch)
    assert all(len(set(row)) == batch for row in schedule.reshape(-1, batch))  # B distinct examples
    assert not np.array_equal(schedule[0], schedule[1])  # seeds draw their own batches
    replayed = sim.run_sgd(model, data, schedule=schedule, **kw)
    np.testing.assert_array_equal(replayed.params, drawn.params)
    for name in ("train_loss", "test_accuracy", "test_xent"):
        np.testing.assert_array_equal(replayed.metric(name), drawn.metric(name))
    np.testing.assert_array_equal(replayed.steps, drawn.steps)
    other = sim.run_sgd(model, data, schedule=schedule[:, ::-1], **kw)
    assert np.abs(other.params - drawn.params).max() > 1e-6


def _tiny_mlp_problem():
    data = models.Dataset(
        jr.normal(jr.key(1), (16, 5)),
        jr.randint(jr.key(2), (16,), 0, 3),
        jr.normal(jr.key(3), (8, 5)),
        jr.randint(jr.key(4), (8,), 0, 3),
        3,
    )
    return models.ShallowNet(5, 7, 3, key=jr.key(0)), data


@pytest.mark.parametrize("momentum", [0.0, 0.8])
def test_diffrax_matches_handwritten_scan(momentum):
    """The Diffrax path (custom fused term, Euler, StepTo) and a plain lax.scan of the same step use
    the same Brownian increments, so they must agree to rounding (float64: 1e-10 after 30 steps)."""
    model, data = _tiny_mlp_problem()
    kw = dict(
        lr=0.3,
        batch_size=4,
        steps=30,
        key=jr.key(9),
        n_seeds=3,
        momentum=momentum,
        l2=0.1,
        refinement=2,
        record_every=7,
    )
    a = sim.run_sde(model, data, backend="diffrax", **kw)
    b = sim.run_sde(model, data, backend="scan", **kw)
    np.testing.assert_allclose(a.params, b.params, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(a.test_xent, b.test_xent, rtol=1e-10)
    assert np.abs(a.params[0] - a.params[1]).max() > 1e-3  # seeds differ


def test_brownian_increments_are_independent_in_float64():
    """Diffrax's UnsafeBrownianPath could repeat an increment on tiny consecutive float64 steps
    (docs/mathematics.md, "Brownian increments"); our increments are keyed by the step index.
    Consecutive tiny steps near t = 1 must give distinct, uncorrelated draws: correlation of 2,000
    pairs of 50-vectors within 4/sqrt(n) of 0."""
    model, data = _tiny_mlp_problem()
    flat, _ = sim.FlatModel.split(model)
    dt = jnp.asarray(1e-9)
    term = sim.SGDNoiseTerm(flat, sim.GradientCovarianceNoise(), jr.key(0), dt, 50, False)
    t = 1.0 + dt * jnp.arange(2001, dtype=dt.dtype)
    draws = jax.vmap(lambda a, b: term.contr(a, b)[1])(t[:-1], t[1:]) / jnp.sqrt(dt)
    draws = np.asarray(draws)
    assert np.all(np.abs(draws[1:] - draws[:-1]).max(axis=1) > 0)
    corr = np.corrcoef(draws[1:].ravel(), draws[:-1].ravel())[0, 1]
    assert abs(corr) < 4 / np.sqrt(draws[1:].size)
    assert abs(draws.std() - 1) < 0.01  # unit variance: std of 100k normals has s.e. 0.0022


def test_divergence_is_data_not_a_crash():
    """On the quadratic, h A = 3.5 I makes SGD (and EM) explode like 2.5^k: the run is marked
    diverged where it overflows: SGD sees its batch loss (quadratic in w) overflow near 2.5^k =
    1e154 (k = 388), the SDE its state near 2.5^k = 1e308 (k = 775). The sweep is not
    interrupted, and metrics after it are NaN, never a silent number."""
    a = 120 * np.eye(2)
    model, data = models.quadratic_problem(a, np.eye(2), n_train=120, w0=jnp.ones(2))
    for run in (sim.run_sgd, sim.run_sde):
        traj = run(
            model,
            data,
            lr=3.5,
            batch_size=60,
            steps=2000,
            key=jr.key(0),
            n_seeds=2,
            record_every=100,
        )
        assert np.all(traj.diverged)
        assert np.all((traj.diverged_step > 380) & (traj.diverged_step < 800))
        if run is sim.run_sde:
            assert np.all(np.isfinite(traj.params))  # the SDE stops at the event, keeping finite w
        assert np.isnan(traj.train_loss[:, -1]).all() and np.isfinite(traj.train_loss[:, 0]).all()
        assert traj.summary("train_loss")[2] == 0


def test_no_recompile_across_hyperparameters(monkeypatch):
    """Learning rate, momentum, L2 and the key are traced arrays: a second run with new values
    reuses the compiled loop (the Python body of the metrics runs only while tracing)."""
    model, data = _tiny_mlp_problem()
    traces = []
    original = sim.FlatModel.metrics
    monkeypatch.setattr(
        sim.FlatModel, "metrics", lambda *a, **k: traces.append(1) or original(*a, **k)
    )
    for lr, m, lam, seed in [(0.1, 0.0, 0.0, 0), (0.2, 0.5, 0.1, 1), (0.05, 0.9, 1.0, 2)]:
        sim.run_sgd(
            model,
            data,
            lr=lr,
            momentum=m,
            l2=lam,
            batch_size=4,
            steps=10,
            key=jr.key(seed),
            record_every=5,
        )
    assert len(traces) == 2  # traced once: the initial record and the scanned body


def test_per_run_hyperparameters_equal_separate_runs():
    """A group of runs with one learning rate / momentum / L2 each equals, run by run, the same runs
    made with that value for every seed (same keys): grouping never changes a number."""
    model, data = _tiny_mlp_problem()
    kw = dict(batch_size=4, steps=12, key=jr.key(4), record_every=6)
    grouped = sim.run_sgd(model, data, lr=[0.1, 0.3], momentum=[0.0, 0.5], l2=[0.2, 0.0], **kw)
    for run, (lr, m, lam) in enumerate([(0.1, 0.0, 0.2), (0.3, 0.5, 0.0)]):
        alone = sim.run_sgd(model, data, lr=lr, momentum=m, l2=lam, n_seeds=2, **kw)
        np.testing.assert_allclose(grouped.params[run], alone.params[run], rtol=1e-12)
        np.testing.assert_allclose(grouped.test_xent[run], alone.test_xent[run], rtol=1e-12)
    assert grouped.config["lr"] == [0.1, 0.3] and grouped.time.shape == (2, 3)


def test_coupled_levels_share_one_brownian_path():
    """brownian_resolution = R: every level's increment is the sum of the R-level increments. With
        no
    drift (A = 0), w_T = w0 + sqrt(g) L W_T for ANY dt, so r = 1, 2, 4 on one key must end at the
    same point to rounding; without coupling (independent levels) they differ by O(1) noise. At r =
    R the coupled run is the plain run (same increments)."""
    model, data = models.quadratic_problem(np.zeros((2, 2)), np.eye(2), n_train=40, w0=jnp.zeros(2))
    kw = dict(lr=0.5, batch_size=8, steps=6, key=jr.key(5), n_seeds=3)
    finals = [
        sim.run_sde(model, data, refinement=r, brownian_resolution=4, **kw).params
        for r in (1, 2, 4)
    ]
    np.testing.assert_allclose(finals[0], finals[2], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(finals[1], finals[2], rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(finals[2], sim.run_sde(model, data, refinement=4, **kw).params)
    independent = sim.run_sde(model, data, refinement=1, **kw).params
    assert np.abs(independent - finals[2]).max() > 0.1 * np.abs(finals[2]).max()
    with pytest.raises(sim.InputError, match="^brownian_resolution must be a multiple"):
        sim.run_sde(model, data, refinement=3, brownian_resolution=4, **kw)
