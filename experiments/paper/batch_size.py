"""Figs 4-7 (Smith & Le 2018): test accuracy after a training budget against the batch size B, for
one or more values of a second variable (eps, N or m). Points of one (N, B, steps) share one
compiled loop and run together with per-run learning rates and momenta.

784-800-10 net, momentum SGD, embedded MNIST (N = 1000 unless swept), no L2, seeds' mean and
standard error (one initialisation per seed). B_opt is the vertex of a parabola in ln B fitted near
the best grid point (weighted by each mean's standard error), from test accuracy and from test
cross-entropy, with a 95% bootstrap interval over seeds; the slope of ln B_opt against ln x gets its
interval from the same bootstrap (`analysis`). Each curve also gives its small-batch cliff (where
accuracy is half-way from its peak to chance), g at B_opt and the step per example eps/(B (1 - m))
at both, to read B_opt against the paper's law (constant g) and the cliff's (constant step).
`refine` adds batch sizes at 2^(1/2) spacing around each coarse peak. Chosen here (the
paper does not state them): the grids, eps = 0.1 and m = 0.9 unless swept (at the paper's eps = 1,
m = 0.9 this net stays at chance; see fig3), and the budget: the quick variants train for far fewer
updates than the paper's 10,000, so their optimum is that of a shorter run.
"""

import dataclasses
import math
from collections.abc import Callable

import numpy as np

import sim

from .. import analysis
from ..runner import plotting, pools, tasks
from ..runner.contract import Experiment, RunContext, param
from ..runner.rows import final_row, group_rows

checks = sim.checks


@dataclasses.dataclass(frozen=True)
class Config(tasks.NetSetup):
    lrs: tuple = param((0.1,), checks.positive, help="learning rates eps")
    momenta: tuple = param((0.9,), checks.momentum, help="momenta m")
    n_trains: tuple = param((1000,), checks.integer, low=10, help="training-set sizes N")
    batch_sizes: tuple = param((1, 3, 10, 30, 100, 300, 1000), checks.integer, help="batch sizes B")
    steps: int = param(
        2000, checks.integer, help="updates per run (at budget_lr when budget_lr > 0)"
    )
    budget_lr: float = param(
        0.0,
        checks.non_negative,
        help="> 0: equal SDE time, steps scale as steps * budget_lr / lr (Fig 5's rule)",
    )
    budget_n: int = param(
        0,
        checks.integer,
        low=0,
        help="> 0: equal epochs, steps scale as steps * N / budget_n (the N sweep)",
    )
    l2: float = param(0.0, checks.non_negative, help="L2 lam in the summed cost C")
    seeds: int = param(2, checks.integer, help="seeds (one initialisation each)")
    refine: bool = param(
        False,
        help="add batch sizes at 2^(1/2) spacing around each peak of the coarse grid "
        "(and beyond a peak at its edge): an adaptive grid",
    )
    landscape: bool = param(
        False,
        help="also measure each trained net's landscape: top eigenvalue of the "
        "mean-loss Hessian (Lanczos), its trace (Hutchinson) and |w|^2 (~2 s "
        "per run at N = 1000)",
    )
    evidence: bool = param(
        False,
        help="with landscape: also the Laplace log evidence (SLQ, Gaussian prior "
        "lam = evidence-prior + l2; ~1 min per run at N = 1000, about 5x a run of 10,000 updates)",
    )
    evidence_prior: float = param(
        tasks.EVIDENCE_PRIOR,
        checks.positive,
        help="with evidence: the Gaussian prior's precision lam per weight (before l2); the "
        "evidence of this net is mostly the prior's number (docs/results.md), so its optimum "
        "in B depends on it. A point records it only where it is not 1",
    )

    def check(self):
        for b in self.batch_sizes:
            if b > max(self.n_trains):
                raise sim.InputError(
                    f"batch-sizes: B = {b} exceeds N = {max(self.n_trains)} (impossible point)"
                )
        if len(set(self.batch_sizes)) < 2:
            raise sim.InputError(
                "batch-sizes needs at least two distinct values (an optimum needs a curve)"
            )

    def steps_for(self, lr, n_train=None):
        if self.budget_n > 0 and n_train is not None:
            return max(1, int(round(self.steps * n_train / self.budget_n)))
        if self.budget_lr > 0:
            return max(1, int(round(self.steps * self.budget_lr / lr)))
        return self.steps


