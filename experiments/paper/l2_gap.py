"""Does L2 regularisation close the gap between small-batch and full-batch training (Fig 8)? Both
readings of the paper's "L2 = 0.1", and the coefficient at which it closes.

The same net, data and training as Figs 3 and 8 (784-800-10, N = 1000, m = 0.9), at B = 30 and full
batch, for a ladder of lam in the summed cost C = sum_i l_i + (lam/2)|w|^2. The paper's "L2 = 0.1"
reads two ways: lam = 0.1 in C (a mean-loss coefficient of 1e-4, our Fig 8), or 0.1 on the mean
loss (lam = 0.1 N = 100 in C); the default ladder 0.1 ... 1000 holds both. Per lam: final test
accuracy of each batch size (mean ± s.e. over seeds) and the gap, full batch minus B = 30, in
standard errors (Welch). The gap counts as closed where full batch is within 2 s.e. of B = 30 at the
same lam, or above it; and, separately, where full batch comes within 2 s.e. of B = 30 without L2
(Fig 3's small-batch accuracy): L2 can close the gap by lowering the small batch's accuracy, not
only by raising the full batch's. Between ladder points, the lam at which the gap is zero is
interpolated in ln lam, with a 95% interval from the seeds' spread (`crossing`).
"""

import dataclasses
import math

import numpy as np

import sim

from .. import analysis
from ..runner import plotting, pools, tasks
from ..runner.contract import Experiment, param
from . import fig3

checks = sim.checks


@dataclasses.dataclass(frozen=True)
class Config(tasks.NetSetup):
    lr: float = param(
        0.1,
        checks.positive,
        help="learning rate eps (the paper's 1 kills the net at B = 30: see fig3-setups)",
    )
    momentum: float = param(0.9, checks.momentum, help="momentum m")
    l2s: tuple = param(
        (0.0, 0.1, 1.0, 10.0, 100.0, 1000.0),
        checks.non_negative,
        help="lam values in the summed cost C (mean-loss coefficient lam / N)",
    )
    small_batch: int = param(30, help="the small batch size B, against full batch (B = N)")
    steps: int = param(1500, checks.integer, help="SGD steps")
    n_train: int = param(1000, checks.integer, low=10, help="training-set size N")
    seeds: int = param(2, checks.integer, low=2, help="seeds (one initialisation each)")

    def check(self):
        checks.integer("small-batch", self.small_batch, low=1, high=self.n_train)


def grid(cfg: Config) -> list[dict]:
    source = pools.source(cfg.mnist)
    return [
        dict(
            lr=cfg.lr,
            momentum=cfg.momentum,
            l2=lam,
            batch_size=b,
            steps=cfg.steps,
            record_every=cfg.steps,
            n_train=cfg.n_train,
            data=source,
            **tasks.setup_of(cfg),
        )
        for lam in cfg.l2s
        for b in (cfg.small_batch, cfg.n_train)
    ]


def summarize(rows, cfg: Config) -> dict:
    def final(lam, b):
        return [
            r["final_test_accuracy"]
            for r in rows
            if r["config"]["l2"] == lam and r["config"]["batch_size"] == b and not r["diverged"]
        ]

    ladder, closed_at, reaches = [], None, None
    reference = final(cfg.l2s[0], cfg.small_batch) if 0.0 in cfg.l2s else None
    for lam in cfg.l2s:
        small, full, z = analysis.welch(final(lam, cfg.small_batch), final(lam, cfg.n_train))
        entry = dict(l2=lam, mean_loss_l2=lam / cfg.n_train, small=small, full=full, gap_se=z)
        if reference is not None:
            entry["gap_to_unregularised_small_se"] = z0 = analysis.welch(
                reference, final(lam, cfg.n_train)
            )[2]
            if reaches is None and lam > 0 and math.isfinite(z0) and z0 >= -2:
                reaches = lam
        ladder.append(entry)
        if closed_at is None and lam > 0 and math.isfinite(z) and z >= -2:
            closed_at = lam
    return dict(
        ladder=ladder,
        closes_at_l2=closed_at,
        reaches_unregularised_small_at_l2=reaches,
        crossing=crossing(ladder),
        readings={"0.1 in the summed cost": 0.1, "0.1 on the mean loss": 0.1 * cfg.n_train},
    )


def crossing(ladder, draws: int = 2000, seed: int = 0) -> dict:
    """The lam (> 0) at which full batch catches B = 30 at the same lam: the zero of the accuracy
    gap along the ladder, interpolated in ln lam (an assumption between ladder points a factor 10
    apart), with a 95% interval from draws of every mean, mean + c se z (c = t_{0.975,
    n-1}/z_{0.975}), each (lam, B) drawn independently: runs at different lam share their seeds'
    initialisations, a positive correlation this ignores, so the interval errs wide. `lam` None
    where the gap never closes on the ladder; an interval end None where more than 2.5% of the draws
    close before the first or after the last lam."""
    steps = [e for e in ladder if e["l2"] > 0 and e["small"][2] > 1 and e["full"][2] > 1]
    if len(steps) < 2:
        return dict(lam=None, ci95=[None, None], bracket=None)
    log_lams = np.log([e["l2"] for e in steps])
    mean = np.array([e["small"][0] - e["full"][0] for e in steps])

    def spread(e):
        return analysis.t_widening(e[2]) * e[1]

    sd = np.array([[spread(e["small"]), spread(e["full"])] for e in steps])
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((draws, len(steps), 2))
    gaps = mean + z[:, :, 0] * sd[:, 0] - z[:, :, 1] * sd[:, 1]
    boot = np.array([analysis.first_fall(log_lams, g, 0.0) for g in gaps])
    boot = np.where(np.isnan(boot), math.inf, boot)  # never closes on the ladder: beyond its end
    centre = analysis.first_fall(log_lams, mean, 0.0)
    # no inf - inf
    low, high = np.percentile(boot, 2.5, method="lower"), np.percentile(boot, 97.5, method="higher")
    j = int(np.searchsorted(log_lams, centre)) if math.isfinite(centre) else None
    return dict(
        lam=math.exp(centre) if math.isfinite(centre) else None,
        ci95=[
            math.exp(low) if math.isfinite(low) else None,
            math.exp(high) if math.isfinite(high) else None,
        ],
        bracket=[steps[j - 1]["l2"], steps[j]["l2"]] if j else None,
        closed_before_ladder=centre == -math.inf,
    )


