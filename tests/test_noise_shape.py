"""The batch-noise shape statistics (sim.batch_noise_moments, sim.gradient_projections,
sim.noise_top_directions, Fig 9's normality test) on inputs whose answer is known."""

import itertools

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest
import scipy.stats

import models
import sim
from experiments.paper import fig9


def _enumerated_moments(x, b):
    """Moments of the mean of b distinct values by enumerating every subset."""
    means = (
        np.array([x[list(s)].mean() for s in itertools.combinations(range(x.size), b)]) - x.mean()
    )
    var = np.mean(means**2)
    return var, np.mean(means**3) / var**1.5, np.mean(means**4) / var**2 - 3


@pytest.mark.parametrize("n", [6, 9])
def test_batch_moments_equal_enumeration_of_every_subset(n):
    # Every subset of size B counted once: the closed forms hold to round-off (float64, 1e-9). A
    # with-replacement formula (skew S/sqrt(B), kurtosis K/B) misses by the finite-population
    # factors, 5-100% here, and a 1/N where 1/(N - 1) belongs moves the variance by 1/N >= 11%.
    x = np.random.default_rng(n).exponential(size=n) ** 2
    m = sim.batch_noise_moments(x, np.arange(1, n))
    for b in range(1, n):
        var, skew, kurt = _enumerated_moments(x, b)
        np.testing.assert_allclose(
            [m.variance[b - 1], m.skewness[b - 1], m.excess_kurtosis[b - 1]],
            [var, skew, kurt],
            rtol=1e-9,
            atol=1e-12,
        )
    c = x - x.mean()
    # B = 1: the population's
    assert m.skewness[0] == pytest.approx(np.mean(c**3) / np.mean(c**2) ** 1.5)


def test_skewness_of_a_mean_of_b_draws_scales_as_one_over_root_b():
    # Population of 20,000 exponential draws (skew ~2, excess kurtosis ~6): for B << N the exact
    # skewness times sqrt(B) and kurtosis times B stay at the population's within the
    # finite-population factor (N - 2B)/(N - 2) sqrt((N - 1)/(N - B)) (< 1.6% at B = 128); the same
    # from 40,000 Monte Carlo batch means agrees within 5 sqrt(6/n) = 0.06 of the exact value:
    # sqrt(6/n) = 0.012 is the Gaussian s.e.; for these skewed means the sample skewness scatters
    # with s.d. ~0.020 (measured at B = 4), so the margin is ~3 true s.e. (a with-replacement or
    # missing-1/sqrt(B) error moves it by > 0.1 at B = 4).
    rng = np.random.default_rng(0)
    x = rng.exponential(size=20000)
    bs = np.array([1, 2, 4, 8, 16, 32, 64, 128])
    m = sim.batch_noise_moments(x, bs)
    np.testing.assert_allclose(m.skewness * np.sqrt(bs), m.skewness[0], rtol=0.016)
    np.testing.assert_allclose(m.excess_kurtosis * bs, m.excess_kurtosis[0], rtol=0.05)
    slope = np.polyfit(np.log(bs), np.log(m.skewness), 1)[0]
    assert slope == pytest.approx(-0.5, abs=0.01)
    for b in (4, 32):
        means = np.stack([x[rng.choice(x.size, b, replace=False)].mean() for _ in range(40000)])
        s = scipy.stats.skew(means)
        assert abs(s - m.skewness[np.searchsorted(bs, b)]) < 5 * np.sqrt(6 / means.size)


def test_batch_moments_reject_bad_input():
    with pytest.raises(sim.InputError):
        sim.batch_noise_moments(np.arange(10.0), 10)
    with pytest.raises(sim.InputError):
        sim.batch_noise_moments(np.arange(3.0), 1)


