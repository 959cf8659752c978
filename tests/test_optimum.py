"""The optimal batch size as a continuous estimate, its bootstrap interval, the slope's interval and
the refinement of a grid, on curves whose answer is known."""

import math

import numpy as np
import pytest

from experiments import analysis

GRID = [2, 4, 8, 16, 32, 64, 128, 256]


def _curves(b_star, seeds, noise, rng, grid=GRID, width=1.5):
    """Seeds x B scores: a parabola in ln B with its maximum 0.9 at B = b_star, plus seed noise."""
    x = np.log(np.asarray(grid, float))
    clean = 0.9 - ((x - math.log(b_star)) / width) ** 2 * 0.05
    return clean + noise * rng.standard_normal((seeds, len(grid)))


def test_noiseless_parabola_gives_its_vertex_between_grid_points():
    """Exact parabola in ln B: the vertex at B = 23 (between grid points 16 and 32) is recovered to
    round-off (the fit is exact), where the grid alone would say 16 or 32 (a factor 1.4 off)."""
    fit = analysis.b_opt(GRID, _curves(23.0, 4, 0.0, np.random.default_rng(0)))
    assert fit["b_opt"] == pytest.approx(23.0, rel=1e-9)
    assert fit["method"] == "parabola" and fit["edge"] is None
    # no seed noise: a zero-width interval
    assert fit["b_opt_ci95"][0] == pytest.approx(23.0, rel=1e-9)


def test_cross_entropy_is_minimised():
    scores = -_curves(40.0, 4, 0.0, np.random.default_rng(0))
    assert analysis.b_opt(GRID, scores, maximise=False)["b_opt"] == pytest.approx(40.0, rel=1e-9)


def test_bootstrap_interval_covers_the_truth_at_about_95_percent():
    """200 synthetic sweeps of 8 seeds with noise 0.01 (a fifth of the curve's drop over a factor
    2): the 95% bootstrap interval covers the true B_opt = 23 in 95% of them (measured 0.97 with the
        default
    multiplier bootstrap, 0.92 with the percentile one). Binomial s.e. of a 0.95 rate over 200
    trials is 0.015, so the band is [0.85, 0.99]: a grid-snapped or zero-width interval (coverage ~0
    or ~0.3) fails it."""
    rng = np.random.default_rng(1)
    covered = 0
    for _ in range(200):
        fit = analysis.b_opt(
            GRID, _curves(23.0, 8, 0.01, rng), draws=400, seed=int(rng.integers(1 << 30))
        )
        lo, hi = fit["b_opt_ci95"]
        covered += lo <= 23.0 <= hi
    assert 0.85 <= covered / 200 <= 0.99


def test_four_seeds_interval_covers_at_95_percent_where_the_percentile_bootstrap_runs_short():
    """The paper-scale runs have 4 seeds. 200 synthetic sweeps of 4 seeds (noise 0.01): the default
    t-calibrated multiplier bootstrap covers the true B_opt at ~95% (measured 0.955; band [0.90,
    0.99], 3 binomial s.e.), the percentile bootstrap over seeds at ~84% (measured 0.835: its 35
    distinct resamples and (n - 1)/n variance make it short), which this band would reject."""
    rates = {}
    for kind in ("multiplier", "percentile"):
        rng = np.random.default_rng(1)
        covered = 0
        for _ in range(200):
            fit = analysis.b_opt(
                GRID,
                _curves(23.0, 4, 0.01, rng),
                draws=400,
                seed=int(rng.integers(1 << 30)),
                bootstrap=kind,
            )
            lo, hi = fit["b_opt_ci95"]
            covered += lo <= 23.0 <= hi
        rates[kind] = covered / 200
    assert 0.90 <= rates["multiplier"] <= 0.99
    assert rates["percentile"] < 0.90


def test_peak_at_the_edge_is_flagged():
    fit = analysis.b_opt(GRID, _curves(1.0, 4, 0.0, np.random.default_rng(0)))
    assert fit["edge"] == "left" and fit["b_opt"] >= GRID[0]


