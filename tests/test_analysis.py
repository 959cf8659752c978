"""Known answers for the analysis behind the README's headline numbers: B_opt on a grid and its
uncertainty (Figs 4-7), the log-log slope of B_opt and its error (Figs 5-7, weak order), the Welch
difference in standard errors and the departure study's parting rule, and Fig 9's Jarque-Bera
statistic and batch-variance ratio. Every input is synthetic, with an answer in closed form (or from
an independent implementation in scipy); no training runs here, each test takes well under a
second."""

import itertools
import json
import math

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

import models
from experiments import analysis
from experiments.paper import batch_size, fig9
from experiments.studies import departure

# --- B_grid, the best grid point, and its uncertainty (experiments/analysis.py grid_optimum,
# batch_size.optima)

PAPER_GRID = (1, 3, 10, 30, 100, 300, 1000)


def test_grid_optimum_of_a_known_peak():
    """A score peaking at B = 30 on the 1-3-10 grid: B_grid = 30 (index 3, interior), half steps
    0.5 ln(30/10) and 0.5 ln(100/30), and its uncertainty half the WIDER neighbouring log step,
    0.5 ln(100/30) = 0.5 ln(10/3) (not ln 3 = ln(30/10)): the README's "B_opt = 30 (x/÷ 1.8)",
    exp(0.602) = sqrt(10/3) = 1.826. Pure float arithmetic on logs: rel 1e-12."""
    scores = [-((math.log(b) - math.log(30)) ** 2) for b in PAPER_GRID]
    g = analysis.grid_optimum(PAPER_GRID, scores)
    assert (g.b_grid, g.index, g.edge) == (30.0, 3, None)
    assert g.half_steps == pytest.approx((0.5 * math.log(3), 0.5 * math.log(10 / 3)), rel=1e-12)
    assert g.log_sigma == pytest.approx(0.5 * math.log(10 / 3), rel=1e-12)
    assert math.exp(g.log_sigma) == pytest.approx(math.sqrt(10 / 3), rel=1e-12)
    # a geometric grid of ratio 2: half a step is exactly 0.5 ln 2 on both sides
    g = analysis.grid_optimum([1, 2, 4, 8, 16], [0.1, 0.5, 0.9, 0.4, 0.2])
    assert (g.b_grid, g.index) == (4.0, 2) and g.log_sigma == pytest.approx(0.5 * math.log(2))
    # minimised (test cross-entropy): the lowest mean
    low = analysis.grid_optimum([1, 2, 4, 8, 16], [0.9, 0.5, 0.1, 0.4, 0.2], maximise=False)
    assert low.index == 2


def test_grid_optimum_at_the_edges_and_with_missing_points():
    """At either end of the grid the one neighbouring step is used (and the edge is named); NaN
    scores are skipped and -inf (no finite seed at that B) never wins; no finite score: index -1."""
    grid = [1, 3, 10, 30]
    g = analysis.grid_optimum(grid, [0.9, 0.5, 0.4, 0.1])
    assert (g.b_grid, g.index, g.edge) == (1.0, 0, "left")
    assert g.half_steps == pytest.approx((0.0, 0.5 * math.log(3)))
    assert g.log_sigma == g.half_steps[1]
    g = analysis.grid_optimum(grid, [0.1, 0.2, 0.3, 0.9])
    assert (g.b_grid, g.index, g.edge) == (30.0, 3, "right")
    assert g.log_sigma == pytest.approx(0.5 * math.log(3), rel=1e-12)
    g = analysis.grid_optimum(grid, [math.nan, 0.5, 0.6, -math.inf])
    assert (g.b_grid, g.index) == (10.0, 2)
    assert g.log_sigma == pytest.approx(0.5 * math.log(10 / 3), rel=1e-12)
    assert analysis.grid_optimum(grid, [math.nan] * 4).index == -1


def test_b_opt_reports_the_grid_optimum_it_starts_from():
    """b_opt's b_grid, log_sigma and edge are grid_optimum's of the seed means; its b_opt is the
    vertex (an exact parabola in ln B with its top at B = 20: between the grid points 10 and 30)."""
    scores = np.tile([-((math.log(b) - math.log(20)) ** 2) for b in PAPER_GRID], (4, 1))
    fit = analysis.b_opt(PAPER_GRID, scores, draws=10)
    g = analysis.grid_optimum(PAPER_GRID, scores.mean(axis=0))
    assert (fit["b_grid"], fit["log_sigma"], fit["edge"]) == (g.b_grid, g.log_sigma, g.edge)
    assert fit["b_grid"] == 30.0 and fit["b_opt"] == pytest.approx(20.0, rel=1e-9)


def _sweep_row(lr, b, seed, acc, diverged=False):
    return dict(
        config=dict(lr=lr, batch_size=b, momentum=0.9, n_train=1000),
        seed=seed,
        test_accuracy=acc,
        test_xent=1.5 - acc,
        train_loss=1.4 - acc,
        diverged=diverged,
    )