def grid(cfg: Config) -> list[dict]:
    source = pools.source(cfg.mnist)
    out = []
    for n in cfg.n_trains:
        for lr in cfg.lrs:
            for m in cfg.momenta:
                for b in cfg.batch_sizes:
                    if b <= n:
                        out.append(
                            dict(
                                lr=lr,
                                momentum=m,
                                n_train=n,
                                batch_size=b,
                                steps=cfg.steps_for(lr, n),
                                l2=cfg.l2,
                                data=source,
                                **tasks.setup_of(cfg),
                                **({"landscape": True} if cfg.landscape else {}),
                                **({"evidence": True} if cfg.landscape and cfg.evidence else {}),
                                **_prior_of(cfg),
                            )
                        )
    return out


def _prior_of(cfg: Config) -> dict:
    """The evidence prior a point records: only where the evidence is measured and the prior is not
    the default (so every earlier point keeps its hash)."""
    measured = cfg.landscape and cfg.evidence
    default = cfg.evidence_prior == tasks.EVIDENCE_PRIOR
    return {"evidence_prior": cfg.evidence_prior} if measured and not default else {}


def evaluate(run: RunContext, chunk: list[dict], seeds: list[int]) -> list[list[dict]]:
    """Momentum SGD for a chunk of points of one (N, B, steps), every point and seed side by side in
    one compiled loop with per-run learning rates and momenta; one row per point and seed. The
    chunk's batches come from its first point's own key (`run.point_key`: the hash of the point
    under the figure's results name), so each figure's chunks draw their own batches."""
    first = chunk[0]
    data = tasks.net_data(first, run)
    nets = [tasks.net(first, run.keys.init(s)) for s in seeds]
    key = run.point_key(run.keys.batches, first)
    traj = sim.run_sgd(
        nets * len(chunk),
        data,
        batch_size=first["batch_size"],
        steps=first["steps"],
        lr=[p["lr"] for p in chunk for _ in seeds],
        momentum=[p["momentum"] for p in chunk for _ in seeds],
        l2=[p["l2"] for p in chunk for _ in seeds],
        key=key,
        record_every=first["steps"],
    )
    out = []
    for i, p in enumerate(chunk):
        per_seed = []
        for j, s in enumerate(seeds):
            r = i * len(seeds) + j
            row = final_row(traj, r)
            if p.get("landscape") and not row["diverged"]:
                row.update(
                    tasks.landscape(
                        traj.model(r),
                        data,
                        key=run.keys.measure(s),
                        evidence=p.get("evidence", False),
                        prior=p.get("evidence_prior", tasks.EVIDENCE_PRIOR),
                        l2=p["l2"],
                    )
                )
            per_seed.append(row)
        out.append(per_seed)
    return out


step_cost = tasks.step_cost


def _curves(rows, variable: str):
    """Per value of `variable`: the batch sizes and the (seeds x B) test accuracy and cross-entropy,
    NaN for a diverged run."""
    out = {}
    for value, sel in sorted(group_rows(rows, lambda c: c[variable]).items()):
        grid, _, table = analysis.seed_table(sel, ("test_accuracy", "test_xent"))
        out[value] = (grid, table, sel)
    return out


def optima(rows, variable: str):
    """Per value of `variable` (in order), the curve and its estimates, each under one name: the
    batch sizes, mean ± s.e. test accuracy at each (`accuracy`), the runs that diverged and the
    run's eps, m and N (`run`); from test accuracy, B_opt as the figures print it (`fit`, an
    `analysis.b_opt` result: fit["b_opt"] the vertex of the parabola, with its interval) and the
    best grid point B_grid (`b_grid`, with its `log_sigma` and whether it is `interior`: the same as
    fit["b_grid"]); B_opt from test cross-entropy (`fit_xent`) and the small-batch cliff (`cliff`,
    `analysis.b_cliff`)."""
    result = {}
    for k, (value, (grid, table, sel)) in enumerate(_curves(rows, variable).items()):
        # each curve's bootstrap draws from its own stream (its seeds are its own runs)
        fit = analysis.b_opt(grid, table["test_accuracy"], maximise=True, seed=k)
        result[value] = dict(
            batch_sizes=grid,
            accuracy=[analysis.mean_se(table["test_accuracy"][:, j]) for j in range(len(grid))],
            b_grid=fit["b_grid"],
            log_sigma=fit["log_sigma"],
            interior=fit["edge"] is None and math.isfinite(fit["b_grid"]),
            diverged_runs=sum(r["diverged"] for r in sel),
            fit=fit,
            fit_xent=analysis.b_opt(grid, table["test_xent"], maximise=False, seed=k),
            cliff=analysis.b_cliff(grid, table["test_accuracy"], floor=CHANCE, seed=k),
            run={q: sel[0]["config"][q] for q in ("lr", "momentum", "n_train")},
        )
    return result


