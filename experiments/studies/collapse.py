"""Does test accuracy collapse onto the noise scale g = eps (N/B - 1)/(1 - m)?

Pairs (eps, B) at (nearly) equal g — B = N / (g/eps + 1) rounded, the actual g reported — for three
target g, each trained for the same SDE time T (steps = T N / eps), by SGD and by its SDE
(dt = eps/N, semi-implicit with momentum). If g alone sets the dynamics, the points of one g fall on
one value whatever eps. Reported per target g and dynamics: the spread of the mean test accuracy
over eps against the seeds' standard error (spread / s.e. near 1 = collapse within noise).
Quick: the linear model on the binary task (N = 800), lam = 1, m = 0, g in {1, 4, 16},
eps in {0.05, 0.1, 0.2, 0.4}, T = 0.125 (1,000 steps at eps = 0.1), 8 seeds. `--preset net`: the
784-800-10 net at m = 0.9, g in {10, 30, 100}, eps in {0.05, 0.1, 0.2}, T = 0.05, 4 seeds: 6 minutes
on 2 cores."""

import dataclasses
import math

import numpy as np

import sim

from .. import analysis
from ..runner import plotting, pools, tasks
from ..runner.contract import Experiment, RunContext, param
from ..runner.rows import diagnostics_of

checks = sim.checks


@dataclasses.dataclass(frozen=True)
class Config(tasks.NetSetup):
    model: str = param(
        "logistic", tasks.check_model, help="'logistic' (binary task) or 'net' (ten digits)"
    )
    lrs: tuple = param((0.05, 0.1, 0.2, 0.4), checks.positive, help="learning rates eps")
    noise_scales: tuple = param((1.0, 4.0, 16.0), checks.positive, help="target noise scales g")
    sde_time: float = param(
        0.125, checks.positive, help="SDE time T of every run (steps = T N / eps)"
    )
    momentum: float = param(0.0, checks.momentum, help="momentum m")
    l2: float = param(1.0, checks.non_negative, help="L2 lam in the summed cost C")
    n_train: int = param(800, checks.integer, low=2, help="training-set size N")
    seeds: int = param(
        8, checks.integer, low=2, help="seeds (one initialisation each, shared by all points)"
    )


def grid(cfg: Config) -> list[dict]:
    """Per dynamics, target g and eps: B = N / (g (1 - m)/eps + 1) rounded into [1, N], steps = T N
    / eps."""
    base = dict(
        **tasks.setup_of(cfg),
        model=cfg.model,
        momentum=cfg.momentum,
        l2=cfg.l2,
        n_train=cfg.n_train,
        data=pools.source(cfg.mnist),
    )
    points = []
    for dynamics in ("sgd", "sde"):
        for g in cfg.noise_scales:
            for lr in cfg.lrs:
                b = min(cfg.n_train, max(1, round(cfg.n_train / (g * (1 - cfg.momentum) / lr + 1))))
                steps = max(1, round(cfg.sde_time * cfg.n_train / lr))
                points.append(
                    dict(
                        base,
                        dynamics=dynamics,
                        g_target=g,
                        lr=lr,
                        batch_size=b,
                        steps=steps,
                        g=sim.noise_scale(lr, cfg.n_train, b, cfg.momentum),
                    )
                )
    return points


def evaluate(run: RunContext, points: list[dict], seeds: list[int]) -> list[list[dict]]:
    out = []
    for p in points:
        traj, _ = tasks.train(
            run,
            p,
            seeds,
            sde=dict(scheme="semi-implicit"),
            lr=p["lr"],
            batch_size=p["batch_size"],
            momentum=p["momentum"],
            l2=p["l2"],
            steps=p["steps"],
            record_every=p["steps"],
        )
        out.append(
            [
                dict(
                    test_accuracy=float(traj.test_accuracy[s, -1]),
                    test_xent=float(traj.test_xent[s, -1]),
                    diverged=bool(traj.diverged[s]),
                    **diagnostics_of(traj, s),
                    diverged_step=int(traj.diverged_step[s]) if traj.diverged[s] else None,
                )
                for s in range(len(seeds))
            ]
        )
    return out


