"""Stationary covariances on the quadratic toy against Lyapunov equations.

C(w) = 1/2 w^T A w with constant F (models.quadratic_problem realises F exactly). With h = eps/N:
  SGD:            P = (I - hA) P (I - hA)^T + g h F      (discrete Lyapunov)
  SDE (OU):       A P + P A = g F                        (continuous Lyapunov)
  EM at step dt:  P = (I - dt A) P (I - dt A)^T + g dt F
Each simulation must match its own closed form within Monte-Carlo error; the stationary mean is 0
exactly, so the second moment about 0 is the covariance and its standard error is the std of the
products / sqrt(n) (see _helpers).
"""

import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest
from scipy.linalg import solve_continuous_lyapunov, solve_discrete_lyapunov

import models
import sim
from _helpers import second_moment_with_se

N = 120
A = N * np.array([[0.8, 0.2], [0.2, 0.5]])
F = np.array([[1.0, 0.3], [0.3, 0.6]])
SEEDS = 4000
# 4.5 standard errors per entry: with 3 distinct entries per check and ~10 checks, a false failure
# has probability ~1e-4 for the whole file.
Z = 4.5


def _stationary(run, lr, batch_size, steps, a=A, f=F, seeds=SEEDS, **kwargs):
    model, data = models.quadratic_problem(a, f, n_train=N, w0=jnp.zeros(2), seed=1)
    traj = run(
        model,
        data,
        lr=lr,
        batch_size=batch_size,
        steps=steps,
        key=jr.key(7),
        n_seeds=seeds,
        record_every=steps,
        **kwargs,
    )
    return second_moment_with_se(traj.params, np.zeros(2))


def discrete_sgd(lr, batch_size=None, g=None):
    h = lr / N
    g = sim.noise_scale(lr, N, batch_size) if g is None else g
    return solve_discrete_lyapunov(np.eye(2) - h * A, g * h * F)


def continuous(g):
    return solve_continuous_lyapunov(A, g * F)


# Pairs (eps, B) at the same g = eps (N/B - 1) = 1.
SAME_G = [(1.0, 60), (0.5, 40), (0.25, 24)]


def test_closed_forms_meet_as_eps_shrinks():
    """The discrete (SGD) and continuous (SDE) covariances differ at O(h) and meet as eps -> 0 at g
    fixed: the gap falls monotonically and, once h|A| is small, halves with eps (ratio -> 2)."""
    for lr, b in SAME_G:
        assert sim.noise_scale(lr, N, b) == pytest.approx(1.0)
    eps = [1.0, 0.5, 0.25, 0.125, 0.0625, 0.03125]
    scale = np.abs(continuous(1.0)).max()
    gaps = [np.abs(discrete_sgd(lr, g=1.0) - continuous(1.0)).max() / scale for lr in eps]
    assert all(a > b for a, b in zip(gaps, gaps[1:]))
    ratios = np.array(gaps[:-1]) / np.array(gaps[1:])
    assert np.all(np.abs(ratios[-2:] - 2) < 0.2), ratios  # O(h) with an O(h^2) correction left


@pytest.mark.parametrize("lr, batch_size", SAME_G)
def test_sgd_stationary_covariance_is_discrete_lyapunov(lr, batch_size):
    steps = int(15 / lr)  # 6 relaxation times of the slowest mode (rate h * 0.4 N per step): the
    # covariance transient from w0 = 0 decays like exp(-12) = 6e-6 of P, < 3e-4 of a standard error
    emp, se = _stationary(sim.run_sgd, lr, batch_size, steps)
    np.testing.assert_array_less(np.abs(emp - discrete_sgd(lr, batch_size)), Z * se)
    if lr == 1.0:
        # At eps = 1 the continuous answer is far off: SGD is not its SDE here, and the test can
        # tell.
        assert np.abs(emp - continuous(1.0))[0, 0] > 8 * se[0, 0]


def test_sde_stationary_covariance_is_continuous_lyapunov():
    """Euler–Maruyama with dt = eps/(N r), r = 32: its own O(dt) bias is computed exactly and must
    be below one standard error (it is 0.40 s.e. at 2,000 seeds), so agreement is with the
    continuous (OU) covariance. SDE time 15 eps/N = 0.125: the slowest covariance mode (rate 2 x 48)
    has decayed by exp(-12). Power: SGD's discrete answer (or an SDE that ignored r, EM at dt =
    eps/N) is 22 s.e. off on the (0, 0) entry (asserted > 8), a factor 2 in g 31 s.e. on the
    diagonal."""
    lr, b, r = 1.0, 60, 32
    dt = lr / (N * r)
    em = solve_discrete_lyapunov(np.eye(2) - dt * A, 1.0 * dt * F)
    emp, se = _stationary(sim.run_sde, lr, b, 15, refinement=r, seeds=2000)
    assert np.all(np.abs(em - continuous(1.0)) < se)
    np.testing.assert_array_less(
        np.abs(emp - continuous(1.0)), Z * se + np.abs(em - continuous(1.0))
    )
    assert np.abs(emp - discrete_sgd(lr, b))[0, 0] > 8 * se[0, 0]


def _momentum_closed_forms(lr, batch_size, momentum, a, f, r):
    """Continuous second-order SDE (full 2d Lyapunov) and its EM discretisation at dt = h / r."""
    d = a.shape[0]
    h = np.sqrt(lr / N)
    gamma = (1 - momentum) / h
    g2 = h * N * (N / batch_size - 1)
    eye, zero = np.eye(d), np.zeros((d, d))
    k = np.block([[zero, eye], [-a, -gamma * eye]])
    q = np.block([[zero, zero], [zero, g2 * f]])
    cont = solve_continuous_lyapunov(k, -q)[:d, :d]
    dt = h / r
    em = solve_discrete_lyapunov(np.eye(2 * d) + dt * k, dt * q)[:d, :d]
    return cont, em


def test_momentum_sde_stationary_variance_matches_noise_scale():
    """Second-order SDE of momentum SGD: with A and F diagonal, Var(w_j) = g F_jj / (2 A_jj) with
    g = eps (N/B - 1)/(1 - m), the same noise scale as SGD's (checked in closed form and simulated).
    2,000 seeds, EM at dt = h/8 (its exact bias 0.80 s.e., below the one s.e. asserted), 60 SGD
    steps = SDE time 3.9: the slowest covariance mode (rate 2 x 2.14) has decayed by exp(-16.6).
    Power: g without its 1/(1 - m) halves both variances, 15 s.e. off."""
    lr, b, m, r = 0.5, 40, 0.5, 8
    a, f = N * np.diag([0.2, 0.1]), np.diag([1.0, 0.5])
    g = sim.noise_scale(lr, N, b, momentum=m)
    target = g * f @ np.linalg.inv(2 * a)
    cont, em = _momentum_closed_forms(lr, b, m, a, f, r)
    np.testing.assert_allclose(cont, target, rtol=1e-10, atol=1e-14)
    emp, se = _stationary(sim.run_sde, lr, b, 60, a=a, f=f, momentum=m, refinement=r, seeds=2000)
    assert np.all(np.abs(em - cont) < se)
    np.testing.assert_array_less(np.abs(emp - target), Z * se + np.abs(em - cont))