# test accuracy of a guess among MNIST's 10 classes: the floor the small-batch cliff falls to
CHANCE = 0.1


def _per_value(o, fit, cliff) -> dict:
    """What the optimum and the cliff say in the units of the two candidate laws: the noise scale
    g = eps (N/B - 1)/(1 - m) at B_opt (constant if the paper's law holds) and the step per example
    eps/(B (1 - m)) at B_opt and at the cliff (constant if the optimum is tied to the cliff)."""
    lr, m, n = o["run"]["lr"], o["run"]["momentum"], o["run"]["n_train"]
    b, c = fit["b_opt"], cliff["b_cliff"]
    return dict(
        g_opt=lr * (n / b - 1) / (1 - m),
        step_per_example_opt=lr / (b * (1 - m)),
        b_cliff=c,
        b_cliff_ci95=cliff["b_cliff_ci95"],
        cliff_below_grid=cliff["below_grid"],
        cliff_no_peak=cliff["no_peak"],
        step_per_example_cliff=lr / (c * (1 - m)),
        opt_over_cliff=b / c,
    )


def refine(rows, cfg: Config) -> list[dict]:
    """Points at 2^(1/2) spacing around the best coarse batch size of every curve (test accuracy),
    and beyond a best point at the grid's edge (`analysis.refinement`); nothing unless
    cfg.refine."""
    if not cfg.refine:
        return []
    first = cfg.batch_sizes[0]
    coarse = [
        r
        for r in rows
        if r["config"]["batch_size"] in cfg.batch_sizes
        or abs(math.log2(r["config"]["batch_size"] / first) % 1) < 1e-9
    ]
    extra = []
    key = lambda c: (c["lr"], c["momentum"], c["n_train"])  # noqa: E731
    for _, sel in sorted(group_rows(coarse, key).items()):
        ((grid, table, _),) = _curves(sel, "lr").values()
        template = sel[0]["config"]
        for b in analysis.refinement(grid, table["test_accuracy"], template["n_train"]):
            extra.append(dict(template, batch_size=b))
    return extra


