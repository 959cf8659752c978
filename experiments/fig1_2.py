"""Figs 1-2 (Smith & Le 2018): the linear model on random and informative labels, against lam.

Logistic regression (784 weights + bias) on the binary task (digits 0-4 against 5-9, 800 balanced
training examples, the rest of the embedded 5,000 for test; DESIGN.md says why not 0 against 1),
minimised exactly at each lam by damped Newton (sim.minimize), with true labels and with random labels
(train and test). Fig 1: train and test accuracy against lam. Fig 2: test cross-entropy and the
Laplace log evidence ratio ln(Z/Z0) (exact: dense Hessian, 785 parameters) against lam.
Chosen here (the paper does not state them): lam on a log grid from 1e-2 to 1e3 (11 values); the
seeds draw the training set (and the random labels).
"""

import dataclasses
import pathlib

import jax
import numpy as np

import models
import sim

from . import _common
from ._sweep import run_sweep


@dataclasses.dataclass(frozen=True)
class Config:
    lam_min: float = 1e-2
    lam_max: float = 1e3
    n_lam: int = 11
    n_train: int = 800
    split: str = "0-4v5-9"
    seeds: int = 1
    mnist: str | None = None

    def validate(self):
        sim._checks.positive("lam-min", self.lam_min)
        sim._checks.positive("lam-max", self.lam_max)
        if self.lam_max <= self.lam_min:
            raise sim.InputError("lam-max must exceed lam-min")
        sim._checks.integer("n-lam", self.n_lam, low=2)
        sim._checks.integer("seeds", self.seeds)
        sim._checks.integer("n-train", self.n_train, low=2)
        if self.split not in models._data.BINARY_SPLITS:
            raise sim.InputError(f"split must be one of {', '.join(models._data.BINARY_SPLITS)}")
        return self

    def lams(self):
        return np.logspace(np.log10(self.lam_min), np.log10(self.lam_max), self.n_lam).tolist()


EXPERIMENT = "fig1-2"
QUICK = Config()
PAPER = Config(n_lam=21, seeds=5)
TINY = Config(n_lam=3, n_train=100, lam_min=0.1, lam_max=10.0)


def _evaluate(cfg, pool):
    def evaluate(points, seeds):
        out = []
        for point in points:
            per_seed = []
            for seed in seeds:
                data = models.binary_task(pool, split=point["split"], n_train=point["n_train"],
                                          random_labels=point["random_labels"], seed=seed)
                found = sim.minimize(models.LogisticRegression(), data, l2=point["lam"])
                flat, w = sim.FlatModel.split(found.model)
                metrics = np.asarray(flat.metrics(w, data))
                train_acc = float(np.mean(np.asarray(jax.vmap(found.model.correct)(data.x_train, data.y_train))))
                ev = sim.log_evidence(found.model, data, l2=point["lam"])
                per_seed.append(dict(train_accuracy=train_acc, test_accuracy=float(metrics[1]),
                                     train_xent=float(metrics[0]), test_xent=float(metrics[2]),
                                     log_evidence_ratio=ev.log_evidence_ratio, newton_converged=found.converged,
                                     dropped=ev.n_dropped))
            out.append(per_seed)
        return out

    return evaluate


def run(cfg: Config, out: pathlib.Path):
    cfg.validate()
    pool = models.load_mnist(cfg.mnist)
    points = [dict(lam=lam, random_labels=r, n_train=cfg.n_train, split=cfg.split,
                   data=pool.source) for r in (False, True) for lam in cfg.lams()]
    return run_sweep(EXPERIMENT, out, points, seeds=list(range(cfg.seeds)), evaluate=_evaluate(cfg, pool),
                     chunk_size=4)


def summarise(cfg: Config, rows):
    series = {}
    for random_labels in (False, True):
        sel = [r for r in rows if r["config"]["random_labels"] == random_labels]
        by_lam = _common.group_rows(sel, lambda c: c["lam"])
        lams = sorted(by_lam)
        series[random_labels] = {
            "lam": lams,
            **{m: [_common.mean_se([r[m] for r in by_lam[lam]]) for lam in lams]
               for m in ("train_accuracy", "test_accuracy", "test_xent", "log_evidence_ratio")},
        }
    true = series[False]
    xent = [v[0] for v in true["test_xent"]]
    ev = [v[0] for v in true["log_evidence_ratio"]]
    lam_xent = true["lam"][int(np.argmin(xent))]
    lam_ev = true["lam"][int(np.argmax(ev))]
    rand = series[True]
    claims = {
        "random_labels_train_accuracy_at_smallest_lam": rand["train_accuracy"][0][0],
        "random_labels_test_accuracy_at_smallest_lam": rand["test_accuracy"][0][0],
        "true_labels_test_accuracy_peak": max(v[0] for v in true["test_accuracy"]),
        "lam_of_min_test_xent": lam_xent,
        "lam_of_max_evidence": lam_ev,
        "rank_correlation_evidence_vs_minus_test_xent": _common.spearman(ev, [-x for x in xent]),
        "random_labels_evidence_ratio_max": max(v[0] for v in rand["log_evidence_ratio"]),
    }
    return series, claims


def plot(cfg: Config, rows, out: pathlib.Path):
    series, claims = summarise(cfg, rows)
    plt = _common.pyplot()
    caption = (f"Linear model, binary task {cfg.split} (N = {cfg.n_train}, embedded MNIST), exact minimum "
               f"per lam (Newton); {cfg.seeds} seed(s); lam grid chosen here: {cfg.lam_min:g}..{cfg.lam_max:g}.")
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for ax, random_labels in zip(axes, (True, False)):
        s = series[random_labels]
        for m, style in (("train_accuracy", "C0"), ("test_accuracy", "C3")):
            mean = np.array([v[0] for v in s[m]])
            se = np.nan_to_num(np.array([v[1] for v in s[m]]))
            ax.errorbar(s["lam"], mean, yerr=se, color=style, marker="o", ms=3, label=m.replace("_", " "))
        ax.set_xscale("log")
        ax.set_xlabel("lam (L2 coefficient of the summed cost)")
        ax.set_title("random labels" if random_labels else "informative labels")
    axes[0].set_ylabel("accuracy")
    axes[0].legend()
    _common.save(fig, out, "fig1", {"series": {str(k): v for k, v in series.items()}, "claims": claims}, caption)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, m, label in ((axes[0], "test_xent", "test cross-entropy"),
                         (axes[1], "log_evidence_ratio", "log evidence ratio ln(Z/Z0)")):
        for random_labels, colour in ((False, "C0"), (True, "C1")):
            s = series[random_labels]
            ax.plot(s["lam"], [v[0] for v in s[m]], marker="o", ms=3, color=colour,
                    label="random labels" if random_labels else "informative labels")
        ax.set_xscale("log")
        ax.set_xlabel("lam")
        ax.set_title(label)
    axes[1].axhline(0, color="grey", lw=0.8)
    axes[1].axvline(claims["lam_of_max_evidence"], color="C0", ls=":", lw=0.8)
    axes[0].axvline(claims["lam_of_min_test_xent"], color="C0", ls=":", lw=0.8)
    axes[0].legend()
    _common.save(fig, out, "fig2", {"claims": claims}, caption)
    return claims


def main(cfg: Config, out: pathlib.Path) -> None:
    rows = run(cfg, out)
    claims = plot(cfg, rows, out)
    print("Figs 1-2 (linear model):")
    for k, v in claims.items():
        print(f"  {k:<48}{v:.4g}")