def test_optima_from_sweep_rows():
    """optima() on rows as the sweep writes them. eps = 0.1: seeds' accuracies (0.88, 0.90) at B =
    30 give the highest mean 0.89 (s.e. = std(ddof=1)/sqrt(2) = 0.01 exactly); a DIVERGED seed at B
    = 100 with a higher number must be left out (else B_opt would move to 100), and B = 1000 with
    every seed diverged has no mean at all. eps = 0.2 peaks at the grid edge (B = 1): not
    interior."""
    acc = {
        1: (0.70, 0.72),
        3: (0.80, 0.82),
        10: (0.85, 0.87),
        30: (0.88, 0.90),
        100: (0.84, 0.86),
        300: (0.75, 0.77),
        1000: (0.60, 0.62),
    }
    rows = []
    for b in PAPER_GRID:
        for s, a in enumerate(acc[b]):
            rows.append(_sweep_row(0.1, b, s, a, diverged=b == 1000))
            rows.append(_sweep_row(0.2, b, s, 0.9 - 0.01 * math.log(b) - 0.001 * s))
    rows.append(_sweep_row(0.1, 100, 2, 0.99, diverged=True))
    opt = batch_size.optima(rows, "lr")
    o = opt[0.1]
    assert o["batch_sizes"] == list(PAPER_GRID) and o["b_grid"] == 30.0 and o["interior"]
    assert o["fit"]["b_grid"] == o["b_grid"] and o["fit"]["log_sigma"] == o["log_sigma"]
    assert o["log_sigma"] == pytest.approx(0.5 * math.log(10 / 3), rel=1e-12)
    mean, se, n = o["accuracy"][3]
    assert (mean, se, n) == (pytest.approx(0.89, rel=1e-12), pytest.approx(0.01, rel=1e-9), 2)
    assert o["accuracy"][4][2] == 2  # the diverged seed at B = 100 is not counted
    assert o["accuracy"][6][2] == 0 and math.isnan(o["accuracy"][6][0])
    assert o["diverged_runs"] == 3
    assert opt[0.2]["b_grid"] == 1.0 and not opt[0.2]["interior"] and opt[0.2]["diverged_runs"] == 0


# --- the log-log slope of B_opt (experiments/analysis.py loglog_slope)


def test_slope_of_an_exact_power_law():
    """y = 7 x^1.3 on x doubling: the slope is 1.3 to rounding (rel 1e-12). The residuals are
    rounding, so the error is the grid term: a constant ln-uncertainty sigma per point propagates to
    sigma / sqrt(Sxx), Sxx = sum (ln x - mean)^2 = 5 ln^2 2 for four doublings; with sigma = 0 it is
    rounding (< 1e-12)."""
    x = [0.025, 0.05, 0.1, 0.2]
    y = [7 * v**1.3 for v in x]
    slope, se = analysis.loglog_slope(x, y, 0.6)
    assert slope == pytest.approx(1.3, rel=1e-12)
    assert se == pytest.approx(0.6 / (math.sqrt(5) * math.log(2)), rel=1e-12)
    slope, se = analysis.loglog_slope(x, y, 0.0)
    assert slope == pytest.approx(1.3, rel=1e-12) and se < 1e-12


def test_slope_error_of_two_points_with_unequal_uncertainties():
    """Two points: slope = (ln y2 - ln y1)/(ln x2 - ln x1), Var = (s1^2 + s2^2)/(ln x2 - ln x1)^2
    (no residual with two points): x = 1, e^2, sigma = 0.3, 0.4 gives 1 ± 0.5/2 = 0.25 exactly."""
    slope, se = analysis.loglog_slope([1.0, math.exp(2)], [math.e, math.e**3], [0.3, 0.4])
    assert slope == pytest.approx(1.0, rel=1e-12) and se == pytest.approx(0.25, rel=1e-12)


@pytest.mark.parametrize(
    "x, y, slope, se",
    [
        # Fig 5: B_opt = 10, 10, 30 at eps = 0.025, 0.05, 0.1: slope ln 3 / (2 ln 2) = 0.79,
        # error 0.5 ln(10/3) / (sqrt 2 ln 2) = 0.61 (the grid term; the residual one is 0.46)
        (
            [0.025, 0.05, 0.1],
            [10, 10, 30],
            math.log(3) / (2 * math.log(2)),
            0.5 * math.log(10 / 3) / (math.sqrt(2) * math.log(2)),
        ),
        # Fig 6: B_opt = 30 at N = 250, 500, 1000: slope 0, same grid error 0.61
        (
            [250, 500, 1000],
            [30, 30, 30],
            0.0,
            0.5 * math.log(10 / 3) / (math.sqrt(2) * math.log(2)),
        ),
    ],
)
def test_slope_reproduces_the_readme_headlines(x, y, slope, se):
    """The README's "slope 0.79 ± 0.61" (Fig 5) and "0.00 ± 0.61" (Fig 6) from the measured B_opt,
    each with the grid uncertainty half of ln(10/3) that grid_optimum gives on the 1-3-10
    grid."""
    # grid_optimum's uncertainty at B = 10 or 30 on the 1-3-10 grid
    sigma = 0.5 * math.log(10 / 3)
    got_slope, got_se = analysis.loglog_slope(x, y, [sigma] * 3)
    assert got_slope == pytest.approx(slope, rel=1e-12, abs=1e-15)
    assert got_se == pytest.approx(se, rel=1e-12)