def numbers(rows, cfg: Config, fig: "_Figure") -> dict:
    """The figure's numbers: per swept value the curve, the best grid point (`b_grid`, ± half a grid
    step) and the continuous B_opt with its bootstrap 95% interval from test accuracy (and from test
    cross-entropy), the small-batch cliff `b_cliff` (`analysis.b_cliff`) and both in the units of
    the two candidate laws (`_per_value`); for Figs 5-7 the slope of ln B_opt on ln x with its 95%
    interval, the same for the cliff where every curve has one on the grid (and, for comparison, the
    old least-squares slope through the grid points)."""
    opt = optima(rows, fig.variable)
    out = {
        "seeds": cfg.seeds,
        "steps": sorted({r["config"]["steps"] for r in rows}),
        "budget": "equal SDE time"
        if cfg.budget_lr
        else ("equal epochs" if cfg.budget_n else "equal updates"),
        "optima": {},  # the net's setup: written beside these by `Outputs`, as for every net run
    }
    for value, o in opt.items():
        fit, fit_x, cliff = o["fit"], o["fit_xent"], o["cliff"]
        curve = ("batch_sizes", "accuracy", "log_sigma", "interior", "diverged_runs")
        out["optima"][str(value)] = dict(
            {q: o[q] for q in curve},
            b_grid=o["b_grid"],
            b_opt=fit["b_opt"],
            b_opt_ci95=fit["b_opt_ci95"],
            method=fit["method"],
            edge=fit["edge"],
            interval_reliable=fit["interval_reliable"],
            b_opt_xent=fit_x["b_opt"],
            b_opt_xent_ci95=fit_x["b_opt_ci95"],
            method_xent=fit_x["method"],
            edge_xent=fit_x["edge"],
            **_per_value(o, fit, cliff),
        )
    if fig.slope_name and len(opt) > 1:
        x = [fig.transform(v) for v in opt]
        fits = [o["fit"] for o in opt.values()]
        fits_x = [o["fit_xent"] for o in opt.values()]
        out.update(analysis.loglog_slope_ci(x, fits))
        xent = analysis.loglog_slope_ci(x, fits_x)
        out.update(slope_xent=xent["slope"], slope_xent_ci95=xent["slope_ci95"])
        cliffs = [o["cliff"] for o in opt.values()]
        # a cliff below the grid has no position
        if all(math.isfinite(c["b_cliff"]) for c in cliffs):
            cl = analysis.loglog_slope_ci(x, cliffs, key="b_cliff")
            out.update(slope_cliff=cl["slope"], slope_cliff_ci95=cl["slope_ci95"])
        grid_slope, grid_se = analysis.loglog_slope(
            x, [o["b_grid"] for o in opt.values()], [o["log_sigma"] for o in opt.values()]
        )
        out.update(slope_grid=grid_slope, slope_grid_se=grid_se, x=x)
    return out


def plot(name, title, label, numbers, out, caption, slope_name=None):
    plt = plotting.pyplot()
    ncols = 2 if slope_name and "slope" in numbers else 1
    fig, axes = plt.subplots(1, ncols, figsize=(5.2 * ncols, 3.9), squeeze=False)
    ax = axes[0, 0]
    opt = numbers["optima"]
    cliff_labelled = False
    for k, (value, o) in enumerate(opt.items()):
        mean = np.array([s[0] for s in o["accuracy"]])
        se = np.nan_to_num(np.array([s[1] for s in o["accuracy"]]))
        ax.errorbar(
            o["batch_sizes"],
            mean,
            yerr=se,
            marker="o",
            ms=3,
            color=f"C{k}",
            label=f"{label} = {float(value):g}" if len(opt) > 1 else None,
        )
        lo, hi = o["b_opt_ci95"]
        if np.isfinite(lo) and np.isfinite(hi):
            ax.axvspan(lo, hi, color=f"C{k}", alpha=0.12)
        # where accuracy is half-way from its peak to chance
        if np.isfinite(o.get("b_cliff", np.nan)):
            ax.plot(
                o["b_cliff"],
                0.5 * (CHANCE + np.nanmax(mean)),
                marker="v",
                ms=7,
                color=f"C{k}",
                mfc="none",
                ls="none",
                label=None if cliff_labelled else "cliff (half-way to chance)",
            )
            cliff_labelled = True
    ax.set_xscale("log")
    ax.set_xlabel("batch size B")
    ax.set_ylabel("test accuracy (mean ± s.e. over seeds)")
    ax.set_title(title)
    if len(opt) > 1:
        ax.legend(fontsize=8)
    if ncols == 2:
        x, y = numbers["x"], [o["b_opt"] for o in opt.values()]
        ci = np.array([o["b_opt_ci95"] for o in opt.values()])
        ax2 = axes[0, 1]
        ax2.errorbar(
            x,
            y,
            yerr=[np.subtract(y, ci[:, 0]), np.subtract(ci[:, 1], y)],
            marker="o",
            ls="none",
            capsize=3,
            label="B_opt (95% bootstrap interval)"
            if numbers["seeds"] >= 4
            else "B_opt (bootstrap interval, < 4 seeds)",
        )
        xs = np.geomspace(min(x), max(x), 20)
        # the fit's centroid
        centre_x, centre_y = np.exp(np.mean(np.log(x))), np.exp(np.mean(np.log(y)))
        lo, hi = numbers["slope_ci95"]
        ax2.plot(
            xs,
            centre_y * (xs / centre_x) ** numbers["slope"],
            ls="--",
            color="grey",
            label=f"fit: slope {numbers['slope']:.2f} [{lo:.2f}, {hi:.2f}]",
        )
        ax2.plot(
            xs, centre_y * (xs / centre_x), ls=":", color="k", lw=0.8, label="slope 1 (the paper)"
        )
        if "slope_cliff" in numbers:
            yc = [o["b_cliff"] for o in opt.values()]
            cc = np.array([o["b_cliff_ci95"] for o in opt.values()])
            clo, chi = numbers["slope_cliff_ci95"]
            ax2.errorbar(
                x,
                yc,
                yerr=[np.subtract(yc, cc[:, 0]), np.subtract(cc[:, 1], yc)],
                marker="v",
                mfc="none",
                ls="none",
                capsize=3,
                color="C3",
                label=f"cliff B: slope {numbers['slope_cliff']:.2f} [{clo:.2f}, {chi:.2f}]",
            )
        ax2.set_xscale("log")
        ax2.set_yscale("log")
        from matplotlib.ticker import FuncFormatter, NullFormatter, ScalarFormatter

        for axis in (ax2.xaxis, ax2.yaxis):
            axis.set_major_formatter(ScalarFormatter())
        low, high = ax2.get_ylim()
        # within a decade, label every minor tick (else the axis has one label); within three,
        # the 2s and 5s (2, 5, 20, 50, ...: every minor label collides there); beyond, none
        minor = ScalarFormatter() if high / low <= 10 else NullFormatter()
        if 10 < high / low <= 1000:
            minor = FuncFormatter(lambda v, _: f"{v:g}" if _mantissa(v) in (2, 5) else "")
        ax2.yaxis.set_minor_formatter(minor)
        ax2.set_xticks(x, [f"{v:g}" for v in x])  # x: the swept values themselves
        ax2.xaxis.set_minor_formatter(NullFormatter())
        ax2.set_xlabel(slope_name)
        ax2.set_ylabel(
            "B_opt and the cliff's B" if "slope_cliff" in numbers else "optimal batch size B_opt"
        )
        ax2.legend(fontsize=7)
    out.save(fig, name, numbers, caption)


