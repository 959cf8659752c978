"""The statistics of a sweep, one function per quantity: plain NumPy and SciPy on numbers read from
rows (no JAX, nothing of the runner), for the summaries of `paper/` and `studies/`.

Over seeds: `mean_se` (mean, standard error and count of the finite values), `welch` (two means'
difference in standard errors), `t_widening` (a t interval's width over a Gaussian one's),
`spearman` (rank correlation).

Along one curve in B (a score per seed and batch size, NaN for a diverged run): the best grid point
(`optimum_on_grid`), B_opt (`b_opt`, the vertex of a parabola in ln B, with its interval from the
multiplier bootstrap over seeds, `multiplier_draws`), the small-batch cliff (`b_cliff`;
`first_fall`: where a curve first falls to a level) and the batch sizes that refine a coarse grid
(`refinement`).
Across curves: the slope of ln y on ln x with its standard error (`loglog_slope`) or with a 95%
interval from the curves' bootstrap draws (`loglog_slope_ci`).

B_opt of one curve (a score per seed and batch size: test accuracy, to be maximised, or test
cross-entropy, minimised): the vertex of a weighted least-squares parabola in ln B through the
seed-mean scores within a factor `window` of the best grid point, and its two neighbours always (at
least three batch sizes). Each mean is weighted by 1/sigma_b, sigma_b = its standard error across
seeds floored at the median standard error of the curve (`_fit_sigma`): a batch size on the edge of
a cliff, where one seed of four blows up (test cross-entropy 18 against 0.55 at the others: the mean
is known to +-4), must not drag the vertex of the parabola through the points that are known to
+-0.01; the floor keeps a column whose 4 seeds agree by chance from outweighing the rest. Where the
parabola opens the wrong way, or its vertex leaves the window, the best grid point stands, the
estimate says so (`method`) and its interval is at least half a grid step either side. The 95%
interval is a bootstrap over seeds, the whole estimate (grid argmax included) repeated per draw: by
default the t-calibrated Gaussian multiplier bootstrap (`multiplier_draws`; the seeds' residual
curves reweighted together, as they share an initialisation across batch sizes), which covers the
truth at 95% with 4 seeds where the percentile bootstrap over seeds covers 84% (measured on
synthetic sweeps, tests/test_optimum.py); `bootstrap="percentile"` resamples seeds with replacement.
A peak at the edge of the grid is flagged: its interval is open on that side.
Slopes: the least-squares slope of ln B_opt on ln x, its 95% interval from the same bootstrap (each
swept value's draws from its own random stream, the slope refitted per draw).
"""

import math
import warnings

import numpy as np