def test_slope_of_fig7_is_the_larger_of_residual_and_grid_error():
    """Fig 7: B_opt = 3, 10, 30 at 1/(1 - m) = 1, 2, 10 (README 0.94 ± 0.36). Slope and residual
    error against scipy.stats.linregress (independent least squares, rel 1e-10); the reported error
    is the grid term here (0.36 > 0.24)."""
    x, y = [1, 2, 10], [3, 10, 30]
    sigma = 0.5 * math.log(10 / 3)
    ref = scipy.stats.linregress(np.log(x), np.log(y))
    slope, se = analysis.loglog_slope(x, y, sigma)
    lx = np.log(x)
    grid_se = sigma / math.sqrt(np.sum((lx - lx.mean()) ** 2))
    assert slope == pytest.approx(ref.slope, rel=1e-10)
    assert ref.stderr < grid_se and se == pytest.approx(grid_se, rel=1e-12)
    assert (round(slope, 2), round(se, 2)) == (0.94, 0.36)
    # with no grid uncertainty the residual error is the one reported
    assert analysis.loglog_slope(x, y, 0.0)[1] == pytest.approx(ref.stderr, rel=1e-10)


def test_slope_on_noisy_data_matches_least_squares_and_covers():
    """ln y = 0.8 ln x + 1 + N(0, 0.3^2) at 8 points. (a) One draw: slope and error (no grid term)
    equal scipy.stats.linregress's slope and stderr (rel 1e-10; catches an n-1 for n-2 slip, a
    factor sqrt(8/7)). (b) 2,000 draws: slope ± t(0.975, 6) se covers 0.8 in 95% of them (binomial
    s.e. 0.005; tolerance 0.02 = 4 s.e.). (c) With the true 0.3 as the grid term, the spread of the
    fitted slopes equals the grid error (relative s.e. of a s.d. from 2,000 draws 1.6%; tolerance
    6%) and the +-1.96 se interval covers at least 95% (max(residual, grid) >= the true s.d.)."""
    rng = np.random.default_rng(0)
    x = np.geomspace(0.01, 1.0, 8)
    noise = rng.normal(0, 0.3, size=(2000, 8))
    ys = np.exp(0.8 * np.log(x) + 1 + noise)
    ref = scipy.stats.linregress(np.log(x), np.log(ys[0]))
    slope, se = analysis.loglog_slope(x, ys[0], 0.0)
    assert slope == pytest.approx(ref.slope, rel=1e-10) and se == pytest.approx(
        ref.stderr, rel=1e-10
    )
    t = scipy.stats.t.ppf(0.975, 6)
    fits = np.array([analysis.loglog_slope(x, y, 0.0) for y in ys])
    assert np.mean(np.abs(fits[:, 0] - 0.8) <= t * fits[:, 1]) == pytest.approx(0.95, abs=0.02)
    fits = np.array([analysis.loglog_slope(x, y, 0.3) for y in ys])
    grid_se = 0.3 / math.sqrt(np.sum((np.log(x) - np.log(x).mean()) ** 2))
    assert fits[:, 0].std(ddof=1) == pytest.approx(grid_se, rel=0.06)
    assert np.all(fits[:, 1] >= grid_se * (1 - 1e-12))
    assert np.mean(np.abs(fits[:, 0] - 0.8) <= 1.96 * fits[:, 1]) >= 0.95 - 0.02


# --- mean ± s.e. and the Welch difference (experiments/analysis.py mean_se, welch)


def test_mean_se_and_welch_in_closed_form():
    """a = 1..5: mean 3, sample variance 2.5 (ddof 1), s.e. sqrt(0.5); b = 10, 12, 14: mean 12,
    variance 4, s.e. sqrt(4/3). z = (12 - 3)/sqrt(0.5 + 4/3) = 9/sqrt(11/6) = 6.647 (b - a:
    positive). None and non-finite values are dropped before counting."""
    a, b = [1, 2, 3, 4, 5], [10, 12, 14]
    assert analysis.mean_se(a + [None, math.nan, math.inf]) == pytest.approx(
        (3.0, math.sqrt(0.5), 5), rel=1e-12
    )
    sa, sb, z = analysis.welch(a, b + [None, math.nan])
    assert sa == pytest.approx((3.0, math.sqrt(0.5), 5), rel=1e-12)
    assert sb == pytest.approx((12.0, math.sqrt(4 / 3), 3), rel=1e-12)
    assert z == pytest.approx(9 / math.sqrt(11 / 6), rel=1e-12)
    assert analysis.welch(b, a)[2] == pytest.approx(-z, rel=1e-12)