def _mantissa(v: float) -> int | None:
    """The leading digit of v where v is that digit times a power of ten (2 for 20), else None."""
    m = v / 10 ** np.floor(np.log10(v))
    return int(round(m)) if abs(m - round(m)) < 1e-6 else None


def report(name, numbers, variable) -> str:
    lines = [
        f"{name}: optimal batch size ({numbers['seeds']} seeds, {numbers['budget']}, "
        f"steps {', '.join(map(str, numbers['steps']))})"
    ]
    if numbers["seeds"] < 4:
        lines.append("  (intervals from fewer than 4 seeds: not 95% intervals)")
    for value, o in numbers["optima"].items():
        best = max((s[0] for s in o["accuracy"] if s[2]), default=math.nan)
        lo, hi = o["b_opt_ci95"]
        lines.append(
            f"  {variable} = {value}: B_opt = {o['b_opt']:.3g} [{lo:.3g}, {hi:.3g}] ({o['method']}"
            + (f", AT THE GRID'S {o['edge'].upper()} EDGE" if o["edge"] else "")
            + f"); best grid point {o['b_grid']:g}, test accuracy {best:.4f}"
            + (f", {o['diverged_runs']} runs diverged" if o["diverged_runs"] else "")
        )
        if "b_cliff" in o:
            clo, chi = o["b_cliff_ci95"]
            lines.append(
                f"      g at B_opt {o['g_opt']:.3g}; cliff "
                + (
                    "below the grid"
                    if o["cliff_below_grid"]
                    else "not placed (the grid stops on it: no peak)"
                    if o["cliff_no_peak"]
                    else f"at B = {o['b_cliff']:.3g} [{clo:.3g}, {chi:.3g}], B_opt / B_cliff = "
                    f"{o['opt_over_cliff']:.2f}, eps/(B (1 - m)) "
                    f"{o['step_per_example_cliff']:.3f} at the "
                    f"cliff, {o['step_per_example_opt']:.3f} at B_opt"
                )
            )
    if "slope" in numbers:
        lo, hi = numbers["slope_ci95"]
        xlo, xhi = numbers["slope_xent_ci95"]
        lines.append(
            f"  slope of ln B_opt: {numbers['slope']:.2f} [{lo:.2f}, {hi:.2f}] from test accuracy, "
            f"{numbers['slope_xent']:.2f} [{xlo:.2f}, {xhi:.2f}] from test cross-entropy (paper: 1)"
        )
    if "slope_cliff" in numbers:
        lo, hi = numbers["slope_cliff_ci95"]
        lines.append(
            f"  slope of ln B_cliff (accuracy half-way to chance): {numbers['slope_cliff']:.2f} "
            f"[{lo:.2f}, {hi:.2f}]"
        )
    return "\n".join(lines)


