"""The statistics of a sweep, one function per quantity and one name per quantity: plain NumPy
and SciPy on numbers read from rows (no JAX, nothing of the runner), for the summaries of `paper/`
and `studies/`.

Over seeds: `mean_se` (`MeanSE`: mean, standard error and count of the finite values), `welch` (two
means' difference in standard errors), `t_widening` (a t interval's width over a Gaussian one's);
`spearman` and `spearman_ci` (rank correlation, with a bootstrap interval over points).

Along one curve in B, a score per seed and batch size (`seed_table` builds it from rows; NaN for a
diverged run):
- B_grid, `grid_optimum`: the best grid point of the seed-mean curve, whether it is at an edge of
  the grid, and half the ln-B step to each neighbour (`log_sigma`: the larger half step, what the
  grid alone resolves);
- B_opt, `b_opt`: the vertex of a weighted parabola in ln B near B_grid, with its 95% interval from
  the multiplier bootstrap over seeds (`multiplier_draws`); B_grid comes with it;
- B_cliff, `b_cliff`: where the seed-mean accuracy, left of its peak, has fallen half-way to chance,
  with its interval from the same draws (`first_fall`: where a curve first falls to a level);
- `refinement`: the batch sizes that refine a coarse grid around B_grid.
Across curves: the slope of ln y on ln x, with its standard error (`loglog_slope`) or with a 95%
interval from the curves' bootstrap draws (`loglog_slope_ci`); the ratio of two curves' estimates
with its interval from their paired draws (`ratio_ci`); the collapse of points of equal g onto one
curve (`collapse`).

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
from typing import NamedTuple

import numpy as np


class MeanSE(NamedTuple):
    """Mean, standard error (ddof = 1; NaN with fewer than 2 values) and count of a sample's finite
    values; a list [mean, se, n] in JSON."""

    mean: float
    se: float
    n: int


def mean_se(values) -> MeanSE:
    """Mean, standard error and count of the finite values (None and non-finite values dropped)."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    if v.size == 0:
        return MeanSE(math.nan, math.nan, 0)
    se = v.std(ddof=1) / math.sqrt(v.size) if v.size > 1 else math.nan
    return MeanSE(float(v.mean()), float(se), int(v.size))


def welch(a, b) -> tuple[MeanSE, MeanSE, float]:
    """mean_se of a and of b, and the difference of the means (b - a) in standard errors,
    (mean_b - mean_a) / sqrt(se_a^2 + se_b^2): NaN with fewer than two finite values on a side or no
    spread at all."""
    sa, sb = mean_se(a), mean_se(b)
    scale = math.hypot(sa.se, sb.se)
    z = (sb.mean - sa.mean) / scale if sa.n > 1 and sb.n > 1 and scale > 0 else math.nan
    return sa, sb, z


def t_widening(n):
    """t_{0.975, n-1} / z_{0.975}: how much wider a 95% interval from n samples is than a Gaussian
    one (1.62 at n = 4, 1.18 at n = 8); n >= 2, elementwise."""
    from scipy.stats import norm, t

    return t.ppf(0.975, np.asarray(n) - 1) / norm.ppf(0.975)


def spearman(a, b) -> float:
    """Spearman's rank correlation of a and b (ranks by order: ties broken by position)."""
    ra = np.argsort(np.argsort(a)).astype(float)
    rb = np.argsort(np.argsort(b)).astype(float)
    return float(np.corrcoef(ra, rb)[0, 1])


def spearman_ci(a, b, *, draws: int, rng) -> dict | None:
    """Spearman's rank correlation of paired values a, b (pairs with a non-finite value dropped)
    and its 95% bootstrap interval (pairs resampled with replacement; `rng` a NumPy Generator):
    rho, ci95 and the number of points; None with fewer than 4 pairs or a constant side."""
    pairs = np.array([(x, y) for x, y in zip(a, b) if math.isfinite(x) and math.isfinite(y)])
    if len(pairs) < 4 or np.ptp(pairs[:, 0]) == 0 or np.ptp(pairs[:, 1]) == 0:
        return None
    rho = spearman(pairs[:, 0], pairs[:, 1])
    boot = []
    for _ in range(draws):
        sample = pairs[rng.integers(0, len(pairs), len(pairs))]
        if np.ptp(sample[:, 0]) > 0 and np.ptp(sample[:, 1]) > 0:
            boot.append(spearman(sample[:, 0], sample[:, 1]))
    low, high = np.percentile(boot, [2.5, 97.5]) if boot else (math.nan, math.nan)
    return dict(rho=rho, ci95=[float(low), float(high)], points=len(pairs))


