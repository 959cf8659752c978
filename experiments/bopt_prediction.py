"""Study 6 of issue 5: does the gradient noise scale B_simple (McCandlish et al. 2018) or the paper's
eps N / ((1 - m) g_opt) predict the optimal batch size?

Reads the Fig 5 sweep rows (`fig5.jsonl` in the same folder: run `sgd-sde fig5` first), takes its B_opt
for each eps, and the noise scale g_opt = eps (N/B_opt - 1)/(1 - m) at the middle eps; the paper's rule
then predicts B_opt(eps) = N / ((1 - m) g_opt / eps + 1). Separately it trains the net with momentum SGD
(eps = 0.1, B = 30, m = 0.9, as Figs 4-5) and measures B_simple = tr(Sigma)/|G|^2 (exact, per-example
gradients in chunks) and B_noise (Gaussian probes) at checkpoints along training. Reported: both
predictions next to the measured B_opt, with the log-ratio error of each.
"""

import dataclasses
import json
import math
import pathlib

import jax.random as jr

import models
import sim

from . import _batch_sweep, _common
from ._sweep import run_sweep


@dataclasses.dataclass(frozen=True)
class Config:
    lr: float = 0.1
    momentum: float = 0.9
    batch_size: int = 30
    n_train: int = 1000
    checkpoints: tuple = (0, 250, 500, 1000, 2000)
    probes: int = 10
    sweep: str = "fig5"
    mnist: str | None = None

    def validate(self):
        sim.noise_scale(self.lr, self.n_train, self.batch_size, self.momentum)
        sim._checks.integer("probes", self.probes, low=2)
        if not self.checkpoints or any(c < 0 for c in self.checkpoints) or list(self.checkpoints) != sorted(self.checkpoints):
            raise sim.InputError("checkpoints must be increasing step counts >= 0")
        if self.sweep not in ("fig4", "fig5"):
            raise sim.InputError("sweep must be 'fig4' or 'fig5'")
        return self


EXPERIMENT = "bopt-prediction"
QUICK = Config()
TINY = Config(n_train=100, checkpoints=(0, 10), probes=2, sweep="fig4")


def measure(points, seeds, pool):
    out = []
    for p in points:
        data = models.multiclass_task(pool, n_train=p["n_train"])
        per_seed = []
        for seed in seeds:
            model = models.ShallowNet(key=jr.fold_in(jr.key(0), seed))
            done, values = 0, []
            for k, target in enumerate(p["checkpoints"]):
                if target > done:
                    traj = sim.run_sgd(model, data, lr=p["lr"], momentum=p["momentum"], batch_size=p["batch_size"],
                                       steps=target - done, key=jr.fold_in(jr.key(1), k), record_every=target - done)
                    model, done = traj.model(0), target
                ns = sim.gradient_noise_scale(model, data, key=jr.key(k), probes=p["probes"])
                values.append(dict(step=target, b_simple=ns.b_simple, b_noise=ns.b_noise,
                                   b_noise_error=ns.b_noise_error))
            per_seed.append(dict(along_training=values))
        out.append(per_seed)
    return out


def main(cfg: Config, out: pathlib.Path) -> None:
    cfg.validate()
    sweep_file = out / f"{cfg.sweep}.jsonl"
    if not sweep_file.exists():
        raise sim.InputError(f"{sweep_file} not found: run `sgd-sde {cfg.sweep} --out {out}` first")
    rows = [json.loads(line) for line in sweep_file.read_text().splitlines()]
    opt = _batch_sweep.optima(rows, "lr")
    pool = models.load_mnist(cfg.mnist)
    point = dict(lr=cfg.lr, momentum=cfg.momentum, batch_size=cfg.batch_size, n_train=cfg.n_train,
                 checkpoints=list(cfg.checkpoints), probes=cfg.probes, data=pool.source)
    measured = run_sweep(EXPERIMENT, out, [point], seeds=[0], evaluate=lambda pts, s: measure(pts, s, pool))
    along = measured[0]["along_training"]
    lrs = sorted(opt)
    n = rows[0]["config"]["n_train"]
    m = rows[0]["config"]["momentum"]
    middle = lrs[len(lrs) // 2]
    g_opt = middle * (n / opt[middle]["b_opt"] - 1) / (1 - m)
    table = []
    for lr in lrs:
        paper = n / ((1 - m) * g_opt / lr + 1)
        table.append(dict(lr=lr, b_opt=opt[lr]["b_opt"], log_sigma=opt[lr]["log_sigma"], paper_rule=paper))
    b_simple_final = along[-1]["b_simple"]
    for t in table:
        t["paper_log_error"] = math.log(t["paper_rule"] / t["b_opt"])
        t["b_simple_log_error"] = math.log(b_simple_final / t["b_opt"])
    plt = _common.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    axes[0].plot([a["step"] for a in along], [a["b_simple"] for a in along], "o-", label="B_simple")
    axes[0].errorbar([a["step"] for a in along], [a["b_noise"] for a in along],
                     yerr=[a["b_noise_error"] for a in along], fmt="s-", label="B_noise")
    axes[0].set_yscale("log")
    axes[0].set_xlabel("SGD step")
    axes[0].set_title(f"noise scales along training (eps {cfg.lr}, B {cfg.batch_size})")
    axes[0].legend(fontsize=8)
    x = [t["lr"] for t in table]
    axes[1].errorbar(x, [t["b_opt"] for t in table],
                     yerr=[[t["b_opt"] * (1 - math.exp(-t["log_sigma"])) for t in table],
                           [t["b_opt"] * (math.exp(t["log_sigma"]) - 1) for t in table]], fmt="o", label="measured B_opt")
    axes[1].plot(x, [t["paper_rule"] for t in table], "--", label=f"eps N/((1-m) g_opt), g_opt = {g_opt:.3g}")
    axes[1].axhline(b_simple_final, color="C2", ls=":", label=f"B_simple at step {along[-1]['step']}")
    axes[1].set_xscale("log")
    axes[1].set_yscale("log")
    axes[1].set_xlabel("eps")
    axes[1].legend(fontsize=7)
    caption = (f"B_opt from {cfg.sweep}.jsonl; g_opt fitted at eps = {middle:g} only (the rule is then tested "
               "at the other eps); B_simple exact from per-example gradients.")
    _common.save(fig, out, "bopt-prediction", {"table": table, "along_training": along, "g_opt": g_opt}, caption)
    print(f"optimal batch size: measured ({cfg.sweep}) against eps N/((1-m) g_opt) and B_simple")
    for t in table:
        print(f"  eps = {t['lr']:g}: B_opt {t['b_opt']:g} (x/÷ {math.exp(t['log_sigma']):.2f}); paper rule "
              f"{t['paper_rule']:.3g} (log error {t['paper_log_error']:+.2f}); B_simple {b_simple_final:.3g} "
              f"(log error {t['b_simple_log_error']:+.2f})")
    for a in along:
        print(f"  step {a['step']}: B_simple {a['b_simple']:.4g}, B_noise {a['b_noise']:.4g} ± {a['b_noise_error']:.2g}")
