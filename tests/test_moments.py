"""Exact first two moments of one SGD step and of one Euler–Maruyama step."""

import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

import models
import sim
from _helpers import logistic_per_example_grads, second_moment_with_se, small_logistic

N, D, B, LR, L2 = 12, 3, 4, 0.7, 0.5
SAMPLES = 40_000


def _problem():
    x, y, w, b = small_logistic(N, D)
    model = models.LogisticRegression(D)
    model = eqx_set(model, w, b)
    data = models.Dataset(jnp.asarray(x), jnp.asarray(y), jnp.asarray(x), jnp.asarray(y), 2)
    grads = logistic_per_example_grads(w, b, x, y) + L2 * np.append(w, b) / N  # rows: grad C_i
    full = grads.sum(axis=0)
    centred = grads - full / N
    fisher = centred.T @ centred / (N - 1)
    return model, data, np.append(w, b), full, fisher


def eqx_set(model, w, b):
    import equinox as eqx

    return eqx.tree_at(lambda m: (m.weight, m.bias), model, (jnp.asarray(w), jnp.asarray(b)))


def _one_step(run, **kwargs):
    model, data, w0, full, fisher = _problem()
    traj = run(
        model,
        data,
        lr=LR,
        batch_size=B,
        steps=1,
        key=jr.key(3),
        n_seeds=SAMPLES,
        l2=L2,
        record_every=1,
        **kwargs,
    )
    return traj.params - w0, full, fisher


@pytest.mark.parametrize("run", [sim.run_sgd, sim.run_sde], ids=["sgd", "euler-maruyama"])
def test_one_step_moments(run):
    """Mean -(eps/N) grad C and covariance (eps^2/N)(N/B - 1) F, the exact moments of SGD's step
    (B distinct examples: Cov(alpha) = N (N/B - 1) F with F's 1/(N-1) normaliser). Euler–Maruyama at
    dt = eps/N must have the same two moments. Tolerance: 5 Monte-Carlo standard errors per entry
    (40,000 samples; a false failure has probability ~1e-6 per entry)."""
    updates, full, fisher = _one_step(run)
    mean = -(LR / N) * full
    cov = (LR**2 / N) * (N / B - 1) * fisher
    se_mean = np.sqrt(np.diag(cov) / SAMPLES)
    assert np.all(np.abs(updates.mean(axis=0) - mean) < 5 * se_mean)
    emp, se = second_moment_with_se(updates, mean)
    assert np.all(np.abs(emp - cov) < 5 * se + 1e-15)
    # The test can fail: sampling WITH replacement would give covariance (eps^2/N)(N/B)(N-1)/N F,
    # 1.375x larger here; the diagonal must rule that out by many standard errors.
    wrong = (LR**2 / N) * (N / B) * (N - 1) / N * fisher
    assert np.all(np.abs(np.diag(emp) - np.diag(wrong)) > 10 * np.diag(se))


@pytest.mark.parametrize("run", [sim.run_sgd, sim.run_sde], ids=["sgd", "euler-maruyama"])
def test_full_batch_is_noiseless(run):
    """B = N: g = 0 and every seed takes exactly the gradient step -(eps/N) grad C (to rounding)."""
    model, data, w0, full, _ = _problem()
    assert sim.noise_scale(LR, N, N) == 0.0
    traj = run(
        model, data, lr=LR, batch_size=N, steps=1, key=jr.key(0), n_seeds=5, l2=L2, record_every=1
    )
    np.testing.assert_allclose(
        traj.params - w0, np.tile(-(LR / N) * full, (5, 1)), rtol=1e-12, atol=1e-15
    )


def test_noise_scale_formula():
    assert sim.noise_scale(0.1, 1000, 30) == pytest.approx(0.1 * (1000 / 30 - 1))
    assert sim.noise_scale(1.0, 1000, 30, momentum=0.9) == pytest.approx((1000 / 30 - 1) / 0.1)
    assert sim.noise_scale(0.5, 100, 1) == pytest.approx(0.5 * 99)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(lr=0.0), "lr"),
        (dict(lr=-1.0), "lr"),
        (dict(batch_size=0), "batch_size"),
        (dict(batch_size=N + 1), "batch_size"),
        (dict(momentum=1.0), "momentum"),
        (dict(momentum=-0.1), "momentum"),
        (dict(steps=0), "steps"),
        (dict(l2=-1.0), "l2"),
        (dict(refinement=0), "refinement"),
    ],
)
def test_bad_input_names_the_parameter(kwargs, name):
    model, data, *_ = _problem()
    args = dict(lr=0.1, batch_size=2, steps=1, key=jr.key(0))
    args.update(kwargs)
    run = sim.run_sde if "refinement" in kwargs else sim.run_sgd
    with pytest.raises(sim.InputError, match=rf"^{name} must"):
        run(model, data, **args)
    if "refinement" not in kwargs and name != "steps" and name != "l2":
        with pytest.raises(sim.InputError, match=rf"^{name} must"):
            sim.noise_scale(
                **{"lr": 0.1, "n_train": N, "batch_size": 2, **{k: v for k, v in kwargs.items()}}
            )


def test_isotropic_noise_one_step_moments():
    """IsotropicNoise: one EM step at dt = eps/N has mean -(eps/N) grad C (as the F-shaped noise)
        and
    covariance g dt (tr F / p) I, with tr F the exact per-example trace (dense F here). Same 5
    Monte-Carlo s.e. tolerance as above; the off-diagonal must vanish within it too, which F-shaped
    noise (F is not diagonal here) would fail on at least one entry."""
    updates, full, fisher = _one_step(sim.run_sde, noise=sim.IsotropicNoise())
    p = fisher.shape[0]
    dt, g = LR / N, sim.noise_scale(LR, N, B)
    mean = -dt * full
    cov = g * dt * np.trace(fisher) / p * np.eye(p)
    assert np.all(np.abs(updates.mean(axis=0) - mean) < 5 * np.sqrt(np.diag(cov) / SAMPLES))
    emp, se = second_moment_with_se(updates, mean)
    assert np.all(np.abs(emp - cov) < 5 * se + 1e-15)
    shaped = g * dt * fisher
    assert np.any(np.abs(emp - shaped) > 10 * se)