def mean_se(values) -> tuple[float, float, int]:
    """Mean, standard error and count of the finite values."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    if v.size == 0:
        return math.nan, math.nan, 0
    se = v.std(ddof=1) / math.sqrt(v.size) if v.size > 1 else math.nan
    return float(v.mean()), float(se), int(v.size)


def welch(a, b):
    """mean_se of a and of b, and the difference of the means (b - a) in standard errors,
    (mean_b - mean_a) / sqrt(se_a^2 + se_b^2): NaN with fewer than two finite values on a side or no
    spread at all."""
    sa, sb = mean_se(a), mean_se(b)
    scale = math.hypot(sa[1], sb[1])
    z = (sb[0] - sa[0]) / scale if sa[2] > 1 and sb[2] > 1 and scale > 0 else math.nan
    return sa, sb, z


def first_fall(log_x, y, level):
    """ln x where y, read in the given order, first falls to `level` or below: linear in ln x
    between that point and the one before it; -inf where y[0] already is at or below, NaN where no
    point is."""
    if y[0] <= level:
        return -math.inf
    for j in range(1, len(y)):
        if y[j] <= level:
            t = (level - y[j]) / (y[j - 1] - y[j])
            return float(log_x[j] + t * (log_x[j - 1] - log_x[j]))
    return math.nan


def optimum_on_grid(grid, scores):
    """Grid value with the highest score, and its uncertainty as a factor: half a grid step either
    side in log space (the grid spacing is the floor on what a sweep can resolve)."""
    grid = np.asarray(grid, dtype=float)
    scores = np.asarray(scores, dtype=float)
    best = int(np.nanargmax(scores))
    logs = np.log(grid)
    left = logs[best] - logs[best - 1] if best > 0 else logs[1] - logs[0]
    right = logs[best + 1] - logs[best] if best + 1 < len(grid) else left
    return float(grid[best]), float(0.5 * max(left, right)), best


def loglog_slope(x, y, log_sigma):
    """Least-squares slope of ln y on ln x with its standard error: the larger of the residual-based
    error and the one implied by the grid uncertainty `log_sigma` (per point, in ln units)."""
    lx, ly = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    sxx = np.sum((lx - lx.mean()) ** 2)
    slope = float(np.sum((lx - lx.mean()) * (ly - ly.mean())) / sxx)
    resid = ly - (ly.mean() + slope * (lx - lx.mean()))
    se_resid = math.sqrt(np.sum(resid**2) / (len(lx) - 2) / sxx) if len(lx) > 2 else 0.0
    sigma = np.broadcast_to(np.asarray(log_sigma, float), lx.shape)
    se_grid = math.sqrt(np.sum((lx - lx.mean()) ** 2 * sigma**2)) / sxx
    return slope, max(se_resid, se_grid)


def spearman(a, b) -> float:
    ra = np.argsort(np.argsort(a)).astype(float)
    rb = np.argsort(np.argsort(b)).astype(float)
    return float(np.corrcoef(ra, rb)[0, 1])


WINDOW = 2.0  # fit within a factor 2 of the best grid point: the peak's two neighbours on a
# factor-2 grid, four more after refinement at 2^(1/2) spacing


def _fit_sigma(scores):
    """Per batch size: the standard error of the seed mean (finite seeds, ddof = 1), floored at the
    median over the batch sizes that have one; a batch size with fewer than 2 finite seeds gets the
    largest. None (equal weights) where no batch size has 2 seeds or the seeds agree exactly."""
    finite = np.isfinite(scores)
    n_b = finite.sum(axis=0)
    ok = n_b > 1
    if not ok.any():
        return None
    se = np.full(scores.shape[1], np.nan)
    se[ok] = np.nanstd(scores[:, ok], axis=0, ddof=1) / np.sqrt(n_b[ok])
    floor = np.median(se[ok])
    if not floor > 0:
        return None
    return np.where(ok, np.maximum(se, floor), se[ok].max())


def _estimate(log_b, means, *, maximise: bool, window: float, sigma=None):
    """(ln B_opt, method, index of the best grid point) from seed means on a grid of ln B; `sigma`:
    the means' uncertainties (weights 1/sigma of the parabola's residuals), None for equal."""
    finite = np.isfinite(means)
    if not finite.any():
        return math.nan, "no finite scores", -1
    score = np.where(finite, means if maximise else -means, -np.inf)
    best = int(np.argmax(score))
    near = finite & (np.abs(log_b - log_b[best]) <= math.log(window) + 1e-9)
    # the best point's neighbours always
    near[max(best - 1, 0) : best + 2] |= finite[max(best - 1, 0) : best + 2]
    if near.sum() < 3:
        return float(log_b[best]), "grid", best
    w = None if sigma is None else 1.0 / np.asarray(sigma, float)[near]
    a, b, _ = np.polyfit(log_b[near], score[near], 2, w=w)
    if a >= 0:
        return float(log_b[best]), "grid (no curvature)", best
    vertex = -b / (2 * a)
    lo, hi = log_b[near].min(), log_b[near].max()
    if not lo <= vertex <= hi:
        return float(log_b[best]), "grid (vertex outside the fit)", best
    return float(np.clip(vertex, lo, hi)), "parabola", best  # clip: round-off at the window's edge


def t_widening(n):
    """t_{0.975, n-1} / z_{0.975}: how much wider a 95% interval from n samples is than a Gaussian
    one (1.62 at n = 4, 1.18 at n = 8); n >= 2, elementwise."""
    from scipy.stats import norm, t

    return t.ppf(0.975, np.asarray(n) - 1) / norm.ppf(0.975)


def multiplier_draws(scores, rng, draws):
    """Seed-mean curves perturbed by Gaussian multipliers on the seeds' residuals, t-calibrated:
    mean + c sum_s g_s r_s / sqrt(n (n - 1)), g_s ~ N(0, 1), r_s = seed s's curve minus the mean.
    The draws' covariance is c^2 times the sample covariance of the mean (ddof = 1), the seeds'
    correlation across batch sizes kept, and continuous, where the percentile bootstrap over n seeds
    has only C(2n - 1, n) distinct resamples and a variance (n - 1)/n too small. c = t_{0.975, n-1}
    / z_{0.975} (`t_widening`) widens the draws as a t interval widens a mean's for few seeds."""
    finite = np.isfinite(scores)
    n_b = finite.sum(axis=0)  # seeds that did not diverge, per batch size
    mean = np.nanmean(scores, axis=0)
    resid = np.where(finite, scores - mean, 0.0)
    ok = n_b > 1
    safe = np.where(ok, n_b, 2)
    # Per batch size: the t factor and the 1/sqrt(n_b (n_b - 1)) of its own seed count (a diverged
    # seed's zero residual must not count as a seed).
    scale = np.where(ok, t_widening(safe) / np.sqrt(safe * (safe - 1)), 0.0)
    g = rng.standard_normal((draws, scores.shape[0]))
    return mean + (g @ resid) * scale