def seed_table(rows, metrics) -> tuple[list, list, dict]:
    """The rows of one curve (one configuration but the batch size) as (batch sizes, seeds, table):
    table[metric] is (seeds, batch sizes), NaN where the run diverged or has no value."""
    by_b: dict = {}
    for r in rows:
        by_b.setdefault(r["config"]["batch_size"], []).append(r)
    batch_sizes = sorted(by_b)
    seeds = sorted({r["seed"] for r in rows})
    table = {m: np.full((len(seeds), len(batch_sizes)), np.nan) for m in metrics}
    for j, b in enumerate(batch_sizes):
        for r in by_b[b]:
            if not r["diverged"]:
                for m in metrics:
                    if r.get(m) is not None:
                        table[m][seeds.index(r["seed"]), j] = r[m]
    return batch_sizes, seeds, table


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


def _slope(lx, ly):
    """Least-squares slope of ly on lx; ly (points,) or (draws, points)."""
    dx = lx - lx.mean()
    return np.sum(dx * (ly - ly.mean(axis=-1, keepdims=True)), axis=-1) / np.sum(dx**2)


def loglog_slope(x, y, log_sigma=0.0) -> tuple[float, float]:
    """Least-squares slope of ln y on ln x with its standard error: the larger of the residual-based
    error and the one implied by the points' own uncertainty `log_sigma` (per point or one for all,
    in ln units: e.g. a grid optimum's `log_sigma`)."""
    lx, ly = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    sxx = np.sum((lx - lx.mean()) ** 2)
    slope = float(_slope(lx, ly))
    resid = ly - (ly.mean() + slope * (lx - lx.mean()))
    se_resid = math.sqrt(np.sum(resid**2) / (len(lx) - 2) / sxx) if len(lx) > 2 else 0.0
    sigma = np.broadcast_to(np.asarray(log_sigma, float), lx.shape)
    se_grid = math.sqrt(np.sum((lx - lx.mean()) ** 2 * sigma**2)) / sxx
    return slope, max(se_resid, se_grid)


def loglog_slope_ci(x, curves: list[dict], key: str = "b_opt") -> dict:
    """Slope of ln B_opt (or another batch size per curve, `key`) on ln x: the least-squares fit
    through the point estimates (`loglog_slope`) and a 95% interval from the bootstrap draws (draw k
    of every curve together; each curve's draws come from its own random stream, `b_opt(...,
    seed=...)`, as its seeds are independent runs; a draw where any curve has no estimate is left
    out). Returns slope, slope_ci95."""
    lx = np.log(np.asarray(x, float))
    fit = loglog_slope(x, [c[key] for c in curves])[0]
    draws = min(len(c["log_draws"]) for c in curves)
    rows = np.array([c["log_draws"][:draws] for c in curves], float).T  # (draws, curves)
    rows = rows[np.isfinite(rows).all(axis=1)]
    boot = _slope(lx, rows)
    low, high = np.percentile(boot, [2.5, 97.5]) if boot.size else (math.nan, math.nan)
    return dict(slope=fit, slope_ci95=[float(low), float(high)])


def ratio_ci(top: dict, bottom: dict, key: str) -> tuple[float, list[float]]:
    """The ratio of two curves' estimates top[key] / bottom[key] (e.g. two `b_cliff` results), and
    its 95% interval from their bootstrap draws taken in pairs (draw k of each, `log_draws`: the
    draws of curves with their own random streams are independent); a pair where either has no
    estimate is left out."""
    draws = np.asarray(top["log_draws"]) - np.asarray(bottom["log_draws"])
    draws = draws[np.isfinite(draws)]
    ci = np.exp(np.percentile(draws, [2.5, 97.5])).tolist() if draws.size else [math.nan] * 2
    return top[key] / bottom[key], ci


