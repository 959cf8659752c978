"""SGD and its SDE through the small-batch cliff: where each falls, and whether the hidden units
die.

784-800-10 net, momentum m = 0.9, eps = 0.1, no L2; for each N and batch size B, SGD and its SDE at
the same g = eps (N/B - 1)/(1 - m) (semi-implicit, exact noise g F, dt = eps/(N r)) from the same
initialisations, trained for the same number of updates. Recorded along training: test accuracy and
the fraction of hidden ReLU units inactive on every training example (dead: their gradient is zero
on every batch, and under the SDE's drift too); at the end, the landscape (top eigenvalue and trace
of the mean-loss Hessian, |w|^2). Per (dynamics, r, N): the cliff (where seed-mean accuracy falls
half-way from its peak to chance, with its 95% interval, as in Figs 4-7) and where half the units
are dead. Across N: the slope of ln B_cliff on ln N, with its interval. A cliff at constant step per
example eps/(B (1 - m)) has slope 0; one at constant g (constant g/N is the SDE's temperature in
mean-loss time) has slope 1.
Quick: N = 500 and 1000, B = 2 ... 64, 1,500 updates, 2 seeds. Paper: N = 500, 1000, 4000,
B = 2 ... 128, 4 seeds, and r = 4 at N = 500.
"""

import dataclasses
import math

import numpy as np

import sim

from .. import analysis
from ..runner import plotting, pools, tasks
from ..runner.contract import Experiment, RunContext, param
from ..runner.rows import final_row, group_rows

checks = sim.checks
CHANCE = 0.1


@dataclasses.dataclass(frozen=True)
class Config(tasks.NetSetup):
    lr: float = param(0.1, checks.positive, help="learning rate eps")
    momentum: float = param(0.9, checks.momentum, help="momentum m")
    n_trains: tuple = param((500, 1000), checks.integer, low=10, help="training-set sizes N")
    batch_sizes: tuple = param((2, 4, 8, 16, 32, 64), checks.integer, help="batch sizes B")
    steps: int = param(1500, checks.integer, help="updates per run (the SDE: the same SDE time)")
    records: int = param(
        15, checks.integer, help="records along training (to see the dead fraction settle)"
    )
    refinements: tuple = param((1,), checks.integer, help="SDE steps per SGD step r")
    fine_n: int = param(0, checks.integer, low=0, help="> 0: also run the SDE at r = 4 at this N")
    landscape: bool = param(
        True, help="measure the landscape at the end of each run (~1 s per run)"
    )
    seeds: int = param(
        2, checks.integer, low=2, help="seeds (one initialisation each, shared by SGD and SDE)"
    )

    def check(self):
        if len(set(self.batch_sizes)) < 2:
            raise sim.InputError(
                "batch-sizes needs at least two distinct values (a cliff needs a curve)"
            )
        for b in self.batch_sizes:
            checks.integer("batch-sizes", b, low=1, high=min(self.n_trains))