def test_gaussian_sample_passes_and_two_point_lattice_fails():
    # Fig 9's normality test. A Gaussian sample of 5,000 passes (fixed seed; under normality p is
    # uniform, so p > 1e-3 fails one seed in a thousand); a two-point lattice (an output bias's
    # per-example gradient: probability minus a one-hot) of the same size fails with p < 1e-20, and
    # so does the mean of 30 of its draws at this size (skew 0.48); a test that ignored kurtosis or
    # skew would pass one of them.
    rng = np.random.default_rng(1)
    assert fig9.normality(rng.standard_normal(5000)).p_value > 1e-3
    lattice = np.where(rng.random(5000) < 0.1, 0.9, -0.1)
    assert fig9.normality(lattice).p_value < 1e-20
    means = np.where(rng.random((5000, 30)) < 0.1, 0.9, -0.1).mean(axis=1)
    assert fig9.normality(means).p_value < 1e-6
    # Symmetric but heavy-tailed: only the kurtosis part can catch it.
    assert fig9.normality(rng.standard_t(3, 5000)).p_value < 1e-20
    # JB agrees with scipy's (same statistic, chi2(2) tail).
    y = rng.standard_normal(300) ** 2
    jb = scipy.stats.jarque_bera(y)
    assert fig9.normality(y).statistic == pytest.approx(jb.statistic, rel=1e-10)
    assert fig9.normality(y).p_value == pytest.approx(jb.pvalue, rel=1e-6, abs=1e-300)


def _dense(model, data):
    """Dense per-example gradients (n, p) and the covariance F (1/(N - 1)) of a small model."""
    flat, w = sim.FlatModel.split(model)
    g = jax.jacrev(lambda v: flat.losses(v, data.x_train, data.y_train))(w)
    g = np.asarray(g, float)
    gc = g - g.mean(0)
    return gc, gc.T @ gc / (g.shape[0] - 1)


@pytest.fixture(scope="module")
def small_linear():
    # the suite runs in float64 (conftest); restore whatever it was
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        data = models.binary_task(n_train=60, dtype=jnp.float64)
        # Keep the 12 pixels that vary most so the dense reference is small; random weights, not the
        # zero init, so the per-example gradients differ in more than their scale.
        keep = np.argsort(np.asarray(data.x_train).std(0))[-12:]
        d = models.Dataset(
            x_train=data.x_train[:, keep],
            y_train=data.y_train,
            x_test=data.x_test[:, keep],
            y_test=data.y_test,
            n_classes=2,
            name="t",
        )
        model = models.LogisticRegression(n_inputs=12, dtype=jnp.float64)
        flat, w = sim.FlatModel.split(model)
        model = flat.model(jr.normal(jr.key(3), w.shape, jnp.float64))
        yield model, d
    finally:
        jax.config.update("jax_enable_x64", previous)


def test_projections_equal_dense_per_example_gradients(small_linear):
    model, data = small_linear
    gc, _ = _dense(model, data)
    dirs = np.random.default_rng(0).standard_normal((3, gc.shape[1]))
    z = sim.gradient_projections(model, data, dirs)
    unit = dirs / np.linalg.norm(dirs, axis=1, keepdims=True)
    np.testing.assert_allclose(z, unit @ gc.T, rtol=1e-10, atol=1e-12)  # float64 round-off


def test_top_noise_directions_equal_dense_eigendecomposition(small_linear):
    # Lanczos on K = G_c G_c^T/(N - 1) (60 x 60) against eigh of F (13 x 13): F's rank is at most
    # p = 13, so 14 steps close the Krylov space and the result is exact to round-off. A 1/N for
    # 1/(N - 1) would move every value by 1.7%; projections on a wrong (non-unit or unnormalised)
    # direction would fail the |z|^2/(N - 1) = value identity.
    model, data = small_linear
    gc, f = _dense(model, data)
    evals, evecs = np.linalg.eigh(f)
    res = sim.noise_top_directions(model, data, key=jr.key(0), k=3, lanczos_steps=20)
    np.testing.assert_allclose(res.values, evals[::-1][:3], rtol=1e-8)
    for i in range(3):
        v = evecs[:, -1 - i]
        assert abs(abs(res.directions[i] @ v) - 1) < 1e-8
        np.testing.assert_allclose(
            np.abs(res.projections[i]), np.abs(gc @ v), rtol=1e-7, atol=1e-10
        )
    np.testing.assert_allclose(
        np.sum(res.projections**2, 1) / (data.n_train - 1), res.values, rtol=1e-10
    )
    assert np.all(res.error_bounds < 1e-8 * evals[-1])
