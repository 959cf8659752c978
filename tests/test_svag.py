"""SVAG (sim.run_svag): l = 1 is SGD exactly, and its steps have the first two moments of the closed
form: a momentum-SGD step at (eps/l or eps/l^2, m') whose gradient noise covariance is l times
    SGD's.
The exact recursions are those of tests/test_exact_moments.py (quadratic toy with constant F)."""

import jax.random as jr
import numpy as np
import pytest

import models
import sim
from test_exact_moments import A, B, F, LR, N, W0, _check_moments, _simulate, propagate, sgd_system


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_l_equal_one_is_sgd_exactly(momentum):
    """l = 1: c = (1, 0), the same first batch as SGD's step t and its learning rate and momentum:
    the same numbers, bit for bit (1 x g1 + 0 x g2 = g1 in floating point)."""
    model = models.ShallowNet(5, 7, 3, key=jr.key(0))
    data = models.Dataset(
        jr.normal(jr.key(1), (16, 5)),
        jr.randint(jr.key(2), (16,), 0, 3),
        jr.normal(jr.key(3), (8, 5)),
        jr.randint(jr.key(4), (8,), 0, 3),
        3,
    )
    kw = dict(
        lr=0.3,
        batch_size=4,
        steps=25,
        key=jr.key(5),
        n_seeds=3,
        momentum=momentum,
        l2=0.1,
        record_every=5,
    )
    sgd = sim.run_sgd(model, data, **kw)
    svag = sim.run_svag(model, data, l=1, **kw)
    np.testing.assert_array_equal(svag.params, sgd.params)
    np.testing.assert_array_equal(svag.test_xent, sgd.test_xent)
    np.testing.assert_array_equal(svag.steps, sgd.steps)


def test_coefficients():
    for ell in (1, 2, 4, 8, 16):
        c1, c2 = sim.svag_coefficients(ell)
        assert c1 + c2 == pytest.approx(1, abs=1e-15) and c1**2 + c2**2 == pytest.approx(
            ell, rel=1e-14
        )


def _svag_exact(ell, momentum, sgd_steps):
    """SVAG's exact moments: l * sgd_steps steps of the SGD recursion at SVAG's learning rate and
    momentum, with the batch-noise covariance multiplied by c1^2 + c2^2 = l."""
    lr, m = (LR / ell**2, 1 - (1 - momentum) / ell) if momentum > 0 else (LR / ell, 0.0)
    trans, noise = sgd_system(lr, m, B, N, A, F)
    return propagate(trans, ell * noise, W0, ell * sgd_steps)


@pytest.mark.parametrize("ell, momentum", [(4, 0.0), (3, 0.5)])
def test_svag_steps_have_the_closed_form_moments(ell, momentum):
    """40,000 seeds on the quadratic with constant F, one SGD-equivalent step (l SVAG steps): the
    mean and covariance of w within 5 s.e. of the closed form. The amplification is pinned: without
    it (noise covariance x 1 instead of x l) the covariance would be a factor ~l smaller, tens of
    s.e. away."""
    mean, cov = _svag_exact(ell, momentum, 1)
    samples = _simulate(sim.run_svag, steps=1, m=momentum, l=ell)
    emp, se = _check_moments(samples, mean, cov)
    unamplified = propagate(
        *sgd_system(
            *((LR / ell**2, 1 - (1 - momentum) / ell) if momentum else (LR / ell, 0.0)), B, N, A, F
        ),
        W0,
        ell,
    )[1]
    assert np.all(np.abs(emp - unamplified)[np.diag_indices(2)] > 10 * se[np.diag_indices(2)])