def test_welch_equals_scipy_unequal_variance_t():
    """Samples of 7 and 13 with different spreads: the z of welch(a, b) is Welch's t statistic of
    b against a, scipy.stats.ttest_ind(b, a, equal_var=False) (rel 1e-12; unequal sizes make a ddof
    slip or a pooled variance visible)."""
    rng = np.random.default_rng(3)
    for _ in range(5):
        a, b = rng.normal(0.3, 1.0, 7), rng.normal(1.1, 2.5, 13)
        z = analysis.welch(list(a), list(b))[2]
        assert z == pytest.approx(scipy.stats.ttest_ind(b, a, equal_var=False).statistic, rel=1e-12)


def test_welch_is_nan_when_undefined():
    """Fewer than two finite values on a side, or no spread on either side: NaN, never a number (the
    parting rule then ignores that metric). Spread on one side only is enough."""
    assert math.isnan(analysis.welch([1.0], [2.0, 3.0])[2])
    assert math.isnan(analysis.welch([1.0, math.nan], [2.0, 3.0])[2])
    assert math.isnan(analysis.welch([1.0, 1.0], [2.0, 2.0, 2.0])[2])
    # (3 - 1) / hypot(0, 1)
    assert analysis.welch([1.0, 1.0], [2.0, 4.0])[2] == pytest.approx(2.0, rel=1e-12)
    assert analysis.mean_se([])[2] == 0 and math.isnan(analysis.mean_se([7.0])[1])


# --- the departure study's parting rule (experiments/studies/departure.py: compare, parts and the
# ladder rule in summarize)

LADDER = (0.1, 0.2, 0.4, 0.8, 1.6)
SPREAD = np.array([-1.0, 0.0, 1.0])  # three seeds: sample s.d. 1, s.e. 1/sqrt(3) per side


def _departure_rows(plan):
    """Rows as the sweep writes them. plan[(dynamics, refinement)] is, per rung, (z, n_diverged):
    SGD seeds at 1 + 0.1 SPREAD, SDE seeds shifted by z sqrt(2) 0.1/sqrt(3), so that the Welch z of
    train_loss (SDE - SGD) is exactly z; test accuracy and cross-entropy never differ. The last
    n_diverged seeds diverged and carry NaN metrics, as real rows do (z must then be 0: the shift
    assumes three finite seeds a side). NSR_B = 0.5/eps: it crosses 1 at eps = 0.5 exactly."""
    rows = []
    for (dynamics, r), rungs in plan.items():
        for lr, (z, n_div) in zip(LADDER, rungs):
            assert z == 0 or n_div == 0
            shift = z * math.sqrt(2) * 0.1 / math.sqrt(3)
            for s in range(3):
                diverged = s >= 3 - n_div
                nan_or = lambda v: math.nan if diverged else v  # noqa: E731
                row = dict(
                    config=dict(dynamics=dynamics, refinement=r, lr=lr),
                    seed=s,
                    diverged=diverged,
                    train_loss=nan_or(1 + 0.1 * SPREAD[s] + shift),
                    test_accuracy=nan_or(0.8 + 0.01 * SPREAD[s]),
                    test_xent=nan_or(0.5 + 0.01 * SPREAD[s]),
                )
                if dynamics == "sgd" and not diverged:
                    row.update(nsr=0.5 / lr, top_eigenvalue=1.0)
                rows.append(row)
    return rows


def _run_departure(plan, refinements):
    """The study's analysis of the rows, as written to departure.json (JSON: tuples become
    lists)."""
    rows = _departure_rows(plan)
    cfg = departure.Config(lrs=LADDER, seeds=3, refinements=refinements, threshold=3.0)
    return json.loads(json.dumps(departure.summarize(rows, cfg)))


def test_parting_rung_on_a_constructed_ladder():
    """The departure study's analysis on synthetic rows. Threshold 3 s.e.:
    r = 1: z = 0.5, 4 (an isolated flag), 2.9, 3.1, -5: flags F T F T T, so the SDE parts from the
      4th rung (eps = 0.8): not the first flag (0.2), not one rung early (0.4, the suffix rule off
      by one), and |z| counts both signs.
    r = 2: z = 2.9 everywhere: never parts (None).
    r = 4: no metric differs, but the SDE diverges (one seed at rung 2, all three at rung 4, one at
      rung 5) while SGD never does: flags F T F T T, parts from eps = 0.8; the rung where every SDE
      seed diverged has no z at all and still parts.
    The recorded z are the constructed ones (rel 1e-9), and NSR_B = 0.5/eps crosses 1 at eps =
    0.5."""
    plan = {
        ("sgd", 1): [(0, 0)] * 5,
        ("sde", 1): [(0.5, 0), (4.0, 0), (2.9, 0), (3.1, 0), (-5.0, 0)],
        ("sde", 2): [(2.9, 0)] * 5,
        ("sde", 4): [(0, 0), (0, 1), (0, 0), (0, 3), (0, 1)],
    }
    out = _run_departure(plan, (1, 2, 4))
    r1, r2, r4 = (out["sde"][f"r={r}"] for r in (1, 2, 4))
    assert r1["parts"] == [False, True, False, True, True] and r1["parted_lr"] == 0.8
    z = [c["train_loss"]["z"] for c in r1["comparisons"]]
    assert z == pytest.approx([0.5, 4.0, 2.9, 3.1, -5.0], rel=1e-9)
    assert all(c["test_accuracy"]["z"] == pytest.approx(0, abs=1e-9) for c in r1["comparisons"])
    assert r2["parts"] == [False] * 5 and r2["parted_lr"] is None
    assert r4["parts"] == [False, True, False, True, True] and r4["parted_lr"] == 0.8
    assert [c["diverged"] for c in r4["comparisons"]] == [[0, 0], [0, 1], [0, 0], [0, 3], [0, 1]]
    assert out["nsr_predicted_lr"] == pytest.approx(0.5, rel=1e-12)


