"""Sharpness and evidence of the minima across B, eps, N and m: does small-batch noise find broad
minima?

The paper's mechanism: the noise of small batches drives the parameters to minima of large evidence
(broad minima), which is why an optimal batch size exists. This reads the rows of the batch-size
sweeps (Figs 4-7) in the same folder that carry the landscape measured at the end of each run
(`--landscape`: top eigenvalue and trace of the mean-loss Hessian, |w|^2; `--evidence`: the Laplace
log evidence) and answers, with intervals:
- per curve, how sharpness, trace, |w|^2 and evidence move with B where the net trains (`trend`):
  from the first batch size of the trained region to the largest below N. The trained region (rule
  `_trend_start`): the batch sizes at or above the curve's cliff from which on every seed-mean dead
  (ReLU) or always-negative (leaky ReLU) fraction of hidden units is at most DEAD_MAX = 0.1; a
  dying net's curvature is that of its surviving units (its "flatness" is death, not breadth), so
  the dying points left of it are not part of the trend. Per measure: the values at the region's
  smallest and largest B, their ratio (the evidence, a logarithm: their difference) with a 95%
  interval, and the slope of ln(measure) on ln B with its standard error and a 95% interval; the
  intervals from the t-calibrated multiplier bootstrap over seeds (`analysis.multiplier_draws`,
  the seeds' correlation across B kept; `analysis.ratio_ci`, `analysis.loglog_slope_ci`);
- does broadness peak where test accuracy peaks: B_opt from test accuracy, from the inverse
  sharpness (the B of the flattest minimum), from the inverse trace and from the evidence, each with
  its 95% interval (`analysis.b_opt`), side by side;
- do sharpness, trace and the evidence depend on (eps, B, m) through g alone: the collapse number
  of ln(sharpness) (and of the log evidence, where measured) in bins of g (`analysis.collapse`, as
  `g-curve` computes it for accuracy), at fixed N and across N;
- the rank correlation (Spearman) of each measure with test accuracy over all points of a sweep,
  with a 95% bootstrap interval over points;
- how well each number was measured (`errors`), from the rows: the Lanczos residual bound of the
  top eigenvalue, the Hutchinson trace's standard error relative to the trace, and the log
  evidence's SLQ standard error, truncation estimate and dropped-eigenvalue count, per batch size
  (seed means) and over the trained region of each sweep.
"""

import dataclasses
import math
import warnings

import numpy as np

import sim

from .. import analysis
from ..runner import contract, plotting, tasks
from ..runner.contract import Experiment, Rows, RunContext, param
from ..runner.rows import group_rows

SOURCES = ("fig4", "fig5", "fig6", "fig7")
MEASURES = ("sharpness", "hessian_trace", "w_norm_sq", "log_evidence")
# B_opt of each measure: where it is largest (evidence) or smallest (the curvatures: the broadest
# minimum).
MAXIMISE = {"test_accuracy": True, "sharpness": False, "hessian_trace": False, "log_evidence": True}
CHANCE = 0.1


@dataclasses.dataclass(frozen=True)
class Config(contract.Config):
    bin_factor: float = param(
        2.0, sim.checks.positive, help="width of a bin in g for the collapse, as a factor"
    )
    draws: int = param(
        2000,
        sim.checks.integer,
        low=100,
        help="bootstrap draws of the rank correlations and of the trends' intervals",
    )
    seeds: int = param(1, help="unused: this experiment only reads other experiments' rows")


def grid(cfg: Config) -> list[dict]:
    return []


def evaluate(run: RunContext, points, seeds):
    return []


def _family(c):
    return (
        c["lr"],
        c["momentum"],
        c["n_train"],
        c["steps"],
        *(tasks.setup_of(c).get(k, "") for k in ("activation", "init", "inputs")),
        # the evidence's prior where a sweep chose another (its curves never pool with lam = 1's)
        f"evidence prior {c['evidence_prior']:g}" if "evidence_prior" in c else "",
    )


# Error columns of the rows (`tasks.landscape`), read beside the measures.
ERROR_COLUMNS = (
    "sharpness_bound",
    "hessian_trace_se",
    "log_evidence_se",
    "log_evidence_truncation",
    "evidence_dropped",
)
# The trained region of a curve starts where at most this fraction of hidden units is dead (ReLU)
# or negative on every example (leaky ReLU) at every larger batch size (`_trend_start`).
DEAD_MAX = 0.1