def b_opt(
    batch_sizes,
    scores,
    *,
    maximise: bool = True,
    window: float = WINDOW,
    draws: int = 2000,
    seed: int = 0,
    bootstrap: str = "multiplier",
    weighted: bool = True,
) -> dict:
    """B_opt of one curve. scores: (seeds, len(batch_sizes)), NaN for a diverged run;
    `weighted=False` fits the parabola through the means with equal weights. Returns b_opt,
    b_opt_ci95 [low, high], method, edge ("left"/"right"/None: the best grid point is the first or
    last batch size), seeds and the bootstrap draws of ln B_opt."""
    log_b = np.log(np.asarray(batch_sizes, float))
    scores = np.asarray(scores, float)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        # a batch size whose seeds all diverged: NaN mean
        warnings.simplefilter("ignore", RuntimeWarning)
        # The weights are the data's and fixed across draws (a fixed design): a draw moves the means
        # only.
        sigma = _fit_sigma(scores) if weighted else None
        centre, method, best = _estimate(
            log_b, np.nanmean(scores, axis=0), maximise=maximise, window=window, sigma=sigma
        )
        rng = np.random.default_rng(seed)
        n = scores.shape[0]
        if bootstrap not in ("multiplier", "percentile"):
            raise ValueError(f"bootstrap must be 'multiplier' or 'percentile' (got {bootstrap!r})")
        if bootstrap == "percentile":
            means = [np.nanmean(scores[rng.integers(0, n, n)], axis=0) for _ in range(draws)]
        else:
            means = multiplier_draws(scores, rng, draws)
        boot = np.array(
            [_estimate(log_b, m, maximise=maximise, window=window, sigma=sigma)[0] for m in means]
        )
    boot = boot[np.isfinite(boot)]
    low, high = np.exp(np.percentile(boot, [2.5, 97.5])) if boot.size else (math.nan, math.nan)
    edge = None if 0 < best < len(log_b) - 1 else ("left" if best == 0 else "right")
    if method.startswith("grid") and best >= 0:
        # No fit: the grid cannot resolve B_opt better than half a step either side, whatever the
        # seeds say.
        left = log_b[best] - log_b[best - 1] if best > 0 else 0.0
        right = log_b[best + 1] - log_b[best] if best + 1 < len(log_b) else 0.0
        low = (
            min(low, math.exp(log_b[best] - left / 2))
            if math.isfinite(low)
            else math.exp(log_b[best] - left / 2)
        )
        high = (
            max(high, math.exp(log_b[best] + right / 2))
            if math.isfinite(high)
            else math.exp(log_b[best] + right / 2)
        )
    # Fewer than 4 seeds: no bootstrap gives a 95% interval (with 2, the two residual curves are
    # opposite and every draw moves the curve along one direction): flagged `interval_reliable`.
    # exp(ln B) may land an ulp outside the grid: B_opt is clipped to the grid's span in B itself.
    b = (
        float(np.clip(math.exp(centre), min(batch_sizes), max(batch_sizes)))
        if math.isfinite(centre)
        else math.nan
    )
    return dict(
        b_opt=b,
        b_opt_ci95=[float(low), float(high)],
        method=method,
        edge=edge,
        seeds=int(n),
        interval_reliable=bool(n >= 4),
        log_draws=boot.tolist(),
    )