def test_parting_when_sgd_diverges_at_the_top():
    """SGD diverges (every seed) at the top rung while the SDE does not: one side diverging parts,
    so the SDE parts from the top rung (its flag is the only one); a single flag at the top
    counts."""
    plan = {("sgd", 1): [(0, 0)] * 4 + [(0, 3)], ("sde", 1): [(1.0, 0)] * 5}
    out = _run_departure(plan, (1,))
    assert (
        out["sde"]["r=1"]["parts"] == [False] * 4 + [True] and out["sde"]["r=1"]["parted_lr"] == 1.6
    )


def test_parts_counts_divergence_on_one_side_only():
    """parts(): one side diverging (any seeds) parts; both sides diverging does not by itself; NaN z
    are ignored; |z| > threshold (strictly) on any metric parts."""
    quiet = {m: dict(z=0.0) for m in departure.METRICS}
    assert departure.parts(dict(quiet, diverged=(1, 0)), 3.0)
    assert departure.parts(dict(quiet, diverged=(0, 2)), 3.0)
    assert not departure.parts(dict(quiet, diverged=(1, 2)), 3.0)
    nan = {m: dict(z=math.nan) for m in departure.METRICS}
    assert not departure.parts(dict(nan, diverged=(0, 0)), 3.0)
    assert departure.parts(dict(quiet, test_xent=dict(z=-3.01), diverged=(0, 0)), 3.0)
    assert not departure.parts(dict(quiet, test_xent=dict(z=2.99), diverged=(0, 0)), 3.0)
    # "more than"
    assert not departure.parts(dict(quiet, test_xent=dict(z=3.0), diverged=(0, 0)), 3.0)


# --- Fig 9: Jarque-Bera and the batch-variance ratio (experiments/fig9.py)


def test_jarque_bera_matches_scipy():
    """(skew, excess kurtosis, JB, p) against scipy's biased moment estimators and its JB test,
    which use the same definitions (JB = n (S^2/6 + K^2/24), p = chi2(2) tail = exp(-JB/2)): rel
    1e-10 on a skewed sample of 1,000 (a ddof slip in a moment moves S and K by O(1/n) = 1e-3)."""
    x = np.random.default_rng(1).gamma(2.0, size=1000)
    s, k, jb, p = fig9.jarque_bera(x)
    ref = scipy.stats.jarque_bera(x)
    assert s == pytest.approx(scipy.stats.skew(x, bias=True), rel=1e-10)
    assert k == pytest.approx(scipy.stats.kurtosis(x, fisher=True, bias=True), rel=1e-10)
    assert jb == pytest.approx(ref.statistic, rel=1e-10) and p == pytest.approx(
        ref.pvalue, rel=1e-8
    )


def test_jarque_bera_closed_forms():
    """A balanced two-point lattice (+-1, 300 each): S = 0, K = 1 - 3 = -2 exactly, JB = n 4/24 =
    100, p = e^-50: rejected. A 0/1 sample with exactly a quarter ones (Bernoulli(1/4) moments):
    S = (1 - 2q)/sqrt(q(1 - q)) = 2/sqrt(3), K = (1 - 6q(1 - q))/(q(1 - q)) = -2/3, JB = 400 (2/9 +
    1/54) = 400 * 13/54. A Gaussian sample of 5,000 (fixed seed) passes at the 1% level, with S and
    K within 4 of their asymptotic s.e. sqrt(6/n) and sqrt(24/n)."""
    s, k, jb, p = fig9.jarque_bera(np.repeat([-1.0, 1.0], 300))
    assert s == pytest.approx(0, abs=1e-12) and k == pytest.approx(-2, rel=1e-12)
    assert jb == pytest.approx(100, rel=1e-12) and p == pytest.approx(math.exp(-50), rel=1e-10)
    s, k, jb, _ = fig9.jarque_bera(np.repeat([0.0, 1.0], [300, 100]))
    assert s == pytest.approx(2 / math.sqrt(3), rel=1e-12) and k == pytest.approx(-2 / 3, rel=1e-12)
    assert jb == pytest.approx(400 * 13 / 54, rel=1e-12)
    n = 5000
    s, k, jb, p = fig9.jarque_bera(np.random.default_rng(2).normal(3.0, 2.0, n))
    assert p > 0.01 and abs(s) < 4 * math.sqrt(6 / n) and abs(k) < 4 * math.sqrt(24 / n)