def _curves(rows):
    """Curves (one family, B varying) of the rows that carry the landscape; per curve the batch
    sizes and (seeds x B) tables of accuracy, of every measure present and of its error columns."""
    rows = [r for r in rows if r["config"].get("landscape")]
    out = {}
    for family, sel in sorted(group_rows(rows, _family).items()):
        names = ["test_accuracy"] + [m for m in MEASURES if any(m in r for r in sel)]
        dead = next(
            (k for k in ("dead_fraction", "negative_fraction") if any(k in r for r in sel)), None
        )
        names += [dead] if dead else []
        names += [e for e in ERROR_COLUMNS if any(e in r for r in sel)]
        batch_sizes, _, table = analysis.seed_table(sel, names)
        out[family] = dict(batch_sizes=batch_sizes, table=table, dead=dead)
    return out


def _label(family):
    lr, m, n, steps = family[:4]
    return f"eps {lr:g}, m {m:g}, N {n}, {steps} updates{_setup_label(family)}"


def _trend_start(grid, dead_means, b_cliff, n):
    """The first batch size of a curve's trained region: the smallest B (below N) at or above the
    cliff such that the seed-mean dead (or always-negative) fraction is at most DEAD_MAX there and
    at every larger B below N (a NaN mean, every seed diverged, counts as dying). Without a dead
    fraction in the rows, the cliff itself (or the smallest B where the curve has none)."""
    floor = b_cliff if math.isfinite(b_cliff) else 0.0
    inside = [j for j, b in enumerate(grid) if b >= floor and b < n]
    if dead_means is None:
        return grid[inside[0]] if inside else math.nan
    start = math.nan
    for j in reversed(inside):
        if not dead_means[j] <= DEAD_MAX:
            break
        start = grid[j]
    return start


def _log_draws(values, rng, draws):
    """Multiplier-bootstrap draws (draws x B) of the seed-mean curve of a (seeds x B) table
    (`analysis.multiplier_draws`), in ln; NaN where a draw's mean is not positive."""
    with np.errstate(all="ignore"):
        drawn = analysis.multiplier_draws(values, rng, draws)
        return np.log(np.where(drawn > 0, drawn, np.nan))


def _trend(grid, table, stats, start, n, *, rng, draws):
    """How each measure moves with B over the trained region [start, largest B < N] (module
    docstring): per measure the batch sizes used, the seed means at the smallest (low_b) and
    largest (high_b) of them; for the curvatures and |w|^2 their ratio high_b / low_b with its 95%
    interval (`analysis.ratio_ci` on paired multiplier draws) and the slope of ln on ln B with its
    standard error (`analysis.loglog_slope`) and 95% interval (`analysis.loglog_slope_ci`); for the
    log evidence the difference high_b - low_b in nats with its 95% interval from the same draws.
    seeds: the most seeds at a batch size (fewer than 4: the intervals are not 95%)."""
    trend = {}
    if not math.isfinite(start):
        return trend
    for m in ("sharpness", "hessian_trace", "w_norm_sq", "log_evidence"):
        if m not in table:
            continue
        cols = [
            j
            for j, b in enumerate(grid)
            if start <= b < n and stats[m][j][2] > 1 and (m == "log_evidence" or stats[m][j][0] > 0)
        ]
        if len(cols) < 3:
            continue
        xs = [grid[j] for j in cols]
        ys = [stats[m][j][0] for j in cols]
        values = table[m][:, cols]
        seeds = int(np.isfinite(values).sum(axis=0).max())
        entry = dict(batch_sizes=xs, low_b=ys[0], high_b=ys[-1], seeds=seeds)
        if m == "log_evidence":
            drawn = analysis.multiplier_draws(values, rng, draws)
            diff = drawn[:, -1] - drawn[:, 0]
            diff = diff[np.isfinite(diff)]
            entry.update(
                difference=ys[-1] - ys[0],
                difference_ci95=np.percentile(diff, [2.5, 97.5]).tolist(),
            )
        else:
            logs = _log_draws(values, rng, draws)
            ends = [dict(value=y, log_draws=logs[:, i]) for i, y in enumerate(ys)]
            ratio, ratio_ci95 = analysis.ratio_ci(ends[-1], ends[0], "value")
            slope, se = analysis.loglog_slope(xs, ys, 0.0)
            fit = analysis.loglog_slope_ci(xs, ends, key="value")
            entry.update(
                ratio=ratio,
                ratio_ci95=ratio_ci95,
                slope=slope,
                se=se,
                slope_ci95=fit["slope_ci95"],
            )
        trend[m] = entry
    return trend