@dataclasses.dataclass(frozen=True)
class _Figure:
    """What distinguishes Figs 4-7: the swept variable and how its slope is read."""

    name: str
    number: int
    variable: str
    label: str
    slope_name: str | None = None
    transform: Callable = lambda v: v


def _caption(cfg: Config) -> str:
    def values(v):
        return ", ".join(f"{x:g}" for x in v)

    interval = (
        "B_opt's 95% bootstrap interval over seeds"
        if cfg.seeds >= 4
        else f"B_opt's bootstrap interval over {cfg.seeds} seed(s) (fewer than 4: not a 95% "
        "interval)"
    )
    return (
        f"784-800-10 net{tasks.setup_label(cfg)}, momentum SGD, {cfg.seeds} seed(s), steps "
        f"{cfg.steps}"
        + (f" x {cfg.budget_lr:g}/eps" if cfg.budget_lr else "")
        + (f" x N/{cfg.budget_n}" if cfg.budget_n else "")
        + f", eps {values(cfg.lrs)}, "
        f"m {values(cfg.momenta)}, N {values(cfg.n_trains)}. Shaded and bars: {interval} "
        "(parabola in ln B near the peak); triangles: the small-batch cliff, where accuracy is "
        "half-way "
        f"from its peak to chance."
    )


def _experiment(fig: _Figure, title: str, presets: dict) -> Experiment:
    def summarize(rows, cfg):
        return numbers(rows, cfg, fig)

    def figure(nums, cfg, out):
        plot(
            fig.name,
            f"Fig {fig.number}: test accuracy against B",
            fig.label,
            nums,
            out,
            _caption(cfg),
            slope_name=fig.slope_name,
        )

    def report_(nums, cfg):
        return report(fig.name, nums, fig.label)

    return Experiment(
        name=fig.name,
        title=title,
        config=Config,
        presets=presets,
        grid=grid,
        evaluate=evaluate,
        summarize=summarize,
        figure=figure,
        report=report_,
        shape=lambda p: (p["n_train"], p["batch_size"], p["steps"]),
        chunk_size=6,
        section="paper",
        refine=refine,
        cost=step_cost,
    )


# The paper-scale batch-size grid: a factor 2 apart, from below to well above every expected optimum
# (refined around each peak afterwards).
PAPER_B = (2, 4, 8, 16, 32, 64, 128, 256)