N_POP, B_POP, BATCHES = 12, 4, 40_000


def test_finite_population_variance_closed_form():
    """The premise of Fig 9's ratio, by enumerating all C(12, 4) = 495 batches of a population: the
    variance of the batch mean of B distinct examples of N is (sigma^2/B)(N - B)/(N - 1), sigma^2
    the population variance (ddof 0), equivalently (S^2/B)(N - B)/N with S^2 = ddof 1 (rel
    1e-12)."""
    comp = np.arange(N_POP, dtype=float) ** 1.5
    means = np.array([comp[list(c)].mean() for c in itertools.combinations(range(N_POP), B_POP)])
    var = np.mean((means - comp.mean()) ** 2)
    assert var == pytest.approx(comp.var() / B_POP * (N_POP - B_POP) / (N_POP - 1), rel=1e-12)
    assert var == pytest.approx(comp.var(ddof=1) / B_POP * (N_POP - B_POP) / N_POP, rel=1e-12)


def test_batch_variance_ratio_is_one_without_replacement(monkeypatch):
    """fig9.evaluate_points on a known population (the per-example gradient component is replaced by
    comp = 0, 1, ..., 11 ** 1.5; the net and data are not used then): the batch-variance ratio
    Var(batch mean) / ((sigma^2/B)(N - B)/(N - 1)) must be 1 in expectation. Tolerance: 5 standard
    errors of a sample variance of 40,000 batch means, computed exactly from the enumerated
    batch-mean distribution (s.e. = sqrt((mu4 - var^2)/M)/var, about 0.6%); the (M-1)/M bias of
    var() (2.5e-5) is far below it. A missing (N-B)/(N-1) gives 0.73, a ddof slip 0.92."""
    comp = np.arange(N_POP, dtype=float) ** 1.5
    monkeypatch.setattr(
        fig9,
        "_component_gradients",
        lambda flat, w, data, chunk: (jnp.asarray(comp), jnp.asarray(0)),
    )
    monkeypatch.setattr(fig9.models, "multiclass_task", lambda pool, n_train, **setup: None)
    tiny_net = models.ShallowNet
    monkeypatch.setattr(fig9.tasks, "net", lambda point, key: tiny_net(2, 2, 2, key=key))
    # the paper panel only
    point = dict(batch_size=B_POP, batches=BATCHES, n_train=N_POP, train_steps=())
    ((row,),) = fig9.evaluate_points([point], [0], pool=None)
    means = np.array([comp[list(c)].mean() for c in itertools.combinations(range(N_POP), B_POP)])
    centred = means - comp.mean()
    var, mu4 = np.mean(centred**2), np.mean(centred**4)
    rel_se = math.sqrt((mu4 - var**2) / BATCHES) / var
    assert len(row["batch"]) == BATCHES
    assert row["batch_var_ratio"] == pytest.approx(1.0, abs=5 * rel_se)


def test_g_curve_collapse_ratio_on_constructed_points():
    """g-curve's collapse number: in each bin of ln g (a factor 2) and budget, the spread of point
    means over the seeds' s.e. Two families on one curve of g with means differing by exactly 1 s.e.
    give ratio sqrt(1/2) (the s.d. of two values d apart is d/sqrt(2)); offset by 10 s.e.,
    10/sqrt(2); points of another budget are never compared with them (a bin with one family is
    skipped)."""

    def point(lr, b, acc, steps=1000, se=0.01):
        return dict(
            lr=lr,
            momentum=0.0,
            n_train=1000,
            batch_size=b,
            steps=steps,
            g=lr * (1000 / b - 1),
            accuracy=(acc, se, 4),
        )

    # g = 9.9 for (0.1, 10) and 9.8 for (0.2, 20): one bin [8, 16)
    same = [point(0.1, 10, 0.90), point(0.2, 20, 0.91)]
    c = analysis.collapse(same, 2.0)
    assert len(c["bins"]) == 1 and c["rms_ratio"] == pytest.approx(math.sqrt(0.5), rel=1e-9)
    far = [point(0.1, 10, 0.90), point(0.2, 20, 1.00)]
    assert analysis.collapse(far, 2.0)["rms_ratio"] == pytest.approx(10 / math.sqrt(2), rel=1e-9)
    other_budget = [point(0.1, 10, 0.90), point(0.2, 20, 1.00, steps=2000)]
    assert analysis.collapse(other_budget, 2.0)["bins"] == []