def _errors(table):
    """Per batch size, how well the landscape was measured (seed means; NaN where not recorded):
    the largest Lanczos residual bound of the top eigenvalue over seeds (`sharpness_bound`), the
    trace's standard error over |trace| (`trace_relative_se`), the log evidence's SLQ standard error
    (`log_evidence_se`), |truncation estimate| (`log_evidence_truncation`, nats) and the number of
    eigenvalues dropped below the prior (`evidence_dropped`)."""

    def over_seeds(values, reduce):
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return [float(v) for v in reduce(values, axis=0)]

    out = {}
    if "sharpness_bound" in table:
        out["sharpness_bound"] = over_seeds(np.abs(table["sharpness_bound"]), np.nanmax)
    if "hessian_trace_se" in table and "hessian_trace" in table:
        with np.errstate(all="ignore"):
            rel = table["hessian_trace_se"] / np.abs(table["hessian_trace"])
        out["trace_relative_se"] = over_seeds(rel, np.nanmean)
    for e in ("log_evidence_se", "log_evidence_truncation", "evidence_dropped"):
        if e in table:
            out[e] = over_seeds(np.abs(table[e]), np.nanmean)
    return out


def _curve_summary(family, curve, k, draws):
    grid, table = curve["batch_sizes"], curve["table"]
    n = family[2]
    measures = [m for m in table if m not in ERROR_COLUMNS]
    stats = {m: [analysis.mean_se(table[m][:, j]) for j in range(len(grid))] for m in measures}
    cliff = analysis.b_cliff(grid, table["test_accuracy"], floor=CHANCE, seed=k)
    optima = {}
    for m, maximise in MAXIMISE.items():
        if m in table and np.isfinite(table[m]).sum() > 2:
            scores = table[m]
            if m in ("sharpness", "hessian_trace"):  # a negative estimate (Hutchinson) has no log
                scores = np.log(np.where(scores > 0, scores, np.nan))
            fit = analysis.b_opt(grid, scores, maximise=maximise, seed=k)
            optima[m] = dict(
                b_opt=fit["b_opt"],
                b_opt_ci95=fit["b_opt_ci95"],
                edge=fit["edge"],
                method=fit["method"],
            )
    dead = curve["dead"]
    start = _trend_start(grid, [v[0] for v in stats[dead]] if dead else None, cliff["b_cliff"], n)
    # the trend's bootstrap: its own stream per curve (the curve's index k), apart from b_opt's
    trend = _trend(grid, table, stats, start, n, rng=np.random.default_rng((k, 1)), draws=draws)
    return dict(
        label=_label(family),
        lr=family[0],
        momentum=family[1],
        n_train=n,
        steps=family[3],
        batch_sizes=grid,
        g=[family[0] * (n / b - 1) / (1 - family[1]) for b in grid],
        stats=stats,
        errors=_errors(table),
        dead_key=dead,
        b_cliff=cliff["b_cliff"],
        b_cliff_ci95=cliff["b_cliff_ci95"],
        trained_from=start,
        optima=optima,
        trend=trend,
    )


def _spearman_ci(points, measure, draws, rng):
    """Spearman rank correlation of a measure's point means with test accuracy's, and its 95%
    bootstrap interval (points resampled with replacement): `analysis.spearman_ci`; None with too
    few points or a constant measure."""
    accuracy = [p["test_accuracy"] for p in points]
    return analysis.spearman_ci(
        accuracy, [p.get(measure, math.nan) for p in points], draws=draws, rng=rng
    )


