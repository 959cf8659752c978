"""The SDE in mean-loss time (docs/mathematics.md, "The SDE in mean-loss time"), exact on the
quadratic.

With C = N L (L the mean loss) and tau = N t, dw/dt = -dC/dw + eta (<eta eta'> = g F delta) becomes
    dw = -dL/dw dtau + sqrt(g/N) L_F dW_tau:
the drift does not depend on N and the temperature is g/N = eps (1/B - 1/N)/(1 - m). On the
quadratic toy with the mean-loss Hessian H = A/N held fixed across N, Euler-Maruyama at dt = eps/N
is, step for step, the same linear Gaussian chain in tau whenever g/N is the same:
    w_{k+1} = (I - eps H) w_k + sqrt((g/N) eps) L_F z_k,
so its mean and covariance after k steps are the same closed forms at N = 20, B = 5 and N = 60, B =
6 (g/N = 0.15 eps at both), while N = 60, B = 15 (the same g as N = 20, B = 5) has a third of the
covariance. Each simulation is checked against the closed form within Monte-Carlo error.
"""

import jax.numpy as jnp
import jax.random as jr
import numpy as np

import models
import sim
from _helpers import second_moment_with_se

H = np.array([[0.8, 0.2], [0.2, 0.5]])  # mean-loss Hessian, the same at every N
F = np.array([[1.0, 0.3], [0.3, 0.6]])
W0 = np.array([1.0, -0.5])
LR, STEPS, SEEDS = 0.5, 12, 4000
# 4.5 standard errors per entry: 2 means + 3 covariance entries per run, 3 runs: a false failure has
# probability ~1e-4 for the file.
Z = 4.5


def _closed_form(g_over_n):
    """Mean and covariance of the EM chain in tau after STEPS steps (each eps of tau)."""
    m = np.eye(2) - LR * H
    mean, cov = W0.copy(), np.zeros((2, 2))
    for _ in range(STEPS):
        mean, cov = m @ mean, m @ cov @ m.T + g_over_n * LR * F
    return mean, cov


def _simulate(n_train, batch_size):
    model, data = models.quadratic_problem(
        n_train * H, F, n_train=n_train, w0=jnp.asarray(W0), seed=3
    )
    traj = sim.run_sde(
        model,
        data,
        lr=LR,
        batch_size=batch_size,
        steps=STEPS,
        key=jr.key(11),
        n_seeds=SEEDS,
        record_every=STEPS,
        seed_batching="vmap",
    )
    params = traj.params.astype(float)
    return params, traj.config["noise_scale"] / n_train


def _check(params, mean, cov):
    se_mean = params.std(axis=0, ddof=1) / np.sqrt(params.shape[0])
    assert np.all(np.abs(params.mean(axis=0) - mean) < Z * se_mean)
    moment, se = second_moment_with_se(params, mean)
    assert np.all(np.abs(moment - cov) < Z * se)


def test_equal_temperature_is_one_chain_across_n():
    """N = 20, B = 5 and N = 60, B = 6 (equal g/N) both match the one closed form in tau; the closed
    form at N = 60, B = 15 (equal g instead) is a third as wide, ~40 standard errors away."""
    mean, cov = _closed_form(0.15 * LR)
    for n, b in ((20, 5), (60, 6)):
        params, temperature = _simulate(n, b)
        assert np.isclose(temperature, 0.15 * LR)
        _check(params, mean, cov)
    params, temperature = _simulate(60, 15)
    # g = eps (60/15 - 1) = 3 eps, the same g as N = 20, B = 5
    assert np.isclose(temperature, 0.05 * LR)
    _check(params, *_closed_form(temperature))
    moment, se = second_moment_with_se(params, mean)
    assert np.all(np.abs(np.diag(moment) - np.diag(cov)) > 10 * np.diag(se))
