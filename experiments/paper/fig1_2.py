"""Figs 1-2 (Smith & Le 2018): the linear model on random and informative labels, against lam.

Logistic regression (784 weights + bias) on the binary task (digits 0-4 against 5-9, 800 balanced
training examples, the rest of the embedded 5,000 for test; docs/mathematics.md ("Choices the paper
leaves open") says why not 0 against 1), minimised exactly at each lam by damped Newton
(sim.minimize), with true labels and with random labels (train and test). Fig 1: train and test
accuracy against lam. Fig 2: test cross-entropy and the Laplace log evidence ratio ln(Z/Z0) (exact:
dense Hessian, 785 parameters) against lam. Chosen here (the paper does not state them): lam on a
log grid from 1e-2 to 1e3 (11 values); the seeds draw the training set (and the random labels).
`fig1` and `fig2` are one sweep (one rows file, fig1-2) and each draws its own figure.
"""

import dataclasses

import numpy as np

import models
import sim

from .. import analysis
from ..runner import contract, plotting, pools
from ..runner.contract import Experiment, RunContext, param
from ..runner.rows import group_rows

checks = sim.checks


def check_split(name: str, value: str) -> None:
    splits = models.BINARY_SPLITS
    if value not in splits:
        raise sim.InputError(f"{name} must be one of {', '.join(splits)} (got {value!r})")


@dataclasses.dataclass(frozen=True)
class Config(contract.Config):
    lam_min: float = param(
        1e-2, checks.positive, help="smallest lam (L2 coefficient of the summed cost)"
    )
    lam_max: float = param(1e3, checks.positive, help="largest lam")
    n_lam: int = param(11, checks.integer, low=2, help="values of lam, log-spaced")
    n_train: int = param(800, checks.integer, low=2, help="training examples N (balanced)")
    split: str = param(
        "0-4v5-9", check_split, help="binary task: which digits against which (0-4v5-9 or 0v1)"
    )
    seeds: int = param(
        1, checks.integer, help="seeds (each draws the training set and the random labels)"
    )

    def check(self):
        if self.lam_max <= self.lam_min:
            raise sim.InputError("lam-max must exceed lam-min")

    def lams(self):
        return np.logspace(np.log10(self.lam_min), np.log10(self.lam_max), self.n_lam).tolist()


def grid(cfg: Config) -> list[dict]:
    source = pools.source(cfg.mnist)
    return [
        dict(lam=lam, random_labels=r, n_train=cfg.n_train, split=cfg.split, data=source)
        for r in (False, True)
        for lam in cfg.lams()
    ]


def evaluate(run: RunContext, points: list[dict], seeds: list[int]) -> list[list[dict]]:
    """The exact minimum at each point's lam (Newton) for each seed's training set: accuracies,
    cross-entropies and the Laplace log evidence ratio."""
    import jax

    out = []
    for point in points:
        per_seed = []
        for seed in seeds:
            data = models.binary_task(
                run.pool(point["data"]),
                split=point["split"],
                n_train=point["n_train"],
                random_labels=point["random_labels"],
                seed=seed,
            )
            found = sim.minimize(models.LogisticRegression(), data, l2=point["lam"])
            flat, w = sim.FlatModel.split(found.model)
            metrics = np.asarray(flat.metrics(w, data))
            train_acc = float(
                np.mean(np.asarray(jax.vmap(found.model.correct)(data.x_train, data.y_train)))
            )
            ev = sim.log_evidence(found.model, data, l2=point["lam"])
            per_seed.append(
                dict(
                    train_accuracy=train_acc,
                    test_accuracy=float(metrics[1]),
                    train_xent=float(metrics[0]),
                    test_xent=float(metrics[2]),
                    log_evidence_ratio=ev.log_evidence_ratio,
                    newton_converged=found.converged,
                    dropped=ev.n_dropped,
                )
            )
        out.append(per_seed)
    return out


