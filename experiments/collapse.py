"""Study 2 of issue 5: does test accuracy collapse onto the noise scale g = eps (N/B - 1)/(1 - m)?

Pairs (eps, B) at (nearly) equal g — B = N / (g/eps + 1) rounded, the actual g reported — for three
target g, each trained for the same SDE time T (steps = T N / eps), by SGD and by its SDE
(dt = eps/N, semi-implicit with momentum). If g alone sets the dynamics, the points of one g fall on
one value whatever eps. Reported per target g and dynamics: the spread of the mean test accuracy over
eps against the seeds' standard error (spread / s.e. near 1 = collapse within noise).
Quick: the linear model on the binary task (N = 800), lam = 1, m = 0, g in {1, 4, 16},
eps in {0.05, 0.1, 0.2, 0.4}, T = 0.125 (1,000 steps at eps = 0.1), 8 seeds. `--preset net`: the
784-800-10 net at m = 0.9, g in {10, 30, 100}, eps in {0.05, 0.1, 0.2}, T = 0.05, 4 seeds: 6 minutes on 2 cores.
"""

import dataclasses
import math
import pathlib

import numpy as np

import models
import sim

from . import _common
from ._sweep import run_sweep


@dataclasses.dataclass(frozen=True)
class Config:
    model: str = "logistic"
    lrs: tuple = (0.05, 0.1, 0.2, 0.4)
    noise_scales: tuple = (1.0, 4.0, 16.0)
    sde_time: float = 0.125
    momentum: float = 0.0
    l2: float = 1.0
    n_train: int = 800
    seeds: int = 8
    mnist: str | None = None

    def validate(self):
        _common.check_model(self.model)
        for lr in self.lrs:
            sim._checks.positive("lr", lr)
        for g in self.noise_scales:
            sim._checks.positive("noise-scales", g)
        sim._checks.positive("sde-time", self.sde_time)
        sim._checks.momentum("momentum", self.momentum)
        sim._checks.non_negative("l2", self.l2)
        sim._checks.integer("n-train", self.n_train, low=2)
        sim._checks.integer("seeds", self.seeds, low=2)
        return self

    def grid(self):
        points = []
        for g in self.noise_scales:
            for lr in self.lrs:
                b = min(self.n_train, max(1, round(self.n_train / (g * (1 - self.momentum) / lr + 1))))
                steps = max(1, round(self.sde_time * self.n_train / lr))
                points.append(dict(g_target=g, lr=lr, batch_size=b, steps=steps,
                                   g=sim.noise_scale(lr, self.n_train, b, self.momentum)))
        return points


EXPERIMENT = "collapse"
QUICK = Config()
NET = Config(model="net", momentum=0.9, l2=0.0, n_train=1000, noise_scales=(10.0, 30.0, 100.0),
             lrs=(0.05, 0.1, 0.2), sde_time=0.05, seeds=4)
PRESETS = {"net": NET}
TINY = Config(lrs=(0.1, 0.2), noise_scales=(4.0,), sde_time=0.01, n_train=100, seeds=2)


def evaluate(points, seeds, pool):
    out = []
    for p in points:
        traj, _ = _common.train(p, pool, seeds, sde=dict(scheme="semi-implicit"), lr=p["lr"],
                                batch_size=p["batch_size"], momentum=p["momentum"], l2=p["l2"],
                                steps=p["steps"], record_every=p["steps"])
        out.append([dict(test_accuracy=float(traj.test_accuracy[s, -1]), test_xent=float(traj.test_xent[s, -1]),
                         diverged=bool(traj.diverged[s]),
                         diverged_step=int(traj.diverged_step[s]) if traj.diverged[s] else None)
                    for s in range(len(seeds))])
    return out


def main(cfg: Config, out: pathlib.Path) -> None:
    cfg.validate()
    pool = models.load_mnist(cfg.mnist)
    base = dict(model=cfg.model, momentum=cfg.momentum, l2=cfg.l2, n_train=cfg.n_train, data=pool.source)
    points = [dict(base, dynamics=d, **q) for d in ("sgd", "sde") for q in cfg.grid()]
    rows = run_sweep(EXPERIMENT, out, points, seeds=list(range(cfg.seeds)),
                     evaluate=lambda pts, seeds: evaluate(pts, seeds, pool), chunk_size=1)
    stats = {}
    for row in rows:
        c = row["config"]
        stats.setdefault((c["dynamics"], c["g_target"], c["lr"]), []).append(row)
    summary = {}
    plt = _common.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.9), sharey=True)
    for ax, dynamics in zip(axes, ("sgd", "sde")):
        for k, lr in enumerate(cfg.lrs):
            xs, ys, es = [], [], []
            for g in cfg.noise_scales:
                sel = [r for r in stats[(dynamics, g, lr)] if not r["diverged"]]
                mean, se, _ = _common.mean_se([r["test_accuracy"] for r in sel])
                xs.append(stats[(dynamics, g, lr)][0]["config"]["g"])
                ys.append(mean)
                es.append(0 if math.isnan(se) else se)
            ax.errorbar(xs, ys, yerr=es, marker="o", ms=4, ls="none", color=f"C{k}", label=f"eps = {lr:g}")
        for g in cfg.noise_scales:
            means, ses = [], []
            for lr in cfg.lrs:
                m, se, n = _common.mean_se([r["test_accuracy"] for r in stats[(dynamics, g, lr)] if not r["diverged"]])
                if n:
                    means.append(m)
                    ses.append(se)
            spread = float(np.std(means, ddof=1)) if len(means) > 1 else math.nan
            pooled = float(np.sqrt(np.nanmean(np.square(ses)))) if ses else math.nan
            summary[f"{dynamics} g={g:g}"] = dict(accuracy_over_eps=means, spread=spread, seed_se=pooled,
                                                  spread_over_se=spread / pooled if pooled else math.nan)
        ax.set_xscale("log")
        ax.set_xlabel("noise scale g (actual, after rounding B)")
        ax.set_title("SGD" if dynamics == "sgd" else "SDE (dt = eps/N)")
    axes[0].set_ylabel(f"test accuracy at SDE time {cfg.sde_time:g}")
    axes[0].legend(fontsize=8)
    caption = (f"{cfg.model}, N = {cfg.n_train}, m = {cfg.momentum}, lam = {cfg.l2}, {cfg.seeds} seeds; "
               "B = N/(g(1-m)/eps + 1) rounded; equal SDE time for every point.")
    _common.save(fig, out, "collapse", {"summary": summary}, caption)
    print(f"collapse onto g ({cfg.model}): spread of test accuracy over eps at fixed g, against seed s.e.")
    for key, s in summary.items():
        print(f"  {key:<14} accuracies {', '.join(f'{a:.4f}' for a in s['accuracy_over_eps'])}; "
              f"spread {s['spread']:.4f} = {s['spread_over_se']:.1f} s.e.")