# Measures collapsed onto g: the curvatures at equal budgets, and the top eigenvalue times the SDE
# time of the run, t = eps steps/(1 - m), over all budgets: the SDE's end point depends on (g, t)
# alone, and along training the top eigenvalue falls as ~1/t (cross-entropy's curvature shrinks as
# the margins grow), so lambda t is a function of g alone if both hold.
# The log evidence, where the rows have it, is compared as it is (it is a logarithm already).
COLLAPSED = ("sharpness", "hessian_trace", "sharpness_time", "log_evidence")
COLLAPSED_NAMES = {
    "sharpness": "ln sharpness",
    "hessian_trace": "ln hessian_trace",
    "sharpness_time": "ln sharpness x t (t = eps steps/(1 - m), all budgets)",
    "log_evidence": "log evidence",
}


def sde_time(lr, momentum, steps):
    """The SDE time of a run of `steps` heavy-ball updates: t = eps steps/(1 - m)."""
    return lr * steps / (1 - momentum)


def _collapse_values(curve, measure, j):
    """The seeds' values of `measure` at the curve's j-th batch size, or None where not measured;
    sharpness_time = the top eigenvalue times the SDE time."""
    base = "sharpness" if measure == "sharpness_time" else measure
    if base not in curve["stats"]:
        return None
    values = curve["_table"][base][:, j]
    if measure == "sharpness_time":
        values = values * sde_time(curve["lr"], curve["momentum"], curve["steps"])
    return values


def _collapse_points(curves, source, measure):
    """g-curve's points, with the seeds' ln(measure) (the log evidence as it is) in place of
    accuracy."""
    out = []
    for c in curves:
        for j, b in enumerate(c["batch_sizes"]):
            values = _collapse_values(c, measure, j)
            if b >= c["n_train"] or values is None:
                continue
            if measure == "log_evidence":
                values = values[np.isfinite(values)]
            else:
                values = np.log(values[np.isfinite(values) & (values > 0)])
            out.append(
                dict(
                    source=source,
                    lr=c["lr"],
                    momentum=c["momentum"],
                    n_train=c["n_train"],
                    batch_size=b,
                    # lambda t is compared across budgets: one bin of g holds them all
                    steps="all" if measure == "sharpness_time" else c["steps"],
                    updates=c["steps"],
                    g=c["g"][j],
                    accuracy=analysis.mean_se(values),
                )
            )
    return out


@dataclasses.dataclass(frozen=True)
class Reads:
    """The batch-size sweeps' rows in this folder, each where it is there."""

    fig4: Rows | None = None
    fig5: Rows | None = None
    fig6: Rows | None = None
    fig7: Rows | None = None


def summarize(rows, cfg: Config, reads: Reads) -> dict:
    """Per curve its summary (`sources`); per sweep and net setup the rank correlations over its
    points and the collapse onto g (across N for Fig 6's; at fixed N over Figs 4, 5 and 7), under
    the sweep's name for the default setup and with the setup appended for another (e.g. "fig6,
    leaky_relu"): a folder's file may hold another setup's curves (the quick leaky-ReLU control's),
    which are neither more points of the default net's correlation nor, at equal (eps, m, N), one
    family with its curves. Each (sweep, setup) and each of its curves draws its bootstrap from its
    own stream (the same with or without another setup's curves in the file)."""
    sources = dict(fig4=reads.fig4, fig5=reads.fig5, fig6=reads.fig6, fig7=reads.fig7)
    out = {"sources": {}, "collapse": {}, "rank_correlation": {}, "errors": {}}
    fixed_n = {}
    for name in SOURCES:
        curves, setups = [], {}
        for family, curve in _curves(sources[name] or []).items():
            group = setups.setdefault(_setup_label(family), [])
            # the curve's bootstrap stream: its index among its own setup's curves
            s = _curve_summary(family, curve, len(group), cfg.draws)
            s["_table"] = curve["table"]
            curves.append(s)
            group.append(s)
        if not curves:
            continue
        for label, group in sorted(setups.items()):
            points = [
                dict({m: c["stats"][m][j][0] for m in c["stats"]}, n_train=c["n_train"])
                for c in group
                for j in range(len(c["batch_sizes"]))
            ]
            rng = np.random.default_rng(0)
            out["rank_correlation"][name + label] = {
                m: _spearman_ci(points, m, cfg.draws, rng)
                for m in (*MEASURES, "dead_fraction", "negative_fraction")
                if any(m in p for p in points)
            }
            out["errors"][name + label] = _error_ranges(group)
            for m in COLLAPSED:
                pts = _collapse_points(group, name, m)
                if not pts:
                    continue
                if name == "fig6":
                    out["collapse"].setdefault(m, {})["across_n" + label] = analysis.collapse(
                        pts, cfg.bin_factor
                    )
                else:
                    fixed_n.setdefault((m, label), []).extend(pts)
        for c in curves:
            c.pop("_table")
        out["sources"][name] = curves
    everything = [c for curves in out["sources"].values() for c in curves]
    if everything:
        out["errors"]["all sweeps"] = _error_ranges(everything)
    for (m, label), pts in sorted(fixed_n.items()):
        if pts:
            out["collapse"].setdefault(m, {})["fixed_n" + label] = analysis.collapse(
                _unique(pts), cfg.bin_factor
            )
    return out