def test_g_curve_counts_a_configuration_run_by_two_sweeps_once():
    """Fig 4's configuration is also a point of Fig 5 (and Fig 7): taken once, so a bin holding it
    and one other family has 2 points, not 3 (a copy would add a third 'point' with shared
    initialisations)."""
    from experiments.paper import g_curve

    def rows(lr, b, accs):
        c = dict(lr=lr, momentum=0.0, n_train=1000, batch_size=b, steps=1000)
        return [dict(config=c, seed=s, diverged=False, test_accuracy=a) for s, a in enumerate(accs)]

    fig5 = rows(0.1, 10, [0.90, 0.91]) + rows(0.2, 20, [0.92, 0.93])
    fig4 = rows(0.1, 10, [0.89, 0.90])
    summary = g_curve.summarize(
        [], g_curve.Config(), g_curve.Reads(fig4=fig4, fig5=fig5, fig7=[], fig6=[])
    )
    (only,) = summary["collapse"]["bins"]
    assert only["points"] == 2 and only["families"] == 2


def test_g_curve_reads_the_rows_of_its_own_net_setup_one_run_per_point():
    """fig5.jsonl holding the leaky-ReLU control's rows beside the ReLU ones, and fig6.jsonl one
    point's plain run beside its run with the landscape: g-curve takes, per point, the seeds of its
    own setup's plain run only (2 seeds, their mean), not the four rows pooled as if they were
    seeds; asked for leaky ReLU it reads the leaky rows (the landscape run: that setup's only one).
    Two runs left for one point and seed are refused. The means are compared to 1e-12 relative:
    one mean of two floats, only rounding differs."""
    import sim
    from experiments.paper import g_curve

    def rows(accs, **extra):
        c = dict(lr=0.1, momentum=0.0, n_train=1000, batch_size=10, steps=1000, **extra)
        return [dict(config=c, seed=s, diverged=False, test_accuracy=a) for s, a in enumerate(accs)]

    relu, leaky = rows([0.90, 0.92]), rows([0.70, 0.72], activation="leaky_relu", landscape=True)
    landscape = rows([0.80, 0.86], landscape=True)
    reads = g_curve.Reads(fig5=relu + leaky, fig7=[], fig6=landscape + relu)
    for setup, fig5_mean, fig6_mean in (
        ({}, 0.91, 0.91),
        (dict(activation="leaky_relu"), 0.71, None),
    ):
        points = g_curve.summarize([], g_curve.Config(**setup), reads)["points"]
        (p5,) = points["fig5"]
        assert p5["accuracy"][2] == 2 and p5["accuracy"][0] == pytest.approx(fig5_mean, rel=1e-12)
        if fig6_mean is None:  # no leaky rows in fig6
            assert points["fig6"] == []
        else:
            (p6,) = points["fig6"]
            assert p6["accuracy"][2] == 2
            assert p6["accuracy"][0] == pytest.approx(fig6_mean, rel=1e-12)
    twice = g_curve.Reads(fig5=relu + rows([0.5, 0.5], l2=1.0), fig7=[], fig6=[])
    with pytest.raises(sim.InputError, match="two runs of eps = 0.1"):
        g_curve.summarize([], g_curve.Config(), twice)


def _l2_rows(accuracy):
    """Sweep rows for fig8-l2: accuracy[(lam, B)] = list of per-seed final test accuracies."""
    return [
        dict(config=dict(l2=lam, batch_size=b), final_test_accuracy=a, diverged=False, seed=s)
        for (lam, b), values in accuracy.items()
        for s, a in enumerate(values)
    ]


def test_l2_gap_closes_where_the_gap_crosses_zero_in_ln_lam():
    """Gap (B = 30 minus full batch) +0.01 at lam = 1 and -0.01 at lam = 10, seeds without spread:
    the zero is at lam = sqrt(10) = 3.162 exactly (linear in lam would say 5.5), bracketed by [1,
    10], with a zero-width interval; the first ladder point where the gap is within 2 s.e. stays lam
    = 10. A gap that never closes gives no lam and an interval open above."""
    from experiments.paper import l2_gap

    cfg = l2_gap.Config(l2s=(0.0, 1.0, 10.0, 100.0), n_train=1000, small_batch=30, seeds=4)
    acc = {
        (0.0, 30): [0.92] * 4,
        (0.0, 1000): [0.89] * 4,
        (1.0, 30): [0.91] * 4,
        (1.0, 1000): [0.90] * 4,
        (10.0, 30): [0.89] * 4,
        (10.0, 1000): [0.90] * 4,
        (100.0, 30): [0.70] * 4,
        (100.0, 1000): [0.85] * 4,
    }
    out = l2_gap.summarize(_l2_rows(acc), cfg)
    assert out["crossing"]["lam"] == pytest.approx(math.sqrt(10), rel=1e-9)
    assert out["crossing"]["bracket"] == [1.0, 10.0]
    assert out["crossing"]["ci95"] == pytest.approx([math.sqrt(10)] * 2, rel=1e-9)
    never = {**acc, (10.0, 30): [0.91] * 4, (100.0, 30): [0.91] * 4}
    rng = np.random.default_rng(0)
    never = {k: list(np.add(v, 0.001 * rng.standard_normal(4))) for k, v in never.items()}
    out = l2_gap.summarize(_l2_rows(never), cfg)
    assert out["crossing"]["lam"] is None and out["crossing"]["ci95"][1] is None


