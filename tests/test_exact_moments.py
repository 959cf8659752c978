"""Exact first two moments of momentum SGD and of its second-order SDE after a few steps, from the
linear-Gaussian recursion, and conventions pinned with wide margins.

On the quadratic toy (models.quadratic_problem) l_i(w) = w^T A w / (2N) + c_i . w with sum_i c_i = 0
and sum_i c_i c_i^T / (N - 1) = F exactly, so every per-example gradient is A w / N + c_i and the
gradient noise does not depend on w. Momentum SGD and the Euler-type steps of the SDE are then
LINEAR systems driven by noise independent of the state, and the mean and covariance of the state z
after k steps follow exactly from

    mean_{k+1} = M mean_k,   Cov_{k+1} = M Cov_k M^T + Q

(only the first two moments of the noise enter, so SGD's non-Gaussian batch noise is covered too).

Momentum SGD, z = (w, v), B DISTINCT examples per step (without replacement):
    v' = m v + A w / N + xi,   w' = w - eps v',
    xi = batch mean of the c_i: E xi = 0, Cov xi = (1/B) (N - B)/(N - 1) * (1/N) sum c_i c_i^T
       = (N - B)/(N B) F = (1/N)(N/B - 1) F                         (finite-population correction)
    M = [[I - eps A/N, -eps m I], [A/N, m I]],   Q = [[eps^2 S, -eps S], [-eps S, S]],  S = Cov xi.
Second-order SDE at refinement 1, z = (w, u), dt = h = sqrt(eps/N), gamma = (1 - m)/h,
g' = h N (N/B - 1), zeta ~ N(0, g' h F):
    u' = (1 - gamma h) u - h A w + zeta = m u - h A w + zeta
    semi-implicit:  w' = w + h u'   M = [[I - h^2 A, h m I], [-h A, m I]]
                                    Q = g' h F (x) [[h^2, h], [h, 1]]
    Euler-Maruyama: w' = w + h u    M = [[I, h I], [-h A, m I]],  Q = g' h F (x) [[0, 0], [0, 1]]
With u = -eps v / h the semi-implicit system IS momentum SGD's (h^2 = eps/N, so h A = (eps/h) A/N,
and h^2 g' h F = (eps^2/N)(N/B - 1) F = eps^2 S; checked in
`test_semi_implicit_recursion_is_sgd_recursion`), so the two share the first two moments of w at
every k; Euler-Maruyama moves w with the old u and does not.
"""

import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

import models
import sim
from _helpers import second_moment_with_se

# Monte-Carlo tolerance: 5 standard errors per entry. Per simulation 5 entries are checked (2 means,
# 3 distinct covariance entries), 6 simulations in all: a false failure has probability ~2e-5 for
# the file (Gaussian tails; the s.e. are themselves estimated from 40,000 samples, to < 1%).
Z = 5.0

# Test 1's problem. N/B = 2 so that N/B - 1 = 1 against N/B = 2 (a factor 2 in g'); m = 0.5 and
# eps A/N with eigenvalues ~0.18 and ~0.57 (not small) so that the O(h) difference between the
# schemes is O(1) after K = 4 steps: Euler-Maruyama's covariance of w is 117%, 66% and 45% (of
# sd_i sd_j) away from SGD's on the (0,0), (0,1), (1,1) entries.
N, B, LR, M_, K = 8, 4, 1.0, 0.5, 4
A = N * np.array([[0.5, 0.15], [0.15, 0.25]])
F = np.array([[1.0, 0.4], [0.4, 0.5]])
W0 = np.array([1.0, -1.0])
SEEDS = 40_000


# ---------------------------------------------------------------------------------------------
# numpy: the exact recursions


def sgd_system(lr, m, batch, n, a, f):
    d = a.shape[0]
    eye = np.eye(d)
    s = (n - batch) / (n * batch) * f  # Cov of the batch-mean c_i, B distinct of N
    trans = np.block([[eye - lr * a / n, -lr * m * eye], [a / n, m * eye]])
    noise = np.kron(np.array([[lr**2, -lr], [-lr, 1.0]]), s)
    return trans, noise


