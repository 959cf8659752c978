"""The curve in g: test accuracy against the noise scale g = eps (N/B - 1)/(1 - m) for every point
of the batch-size sweeps (Figs 4, 5, 7 and, per N, Fig 6), SGD, read from their rows in the same
folder.

If g alone governs generalisation (the paper's claim), points of different (eps, B, m) with equal g
fall on one curve. How far they collapse, as a number: the points are binned in ln g (bins a factor
2 wide) and by training budget (only points trained for the same number of updates are compared); in
each bin holding points of at least two (eps, m) families, the spread (standard deviation) of the
point means against the seeds' standard error of a point mean. Fig 4's rows are used where the
folder has them (at paper scale Fig 4 is Fig 5's eps = 0.1 series). A ratio near 1 is a collapse
within seed noise; well above 1, g does not tell the whole story. Reported per bin and overall (root
mean square over bins), with the N sweep's points separately (there test sets differ with N).
"""

import dataclasses

import numpy as np

import sim

from .. import analysis
from ..runner import plotting, tasks
from ..runner.contract import Experiment, Rows, RunContext, param

SOURCES = ("fig4", "fig5", "fig7", "fig6")


@dataclasses.dataclass(frozen=True)
class Config(tasks.NetSetup):
    bin_factor: float = param(2.0, sim.checks.positive, help="width of a bin in g, as a factor")
    seeds: int = param(1, help="unused: this experiment only reads other experiments' rows")


def grid(cfg: Config) -> list[dict]:
    return []


def evaluate(run: RunContext, points, seeds):
    return []


def _key(c):
    return (c["lr"], c["momentum"], c["n_train"], c["batch_size"], c["steps"])


def _variant(c):
    """How a point's run was measured: (landscape, evidence); (False, False) is the plain run."""
    return (bool(c.get("landscape")), bool(c.get("evidence")))


def _own_rows(rows, cfg: Config, source):
    """The rows of `source` of this config's net setup, one run per point and seed: of each point
    (eps, m, N, B, steps) the rows of its plain run where it has one, else of its run measured with
    the landscape (then with the evidence too). Two rows left for one point and seed (another data
    pool or L2 in one file) are refused: which one is the point's is not in the rows."""
    setup = tasks.setup_of(cfg)
    own = [r for r in rows if tasks.setup_of(r["config"]) == setup]
    variants = {}
    for r in own:
        variants.setdefault(_key(r["config"]), set()).add(_variant(r["config"]))
    chosen = [r for r in own if _variant(r["config"]) == min(variants[_key(r["config"])])]
    seen = set()
    for r in chosen:
        key = (*_key(r["config"]), r["seed"])
        if key in seen:
            raise sim.InputError(
                f"{source}'s rows hold two runs of eps = {key[0]:g}, m = {key[1]:g}, N = {key[2]}, "
                f"B = {key[3]}, {key[4]} updates, seed {key[5]}: run g-curve on a folder of one "
                f"{source} sweep per setup and budget"
            )
        seen.add(key)
    return chosen


def _points(rows, source):
    """One entry per point: its g, family (eps, m, N), the seeds' test accuracies."""
    out = {}
    for r in rows:
        c = r["config"]
        if r["diverged"]:
            continue
        out.setdefault(_key(c), []).append(r["test_accuracy"])
    return [
        dict(
            source=source,
            lr=k[0],
            momentum=k[1],
            n_train=k[2],
            batch_size=k[3],
            steps=k[4],
            g=k[0] * (k[2] / k[3] - 1) / (1 - k[1]),
            accuracy=analysis.mean_se(v),
        )
        for k, v in out.items()
        if k[3] < k[2]
    ]  # full batch: g = 0, off a log axis


@dataclasses.dataclass(frozen=True)
class Reads:
    """The batch-size sweeps' rows in this folder (every setup's: `summarize` keeps its own): Figs
    5-7 needed, Fig 4 where it is there."""

    fig5: Rows
    fig7: Rows
    fig6: Rows
    fig4: Rows | None = None