def _error_ranges(curves):
    """How well a sweep's landscape was measured: per error quantity (`_errors`, seed means per
    batch size) its [min, median, max] over the batch sizes of the curves' trained regions
    (`trained`: from `trained_from` to the largest B < N) and over all their batch sizes (`all`);
    quantities not recorded are left out."""
    out = {}
    for where in ("trained", "all"):
        values = {}
        for c in curves:
            for j, b in enumerate(c["batch_sizes"]):
                if where == "trained" and not (c["trained_from"] <= b < c["n_train"]):
                    continue
                for e, per_b in c["errors"].items():
                    values.setdefault(e, []).append(per_b[j])
        out[where] = {
            e: [float(np.min(v)), float(np.median(v)), float(np.max(v))]
            for e, v in ((e, np.asarray(v)[np.isfinite(v)]) for e, v in values.items())
            if v.size
        }
    return out


def _setup_label(family):
    """ ", leaky_relu" etc. for a family of another net setup, "" for the default one."""
    return "".join(f", {s}" for s in family[4:] if s)


def _unique(points):
    """A configuration run by two sweeps is one point (as in g-curve)."""
    seen, out = set(), []
    for p in points:
        key = (p["lr"], p["momentum"], p["n_train"], p["batch_size"], p["updates"])
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def _trend_text(m, t):
    """One trend in words: the ratio (the evidence: the difference) from the trained region's
    smallest B to its largest, with its 95% interval."""
    b0, b1 = t["batch_sizes"][0], t["batch_sizes"][-1]
    flag = "" if t["seeds"] >= 4 else f" ({t['seeds']} seeds: not a 95% interval)"
    if m == "log_evidence":
        lo, hi = t["difference_ci95"]
        return f"{t['difference']:+.1f} nats [{lo:+.1f}, {hi:+.1f}] from B = {b0} to {b1}{flag}"
    lo, hi = t["ratio_ci95"]
    return (
        f"x{t['ratio']:.3g} [{lo:.3g}, {hi:.3g}] from B = {b0} to {b1}, slope of ln on ln B "
        f"{t['slope']:+.2f} [{t['slope_ci95'][0]:+.2f}, {t['slope_ci95'][1]:+.2f}]{flag}"
    )


def _short_label(c):
    """A curve's family in a few characters: eps, m, N, updates, setup."""
    setup = c["label"].split(" updates")[1]
    return f"eps {c['lr']:g} m {c['momentum']:g} N {c['n_train']} {c['steps']}u{setup}"


def _short_trend(m, t):
    """`_trend_text` in fewer characters, for the figure."""
    b0, b1 = t["batch_sizes"][0], t["batch_sizes"][-1]
    flag = "" if t["seeds"] >= 4 else f" ({t['seeds']} seeds)"
    if m == "log_evidence":
        lo, hi = t["difference_ci95"]
        return f"log ev {t['difference']:+.1f} [{lo:+.1f}, {hi:+.1f}] nats, B {b0}-{b1}{flag}"
    lo, hi = t["ratio_ci95"]
    s_lo, s_hi = t["slope_ci95"]
    return (
        f"top eig x{t['ratio']:.3g} [{lo:.3g}, {hi:.3g}], B {b0}-{b1}, slope "
        f"{t['slope']:+.2f} [{s_lo:+.2f}, {s_hi:+.2f}]{flag}"
    )


def _range(v, fmt):
    return f"{v[0]:{fmt}}-{v[2]:{fmt}}"