def figure(summary: dict, cfg: Config, out) -> None:
    plt = plotting.pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    lams = [e["l2"] for e in summary["ladder"]]
    # lam = 0 drawn at the left
    x = [lam if lam > 0 else min(v for v in lams if v > 0) / 10 for lam in lams]
    for key, label, colour in (
        ("small", f"B = {cfg.small_batch}", "C0"),
        ("full", "full batch", "C3"),
    ):
        mean = [e[key][0] for e in summary["ladder"]]
        se = [0 if not np.isfinite(e[key][1]) else e[key][1] for e in summary["ladder"]]
        ax.errorbar(x, mean, yerr=se, marker="o", color=colour, label=label, capsize=3)
    cross = summary.get("crossing") or {}
    if cross.get("lam") is not None:
        lo, hi = cross["ci95"]
        ax.axvline(cross["lam"], color="k", lw=1)
        ax.axvspan(
            lo if lo is not None else min(x),
            hi if hi is not None else max(x),
            color="k",
            alpha=0.08,
            label=f"gap's zero, lam = {cross['lam']:.3g} (95%; interpolated in ln lam)",
        )
    for reading, lam in summary["readings"].items():
        ax.axvline(lam, color="grey", ls=":", lw=0.8)
        ax.text(lam, ax.get_ylim()[0], f" {reading}", rotation=90, fontsize=7, va="bottom")
    ax.set_xscale("log")
    ax.set_xlabel("lam in the summed cost C (leftmost point: lam = 0)")
    ax.set_ylabel(f"test accuracy after {cfg.steps} steps")
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(0, 0.7))  # above the readings' labels
    caption = (
        f"784-800-10 net, N = {cfg.n_train}, eps = {cfg.lr}, m = {cfg.momentum}, {cfg.steps} "
        "steps, "
        f"{cfg.seeds} seeds (mean ± s.e.); closes where full batch is within 2 s.e. of B = "
        f"{cfg.small_batch}."
    )
    out.save(fig, "fig8-l2", {k: v for k, v in summary.items()}, caption)


def report(summary: dict, cfg: Config) -> str:
    lines = [
        f"fig8-l2: full batch against B = {cfg.small_batch} along lam (summed cost; mean-loss lam "
        f"/ {cfg.n_train})"
    ]
    for e in summary["ladder"]:
        lines.append(
            f"  lam {e['l2']:<8g} B={cfg.small_batch}: {e['small'][0]:.4f} ± {e['small'][1]:.4f}   "
            f"full: {e['full'][0]:.4f} ± {e['full'][1]:.4f}   gap {e['gap_se']:+.1f} s.e."
        )
    at = summary["closes_at_l2"]
    lines.append(
        f"  against B = {cfg.small_batch} at the same lam, the gap closes at lam = {at:g} "
        f"(mean-loss {at / cfg.n_train:g})"
        if at is not None
        else "  the gap never closes on this ladder"
    )
    cross = summary.get("crossing") or {}
    if cross.get("lam") is not None:
        lo, hi = cross["ci95"]
        lines.append(
            f"  the gap's zero, interpolated in ln lam: lam = {cross['lam']:.3g} "
            f"[{'below the ladder' if lo is None else f'{lo:.3g}'}, "
            f"{'beyond the ladder' if hi is None else f'{hi:.3g}'}] (95%)"
        )
    reach = summary.get("reaches_unregularised_small_at_l2")
    if 0.0 in cfg.l2s:
        lines.append(
            f"  full batch reaches B = {cfg.small_batch} without L2 at lam = {reach:g}"
            if reach is not None
            else f"  full batch never reaches B = {cfg.small_batch} without L2 "
            f"({summary['ladder'][0]['small'][0]:.4f}) on this ladder"
        )
    return "\n".join(lines)


EXPERIMENTS = (
    Experiment(
        name="fig8-l2",
        title="Fig 8 along lam: both readings of L2 = 0.1, where the gap closes",
        config=Config,
        presets={
            "tiny": Config(l2s=(0.0, 1.0, 100.0), steps=10, n_train=100),
            "quick": Config(),
            "paper": Config(steps=10000, seeds=4),
        },
        grid=grid,
        evaluate=fig3.evaluate,
        summarize=summarize,
        figure=figure,
        report=report,
        shape=lambda p: p["batch_size"],
        chunk_size=1,
        section="paper",
        cost=tasks.step_cost,
    ),
)