def test_slope_of_an_exact_power_law_and_its_interval():
    """B_opt = 30 (x / 0.1)^0.7 exactly at four values of x over a factor 8: slope 0.7 to round-off,
    and with seed noise a 95% interval that contains 0.7 and excludes 0 and 1.4 (a factor 2
    slip)."""
    x = [0.025, 0.05, 0.1, 0.2]
    truth = [30 * (v / 0.1) ** 0.7 for v in x]
    rng = np.random.default_rng(2)
    exact = [analysis.b_opt(GRID, _curves(b, 4, 0.0, rng), draws=50) for b in truth]
    assert analysis.loglog_slope_ci(x, exact)["slope"] == pytest.approx(0.7, abs=1e-9)
    noisy = [
        analysis.b_opt(GRID, _curves(b, 16, 0.004, rng), draws=500, seed=k)
        for k, b in enumerate(truth)
    ]
    fit = analysis.loglog_slope_ci(x, noisy)
    lo, hi = fit["slope_ci95"]
    assert lo < 0.7 < hi and lo > 0 and hi < 1.4


def test_refinement_at_root_two_spacing_around_the_peak():
    scores = _curves(23.0, 4, 0.0, np.random.default_rng(0))
    # best grid point 32 (closer in ln B): 32/sqrt2, 32 sqrt2
    assert analysis.refinement(GRID, scores, 1000) == [23, 45]
    edge = _curves(300.0, 4, 0.0, np.random.default_rng(0))
    assert analysis.refinement(GRID, edge, 600) == [181, 362, 512]  # past the right edge, within N


def test_multiplier_draws_have_each_columns_t_scaled_variance_with_diverged_seeds():
    """The draws of a batch size's seed mean have variance c(n_b)^2 s^2 / n_b, with n_b its finite
    seeds, s^2 their sample variance (ddof = 1) and c(n) = t_{0.975, n-1}/z_{0.975}: a diverged seed
    (NaN) neither counts as a seed nor adds a zero residual. 200,000 draws: the variance's relative
    s.e. is sqrt(2/200,000) = 0.3%, tolerance 2%; counting the NaN seed as n = 4 would give 0.27x (c
    and 1/sqrt(n(n - 1)) both wrong), a 73% miss."""
    from scipy.stats import norm, t

    scores = np.array(
        [[0.90, 0.80, 0.70], [0.92, np.nan, 0.71], [0.91, 0.83, 0.69], [0.95, 0.86, 0.74]]
    )
    draws = analysis.multiplier_draws(scores, np.random.default_rng(0), 200_000)
    for j in range(3):
        x = scores[:, j][np.isfinite(scores[:, j])]
        c = t.ppf(0.975, x.size - 1) / norm.ppf(0.975)
        assert draws[:, j].var() == pytest.approx(c**2 * x.var(ddof=1) / x.size, rel=0.02)
        assert draws[:, j].mean() == pytest.approx(
            x.mean(), abs=5 * math.sqrt(c**2 * x.var(ddof=1) / x.size / 200_000)
        )
    with pytest.raises(ValueError):
        analysis.b_opt(
            GRID, _curves(23.0, 4, 0.01, np.random.default_rng(0)), bootstrap="percentil"
        )


def test_a_seed_that_failed_near_the_peak_does_not_drag_the_vertex():
    """On a refined grid (2^(1/2) steps around the peak, where the fit has more than three points),
    one seed of four loses 0.5 of accuracy at B = 16, inside the fit window (a run on the edge of a
    cliff, as at paper scale: test cross-entropy 18 against 0.55 for the other seeds). The fit
    weights each mean by 1/sigma_b: over 50 sweeps the median B_opt is within 10% of the true 23
    (measured 24.3, a 4% miss from the window's few points); an unweighted parabola through the
    means is pulled to ~33 (measured 32.8, 43% off), which the same bound rejects."""
    grid = [2, 4, 8, 11, 16, 23, 32, 45, 64, 128, 256]
    rng = np.random.default_rng(3)
    est = {True: [], False: []}
    for _ in range(50):
        scores = _curves(23.0, 4, 0.01, rng, grid=grid)
        scores[0, grid.index(16)] -= 0.5
        for weighted in est:
            est[weighted].append(analysis.b_opt(grid, scores, draws=2, weighted=weighted)["b_opt"])
    assert abs(math.log(np.median(est[True]) / 23.0)) < math.log(1.1)
    assert abs(math.log(np.median(est[False]) / 23.0)) > math.log(1.25)  # the bug the weights mend


def test_weights_are_standard_errors_floored_at_their_median():
    """sigma_b = s_b / sqrt(n_b) over finite seeds, floored at the median over batch sizes; a column
    with one finite seed gets the largest; equal seeds give no weights (None: an unweighted fit)."""
    scores = np.array([[1.0, 0.0, 5.0, 2.0], [1.0, 0.2, 1.0, np.nan], [1.0, 0.4, 3.0, np.nan]])
    se = [0.0, 0.2 / math.sqrt(3), 2.0 / math.sqrt(3)]  # column 3: one finite seed
    sigma = analysis._fit_sigma(scores)
    np.testing.assert_allclose(sigma, [se[1], se[1], se[2], se[2]], rtol=1e-12)
    assert analysis._fit_sigma(np.ones((4, 3))) is None