def summarize(rows, cfg: Config, reads: Reads) -> dict:
    sources = dict(fig4=reads.fig4 or [], fig5=reads.fig5, fig7=reads.fig7, fig6=reads.fig6)
    points = {name: _points(_own_rows(sources[name], cfg, name), name) for name in SOURCES}
    # A configuration run by two sweeps (Fig 4 is Fig 5's eps = 0.1 series and Fig 7's m = 0.9 one)
    # is one point, taken from one sweep only: its seeds share initialisations with the other's, so
    # two copies would be neither two points of one family nor independent seeds.
    fixed_n, seen = [], set()
    for name in ("fig5", "fig7", "fig4"):
        for p in points[name]:
            key = (p["lr"], p["momentum"], p["n_train"], p["batch_size"], p["steps"])
            if key not in seen:
                seen.add(key)
                fixed_n.append(p)
    return dict(
        points=points,
        collapse=analysis.collapse(fixed_n, cfg.bin_factor),
        collapse_n=analysis.collapse(points["fig6"], cfg.bin_factor),
    )


def figure(summary: dict, cfg: Config, out) -> None:
    plt = plotting.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    markers = {"fig4": "o", "fig5": "s", "fig7": "^", "fig6": "D"}
    for ax, names, title, key in (
        (axes[0], ("fig4", "fig5", "fig7"), "Figs 4, 5, 7 (N fixed)", "collapse"),
        (axes[1], ("fig6",), "Fig 6 (N swept)", "collapse_n"),
    ):
        families = sorted(
            {(p["lr"], p["momentum"], p["n_train"]) for n in names for p in summary["points"][n]}
        )
        for name in names:
            for p in summary["points"][name]:
                k = families.index((p["lr"], p["momentum"], p["n_train"]))
                ax.errorbar(
                    p["g"],
                    p["accuracy"][0],
                    yerr=np.nan_to_num(p["accuracy"][1]),
                    marker=markers[name],
                    ms=4,
                    color=f"C{k % 10}",
                    ls="none",
                    alpha=0.8,
                )
        for k, (lr, m, n) in enumerate(families):
            ax.plot([], [], "o", color=f"C{k % 10}", label=f"eps {lr:g}, m {m:g}, N {n}")
        ax.set_xscale("log")
        ax.set_xlabel("noise scale g = eps (N/B - 1)/(1 - m)")
        ratio = summary[key]["rms_ratio"]
        ax.set_title(f"{title}: spread / seed s.e. = {ratio:.2f} (rms over bins)")
        ax.legend(fontsize=6, ncol=2)
    axes[0].set_ylabel("test accuracy (mean ± s.e. over seeds)")
    caption = (
        f"SGD points of the batch-size sweeps in this folder, net{tasks.setup_label(cfg)} "
        "(marker: o fig4, s fig5, ^ fig7, D fig6); "
        f"collapse: spread of point means within bins of g a factor {cfg.bin_factor:g} wide, "
        "against the seeds' standard error."
    )
    out.save(fig, "g-curve", {k: v for k, v in summary.items() if k != "points"}, caption)


def report(summary: dict, cfg: Config) -> str:
    lines = [
        f"g-curve: do points of equal g collapse onto one curve? (net{tasks.setup_label(cfg)})"
    ]
    for key, title in (("collapse", "N fixed (Figs 4, 5, 7)"), ("collapse_n", "N swept (Fig 6)")):
        c = summary[key]
        lines.append(
            f"  {title}: spread / seed s.e. = {c['rms_ratio']:.2f} (rms over {len(c['bins'])} bins)"
        )
        for b in c["bins"]:
            lines.append(
                f"    g in [{b['g_low']:.3g}, {b['g_high']:.3g}): {b['points']} points of "
                f"{b['families']} "
                f"families, {b['steps']} updates, spread {b['spread']:.4f} = {b['ratio']:.1f} s.e."
            )
    return "\n".join(lines)


EXPERIMENTS = (
    Experiment(
        name="g-curve",
        title="test accuracy against g for every point of Figs 4-7: one curve?",
        config=Config,
        presets={"tiny": Config(), "quick": Config(), "paper": Config()},
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
