"""SVAG (sim.run_svag): l = 1 is SGD exactly, and its steps have the first two moments of the closed
form: a momentum-SGD step at (eps/l or eps/l^2, m') whose gradient noise covariance is l times SGD's.
The exact recursions are those of tests/test_exact_moments.py (quadratic toy with constant F)."""

import jax.random as jr
import numpy as np
import pytest

import models
import sim
from test_exact_moments import A, B, F, LR, N, W0, Z, _check_moments, _simulate, propagate, sgd_system


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_l_equal_one_is_sgd_exactly(momentum):
    """l = 1: c = (1, 0), the same first batch as SGD's step t and its learning rate and momentum:
    the same numbers, bit for bit (1 x g1 + 0 x g2 = g1 in floating point)."""
    model = models.ShallowNet(5, 7, 3, key=jr.key(0))
    data = models.Dataset(jr.normal(jr.key(1), (16, 5)), jr.randint(jr.key(2), (16,), 0, 3),
                          jr.normal(jr.key(3), (8, 5)), jr.randint(jr.key(4), (8,), 0, 3), 3)
    kw = dict(lr=0.3, batch_size=4, steps=25, key=jr.key(5), n_seeds=3, momentum=momentum, l2=0.1, record_every=5)
    sgd = sim.run_sgd(model, data, **kw)
    svag = sim.run_svag(model, data, l=1, **kw)
    np.testing.assert_array_equal(svag.params, sgd.params)
    np.testing.assert_array_equal(svag.test_xent, sgd.test_xent)
    np.testing.assert_array_equal(svag.steps, sgd.steps)


def test_coefficients():
    for l in (1, 2, 4, 8, 16):
        c1, c2 = sim.svag_coefficients(l)
        assert c1 + c2 == pytest.approx(1, abs=1e-15) and c1**2 + c2**2 == pytest.approx(l, rel=1e-14)


def _svag_exact(l, momentum, sgd_steps):
    """SVAG's exact moments: l * sgd_steps steps of the SGD recursion at SVAG's learning rate and
    momentum, with the batch-noise covariance multiplied by c1^2 + c2^2 = l."""
    lr, m = (LR / l**2, 1 - (1 - momentum) / l) if momentum > 0 else (LR / l, 0.0)
    trans, noise = sgd_system(lr, m, B, N, A, F)
    return propagate(trans, l * noise, W0, l * sgd_steps)


@pytest.mark.parametrize("l, momentum", [(4, 0.0), (3, 0.5)])
def test_svag_steps_have_the_closed_form_moments(l, momentum):
    """40,000 seeds on the quadratic with constant F, one SGD-equivalent step (l SVAG steps): the mean
    and covariance of w within 5 s.e. of the closed form. The amplification is pinned: without it
    (noise covariance x 1 instead of x l) the covariance would be a factor ~l smaller, tens of s.e. away."""
    mean, cov = _svag_exact(l, momentum, 1)
    samples = _simulate(sim.run_svag, steps=1, m=momentum, l=l)
    emp, se = _check_moments(samples, mean, cov)
    unamplified = propagate(*sgd_system(*((LR / l**2, 1 - (1 - momentum) / l) if momentum else (LR / l, 0.0)),
                                        B, N, A, F), W0, l)[1]
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
    for l in (8, 16, 32):
        mean, cov = _svag_exact(l, 0.0, t_steps)
        errors.append(np.abs(mean - mean_sde).sum() + np.abs(cov - cov_sde).sum())
    ratios = [errors[0] / errors[1], errors[1] / errors[2]]
    assert all(abs(q - 2) < 0.2 for q in ratios), ratios