def _caption(summary):
    """How each quantity was measured and with what error, from the rows (`errors`)."""
    errors = summary["errors"].get("all sweeps", {})
    trained, every = errors.get("trained", {}), errors.get("all", {})
    ls = tasks.LANDSCAPE
    parts = [
        "Rows of the batch-size sweeps in this folder measured with --landscape, at the end of "
        "each run. Top eigenvalue of the mean-loss Hessian: Lanczos, "
        f"{ls['lanczos_steps']} steps"
    ]
    if "sharpness_bound" in trained:
        parts[-1] += (
            f" (Lanczos residual bound <= {trained['sharpness_bound'][2]:.1g} where the net trains,"
            f" <= {every['sharpness_bound'][2]:.1g} at every point)"
        )
    parts.append(f"trace: Hutchinson, {ls['trace_probes']} Rademacher probes")
    if "trace_relative_se" in trained:
        v, w = trained["trace_relative_se"], every["trace_relative_se"]
        parts[-1] += (
            f" (s.e./|trace| median {v[1]:.2f}, max {v[2]:.2f} where the net trains; max "
            f"{w[2]:.2g} over all points, dying nets' traces near 0)"
        )
    if "log_evidence_se" in trained and "log_evidence_truncation" in trained:
        se, tr = trained["log_evidence_se"], trained["log_evidence_truncation"]
        parts.append(
            f"log evidence: Laplace under a Gaussian prior lam = {tasks.EVIDENCE_PRIOR:g}, SLQ, "
            f"{ls['slq_probes']} probes x {ls['slq_steps']} Lanczos steps (where the net trains: "
            f"s.e. {_range(se, '.1f')} nats, |truncation estimate| {_range(tr, '.1f')} nats, "
            "both seed means per B; the truncation is a bias the s.e. does not see"
        )
        if "evidence_dropped" in trained:
            parts[-1] += (
                f"; {_range(trained['evidence_dropped'], '.3g')} eigenvalues below lam dropped: "
                "the prior sets the width there"
            )
        parts[-1] += ")"
    parts.append(
        "Bars: 95% intervals over seeds; bands against B: B_opt of each measure with its 95% "
        "interval; shaded, log evidence against g: +- the SLQ truncation estimate; "
        "open circles: the first B of each curve's trained region (dead or negative fraction "
        f"<= {DEAD_MAX:g} from there on), where the trends start."
    )
    return "; ".join(parts[:-1]) + ". " + parts[-1]


def _errorbar(ax, x, stats, color, scale=1.0, **kwargs):
    mean = scale * np.array([v[0] for v in stats])
    se = scale * np.nan_to_num(np.array([v[1] for v in stats]))
    ax.errorbar(x, mean, yerr=1.96 * se, color=color, marker="o", ms=3, capsize=2, **kwargs)