def summarize(rows, cfg: Config) -> dict:
    """Per labelling (random_labels False/True): mean ± s.e. of each metric against lam; and the
    claims."""
    series = {}
    for random_labels in (False, True):
        sel = [r for r in rows if r["config"]["random_labels"] == random_labels]
        by_lam = group_rows(sel, lambda c: c["lam"])
        lams = sorted(by_lam)
        series[random_labels] = {
            "lam": lams,
            **{
                m: [analysis.mean_se([r[m] for r in by_lam[lam]]) for lam in lams]
                for m in ("train_accuracy", "test_accuracy", "test_xent", "log_evidence_ratio")
            },
        }
    true, rand = series[False], series[True]
    xent = [v[0] for v in true["test_xent"]]
    ev = [v[0] for v in true["log_evidence_ratio"]]
    claims = {
        "random_labels_train_accuracy_at_smallest_lam": rand["train_accuracy"][0][0],
        "random_labels_test_accuracy_at_smallest_lam": rand["test_accuracy"][0][0],
        "true_labels_test_accuracy_peak": max(v[0] for v in true["test_accuracy"]),
        "lam_of_min_test_xent": true["lam"][int(np.argmin(xent))],
        "lam_of_max_evidence": true["lam"][int(np.argmax(ev))],
        "rank_correlation_evidence_vs_minus_test_xent": analysis.spearman(ev, [-x for x in xent]),
        "random_labels_evidence_ratio_max": max(v[0] for v in rand["log_evidence_ratio"]),
    }
    return {"series": series, "claims": claims}


def _caption(cfg: Config) -> str:
    return (
        f"Linear model, binary task {cfg.split} (N = {cfg.n_train}, embedded MNIST), exact minimum "
        f"per lam (Newton); {cfg.seeds} seed(s); lam grid chosen here: "
        f"{cfg.lam_min:g}..{cfg.lam_max:g}."
    )


def figure1(summary: dict, cfg: Config, out) -> None:
    """fig1.png: train and test accuracy against lam, random and informative labels."""
    series, claims = summary["series"], summary["claims"]
    plt = plotting.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for ax, random_labels in zip(axes, (True, False)):
        s = series[random_labels]
        for m, style in (("train_accuracy", "C0"), ("test_accuracy", "C3")):
            mean = np.array([v[0] for v in s[m]])
            se = np.nan_to_num(np.array([v[1] for v in s[m]]))
            ax.errorbar(
                s["lam"], mean, yerr=se, color=style, marker="o", ms=3, label=m.replace("_", " ")
            )
        ax.set_xscale("log")
        ax.set_xlabel("lam (L2 coefficient of the summed cost)")
        ax.set_title("random labels" if random_labels else "informative labels")
    axes[0].set_ylabel("accuracy")
    axes[0].legend()
    out.save(
        fig,
        "fig1",
        {"series": {str(k): v for k, v in series.items()}, "claims": claims},
        _caption(cfg),
    )


def figure2(summary: dict, cfg: Config, out) -> None:
    """fig2.png: test cross-entropy and the log evidence ratio against lam."""
    series, claims = summary["series"], summary["claims"]
    plt = plotting.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, m, label in (
        (axes[0], "test_xent", "test cross-entropy"),
        (axes[1], "log_evidence_ratio", "log evidence ratio ln(Z/Z0)"),
    ):
        for random_labels, colour in ((False, "C0"), (True, "C1")):
            s = series[random_labels]
            ax.plot(
                s["lam"],
                [v[0] for v in s[m]],
                marker="o",
                ms=3,
                color=colour,
                label="random labels" if random_labels else "informative labels",
            )
        ax.set_xscale("log")
        ax.set_xlabel("lam")
        ax.set_title(label)
    axes[1].axhline(0, color="grey", lw=0.8)
    axes[1].axvline(claims["lam_of_max_evidence"], color="C0", ls=":", lw=0.8)
    axes[0].axvline(claims["lam_of_min_test_xent"], color="C0", ls=":", lw=0.8)
    axes[0].legend()
    out.save(fig, "fig2", {"claims": claims}, _caption(cfg))


def report(summary: dict, cfg: Config) -> str:
    return "\n".join(
        ["Figs 1-2 (linear model):"] + [f"  {k:<48}{v:.4g}" for k, v in summary["claims"].items()]
    )


PRESETS = {
    "tiny": Config(n_lam=3, n_train=100, lam_min=0.1, lam_max=10.0),
    "quick": Config(),
    "paper": Config(n_lam=21, seeds=5),
}


def _experiment(name: str, title: str, figure) -> Experiment:
    return Experiment(
        name=name,
        title=title,
        config=Config,
        presets=PRESETS,
        grid=grid,
        evaluate=evaluate,
        summarize=summarize,
        figure=figure,
        report=report,
        chunk_size=4,
        section="paper",
        results="fig1-2",
    )


EXPERIMENTS = (
    _experiment(
        "fig1", "Figs 1-2: linear model, random vs informative labels, against lam", figure1
    ),
    _experiment("fig2", "Figs 1-2 (the same sweep as fig1)", figure2),
)