EXPERIMENTS = (
    _experiment(
        _Figure("fig4", 4, "lr", "eps"),
        "Fig 4: test accuracy after a fixed budget against B: an interior optimum",
        {
            "tiny": Config(batch_sizes=(1, 10, 100), steps=10, n_trains=(100,), seeds=1),
            "quick": Config(),
            "paper": Config(batch_sizes=PAPER_B, steps=10000, seeds=4, refine=True),
            # the paper's scale with the landscape of every trained net
            "paper-landscape": Config(
                batch_sizes=PAPER_B, steps=10000, seeds=4, refine=True, landscape=True
            ),
        },
    ),
    _experiment(
        _Figure("fig5", 5, "lr", "eps", slope_name="eps"),
        "Fig 5: optimal B against eps (updates proportional to 1/eps), fitted slope",
        {
            "tiny": Config(
                lrs=(0.05, 0.1),
                steps=10,
                budget_lr=0.1,
                batch_sizes=(1, 10, 100),
                n_trains=(100,),
                seeds=1,
            ),
            "quick": Config(
                lrs=(0.025, 0.05, 0.1),
                steps=1000,
                budget_lr=0.1,
                batch_sizes=(1, 3, 10, 30, 100, 300),
            ),
            # The paper's rule, updates proportional to 1/eps (equal SDE time; 10,000 at eps = 0.1),
            # and the fixed budget of 10,000 updates at every eps.
            "paper": Config(
                lrs=(0.025, 0.05, 0.1, 0.2),
                batch_sizes=PAPER_B,
                steps=10000,
                budget_lr=0.1,
                seeds=4,
                refine=True,
            ),
            "paper-updates": Config(
                lrs=(0.025, 0.05, 0.1, 0.2), batch_sizes=PAPER_B, steps=10000, seeds=4, refine=True
            ),
            "quick-leaky": Config(
                lrs=(0.025, 0.05, 0.1),
                steps=1000,
                budget_lr=0.1,
                batch_sizes=(1, 3, 10, 30, 100, 300),
                activation="leaky_relu",
                landscape=True,
            ),
            # the control: a net without dead units (leaky ReLU), the paper's rule
            "paper-leaky": Config(
                lrs=(0.025, 0.05, 0.1, 0.2),
                batch_sizes=PAPER_B,
                steps=10000,
                budget_lr=0.1,
                seeds=4,
                refine=True,
                activation="leaky_relu",
                landscape=True,
            ),
        },
    ),
    _experiment(
        _Figure("fig6", 6, "n_train", "N", slope_name="N"),
        "Fig 6: optimal B against N, fitted slope",
        {
            "tiny": Config(n_trains=(50, 100), steps=10, batch_sizes=(1, 10, 50), seeds=1),
            "quick": Config(n_trains=(250, 500, 1000), batch_sizes=(1, 3, 10, 30, 100, 300)),
            # 10,000 updates at every N (the paper's), and equal epochs (10,000 updates at N =
            # 1000).
            "paper": Config(
                n_trains=(500, 1000, 2000, 4000),
                batch_sizes=PAPER_B + (512, 1024),
                steps=10000,
                seeds=4,
                refine=True,
            ),
            "paper-epochs": Config(
                n_trains=(500, 1000, 2000, 4000),
                batch_sizes=PAPER_B + (512, 1024),
                steps=10000,
                budget_n=1000,
                seeds=4,
                refine=True,
            ),
            # the control: a net without dead units (leaky ReLU), under both budgets
            "paper-leaky": Config(
                n_trains=(500, 1000, 2000, 4000),
                batch_sizes=PAPER_B + (512, 1024),
                steps=10000,
                seeds=4,
                refine=True,
                activation="leaky_relu",
                landscape=True,
            ),
            "paper-leaky-epochs": Config(
                n_trains=(500, 1000, 2000, 4000),
                batch_sizes=PAPER_B + (512, 1024),
                steps=10000,
                budget_n=1000,
                seeds=4,
                refine=True,
                activation="leaky_relu",
                landscape=True,
            ),
            "quick-landscape": Config(
                n_trains=(250, 500, 1000), batch_sizes=(1, 3, 10, 30, 100, 300), landscape=True
            ),
            "quick-leaky": Config(
                n_trains=(250, 500, 1000),
                batch_sizes=(1, 3, 10, 30, 100, 300),
                activation="leaky_relu",
                landscape=True,
            ),
        },
    ),
    _experiment(
        _Figure(
            "fig7", 7, "momentum", "m", slope_name="1/(1 - m)", transform=lambda m: 1 / (1 - m)
        ),
        "Fig 7: optimal B against 1/(1 - m), fitted slope",
        {
            "tiny": Config(
                momenta=(0.0, 0.9), steps=10, batch_sizes=(1, 10, 100), n_trains=(100,), seeds=1
            ),
            "quick": Config(momenta=(0.0, 0.5, 0.9), batch_sizes=(1, 3, 10, 30, 100, 300)),
            # 1/(1 - m) = 1, 2, 4, 8: 10,000 updates each.
            "paper": Config(
                momenta=(0.0, 0.5, 0.75, 0.875),
                batch_sizes=PAPER_B,
                steps=10000,
                seeds=4,
                refine=True,
            ),
            "paper-landscape": Config(
                momenta=(0.0, 0.5, 0.75, 0.875),
                batch_sizes=PAPER_B,
                steps=10000,
                seeds=4,
                refine=True,
                landscape=True,
            ),
        },
    ),
)
