"""Sharpness and evidence of the minima across B, eps, N and m: does small-batch noise find broad
minima?

The paper's mechanism: the noise of small batches drives the parameters to minima of large evidence
(broad minima), which is why an optimal batch size exists. This reads the rows of the batch-size
sweeps (Figs 4-7) in the same folder that carry the landscape measured at the end of each run
(`--landscape`: top eigenvalue and trace of the mean-loss Hessian, |w|^2; `--evidence`: the Laplace
log evidence) and answers, with intervals:
- per curve, how sharpness, trace, |w|^2 and evidence move with B: the slope of ln(sharpness) on ln
  B over the batch sizes at or above the curve's cliff (where the net still trains), with its
  standard error, and the values at the smallest and largest B;
- does broadness peak where test accuracy peaks: B_opt from test accuracy, from the inverse
  sharpness (the B of the flattest minimum), from the inverse trace and from the evidence, each with
  its 95% interval (`analysis.b_opt`), side by side;
- does sharpness depend on (eps, B, m) through g alone: the collapse number of ln(sharpness) in bins
  of g (`analysis.collapse`, as `g-curve` computes it for accuracy), at fixed N and across N;
- the rank correlation (Spearman) of each measure with test accuracy over all points of a sweep,
  with a 95% bootstrap interval over points.
"""

import dataclasses
import math

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
        2000, sim.checks.integer, low=100, help="bootstrap draws of the rank correlations"
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
    )


def _curves(rows):
    """Curves (one family, B varying) of the rows that carry the landscape; per curve the batch
    sizes and (seeds x B) tables of accuracy and of every measure present."""
    rows = [r for r in rows if r["config"].get("landscape")]
    out = {}
    for family, sel in sorted(group_rows(rows, _family).items()):
        names = ["test_accuracy"] + [m for m in MEASURES if any(m in r for r in sel)]
        dead = next(
            (k for k in ("dead_fraction", "negative_fraction") if any(k in r for r in sel)), None
        )
        names += [dead] if dead else []
        batch_sizes, _, table = analysis.seed_table(sel, names)
        out[family] = dict(batch_sizes=batch_sizes, table=table, dead=dead)
    return out


def _label(family):
    lr, m, n, steps = family[:4]
    return f"eps {lr:g}, m {m:g}, N {n}, {steps} updates{_setup_label(family)}"