def sde_system(lr, m, batch, n, a, f, scheme):
    d = a.shape[0]
    eye = np.eye(d)
    h = np.sqrt(lr / n)
    gamma = (1 - m) / h
    g2 = h * n * (n / batch - 1)
    damp = 1 - gamma * h  # = m
    if scheme == "semi-implicit":
        trans = np.block([[eye - h * h * a, h * damp * eye], [-h * a, damp * eye]])
        noise = np.kron(np.array([[h * h, h], [h, 1.0]]), g2 * h * f)
    else:
        trans = np.block([[eye, h * eye], [-h * a, damp * eye]])
        noise = np.kron(np.array([[0.0, 0.0], [0.0, 1.0]]), g2 * h * f)
    return trans, noise


def propagate(trans, noise, w0, k):
    """Mean and covariance of w after k steps from (w0, 0) with zero initial covariance."""
    d = len(w0)
    mean = np.concatenate([w0, np.zeros(d)])
    cov = np.zeros((2 * d, 2 * d))
    for _ in range(k):
        mean = trans @ mean
        cov = trans @ cov @ trans.T + noise
    return mean[:d], cov[:d, :d]


def exact(kind, scheme=None, k=K):
    if kind == "sgd":
        return propagate(*sgd_system(LR, M_, B, N, A, F), W0, k)
    return propagate(*sde_system(LR, M_, B, N, A, F, scheme), W0, k)


def _simulate(
    run, n=N, batch=B, lr=LR, m=M_, steps=K, a=A, f=F, w0=W0, seeds=SEEDS, key=11, **kwargs
):
    model, data = models.quadratic_problem(a, f, n_train=n, w0=jnp.asarray(w0), seed=2)
    traj = run(
        model,
        data,
        lr=lr,
        batch_size=batch,
        steps=steps,
        key=jr.key(key),
        n_seeds=seeds,
        momentum=m,
        record_every=steps,
        seed_batching="vmap",
        **kwargs,
    )
    return traj.params


def _check_moments(samples, mean, cov):
    """Mean and covariance within Z s.e. of the exact ones; returns the empirical covariance and its
    s.e. (about the exact mean)."""
    se_mean = np.sqrt(np.diag(cov) / samples.shape[0])
    np.testing.assert_array_less(np.abs(samples.mean(axis=0) - mean), Z * se_mean)
    emp, se = second_moment_with_se(samples, mean)
    np.testing.assert_array_less(np.abs(emp - cov), Z * se)
    return emp, se


# ---------------------------------------------------------------------------------------------
# 1. the linear-Gaussian recursion