def figure(summary: dict, cfg: Config, out) -> None:
    plt = plotting.pyplot()
    import matplotlib.ticker

    curves = [(name, c) for name, cs in summary["sources"].items() for c in cs]
    if not curves:
        print(
            "minima: no rows with the landscape in this folder (run Figs 4-7 with --landscape true)"
        )
        return
    has_evidence = any("log_evidence" in c["stats"] for _, c in curves)
    fig = plt.figure(figsize=(22, 14))
    grid = fig.add_gridspec(3, 5, height_ratios=(1, 1, 0.8))
    top = [fig.add_subplot(grid[0, j]) for j in range(5)]
    middle = [fig.add_subplot(grid[1, j]) for j in range(5)]
    legend_ax = fig.add_subplot(grid[2, :2])
    text_ax = fig.add_subplot(grid[2, 2:])
    panels = ("test_accuracy", "sharpness", "hessian_trace", "log_evidence", "w_norm_sq")
    # against g: the top eigenvalue, lambda t, and the evidence where measured (else the trace)
    g_measure = "log_evidence" if has_evidence else "hessian_trace"
    handles = []
    for k, (name, c) in enumerate(curves):
        color = f"C{k % 10}"
        ls = "-" if k < 10 else "--"  # ten colours: the next ten curves dashed
        b = np.asarray(c["batch_sizes"], float)
        g = np.asarray(c["g"])
        for ax, m in zip(top, panels):
            if m not in c["stats"]:
                continue
            _errorbar(ax, b, c["stats"][m], color, ls=ls)
            if m in c["optima"]:
                lo, hi = c["optima"][m]["b_opt_ci95"]
                if math.isfinite(lo) and math.isfinite(hi):
                    ax.axvspan(lo, hi, color=color, alpha=0.08)
            if m == "sharpness" and math.isfinite(c["trained_from"]):
                j = c["batch_sizes"].index(c["trained_from"])
                ax.plot(b[j], c["stats"][m][j][0], "o", mfc="none", mec=color, ms=9)
        if "sharpness" in c["stats"]:
            t = sde_time(c["lr"], c["momentum"], c["steps"])
            _errorbar(middle[0], g, c["stats"]["sharpness"], color, ls=ls)
            _errorbar(middle[1], g, c["stats"]["sharpness"], color, scale=t, ls=ls)
            acc = np.array([v[0] for v in c["stats"]["test_accuracy"]])
            sharp = np.array([v[0] for v in c["stats"]["sharpness"]])
            middle[4].plot(sharp, acc, color=color, marker="o", ms=3, ls="none")
        if g_measure == "hessian_trace" and g_measure in c["stats"]:
            _errorbar(middle[2], g, c["stats"][g_measure], color, ls=ls)
        if g_measure == "log_evidence" and g_measure in c["stats"]:
            # where the net trains only (a dying net's evidence is thousands of nats lower), with
            # the SLQ truncation estimate, a bias the seeds' error bars do not see, shaded
            keep = [
                j for j, bj in enumerate(c["batch_sizes"]) if c["trained_from"] <= bj < c["n_train"]
            ]
            stats = [c["stats"][g_measure][j] for j in keep]
            _errorbar(middle[2], g[keep], stats, color, ls=ls)
            if "log_evidence_truncation" in c["errors"]:
                mean = np.array([v[0] for v in stats])
                bias = np.array([c["errors"]["log_evidence_truncation"][j] for j in keep])
                middle[2].fill_between(g[keep], mean - bias, mean + bias, color=color, alpha=0.15)
        if c["dead_key"]:
            mean = np.array([v[0] for v in c["stats"][c["dead_key"]]])
            middle[3].plot(b, mean, color=color, marker="o", ms=3, ls=ls)
        handles.append(
            plt.Line2D([], [], color=color, ls=ls, marker="o", ms=3, label=f"{name}: {c['label']}")
        )
    titles = (
        "test accuracy",
        "top eigenvalue of H_mean (Lanczos)",
        "tr H_mean (Hutchinson)",
        f"log evidence (Laplace, SLQ; lam = {tasks.EVIDENCE_PRIOR:g})",
        "|w|^2 at the end",
    )
    for ax, title, m in zip(top, titles, panels):
        ax.set(xscale="log", xlabel="batch size B", title=title)
        if not any(m in c["stats"] for _, c in curves):
            ax.text(
                0.5,
                0.5,
                "not measured\n(run with --landscape true --evidence true)",
                ha="center",
                va="center",
                transform=ax.transAxes,
                fontsize=8,
            )
    for ax in top[1:3]:
        ax.set_yscale("log")
    top[4].set_yscale("log")
    top[0].set_ylabel("seed mean (95% interval)")
    g_label = "noise scale g = eps (N/B - 1)/(1 - m)"
    middle[0].set(
        xscale="log",
        yscale="log",
        xlabel=g_label,
        ylabel="top eigenvalue of H_mean",
        title="top eigenvalue against g",
    )
    middle[1].set(
        xscale="log",
        yscale="log",
        xlabel=g_label,
        ylabel="top eigenvalue x t",
        title="top eigenvalue x t, t = eps steps/(1 - m)",
    )
    if has_evidence:
        middle[2].set(
            xscale="log",
            xlabel=g_label,
            ylabel="log evidence (nats)",
            title="log evidence against g, trained region",
        )
    else:
        middle[2].set(
            xscale="log",
            yscale="log",
            xlabel=g_label,
            ylabel="tr H_mean",
            title="tr H_mean against g (no evidence here)",
        )
    middle[3].set(
        xscale="log",
        xlabel="batch size B",
        ylabel="fraction of hidden units",
        title="dead (ReLU) or negative (leaky) units",
    )
    middle[3].axhline(DEAD_MAX, color="grey", lw=0.8, ls=":")
    middle[4].set(
        xscale="log",
        xlabel="top eigenvalue of H_mean",
        ylabel="test accuracy",
        title="accuracy against sharpness",
    )
    for ax in (*top, *middle):  # a range under a decade labels its minor ticks, and they overlap
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    legend_ax.axis("off")
    legend_ax.legend(
        handles=handles,
        loc="upper left",
        fontsize=7,
        frameon=False,
        ncol=1 if len(handles) <= 18 else 2,
    )
    text_ax.axis("off")
    left = ["rank correlation with test accuracy (95%):"]
    for name, corr in summary["rank_correlation"].items():
        for m, v in corr.items():
            if v:
                left.append(
                    f" {name} {m}: {v['rho']:+.2f} [{v['ci95'][0]:+.2f}, {v['ci95'][1]:+.2f}]"
                    f" ({v['points']} pts)"
                )
    left.append("collapse onto g (spread / seed s.e.):")
    for m, c in summary["collapse"].items():
        for where, v in c.items():
            value = f"{v['rms_ratio']:.1f} over {len(v['bins'])} bins" if v["bins"] else "no bin"
            left.append(f" {COLLAPSED_NAMES[m].split(' (')[0]}, {where}: {value}")
    right = ["trained region, its smallest B to its largest (95% intervals):"]
    for name, c in curves:
        for m in ("sharpness", "log_evidence"):
            if m in c["trend"]:
                right.append(f" {name} {_short_label(c)}: {_short_trend(m, c['trend'][m])}")
    for x, lines in ((0, left), (0.37, right)):
        t = text_ax.text(
            x,
            1,
            "\n".join(lines),
            va="top",
            fontsize=6.5,
            family="monospace",
            transform=text_ax.transAxes,
        )
        t.set_in_layout(False)
    out.save(fig, "minima", summary, _caption(summary))