def summarize(rows: list[dict], cfg: Config) -> dict:
    """Per dynamics and eps, the points (actual g, mean test accuracy, s.e.); per dynamics and
    target g, the spread of the mean accuracy over eps against the pooled seed s.e."""
    stats = {}
    for row in rows:
        c = row["config"]
        stats.setdefault((c["dynamics"], c["g_target"], c["lr"]), []).append(row)
    points, summary = {}, {}
    for dynamics in ("sgd", "sde"):
        for lr in cfg.lrs:
            xs, ys, es = [], [], []
            for g in cfg.noise_scales:
                mean, se, _ = analysis.mean_se(
                    [r["test_accuracy"] for r in stats[(dynamics, g, lr)] if not r["diverged"]]
                )
                xs.append(stats[(dynamics, g, lr)][0]["config"]["g"])
                ys.append(mean)
                es.append(0 if math.isnan(se) else se)
            points.setdefault(dynamics, []).append(dict(lr=lr, g=xs, accuracy=ys, se=es))
        for g in cfg.noise_scales:
            means, ses = [], []
            for lr in cfg.lrs:
                m, se, n = analysis.mean_se(
                    [r["test_accuracy"] for r in stats[(dynamics, g, lr)] if not r["diverged"]]
                )
                if n:
                    means.append(m)
                    ses.append(se)
            spread = float(np.std(means, ddof=1)) if len(means) > 1 else math.nan
            pooled = float(np.sqrt(np.nanmean(np.square(ses)))) if ses else math.nan
            summary[f"{dynamics} g={g:g}"] = dict(
                accuracy_over_eps=means,
                spread=spread,
                seed_se=pooled,
                spread_over_se=spread / pooled if pooled else math.nan,
            )
    return {"summary": summary, "points": points}


def figure(summary: dict, cfg: Config, out) -> None:
    plt = plotting.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.9), sharey=True)
    for ax, dynamics in zip(axes, ("sgd", "sde")):
        for k, p in enumerate(summary["points"][dynamics]):
            ax.errorbar(
                p["g"],
                p["accuracy"],
                yerr=p["se"],
                marker="o",
                ms=4,
                ls="none",
                color=f"C{k}",
                label=f"eps = {p['lr']:g}",
            )
        ax.set_xscale("log")
        ax.set_xlabel("noise scale g (actual, after rounding B)")
        ax.set_title("SGD" if dynamics == "sgd" else "SDE (dt = eps/N)")
    axes[0].set_ylabel(f"test accuracy at SDE time {cfg.sde_time:g}")
    axes[0].legend(fontsize=8)
    caption = (
        f"{cfg.model}, N = {cfg.n_train}, m = {cfg.momentum}, lam = {cfg.l2}, {cfg.seeds} seeds; "
        "B = N/(g(1-m)/eps + 1) rounded; equal SDE time for every point."
    )
    out.save(fig, "collapse", {"summary": summary["summary"]}, caption)


def report(summary: dict, cfg: Config) -> str:
    lines = [
        f"collapse onto g ({cfg.model}): spread of test accuracy over eps at fixed g, against "
        "seed s.e."
    ]
    for key, s in summary["summary"].items():
        lines.append(
            f"  {key:<14} accuracies {', '.join(f'{a:.4f}' for a in s['accuracy_over_eps'])}; "
            f"spread {s['spread']:.4f} = {s['spread_over_se']:.1f} s.e."
        )
    return "\n".join(lines)


EXPERIMENTS = (
    Experiment(
        name="collapse",
        title="test accuracy against g for pairs (eps, B) at equal g, SGD and SDE",
        config=Config,
        presets={
            "tiny": Config(
                lrs=(0.1, 0.2), noise_scales=(4.0,), sde_time=0.01, n_train=100, seeds=2
            ),
            "quick": Config(),
            "net": Config(
                model="net",
                momentum=0.9,
                l2=0.0,
                n_train=1000,
                noise_scales=(10.0, 30.0, 100.0),
                lrs=(0.05, 0.1, 0.2),
                sde_time=0.05,
                seeds=4,
            ),
        },
        grid=grid,
        evaluate=evaluate,
        summarize=summarize,
        figure=figure,
        report=report,
        chunk_size=1,
        section="studies",
    ),
)