def test_cliff_is_where_the_mean_falls_half_way_to_chance_interpolated_in_ln_b():
    """Seed means 0.1, 0.1, 0.7, 0.9, 0.85 at B = 2..32: half-way from the peak 0.9 to chance 0.1 is
    0.5, reached between B = 4 (0.1) and 8 (0.7) at 2/3 of the step in ln B: B = 4 2^(2/3) = 6.35
    exactly (linear in B would give 6.67, half-way to zero 0.45 gives 5.9). A curve that never falls
    that far left of its peak has no cliff on the grid (NaN, flagged)."""
    grid = [2, 4, 8, 16, 32]
    means = np.array([0.1, 0.1, 0.7, 0.9, 0.85])
    fit = analysis.b_cliff(grid, np.tile(means, (4, 1)), floor=0.1, draws=10)
    assert fit["b_cliff"] == pytest.approx(4 * 2 ** (2 / 3), rel=1e-12) and not fit["below_grid"]
    assert fit["b_cliff_ci95"] == pytest.approx([4 * 2 ** (2 / 3)] * 2, rel=1e-12)  # no seed noise
    flat = analysis.b_cliff(
        grid, np.tile([0.8, 0.85, 0.9, 0.88, 0.86], (4, 1)), floor=0.1, draws=10
    )
    assert math.isnan(flat["b_cliff"]) and flat["below_grid"]
    diverged = np.tile(means, (4, 1))
    diverged[:, 1] = np.nan  # every seed at B = 4 diverged: as bad as chance, the cliff unchanged
    assert analysis.b_cliff(grid, diverged, floor=0.1, draws=10)["b_cliff"] == pytest.approx(
        4 * 2 ** (2 / 3)
    )


def test_a_grid_that_stops_on_the_cliff_places_no_cliff():
    """A grid that ends on the cliff (seed means 0.12, 0.32, 0.69 at B = 4, 6, 8, rising by many
    standard errors into the last point: the accuracy's real peak, ~0.95, lies right of the grid)
    has no peak to fall half-way from: the estimate is NaN and flagged, not 6.3 (half-way to 0.69).
    A plateau whose noisy maximum falls on the last point (0.90, 0.91 +- 0.01) keeps its cliff."""
    grid = [4, 6, 8]
    rng = np.random.default_rng(0)
    on_cliff = np.array([0.12, 0.32, 0.69]) + 0.02 * rng.standard_normal((4, 3))
    fit = analysis.b_cliff(grid, on_cliff, floor=0.1, draws=10)
    assert fit["no_peak"] and not fit["below_grid"]
    assert math.isnan(fit["b_cliff"]) and all(math.isnan(v) for v in fit["b_cliff_ci95"])
    plateau = np.array([0.1, 0.9, 0.91]) + 0.01 * rng.standard_normal((4, 3))
    kept = analysis.b_cliff(grid, plateau, floor=0.1, draws=10)
    assert not kept["no_peak"] and 4 < kept["b_cliff"] < 6


def test_cliff_interval_covers_a_known_cliff():
    """200 sweeps of 4 seeds: a logistic cliff in ln B, half-way to chance at B = 7 exactly, plateau
    0.92, seed noise 0.03 (the paper-scale cliffs' seeds differ by 0.02-0.05 there). The interval
    covers 7 in [0.90, 0.99] of them (3 binomial s.e. about 0.95; measured 0.965); a percentile
    bootstrap over the 4 seeds covers 0.77 (measured), a zero-width interval ~0: both fall
    outside."""
    grid = np.array([2, 4, 8, 11, 16, 23, 32, 64], float)
    clean = 0.1 + 0.82 / (1 + np.exp(-3.0 * (np.log(grid) - math.log(7.0))))
    rng = np.random.default_rng(5)
    covered = 0
    for _ in range(200):
        scores = clean + 0.03 * rng.standard_normal((4, grid.size))
        lo, hi = analysis.b_cliff(
            grid, scores, floor=0.1, draws=400, seed=int(rng.integers(1 << 30))
        )["b_cliff_ci95"]
        covered += lo <= 7.0 <= hi
    assert 0.90 <= covered / 200 <= 0.99