def report(summary: dict, cfg: Config) -> str:
    lines = ["minima: sharpness and evidence of the minima against B (rows with the landscape)"]
    if not summary["sources"]:
        return (
            lines[0]
            + "\n  no rows with the landscape in this folder: run Figs 4-7 with --landscape true"
        )
    for name, curves in summary["sources"].items():
        for c in curves:
            lines.append(f"  {name} {c['label']}:")
            opts = "; ".join(
                f"{m} {o['b_opt']:.3g} [{o['b_opt_ci95'][0]:.3g}, {o['b_opt_ci95'][1]:.3g}]"
                + (f" (edge: {o['edge']})" if o["edge"] else "")
                for m, o in c["optima"].items()
            )
            lines.append(f"    B_opt by {opts}")
            if not c["trend"]:
                lines.append("    no trained region of three batch sizes (no trend)")
            for m, t in c["trend"].items():
                lines.append(f"    {m}: {_trend_text(m, t)}")
    for name, corr in summary["rank_correlation"].items():
        for m, v in corr.items():
            if v:
                lines.append(
                    f"  {name}: Spearman(test accuracy, {m}) = {v['rho']:+.2f} "
                    f"[{v['ci95'][0]:+.2f}, {v['ci95'][1]:+.2f}] over {v['points']} points"
                )
    for m, c in summary["collapse"].items():
        for where, v in c.items():
            if not v["bins"]:
                lines.append(
                    f"  {COLLAPSED_NAMES[m]} onto g ({where.replace('_n', ' n')}): no bin of g "
                    "holds two families trained for the same number of updates"
                )
                continue
            lines.append(
                f"  {COLLAPSED_NAMES[m]} onto g ({where.replace('_n', ' n')}): spread / seed "
                f"s.e. = {v['rms_ratio']:.2f} over {len(v['bins'])} bins"
            )
    for where, e in summary["errors"].get("all sweeps", {}).items():
        if e:
            lines.append(
                f"  measurement errors ({where} points; min/median/max of seed means per B): "
                + "; ".join(f"{k} {v[0]:.3g}/{v[1]:.3g}/{v[2]:.3g}" for k, v in e.items())
            )
    return "\n".join(lines)


EXPERIMENTS = (
    Experiment(
        name="minima",
        title="sharpness and evidence of the minima against B, g and test accuracy (Figs 4-7)",
        config=Config,
        presets={"tiny": Config(draws=200), "quick": Config(), "paper": Config()},
        grid=grid,
        evaluate=evaluate,
        summarize=summarize,
        figure=figure,
        report=report,
        reads=Reads,
        section="paper",
        seeds=lambda cfg, p: [0],
    ),
)