def collapse(points, factor: float) -> dict:
    """Do points of equal g fall on one curve? The points (dicts with g, steps, the family lr,
    momentum, n_train, and `accuracy`: the MeanSE of the value compared) binned in ln g (bins a
    factor `factor` wide) and by training budget; in each bin holding at least two points of two
    families, the spread (standard deviation) of the point means against the seeds' standard error
    of a point mean (root mean square over the bin). Returns the bins and the root mean square of
    their ratios (`rms_ratio`, NaN without a bin)."""
    bins = {}
    for p in points:
        if p["accuracy"][2] > 1:
            k = math.floor(math.log(p["g"]) / math.log(factor))
            bins.setdefault((p["steps"], k), []).append(p)
    per_bin = []
    for (steps, k), sel in sorted(bins.items()):
        families = {(p["lr"], p["momentum"], p["n_train"]) for p in sel}
        if len(families) < 2 or len(sel) < 2:
            continue
        means = [p["accuracy"][0] for p in sel]
        se = math.sqrt(np.mean([p["accuracy"][1] ** 2 for p in sel]))
        spread = float(np.std(means, ddof=1))
        per_bin.append(
            dict(
                steps=steps,
                g_low=factor**k,
                g_high=factor ** (k + 1),
                points=len(sel),
                families=len(families),
                spread=spread,
                seed_se=se,
                ratio=spread / se if se > 0 else math.nan,
            )
        )
    ratios = [b["ratio"] for b in per_bin if math.isfinite(b["ratio"])]
    rms = float(np.sqrt(np.mean(np.square(ratios)))) if ratios else math.nan
    return dict(bins=per_bin, rms_ratio=rms)


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


class GridOptimum(NamedTuple):
    """The best grid point of a seed-mean curve: its index (-1 where no point has a finite score),
    B_grid, `edge` ("left" or "right" where it is the first or last batch size, else None) and half
    the ln-B step to its neighbour on each side (`half_steps`, 0 beyond an edge)."""

    index: int
    b_grid: float
    edge: str | None
    half_steps: tuple[float, float]

    @property
    def log_sigma(self) -> float:
        """What the grid resolves, in ln B: half the wider step to a neighbour (at an edge, half
        the one step)."""
        return max(self.half_steps)


def _best(means, maximise: bool) -> int:
    """Index of the best finite mean (the first of equals); -1 where none is finite."""
    finite = np.isfinite(means)
    if not finite.any():
        return -1
    return int(np.argmax(np.where(finite, means if maximise else -means, -np.inf)))


def grid_optimum(batch_sizes, means, *, maximise: bool = True) -> GridOptimum:
    """B_grid of a seed-mean curve (one mean per batch size; NaN or -inf where it has none): the
    batch size of the highest mean (`maximise`) or the lowest, and what the grid resolves of it."""
    log_b = np.log(np.asarray(batch_sizes, float))
    best = _best(np.asarray(means, float), maximise)
    if best < 0:
        return GridOptimum(-1, math.nan, None, (math.nan, math.nan))
    left = log_b[best] - log_b[best - 1] if best > 0 else 0.0
    right = log_b[best + 1] - log_b[best] if best + 1 < len(log_b) else 0.0
    edge = "left" if best == 0 else ("right" if best == len(log_b) - 1 else None)
    return GridOptimum(best, float(batch_sizes[best]), edge, (float(left / 2), float(right / 2)))