# --- seed tables, paired ratios and rank correlations (experiments/analysis.py)


def test_seed_table_lays_rows_out_by_seed_and_batch_size():
    """Rows in any order become (seeds x B) tables; a diverged run and a missing value are NaN."""
    rows = [
        dict(config=dict(batch_size=b), seed=s, diverged=(b, s) == (4, 1), acc=b + s / 10)
        for b in (4, 2)
        for s in (1, 0)
    ] + [dict(config=dict(batch_size=8), seed=0, diverged=False, acc=None)]
    grid, seeds, table = analysis.seed_table(rows, ["acc"])
    assert grid == [2, 4, 8] and seeds == [0, 1]
    np.testing.assert_array_equal(table["acc"], [[2.0, 4.0, np.nan], [2.1, np.nan, np.nan]])


def test_ratio_ci_pairs_the_draws():
    """Draws of ln B_top = ln B_bottom + ln 2 exactly: the ratio's interval is [2, 2]; a pair with a
    NaN draw is left out."""
    bottom = dict(b_cliff=5.0, log_draws=[1.0, 1.5, math.nan, 2.0])
    ln2 = math.log(2)
    top = dict(b_cliff=10.0, log_draws=[1.0 + ln2, 1.5 + ln2, 3.0, 2.0 + ln2])
    ratio, ci = analysis.ratio_ci(top, bottom, key="b_cliff")
    assert ratio == 2.0 and ci == pytest.approx([2.0, 2.0], rel=1e-12)


def test_spearman_ci_of_a_monotone_relation():
    """y = x^3 over 20 points: rho = 1 and every resample's too; a constant side or fewer than four
    finite pairs has no rank correlation (None)."""
    x = list(np.linspace(0.1, 2.0, 20))
    out = analysis.spearman_ci(x, [v**3 for v in x], draws=50, rng=np.random.default_rng(0))
    assert out["rho"] == pytest.approx(1.0) and out["ci95"] == pytest.approx([1.0, 1.0])
    assert out["points"] == 20
    assert analysis.spearman_ci(x, [1.0] * 20, draws=5, rng=np.random.default_rng(0)) is None
    short = [1.0, 2.0, 3.0, math.nan, 5.0]
    assert analysis.spearman_ci(short[:3] + [math.nan], x[:4], draws=5, rng=None) is None


# --- bopt-prediction compares the paper's rule with the B_opt fig5 prints


def _fig5_rows(activation=None, shift=0.0):
    """Fig 5-like rows: 3 eps, the paper grid, 4 seeds, a parabola in ln B peaking at
    B = 20 eps/0.05 (between grid points), seed noise 0.002; `activation` and the landscape mark
    another sweep's rows in the same file (its accuracy shifted)."""
    rng = np.random.default_rng(7)
    rows = []
    for lr in (0.025, 0.05, 0.1):
        for b in (2, 4, 8, 16, 32, 64, 128, 256):
            c = dict(lr=lr, batch_size=b, momentum=0.9, n_train=1000, steps=int(100 / lr))
            if activation:
                c.update(activation=activation, landscape=True)
            for s in range(4):
                acc = 0.9 - 0.02 * math.log(b / (20 * lr / 0.05)) ** 2 + shift
                acc += 0.002 * rng.standard_normal()
                rows.append(
                    dict(config=c, seed=s, diverged=False, test_accuracy=acc, test_xent=1.5 - acc)
                )
    return rows


def test_bopt_prediction_reads_the_b_opt_fig5_prints():
    """bopt-prediction's measured B_opt is the estimate fig5 prints from the same rows (the vertex,
    not the best grid point), and the rows of another setup in fig5.jsonl (the leaky-ReLU control,
    with the landscape) do not enter it."""
    from experiments import registry
    from experiments.studies import bopt_prediction

    fig5 = registry.get("fig5")
    ours = _fig5_rows()
    printed = fig5.summarize(ours, fig5.presets["quick"])["optima"]
    along = [dict(step=0, b_simple=50.0, b_noise=40.0, b_noise_error=1.0)]
    summary = bopt_prediction.summarize(
        [dict(along_training=along)],
        bopt_prediction.Config(),
        bopt_prediction.Reads(fig5=ours + _fig5_rows("leaky_relu", shift=0.05)),
    )
    for t in summary["table"]:
        o = printed[str(t["lr"])]
        assert t["b_opt"] == o["b_opt"] and t["b_opt_ci95"] == o["b_opt_ci95"]
        assert t["b_grid"] == o["b_grid"] and t["b_opt"] != t["b_grid"]
    middle = printed["0.05"]["b_opt"]
    assert summary["g_opt"] == pytest.approx(0.05 * (1000 / middle - 1) / 0.1, rel=1e-12)