def test_svag_mean_is_sgd_drift_and_its_noise_per_unit_time_is_sgds():
    """As l grows at fixed SDE time (m = 0), SVAG's exact moments approach the SDE's: the gap to the
    Ornstein-Uhlenbeck moments (continuous time, exact) falls like 1/l (weak order 1 in its step
    eps/(N l)): halving the step halves the error (ratios within 10% of 2 from l = 8 to 32)."""
    from scipy.linalg import expm, solve_continuous_lyapunov

    t_steps = 3
    time = t_steps * LR / N
    decay = expm(-A * time)
    mean_sde = decay @ W0
    g = LR * (N / B - 1)
    p_inf = solve_continuous_lyapunov(A, g * F)
    cov_sde = p_inf - decay @ p_inf @ decay.T
    errors = []
    for ell in (8, 16, 32):
        mean, cov = _svag_exact(ell, 0.0, t_steps)
        errors.append(np.abs(mean - mean_sde).sum() + np.abs(cov - cov_sde).sum())
    ratios = [errors[0] / errors[1], errors[1] / errors[2]]
    assert all(abs(q - 2) < 0.2 for q in ratios), ratios


def _svag_stationary(ell):
    """SVAG's stationary covariance (m = 0): the discrete Lyapunov P = M P M^T + Q with
    M = I - (eps/l) A/N and Q = (eps/l)^2 l S, S = (1/N)(N/B - 1) F the batch-noise covariance."""
    from scipy.linalg import solve_discrete_lyapunov

    trans = np.eye(2) - (LR / ell) * A / N
    return solve_discrete_lyapunov(trans, (LR / ell) ** 2 * ell * (N - B) / (N * B) * F)


def test_svag_stationary_covariance_approaches_the_sdes_at_rate_one_over_l():
    """Derived (docs/mathematics.md, "SVAG"): P_l solves A P + P A - h A P A = g F with h = eps/(N
    l), the SDE's P_sde solves A P + P A = g F (continuous Lyapunov), so P_l - P_sde = h X + O(h^2)
    with A X + X A = A P_sde A: the gap falls like 1/l with a known constant. Exact part (scipy's
    Lyapunov solvers, round-off 1e-12): l (P_l - P_sde) -> (eps/N) X within 3% at l = 64 (the O(1/l)
    remainder, eps |A|/N <= 0.57 / 64). Simulated part: run_svag (m = 0) for 60 SGD-equivalent steps
    (stationary: the start is forgotten by a factor e^-10) agrees with P_l within 5 s.e. at l = 1
        (20,000 seeds),
    4 and 16 (2,000 seeds: l SVAG steps per SGD step make these the costly runs), while at l = 1 the
    SDE's covariance is > 10 s.e. away (so the test tells them apart: the gap is 10-40% there, eps
    A/N being 0.18-0.57; 27 and 14 s.e. on the diagonal). At 2,000 seeds the bugs an l > 1 run can
    show stay far outside 5 s.e. (the wrong exact covariance against these samples, measured): noise
    not amplified (x 1 instead of x l) 25-30 s.e., amplified x l^2 100-490, the momentum branch's
    step eps/l^2 at m = 0 (unamplified) 31-32."""
    from scipy.linalg import solve_continuous_lyapunov

    g = LR * (N / B - 1)
    p_sde = solve_continuous_lyapunov(A, g * F)
    # solves A X + X A = A P A (sign: scipy solves AX + XA^H = Q)
    x = solve_continuous_lyapunov(A, A @ p_sde @ A)
    for ell in (64, 128):
        np.testing.assert_allclose(
            ell * (_svag_stationary(ell) - p_sde), LR / N * x, rtol=0.03 * 64 / ell, atol=1e-6
        )
    gaps = [np.abs(_svag_stationary(ell) - p_sde).sum() for ell in (8, 16, 32)]
    assert all(abs(gaps[i] / gaps[i + 1] - 2) < 0.1 for i in range(2)), gaps

    steps = 60
    for ell in (1, 4, 16):
        p_l = _svag_stationary(ell)
        mean, cov = _svag_exact(ell, 0.0, steps)
        np.testing.assert_allclose(cov, p_l, rtol=1e-6)  # the finite run is stationary
        samples = _simulate(
            sim.run_svag, steps=steps, m=0.0, l=ell, seeds=20_000 if ell == 1 else 2_000, key=17
        )
        emp, se = _check_moments(samples, mean, cov)
        if ell == 1:
            assert np.all(np.abs(emp - p_sde)[np.diag_indices(2)] > 10 * se[np.diag_indices(2)])