def _vertex(log_b, means, *, maximise: bool, window: float, sigma=None):
    """(ln B_opt, method, index of the best grid point) from seed means on a grid of ln B; `sigma`:
    the means' uncertainties (weights 1/sigma of the parabola's residuals), None for equal."""
    best = _best(means, maximise)
    if best < 0:
        return math.nan, "no finite scores", -1
    finite = np.isfinite(means)
    score = np.where(finite, means if maximise else -means, -np.inf)
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
    `weighted=False` fits the parabola through the means with equal weights. Returns b_opt (the
    vertex), b_opt_ci95 [low, high], method, edge ("left"/"right"/None: the best grid point is the
    first or last batch size), the best grid point itself (b_grid, with its log_sigma:
    `grid_optimum`), seeds, interval_reliable (4 seeds or more) and the bootstrap draws of ln B_opt
    (log_draws)."""
    log_b = np.log(np.asarray(batch_sizes, float))
    scores = np.asarray(scores, float)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        # a batch size whose seeds all diverged: NaN mean
        warnings.simplefilter("ignore", RuntimeWarning)
        # The weights are the data's and fixed across draws (a fixed design): a draw moves the means
        # only.
        sigma = _fit_sigma(scores) if weighted else None
        means = np.nanmean(scores, axis=0)
        centre, method, best = _vertex(log_b, means, maximise=maximise, window=window, sigma=sigma)
        rng = np.random.default_rng(seed)
        n = scores.shape[0]
        if bootstrap not in ("multiplier", "percentile"):
            raise ValueError(f"bootstrap must be 'multiplier' or 'percentile' (got {bootstrap!r})")
        if bootstrap == "percentile":
            drawn = [np.nanmean(scores[rng.integers(0, n, n)], axis=0) for _ in range(draws)]
        else:
            drawn = multiplier_draws(scores, rng, draws)
        boot = np.array(
            [_vertex(log_b, m, maximise=maximise, window=window, sigma=sigma)[0] for m in drawn]
        )
    boot = boot[np.isfinite(boot)]
    low, high = np.exp(np.percentile(boot, [2.5, 97.5])) if boot.size else (math.nan, math.nan)
    grid = grid_optimum(batch_sizes, means, maximise=maximise)
    if method.startswith("grid") and best >= 0:
        # No fit: the grid cannot resolve B_opt better than half a step either side, whatever the
        # seeds say.
        left, right = grid.half_steps
        low = (
            min(low, math.exp(log_b[best] - left))
            if math.isfinite(low)
            else math.exp(log_b[best] - left)
        )
        high = (
            max(high, math.exp(log_b[best] + right))
            if math.isfinite(high)
            else math.exp(log_b[best] + right)
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
        edge=grid.edge,
        b_grid=grid.b_grid,
        log_sigma=grid.log_sigma,
        seeds=int(n),
        interval_reliable=bool(n >= 4),
        log_draws=boot.tolist(),
    )


def _cliff(log_b, means, floor):
    """ln B where the seed-mean curve, walking left from its peak, first falls to half-way between
    `floor` and the peak (linear in ln B between the two grid points that bracket it); NaN where it
    never does on the grid."""
    best = _best(means, True)
    if best < 0:
        return math.nan
    curve = np.where(np.isfinite(means), means, floor)  # every seed diverged: as bad as chance
    # leftwards from the peak
    ln_b = first_fall(log_b[best::-1], curve[best::-1], 0.5 * (floor + means[best]))
    return ln_b if math.isfinite(ln_b) else math.nan


def b_cliff(batch_sizes, scores, *, floor: float, draws: int = 2000, seed: int = 0) -> dict:
    """The small-batch cliff of one accuracy curve: the batch size below the peak where the
    seed-mean test accuracy has fallen half-way from the peak to `floor` (chance), interpolated in
    ln B. Its 95% interval from the same t-calibrated multiplier draws as `b_opt`; where the curve
    never falls that far on the grid, b_cliff is NaN and `below_grid` says the cliff (if any) lies
    left of the smallest batch size. A diverged run counts as chance. A grid that stops on the cliff
    has no peak to measure the fall from: where the seed-mean curve is highest at the largest batch
    size and still rising into it (above the batch size before by more than 2 standard errors of
    the difference, `welch`), b_cliff and its interval are NaN and `no_peak` says so (a plateau
    whose noisy maximum falls on the last point is not flagged; a single seed cannot be judged).
    Returns b_cliff, b_cliff_ci95, below_grid, no_peak and the draws of ln B_cliff (`log_draws`,
    NaN where a draw has no cliff on the grid)."""
    log_b = np.log(np.asarray(batch_sizes, float))
    scores = np.asarray(scores, float)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        means = np.nanmean(scores, axis=0)
        no_peak = bool(
            len(log_b) > 1
            and _best(means, True) == len(log_b) - 1
            and welch(scores[:, -2], scores[:, -1])[2] > 2
        )
        if no_peak:
            centre, boot = math.nan, np.full(draws, math.nan)
        else:
            centre = _cliff(log_b, means, floor)
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
        below_grid=not no_peak and not math.isfinite(centre),
        no_peak=no_peak,
        log_draws=boot.tolist(),
    )


def refinement(batch_sizes, scores, n_train: int, *, maximise: bool = True) -> list[int]:
    """New batch sizes at 2^(1/2) spacing around the best grid point (`grid_optimum` of the seed
    means): B* 2^(-1/2) and B* 2^(1/2) (rounded), and beyond the last grid point when the best one
    is at an edge; within [1, N], none already on the grid."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        grid = grid_optimum(
            batch_sizes, np.nanmean(np.asarray(scores, float), axis=0), maximise=maximise
        )
    best = grid.index
    if best < 0:
        return []
    b = batch_sizes[best]
    wanted = {round(b * 2**-0.5), round(b * 2**0.5)}
    if best == 0:
        wanted |= {round(b / 2), round(b / 4)}
    if best == len(batch_sizes) - 1:
        wanted |= {round(b * 2), round(b * 4)}
    return sorted(v for v in wanted if 1 <= v <= n_train and v not in batch_sizes)