def _cliff(log_b, means, floor):
    """ln B where the seed-mean curve, walking left from its peak, first falls to half-way between
    `floor` and the peak (linear in ln B between the two grid points that bracket it); NaN where it
    never does on the grid."""
    finite = np.isfinite(means)
    if not finite.any():
        return math.nan
    best = int(np.argmax(np.where(finite, means, -np.inf)))
    curve = np.where(finite, means, floor)  # every seed diverged: as bad as chance
    # leftwards from the peak
    ln_b = first_fall(log_b[best::-1], curve[best::-1], 0.5 * (floor + means[best]))
    return ln_b if math.isfinite(ln_b) else math.nan


def b_cliff(batch_sizes, scores, *, floor: float, draws: int = 2000, seed: int = 0) -> dict:
    """The small-batch cliff of one accuracy curve: the batch size below the peak where the
    seed-mean test accuracy has fallen half-way from the peak to `floor` (chance), interpolated in
    ln B. Its 95% interval from the same t-calibrated multiplier draws as `b_opt`; where the curve
    never falls that far on the grid, b_cliff is NaN and `below_grid` says the cliff (if any) lies
    left of the smallest batch size. A diverged run counts as chance. Returns b_cliff, b_cliff_ci95,
    below_grid and the draws of ln B_cliff (`log_draws`, NaN where a draw has no cliff on the
    grid)."""
    log_b = np.log(np.asarray(batch_sizes, float))
    scores = np.asarray(scores, float)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        centre = _cliff(log_b, np.nanmean(scores, axis=0), floor)
        boot = np.array(
            [
                _cliff(log_b, m, floor)
                for m in multiplier_draws(scores, np.random.default_rng(seed), draws)
            ]
        )
    # Draws without a cliff on the grid put it below the smallest B: they count at the grid's edge.
    low, high = (
        (np.exp(np.percentile(np.where(np.isfinite(boot), boot, log_b[0]), [2.5, 97.5])))
        if np.isfinite(boot).any()
        else (math.nan, math.nan)
    )
    return dict(
        b_cliff=math.exp(centre) if math.isfinite(centre) else math.nan,
        b_cliff_ci95=[float(low), float(high)],
        below_grid=not math.isfinite(centre),
        log_draws=boot.tolist(),
    )


def loglog_slope_ci(x, curves: list[dict], key: str = "b_opt") -> dict:
    """Slope of ln B_opt (or another batch size per curve, `key`) on ln x: the fit through the point
    estimates and a 95% interval from the bootstrap draws (draw k of every curve together; each
    curve's draws come from its own random stream, `b_opt(..., seed=...)`, as its seeds are
    independent runs; a draw where any curve has no estimate is left out)."""
    lx = np.log(np.asarray(x, float))
    ly = np.log([c[key] for c in curves])
    fit = float(np.polyfit(lx, ly, 1)[0])
    draws = min(len(c["log_draws"]) for c in curves)
    rows = np.array([c["log_draws"][:draws] for c in curves], float).T  # (draws, curves)
    rows = rows[np.isfinite(rows).all(axis=1)]
    boot = [np.polyfit(lx, r, 1)[0] for r in rows]
    low, high = np.percentile(boot, [2.5, 97.5]) if boot else (math.nan, math.nan)
    return dict(slope=fit, slope_ci95=[float(low), float(high)])


def refinement(batch_sizes, scores, n_train: int, *, maximise: bool = True) -> list[int]:
    """New batch sizes at 2^(1/2) spacing around the best grid point: B* 2^(-1/2) and B* 2^(1/2)
    (rounded), and beyond the last grid point when the best one is at an edge; within [1, N], none
    already on the grid."""
    log_b = np.log(np.asarray(batch_sizes, float))
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        _, _, best = _estimate(
            log_b, np.nanmean(np.asarray(scores, float), axis=0), maximise=maximise, window=WINDOW
        )
    if best < 0:
        return []
    b = batch_sizes[best]
    wanted = {round(b * 2**-0.5), round(b * 2**0.5)}
    if best == 0:
        wanted |= {round(b / 2), round(b / 4)}
    if best == len(batch_sizes) - 1:
        wanted |= {round(b * 2), round(b * 4)}
    return sorted(v for v in wanted if 1 <= v <= n_train and v not in batch_sizes)