def _curve_summary(family, curve, k):
    grid, table = curve["batch_sizes"], curve["table"]
    n = family[2]
    stats = {m: [analysis.mean_se(table[m][:, j]) for j in range(len(grid))] for m in table}
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
    # how sharpness moves with B where the net trains: at and above the cliff
    start = cliff["b_cliff"] if math.isfinite(cliff["b_cliff"]) else 0.0
    trend = {}
    for m in ("sharpness", "hessian_trace", "w_norm_sq"):
        if m not in table:
            continue
        xs = [
            b
            for j, b in enumerate(grid)
            if b >= start and b < n and stats[m][j][2] > 0 and stats[m][j][0] > 0
        ]
        ys = [stats[m][grid.index(b)][0] for b in xs]
        if len(xs) >= 3:
            slope, se = analysis.loglog_slope(xs, ys, 0.0)
            trend[m] = dict(
                slope=slope, se=se, batch_sizes=xs, low_b=ys[0], high_b=ys[-1], ratio=ys[-1] / ys[0]
            )
    return dict(
        label=_label(family),
        lr=family[0],
        momentum=family[1],
        n_train=n,
        steps=family[3],
        batch_sizes=grid,
        g=[family[0] * (n / b - 1) / (1 - family[1]) for b in grid],
        stats=stats,
        dead_key=curve["dead"],
        b_cliff=cliff["b_cliff"],
        b_cliff_ci95=cliff["b_cliff_ci95"],
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
COLLAPSED = ("sharpness", "hessian_trace", "sharpness_time")
COLLAPSED_NAMES = {
    "sharpness": "sharpness",
    "hessian_trace": "hessian_trace",
    "sharpness_time": "sharpness x t (t = eps steps/(1 - m), all budgets)",
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
    """g-curve's points, with the seeds' ln(measure) in place of accuracy."""
    out = []
    for c in curves:
        for j, b in enumerate(c["batch_sizes"]):
            values = _collapse_values(c, measure, j)
            if b >= c["n_train"] or values is None:
                continue
            values = values[np.isfinite(values) & (values > 0)]
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
                    accuracy=analysis.mean_se(np.log(values)),
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
    out = {"sources": {}, "collapse": {}, "rank_correlation": {}}
    fixed_n = {}
    for name in SOURCES:
        curves, setups = [], {}
        for family, curve in _curves(sources[name] or []).items():
            group = setups.setdefault(_setup_label(family), [])
            # the curve's bootstrap stream: its index among its own setup's curves
            s = _curve_summary(family, curve, len(group))
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
            for m in COLLAPSED:
                pts = _collapse_points(group, name, m)
                if name == "fig6":
                    out["collapse"].setdefault(m, {})["across_n" + label] = analysis.collapse(
                        pts, cfg.bin_factor
                    )
                else:
                    fixed_n.setdefault((m, label), []).extend(pts)
        for c in curves:
            c.pop("_table")
        out["sources"][name] = curves
    for (m, label), pts in sorted(fixed_n.items()):
        if pts:
            out["collapse"].setdefault(m, {})["fixed_n" + label] = analysis.collapse(
                _unique(pts), cfg.bin_factor
            )
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


def figure(summary: dict, cfg: Config, out) -> None:
    plt = plotting.pyplot()
    curves = [(name, c) for name, cs in summary["sources"].items() for c in cs]
    if not curves:
        print(
            "minima: no rows with the landscape in this folder (run Figs 4-7 with --landscape true)"
        )
        return
    panels = ("test_accuracy", "sharpness", "hessian_trace", "log_evidence")
    fig, axes = plt.subplots(2, 5, figsize=(21, 7.5))
    for k, (name, c) in enumerate(curves):
        color = f"C{k % 10}"
        b = np.asarray(c["batch_sizes"], float)
        for ax, m in zip(axes[0], panels):
            if m not in c["stats"]:
                continue
            mean = np.array([v[0] for v in c["stats"][m]])
            se = np.nan_to_num(np.array([v[1] for v in c["stats"][m]]))
            ax.errorbar(
                b,
                mean,
                yerr=1.96 * se,
                color=color,
                marker="o",
                ms=3,
                capsize=2,
                label=f"{name}: {c['label']}",
            )
            if m in c["optima"]:
                lo, hi = c["optima"][m]["b_opt_ci95"]
                if math.isfinite(lo) and math.isfinite(hi):
                    ax.axvspan(lo, hi, color=color, alpha=0.08)
            if m == "sharpness":
                t = sde_time(c["lr"], c["momentum"], c["steps"])
                for ax_g, scale in ((axes[1][0], 1.0), (axes[1][1], t)):
                    ax_g.errorbar(
                        np.asarray(c["g"]),
                        scale * mean,
                        yerr=1.96 * scale * se,
                        color=color,
                        marker="o",
                        ms=3,
                        capsize=2,
                    )
        if c["dead_key"]:
            mean = np.array([v[0] for v in c["stats"][c["dead_key"]]])
            axes[1][2].plot(b, mean, color=color, marker="o", ms=3)
        if "sharpness" in c["stats"]:
            acc = np.array([v[0] for v in c["stats"]["test_accuracy"]])
            sharp = np.array([v[0] for v in c["stats"]["sharpness"]])
            axes[1][3].plot(sharp, acc, color=color, marker="o", ms=3, ls="none")
        if "w_norm_sq" in c["stats"]:
            mean = np.array([v[0] for v in c["stats"]["w_norm_sq"]])
            axes[1][4].plot(b, mean, color=color, marker="o", ms=3)
    titles = (
        "test accuracy",
        "top eigenvalue of H_mean (Lanczos)",
        "tr H_mean (Hutchinson)",
        "log evidence (Laplace, SLQ; prior lam = 1)",
    )
    for ax, title, m in zip(axes[0], titles, panels):
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
    axes[0][1].set_yscale("log")
    axes[0][2].set_yscale("log")
    axes[0][0].set_ylabel("mean (95% interval)")
    axes[0][0].legend(fontsize=5)
    axes[1][0].set(
        xscale="log",
        yscale="log",
        xlabel="noise scale g = eps (N/B - 1)/(1 - m)",
        ylabel="top eigenvalue of H_mean",
        title="sharpness against g",
    )
    axes[1][1].set(
        xscale="log",
        yscale="log",
        xlabel="noise scale g = eps (N/B - 1)/(1 - m)",
        ylabel="top eigenvalue x t",
        title="sharpness x SDE time t = eps steps/(1 - m), against g",
    )
    axes[1][2].set(
        xscale="log",
        xlabel="batch size B",
        ylabel="fraction of hidden units dead (or negative)",
        title="dead units at the end",
    )
    axes[1][3].set(
        xscale="log",
        xlabel="top eigenvalue of H_mean",
        ylabel="test accuracy",
        title="accuracy against sharpness (point means)",
    )
    axes[1][4].set(
        xscale="log",
        yscale="log",
        xlabel="batch size B",
        ylabel="|w|^2",
        title="squared norm of the parameters at the end",
    )
    ax = axes[0][4]
    ax.axis("off")
    text = ["rank correlation with test accuracy (95%):"]
    for name, corr in summary["rank_correlation"].items():
        for m, v in corr.items():
            if v:
                text.append(
                    f"{name} {m}: {v['rho']:+.2f} [{v['ci95'][0]:+.2f}, {v['ci95'][1]:+.2f}]"
                )
    for m, c in summary["collapse"].items():
        for where, v in c.items():
            if v["bins"]:
                text.append(
                    f"collapse of ln {COLLAPSED_NAMES[m]} onto g ({where}): "
                    f"{v['rms_ratio']:.2f} s.e."
                )
    ax.text(0, 1, "\n".join(text), va="top", fontsize=7, family="monospace")
    caption = (
        "Rows of the batch-size sweeps in this folder measured with --landscape: top eigenvalue "
        "of the "
        "mean-loss Hessian (20 Lanczos steps; its residual bound is recorded), trace (20 "
        "Rademacher probes), "
        "log evidence (SLQ, 10 probes x 60 steps, where measured). Bars: 95% intervals over "
        "seeds; bands: "
        "B_opt of each measure with its 95% interval."
    )
    out.save(fig, "minima", summary, caption)


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
            for m, t in c["trend"].items():
                lines.append(
                    f"    {m}: x{t['ratio']:.2f} from B = {t['batch_sizes'][0]} to "
                    f"{t['batch_sizes'][-1]}; "
                    f"slope of ln on ln B {t['slope']:+.2f} ± {t['se']:.2f}"
                )
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
                    f"  ln {COLLAPSED_NAMES[m]} onto g ({where.replace('_n', ' n')}): no bin of g "
                    "holds two "
                    "families trained for the same number of updates"
                )
                continue
            lines.append(
                f"  ln {COLLAPSED_NAMES[m]} onto g ({where.replace('_n', ' n')}): spread / seed "
                "s.e. = "
                f"{v['rms_ratio']:.2f} "
                f"over {len(v['bins'])} bins"
            )
    return "\n".join(lines)


EXPERIMENTS = (
    Experiment(
        name="minima",
        summary="sharpness and evidence of the minima against B, g and test accuracy (Figs 4-7)",
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