def grid(cfg: Config) -> list[dict]:
    source = pools.source(cfg.mnist)
    record_every = max(1, cfg.steps // cfg.records)
    points = []
    for n in cfg.n_trains:
        runs = [("sgd", 1)] + [("sde", r) for r in cfg.refinements]
        if cfg.fine_n == n and 4 not in cfg.refinements:
            runs.append(("sde", 4))
        for dynamics, r in runs:
            for b in cfg.batch_sizes:
                points.append(
                    dict(
                        model="net",
                        dynamics=dynamics,
                        refinement=r,
                        lr=cfg.lr,
                        momentum=cfg.momentum,
                        l2=0.0,
                        n_train=n,
                        batch_size=b,
                        steps=cfg.steps,
                        record_every=record_every,
                        g=sim.noise_scale(cfg.lr, n, b, cfg.momentum),
                        data=source,
                        **tasks.setup_of(cfg),
                        **({"landscape": True} if cfg.landscape else {}),
                    )
                )
    return points


def evaluate(run: RunContext, points: list[dict], seeds: list[int]) -> list[list[dict]]:
    """Each point: SGD or its SDE over the seeds (one compiled loop); per seed the final metrics,
    the dead fraction along training, and the landscape at the end."""
    out = []
    for p in points:
        traj, data = tasks.train(
            run,
            p,
            seeds,
            sde=dict(scheme="semi-implicit", refinement=p["refinement"]),
            lr=p["lr"],
            batch_size=p["batch_size"],
            momentum=p["momentum"],
            l2=p["l2"],
            steps=p["steps"],
            record_every=p["record_every"],
        )
        rows = []
        for s, seed in enumerate(seeds):
            row = final_row(
                traj,
                s,
                record_steps=traj.steps.tolist(),
                accuracy_curve=traj.test_accuracy[s].tolist(),
                **{f"{k}_curve": v[s].tolist() for k, v in traj.diagnostics.items()},
            )
            if p.get("landscape") and not row["diverged"]:
                row.update(tasks.landscape(traj.model(s), data, key=run.keys.measure(seed)))
            rows.append(row)
        out.append(rows)
    return out


def _dead_key(rows):
    return next((k for k in ("dead_fraction", "negative_fraction") if k in rows[0]), None)


def _half_dead(grid, dead):
    """B where the seed-mean dead fraction, read from large B down, first rises to 1/2 (linear in ln
    B)."""
    with np.errstate(all="ignore"):
        alive = 1 - np.nanmean(dead, axis=0)
    ln_b = analysis.first_fall(np.log(grid)[::-1], alive[::-1], 0.5)
    return math.exp(ln_b) if math.isfinite(ln_b) else math.nan


def summarize(rows, cfg: Config) -> dict:
    curves = {}
    key = lambda c: (c["dynamics"], c["refinement"], c["n_train"])  # noqa: E731
    for k, ((dynamics, r, n), sel) in enumerate(sorted(group_rows(rows, key).items())):
        by_b = group_rows(sel, lambda c: c["batch_size"])
        dead_name = _dead_key(sel)
        names = ["test_accuracy", "test_xent", "sharpness", "hessian_trace", "w_norm_sq"] + (
            [dead_name] if dead_name else []
        )
        grid, seeds, table = analysis.seed_table(sel, names)
        cliff = analysis.b_cliff(grid, table["test_accuracy"], floor=CHANCE, seed=k)
        # has the dead fraction settled? its change over the last third of training, per batch size
        settle = []
        if dead_name:
            for b in grid:
                curves_b = [row[f"{dead_name}_curve"] for row in by_b[b] if not row["diverged"]]
                if curves_b:
                    c = np.asarray(curves_b)
                    settle.append(float(np.max(np.abs(c[:, -1] - c[:, (2 * c.shape[1]) // 3]))))
                else:
                    settle.append(math.nan)
        curves[f"{dynamics} r={r} N={n}"] = dict(
            dynamics=dynamics,
            refinement=r,
            n_train=n,
            batch_sizes=grid,
            g=[
                sel[0]["config"]["lr"] * (n / b - 1) / (1 - sel[0]["config"]["momentum"])
                for b in grid
            ],
            **{m: [analysis.mean_se(table[m][:, j]) for j in range(len(grid))] for m in names},
            dead_key=dead_name,
            dead_settled_change=settle,
            b_cliff=cliff["b_cliff"],
            b_cliff_ci95=cliff["b_cliff_ci95"],
            below_grid=cliff["below_grid"],
            no_peak=cliff["no_peak"],
            log_draws=cliff["log_draws"],
            b_half_dead=_half_dead(grid, table[dead_name]) if dead_name else math.nan,
            seeds=len(seeds),
            diverged_runs=sum(row["diverged"] for row in sel),
        )
    out = {
        "curves": curves,
        "steps": cfg.steps,
        "lr": cfg.lr,
        "momentum": cfg.momentum,
        "setup": tasks.setup_of(cfg) or "default",
        "slopes": {},
        "same_n": {},
    }
    for dynamics, r in sorted({(c["dynamics"], c["refinement"]) for c in curves.values()}):
        sel = [c for c in curves.values() if c["dynamics"] == dynamics and c["refinement"] == r]
        sel.sort(key=lambda c: c["n_train"])
        if len(sel) > 1 and all(math.isfinite(c["b_cliff"]) for c in sel):
            out["slopes"][f"{dynamics} r={r}"] = analysis.loglog_slope_ci(
                [c["n_train"] for c in sel], sel, key="b_cliff"
            )
    for n in sorted({c["n_train"] for c in curves.values()}):
        sgd, sde = curves.get(f"sgd r=1 N={n}"), curves.get(f"sde r=1 N={n}")
        if sgd and sde and math.isfinite(sgd["b_cliff"]) and math.isfinite(sde["b_cliff"]):
            ratio, ci = analysis.ratio_ci(sde, sgd, key="b_cliff")
            out["same_n"][str(n)] = dict(sde_over_sgd=ratio, ci95=ci)
    for c in curves.values():
        c.pop("log_draws")
    return out


def figure(summary, cfg: Config, out) -> None:
    plt = plotting.pyplot()
    curves = summary["curves"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    ns = sorted({c["n_train"] for c in curves.values()})
    for name, c in curves.items():
        color = f"C{ns.index(c['n_train'])}"
        ls = "-" if c["dynamics"] == "sgd" else ("--" if c["refinement"] == 1 else ":")
        label = (
            f"{c['dynamics'].upper()}{'' if c['refinement'] == 1 else ' r=' + str(c['refinement'])}"
            f" N={c['n_train']}"
        )
        b = np.asarray(c["batch_sizes"], float)
        for ax, m, x in (
            (axes[0], "test_accuracy", b),
            (axes[2], "test_accuracy", np.asarray(c["g"])),
        ):
            mean = np.array([v[0] for v in c[m]])
            se = np.nan_to_num(np.array([v[1] for v in c[m]]))
            ax.errorbar(
                x,
                mean,
                yerr=1.96 * se,
                color=color,
                ls=ls,
                marker="o",
                ms=3,
                capsize=2,
                label=label,
            )
        if c["dead_key"]:
            mean = np.array([v[0] for v in c[c["dead_key"]]])
            se = np.nan_to_num(np.array([v[1] for v in c[c["dead_key"]]]))
            axes[1].errorbar(
                b,
                mean,
                yerr=1.96 * se,
                color=color,
                ls=ls,
                marker="o",
                ms=3,
                capsize=2,
                label=label,
            )
        if math.isfinite(c["b_cliff"]):
            lo, hi = c["b_cliff_ci95"]
            axes[0].errorbar(
                [c["b_cliff"]],
                [0.05],
                xerr=[[c["b_cliff"] - lo], [hi - c["b_cliff"]]],
                color=color,
                marker="v",
                ls="none",
                ms=6,
                capsize=2,
            )
    axes[0].axhline(CHANCE, color="grey", lw=0.8, ls=":")
    from matplotlib.ticker import FuncFormatter, NullFormatter

    label = FuncFormatter(lambda v, _: f"{v:g}")
    batch_sizes = sorted({b for c in curves.values() for b in c["batch_sizes"]})
    for ax in axes:
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(label)
        ax.xaxis.set_minor_formatter(NullFormatter())
    for ax in axes[:2]:  # the batch sizes run, labelled (a grid within a decade has no major tick)
        ax.set_xticks(batch_sizes, [f"{b:g}" for b in batch_sizes])
    low, high = axes[2].get_xlim()
    if high / low <= 10:  # within a decade: label the minor ticks of g too
        axes[2].xaxis.set_minor_formatter(label)
    axes[0].set(
        xlabel="batch size B",
        ylabel="test accuracy (mean, 95% interval)",
        title="accuracy; triangles: the cliff with its 95% interval",
    )
    axes[1].set(
        xlabel="batch size B",
        ylabel="fraction of hidden units dead",
        title="dead ReLU units at the end",
    )
    axes[2].set(
        xlabel="noise scale g = eps (N/B - 1)/(1 - m)",
        ylabel="test accuracy",
        title="the same against g",
    )
    axes[0].legend(fontsize=7)
    slopes = "; ".join(
        f"{k}: ln B_cliff on ln N slope {v['slope']:.2f} [{v['slope_ci95'][0]:.2f}, "
        f"{v['slope_ci95'][1]:.2f}]"
        for k, v in summary["slopes"].items()
    )
    caption = (
        f"784-800-10 net{tasks.setup_label(cfg)}, eps = {cfg.lr}, m = {cfg.momentum}, "
        f"{cfg.steps} updates, "
        f"{max(c['seeds'] for c in curves.values())} seeds; SDE semi-implicit with exact noise g "
        "F at the "
        f"same g. Dead: inactive on every training example. {slopes}"
    )
    out.save(fig, "cliff", summary, caption)


def report(summary, cfg: Config) -> str:
    lines = [
        f"cliff: eps = {cfg.lr}, m = {cfg.momentum}, {cfg.steps} updates{tasks.setup_label(cfg)}",
        f"  {'run':<18}{'B_cliff [95%]':>26}{'B half dead':>13}  accuracy by B (dead fraction)",
    ]
    for name, c in summary["curves"].items():
        lo, hi = c["b_cliff_ci95"]
        dead = c[c["dead_key"]] if c["dead_key"] else [(math.nan,)] * len(c["batch_sizes"])
        cells = " ".join(
            f"{b}:{a[0]:.2f}({d[0]:.2f})"
            for b, a, d in zip(c["batch_sizes"], c["test_accuracy"], dead)
        )
        cliff = (
            f"{'no peak on the grid':>26}"
            if c["no_peak"]
            else f"{c['b_cliff']:>10.1f} [{lo:6.1f}, {hi:6.1f}]"
        )
        lines.append(f"  {name:<18}{cliff}{c['b_half_dead']:>13.1f}  {cells}")
    for k, v in summary["slopes"].items():
        lines.append(
            f"  {k}: slope of ln B_cliff on ln N {v['slope']:.2f} [{v['slope_ci95'][0]:.2f}, "
            f"{v['slope_ci95'][1]:.2f}] (0: constant step per example; 1: constant g)"
        )
    for n, v in summary["same_n"].items():
        lines.append(
            f"  N = {n}: SDE cliff / SGD cliff {v['sde_over_sgd']:.2f} [{v['ci95'][0]:.2f}, "
            f"{v['ci95'][1]:.2f}]"
        )
    return "\n".join(lines)


EXPERIMENTS = (
    Experiment(
        name="cliff",
        title="SGD and its SDE through the small-batch cliff: accuracy and dead units against B "
        "and N",
        config=Config,
        presets={
            "tiny": Config(n_trains=(100, 200), batch_sizes=(4, 32), steps=40, records=2, seeds=2),
            "quick": Config(),
            "paper": Config(
                n_trains=(500, 1000, 4000),
                batch_sizes=(2, 4, 8, 16, 32, 64, 128),
                seeds=4,
                fine_n=500,
            ),
        },
        grid=grid,
        evaluate=evaluate,
        summarize=summarize,
        figure=figure,
        report=report,
        chunk_size=1,
        section="studies",
        cost=lambda p: (
            p["steps"]
            * (p["n_train"] if p["dynamics"] == "sde" else p["batch_size"] + 30)
            * (p["refinement"] if p["dynamics"] == "sde" else 1)
        ),
    ),
)