def test_semi_implicit_recursion_is_sgd_recursion():
    """Derivation check (numpy only): with u = -eps v / h the semi-implicit step at r = 1 is
    momentum SGD with Gaussian noise, so the exact mean and covariance of w agree at every k
    (rounding: 1e-12), while Euler-Maruyama's covariance of w differs by > 40% of sd_i sd_j on every
    entry at k = K (and is 0 after one step, when SGD's is eps^2/N (N/B-1) F)."""
    for k in range(1, K + 1):
        mean_sgd, cov_sgd = exact("sgd", k=k)
        mean_si, cov_si = exact("sde", "semi-implicit", k=k)
        np.testing.assert_allclose(mean_si, mean_sgd, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(cov_si, cov_sgd, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(exact("sgd", k=1)[1], LR**2 / N * (N / B - 1) * F, rtol=1e-12)
    assert np.all(exact("sde", "euler", k=1)[1] == 0)
    _, cov_sgd = exact("sgd")
    _, cov_em = exact("sde", "euler")
    sd = np.sqrt(np.diag(cov_sgd))
    assert np.all(np.abs(cov_em - cov_sgd) / np.outer(sd, sd) > 0.4)


@pytest.mark.parametrize(
    "kind, scheme",
    [("sgd", None), ("sde", "semi-implicit"), ("sde", "euler")],
    ids=["momentum-sgd", "sde-semi-implicit", "sde-euler"],
)
def test_k_step_moments_match_exact_recursion(kind, scheme):
    """Mean and covariance of w after K = 4 steps (40,000 seeds) within Z = 5 s.e. of the exact
    recursion of the same scheme. SGD and the semi-implicit SDE share one exact answer;
    Euler-Maruyama must land on its own and be FAR from SGD's: every covariance entry > 25 s.e. away
    (measured 44-76 s.e.; its variances are 2.2x and 1.45x SGD's, and the s.e. of a variance is
    ~0.7% of it).
    For SGD and the semi-implicit SDE the with-replacement covariance (7/4 x the per-step noise)
    must be > 25 s.e. off on the diagonal (measured 107-116 s.e.).

    Wrong conventions this rules out, with the largest deviation from the exact moments measured in
    the mutated code (s.e.): sampling WITH replacement cov 62; dampened momentum
    (v <- m v + (1 - m) grad) mean 160, cov 150; one batch for all steps cov 139; g' with N/B
    instead of N/B - 1 cov 70 (a factor 2); gamma = -ln(m)/h instead of (1 - m)/h mean 50, cov 33;
    h = eps/N instead of sqrt(eps/N) cov > 1000; the semi-implicit step taking the old u mean 125,
    cov 87, the Euler step taking the new u mean 97, cov 82; sqrt(g/N) in GradientCovarianceNoise
    cov 21 (12.5% at N = 8; pinned with a wider margin below)."""
    mean, cov = exact(kind, scheme)
    run = sim.run_sgd if kind == "sgd" else sim.run_sde
    kwargs = {} if kind == "sgd" else dict(scheme=scheme, refinement=1)
    samples = _simulate(run, **kwargs)
    emp, se = _check_moments(samples, mean, cov)
    _, cov_sgd = exact("sgd")
    if scheme == "euler":
        assert np.all(np.abs(emp - cov_sgd) > 25 * se)
    else:
        # With replacement: per-step noise (1/B)(N-1)/N F instead of (N-B)/(NB) F, 7/4 x larger.
        trans, noise = sgd_system(LR, M_, B, N, A, F)
        _, cov_replace = propagate(trans, noise * (N - 1) / (N - B), W0, K)
        assert np.all(np.abs(np.diag(emp) - np.diag(cov_replace)) > 25 * np.diag(se))


# ---------------------------------------------------------------------------------------------
# 2. conventions with wide margins

N_SMALL, B_SMALL, LR_SMALL = 4, 2, 0.6
A_SMALL = N_SMALL * np.array([[0.3, 0.1], [0.1, 0.2]])
SEEDS_SMALL = 40_000


def test_gradient_noise_normaliser_is_n_minus_one_at_small_n():
    """GradientCovarianceNoise scales the centred per-example gradients by sqrt(g/(N-1)): at N = 4
    the one-step covariance of plain Euler-Maruyama (dt = eps/N) is g dt F = (eps^2/N)(N/B - 1) F
    exactly, while sqrt(g/N) would give (N-1)/N = 0.75 of it. 40,000 seeds: the s.e. of a diagonal
    entry is ~0.7% of it, so the wrong value is ~35 s.e. away (measured 34-37; asserted > 20 s.e.).
    Mutated code:
    sqrt(g/N) fails by 48 s.e., the first-order g = eps N/B (not N/B - 1: a factor 2 at B = N/2) by
    72 s.e. (at N = 12, as in test_moments, sqrt(g/N) would change the covariance by only 8%)."""
    n, b, lr = N_SMALL, B_SMALL, LR_SMALL
    samples = _simulate(
        sim.run_sde,
        n=n,
        batch=b,
        lr=lr,
        m=0.0,
        steps=1,
        a=A_SMALL,
        seeds=SEEDS_SMALL,
        scheme="euler",
        refinement=1,
    )
    mean = W0 - (lr / n) * A_SMALL @ W0
    cov = lr**2 / n * (n / b - 1) * F
    emp, se = _check_moments(samples, mean, cov)
    wrong = cov * (n - 1) / n
    assert np.all(np.abs(np.diag(emp) - np.diag(wrong)) > 20 * np.diag(se))


@pytest.mark.parametrize("scheme, steps", [("semi-implicit", 1), ("euler", 2)])
def test_second_order_noise_scale_is_h_n_times_n_over_b_minus_one(scheme, steps):
    """g' = h N (N/B - 1) with h = sqrt(eps/N). At N/B = 2 that is h N against h N (N/B) = 2 h N.
    From (w0, u = 0), w after ONE semi-implicit step or TWO Euler-Maruyama steps (the first leaves w
    at w0 and the second moves it by h u_1) has mean (I - eps A/N) w0 and covariance
    h^2 * g' h F = (eps^2/N)(N/B - 1) F, the same as one SGD step. g' with N/B doubles it (100% off,
    measured 140 s.e. at 40,000 seeds; asserted > 50 s.e.); the sqrt(g/N) normaliser at N = 4 scales
    it by 0.75 (measured 34-35 s.e.; asserted > 20 s.e.). Both cases use step 0's Brownian increment
    for the noise in w, so with one key they see the same draws: the two parametrisations check the
    two code branches, not two samples. Mutated code: g' with N/B fails both by 70 s.e., sqrt(g/N)
    by 47, h = eps/N by > 1000, the semi-implicit step with the old u (no noise in w after one step)
    and the Euler step with the new u (mean off by 124 s.e.) each fail their own case."""
    n, b, lr, m = N_SMALL, B_SMALL, LR_SMALL, 0.7
    samples = _simulate(
        sim.run_sde,
        n=n,
        batch=b,
        lr=lr,
        m=m,
        steps=steps,
        a=A_SMALL,
        seeds=SEEDS_SMALL,
        scheme=scheme,
        refinement=1,
        key=5,
    )
    mean = W0 - (lr / n) * A_SMALL @ W0
    cov = lr**2 / n * (n / b - 1) * F
    _, cov_recursion = propagate(*sde_system(lr, m, b, n, A_SMALL, F, scheme), W0, steps)
    np.testing.assert_allclose(cov_recursion, cov, rtol=1e-12)
    emp, se = _check_moments(samples, mean, cov)
    diag, diag_se = np.diag(emp), np.diag(se)
    assert np.all(np.abs(diag - np.diag(cov) * (n / b) / (n / b - 1)) > 50 * diag_se)
    assert np.all(np.abs(diag - np.diag(cov) * (n - 1) / n) > 20 * diag_se)


def test_momentum_is_undampened_and_sde_deterministic_part_is_sgd():
    """Full batch (B = N: g = g' = 0, no noise), m = 0.9, 2 steps, against hand loops to rounding
    (1e-12 relative): momentum SGD is v <- m v + A w / N, w <- w - eps v (PyTorch, dampening 0);
    the semi-implicit SDE at r = 1 (u = -eps v/h, gamma = (1 - m)/h, h = sqrt(eps/N)) lands on the
    same w; Euler-Maruyama on the loop that moves w with the old v. Separations (|difference| /
    |w - w0|, the tolerance being ~1e-12 of it): dampened momentum v <- m v + (1 - m) grad 89% (it
    moves w 10x less on the first step); old-v instead of new-v (or the reverse) 60%.
    (test_reference pins SGD's undampened momentum too, with noise; this adds the SDE.) Mutants:
    dampened SGD, the semi-implicit step with the old u, the Euler step with the new u,
    gamma = -ln(m)/h and h = eps/N all fail here by O(1) relative; so do g' with N/B and sampling
    with replacement (both leave noise at B = N)."""
    n, lr, m, steps = 8, 1.0, 0.9, 2
    a = n * np.array([[0.5, 0.15], [0.15, 0.25]])

    def loop(dampening=0.0, old_v=False):
        w, v = W0.copy(), np.zeros(2)
        for _ in range(steps):
            v_new = m * v + (1 - dampening) * a @ w / n
            w = w - lr * (v if old_v else v_new)
            v = v_new
        return w

    right, dampened, old_v = loop(), loop(dampening=m), loop(old_v=True)
    scale = np.linalg.norm(right - W0)
    assert np.linalg.norm(dampened - right) > 0.8 * scale
    assert np.linalg.norm(old_v - right) > 0.5 * scale
    kw = dict(n=n, batch=n, lr=lr, m=m, steps=steps, a=a, seeds=2)
    for samples, target in [
        (_simulate(sim.run_sgd, **kw), right),
        (_simulate(sim.run_sde, scheme="semi-implicit", refinement=1, **kw), right),
        (_simulate(sim.run_sde, scheme="euler", refinement=1, **kw), old_v),
    ]:
        np.testing.assert_allclose(samples, np.tile(target, (2, 1)), rtol=1e-12, atol=1e-14 * scale)
