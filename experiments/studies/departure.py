"""Where does the SDE stop tracking SGD?

At a fixed noise scale g = eps (N/B - 1) (m = 0), eps climbs a ladder and B climbs with it
(B = N / (g/eps + 1), rounded; the actual g is reported). Every point trains for the same SDE time T
(steps = T N / eps) by SGD and by its SDE (Euler–Maruyama at dt = eps/(N r), for each r in
`refinements`), from the same initialisations per seed. At each eps and for each SDE the difference
of the final train loss, test accuracy and test cross-entropy is measured in standard errors (Welch:
diff / sqrt(se_sgd^2 + se_sde^2)); the SDE "parts" from SGD at the first eps from which some metric
differs by more than `threshold` s.e. (3 by default: with 3 metrics and ~7 rungs, a false alarm
somewhere on the ladder has probability about 5%), or where one dynamics diverges and the other does
not.

Two predictions are computed from our own measurements at SGD's final parameters of every seed:
- Li, Malladi & Arora (2021) ask that the gradient noise of a step dominate its signal. Our reading
  of their noise-to-signal ratio, for B distinct examples of N:
      NSR_B = tr Cov(batch-mean gradient) / |mean gradient|^2 = (1/B - 1/N) tr(Sigma) / |G|^2,
  Sigma the per-example covariance (1/(N-1)) and G the mean gradient (prior included), i.e.
  B_simple (1/B - 1/N). At fixed g, (1/B - 1/N) = g/(eps N), so NSR_B falls like 1/eps; the SDE is
  predicted to part where NSR_B drops to 1 (log-log interpolation over the ladder).
- Discretisation: SGD's step becomes unstable at eps * lambda_max(mean-loss Hessian) = 2; eps *
  lambda_max at the parting rung is reported beside it.

Quick: the linear model on the binary task (N = 800), lam = 1, g = 4, eps from 0.025 to 1 (SGD turns
unstable near the top), T = 0.125, 16 seeds, SDE at r = 1 and r = 4 (r = 1 matches SGD's first two
moments per step exactly, so any parting there is the non-Gaussianity of the batch noise; r = 4 is
closer to the SDE proper).
`--preset net`: the 784-800-10 net (N = 1000, lam = 0, g = 10, eps 0.05 ... 1.6, T = 0.1, 4 seeds,
r = 2): 9 minutes on 2 cores, most of it the SDE's full pass over the data per step.
"""

import dataclasses
import math

import numpy as np

import sim

from .. import analysis
from ..runner import plotting, pools, tasks
from ..runner.contract import Experiment, RunContext, param
from ..runner.rows import diagnostics_of, group_rows

checks = sim.checks
METRICS = ("train_loss", "test_accuracy", "test_xent")


@dataclasses.dataclass(frozen=True)
class Config(tasks.NetSetup):
    model: str = param(
        "logistic", tasks.check_model, help="'logistic' (binary task) or 'net' (784-800-10)"
    )
    noise_scale: float = param(4.0, checks.positive, help="the fixed noise scale g = eps (N/B - 1)")
    lrs: tuple = param(
        (0.025, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0),
        checks.positive,
        help="the ladder of learning rates eps, increasing (B rises with eps)",
    )
    sde_time: float = param(
        0.125, checks.positive, help="SDE time T of every run (steps = T N / eps)"
    )
    l2: float = param(1.0, checks.non_negative, help="L2 lam in the summed cost C")
    n_train: int = param(800, checks.integer, low=2, help="training-set size N")
    seeds: int = param(
        16, checks.integer, low=2, help="seeds (one initialisation each, shared by SGD and SDE)"
    )
    refinements: tuple = param(
        (1, 4), checks.integer, help="SDE refinements r (dt = eps/(N r)), one SDE each"
    )
    threshold: float = param(
        3.0, checks.positive, help="a metric parts beyond this many standard errors"
    )

    def check(self):
        if len(self.lrs) < 2 or list(self.lrs) != sorted(set(self.lrs)):
            raise sim.InputError("lrs must be at least two increasing learning rates")

    def rungs(self):
        out = []
        for lr in self.lrs:
            b = min(self.n_train, max(1, round(self.n_train / (self.noise_scale / lr + 1))))
            out.append(
                dict(
                    lr=lr,
                    batch_size=b,
                    steps=max(1, round(self.sde_time * self.n_train / lr)),
                    g=sim.noise_scale(lr, self.n_train, b),
                )
            )
        return out


def grid(cfg: Config) -> list[dict]:
    """SGD on every rung, then the SDE at each refinement on every rung."""
    base = dict(
        **tasks.setup_of(cfg),
        model=cfg.model,
        l2=cfg.l2,
        n_train=cfg.n_train,
        data=pools.source(cfg.mnist),
    )
    rungs = cfg.rungs()
    points = [dict(base, dynamics="sgd", refinement=1, **q) for q in rungs]
    return points + [
        dict(base, dynamics="sde", refinement=r, **q) for r in cfg.refinements for q in rungs
    ]


def evaluate(run: RunContext, points: list[dict], seeds: list[int]) -> list[list[dict]]:
    """Final metrics per seed; at SGD's final parameters also B_simple, NSR_B and lambda_max."""
    out = []
    for p in points:
        traj, data = tasks.train(
            run,
            p,
            seeds,
            sde=dict(refinement=p["refinement"]),
            lr=p["lr"],
            batch_size=p["batch_size"],
            l2=p["l2"],
            steps=p["steps"],
            record_every=p["steps"],
        )
        per_seed = []
        for s in range(len(seeds)):
            row = {m: float(traj.metric(m)[s, -1]) for m in METRICS} | diagnostics_of(traj, s)
            row.update(
                diverged=bool(traj.diverged[s]),
                diverged_step=int(traj.diverged_step[s]) if traj.diverged[s] else None,
            )
            if p["dynamics"] == "sgd" and not traj.diverged[s]:
                model = traj.model(s)
                scale = sim.critical_batch_size(
                    model, data, key=run.keys.measure(), l2=p["l2"], probes=2
                )
                row.update(
                    b_simple=scale.b_simple,
                    nsr=(1 / p["batch_size"] - 1 / p["n_train"]) * scale.b_simple,
                    top_eigenvalue=float(
                        sim.hessian_top_eigenvalues(
                            model, data, key=run.keys.lanczos(), k=1, lanczos_steps=20
                        ).values[0]
                    ),
                )
            per_seed.append(row)
        out.append(per_seed)
    return out


def compare(sgd_rows, sde_rows):
    """Per metric: (SGD mean, s.e.), (SDE mean, s.e.), difference in s.e.; and the diverged
    counts."""
    a = [r for r in sgd_rows if not r["diverged"]]
    b = [r for r in sde_rows if not r["diverged"]]
    out = dict(diverged=(len(sgd_rows) - len(a), len(sde_rows) - len(b)))
    for m in METRICS:
        sgd, sde, z = analysis.welch([r[m] for r in a], [r[m] for r in b])
        out[m] = dict(sgd=sgd[:2], sde=sde[:2], z=z)
    return out


def parts(c, threshold) -> bool:
    sgd_div, sde_div = c["diverged"]
    if (sgd_div == 0) != (sde_div == 0):
        return True
    return any(abs(c[m]["z"]) > threshold for m in METRICS if not math.isnan(c[m]["z"]))


def where_it_parts(rows: list[dict], threshold: float = 3.0) -> dict | None:
    """From this study's rows of the net (model "net"), its most refined SDE: the batch size of the
    last rung on which the SDE still tracks SGD and of the rung from which it parts for good
    ({"tracks": B, "parts": B}: the rule of `summarize`, at the default threshold); None where the
    rows hold no net, or no rung that tracks below the parting one."""
    net = [r for r in rows if r["config"]["model"] == "net"]
    groups = group_rows(net, lambda c: (c["dynamics"], c["refinement"], c["lr"]))
    refinements = sorted({r for dynamics, r, _ in groups if dynamics == "sde"})
    if not refinements:
        return None
    r = refinements[-1]
    lrs = sorted(lr for d, q, lr in groups if d == "sde" and q == r and ("sgd", 1, lr) in groups)
    flags = [
        parts(compare(groups[("sgd", 1, lr)], groups[("sde", r, lr)]), threshold) for lr in lrs
    ]
    k = next((k for k in range(len(lrs)) if all(flags[k:])), None)
    if k is None or k == 0:
        return None
    b = {lr: groups[("sgd", 1, lr)][0]["config"]["batch_size"] for lr in lrs}
    return {"tracks": b[lrs[k - 1]], "parts": b[lrs[k]]}


def crossing(xs, ys, level=1.0):
    """First x where the log-log interpolation of ys (falling) reaches `level`; None if it never
    does inside the ladder (then the bound is reported instead)."""
    for (x0, y0), (x1, y1) in zip(zip(xs, ys), zip(xs[1:], ys[1:])):
        if y0 >= level >= y1 and y0 > 0 and y1 > 0 and y0 != y1:
            t = math.log(y0 / level) / math.log(y0 / y1)
            return float(math.exp(math.log(x0) + t * math.log(x1 / x0)))
    return None


def summarize(rows: list[dict], cfg: Config) -> dict:
    """NSR_B and lambda_max per rung (SGD's seeds), the NSR_B = 1 crossing, and per refinement the
    comparison on every rung, its flags and the parting rung."""
    groups = group_rows(rows, lambda c: (c["dynamics"], c["refinement"], c["lr"]))
    lrs = list(cfg.lrs)
    nsr, lam_max = [], []
    for lr in lrs:
        sgd = [r for r in groups[("sgd", 1, lr)] if not r["diverged"]]
        nsr.append(analysis.mean_se([r["nsr"] for r in sgd])[0])
        lam_max.append(analysis.mean_se([r["top_eigenvalue"] for r in sgd])[0])
    finite_nsr = [(x, y) for x, y in zip(lrs, nsr) if np.isfinite(y)]
    predicted = crossing([x for x, _ in finite_nsr], [y for _, y in finite_nsr])
    summary = dict(
        rungs=cfg.rungs(), nsr=nsr, lambda_max=lam_max, nsr_predicted_lr=predicted, sde={}
    )
    for r in cfg.refinements:
        comparisons = [compare(groups[("sgd", 1, lr)], groups[("sde", r, lr)]) for lr in lrs]
        flags = [parts(c, cfg.threshold) for c in comparisons]
        # Parting is where the SDE stops tracking for good: the first rung from which every higher
        # rung parts too (an isolated flag below it is reported but is not the parting point).
        parted = next((lr for k, lr in enumerate(lrs) if all(flags[k:])), None)
        summary["sde"][f"r={r}"] = dict(comparisons=comparisons, parts=flags, parted_lr=parted)
    return summary


def figure(summary: dict, cfg: Config, out) -> None:
    """SDE - SGD in s.e. per rung and metric (a map), test accuracy of both, and NSR_B and eps
    lambda_max / 2."""
    lrs = list(cfg.lrs)
    plt = plotting.pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2), gridspec_kw=dict(width_ratios=[1.3, 1, 1]))
    # Left: a rung-by-metric map of the signed difference SDE - SGD in standard errors, one row per
    # refinement and metric; cells beyond the threshold framed, the parting rung of each r marked.
    labels, z = [], []
    for r in cfg.refinements:
        cs = summary["sde"][f"r={r}"]["comparisons"]
        for m in METRICS:
            labels.append(f"r={r} {m.replace('_', ' ')}")
            z.append([c[m]["z"] if c[m]["z"] is not None else np.nan for c in cs])
    z = np.asarray(z, dtype=float)
    bound = max(
        2 * cfg.threshold, float(np.nanmax(np.abs(z), initial=0.0)) if np.isfinite(z).any() else 1.0
    )
    image = axes[0].imshow(
        np.clip(z, -bound, bound), cmap="RdBu_r", vmin=-bound, vmax=bound, aspect="auto"
    )
    for (i, k), value in np.ndenumerate(z):
        if np.isfinite(value):
            axes[0].text(k, i, f"{value:+.1f}", ha="center", va="center", fontsize=6)
            if abs(value) > cfg.threshold:
                axes[0].add_patch(
                    plt.Rectangle((k - 0.5, i - 0.5), 1, 1, fill=False, lw=1.2, ec="k")
                )
    for j, r in enumerate(cfg.refinements):
        parted = summary["sde"][f"r={r}"]["parted_lr"]
        if parted is not None:
            k = lrs.index(parted)
            rows = (j * len(METRICS) - 0.5, (j + 1) * len(METRICS) - 0.5)
            axes[0].plot([k - 0.5, k - 0.5], rows, color="k", lw=2.5)
    axes[0].set_yticks(range(len(labels)), labels, fontsize=7)
    axes[0].set_xticks(range(len(lrs)), [f"{lr:g}" for lr in lrs], fontsize=7)
    axes[0].set_xlabel("eps (B rises with it, g fixed)")
    axes[0].set_title(
        f"(SDE - SGD) / s.e.; framed: beyond {cfg.threshold:g}; bar: parting rung", fontsize=9
    )
    fig.colorbar(image, ax=axes[0], fraction=0.04, pad=0.02)
    for j, r in enumerate(cfg.refinements):
        cs = summary["sde"][f"r={r}"]["comparisons"]
        axes[1].errorbar(
            lrs,
            [c["test_accuracy"]["sde"][0] for c in cs],
            yerr=[c["test_accuracy"]["sde"][1] for c in cs],
            color=f"C{j}",
            marker="s",
            ms=4,
            label=f"SDE r={r}",
        )
    cs = summary["sde"][f"r={cfg.refinements[0]}"]["comparisons"]
    axes[1].errorbar(
        lrs,
        [c["test_accuracy"]["sgd"][0] for c in cs],
        yerr=[c["test_accuracy"]["sgd"][1] for c in cs],
        color="k",
        marker="o",
        ms=4,
        label="SGD",
    )
    axes[1].set_title("test accuracy at equal SDE time")
    axes[1].legend(fontsize=8)
    axes[2].plot(lrs, summary["nsr"], "o-", color="C3", label="NSR_B = (1/B - 1/N) B_simple")
    axes[2].plot(
        lrs,
        [lr * h / 2 for lr, h in zip(lrs, summary["lambda_max"])],
        "s--",
        color="C4",
        label="eps λmax / 2 (1 = unstable)",
    )
    axes[2].axhline(1, color="k", lw=0.8)
    axes[2].set_yscale("log")
    axes[2].set_title("at SGD's final parameters")
    axes[2].legend(fontsize=7)
    for ax in axes[1:]:
        ax.set_xscale("log")
        ax.set_xlabel("eps (B rises with it, g fixed)")
    caption = (
        f"{cfg.model}, N = {cfg.n_train}, g = {cfg.noise_scale:g}, lam = {cfg.l2}, T = "
        f"{cfg.sde_time:g}, "
        f"{cfg.seeds} seeds, same initialisation per seed; "
        f"B = {', '.join(str(q['batch_size']) for q in summary['rungs'])}."
    )
    out.save(fig, "departure", summary, caption)


def report(summary: dict, cfg: Config) -> str:
    nsr, lam_max, predicted = summary["nsr"], summary["lambda_max"], summary["nsr_predicted_lr"]
    lines = [
        f"where the SDE stops tracking SGD ({cfg.model}, g = {cfg.noise_scale:g}, T = "
        f"{cfg.sde_time:g}, "
        f"{cfg.seeds} seeds): SDE - SGD in s.e. per rung",
        f"  {'eps':>6}{'B':>5}{'NSR_B':>8}{'eps λ/2':>9}  "
        + "  ".join(f"{'r=' + str(r) + ' loss/acc/xent':>22}" for r in cfg.refinements),
    ]
    for k, q in enumerate(summary["rungs"]):
        cells = []
        for r in cfg.refinements:
            c = summary["sde"][f"r={r}"]["comparisons"][k]
            mark = "*" if summary["sde"][f"r={r}"]["parts"][k] else " "
            cells.append(
                f"{c['train_loss']['z']:>7.1f}{c['test_accuracy']['z']:>6.1f}{c['test_xent']['z']:>7.1f}{mark}"
                + (f" div {c['diverged'][0]}/{c['diverged'][1]}" if any(c["diverged"]) else "")
            )
        lines.append(
            f"  {q['lr']:>6g}{q['batch_size']:>5}{nsr[k]:>8.3g}{q['lr'] * lam_max[k] / 2:>9.3g}  "
            + "  ".join(f"{cell:>22}" for cell in cells)
        )
    for r in cfg.refinements:
        parted = summary["sde"][f"r={r}"]["parted_lr"]
        lines.append(
            f"  SDE r={r}: parts from SGD from eps = {parted}"
            if parted is not None
            else f"  SDE r={r}: tracks SGD over the whole ladder "
            f"(no {cfg.threshold:g} s.e. departure to its top)"
        )
    where = (
        f"{predicted:.3g}"
        if predicted is not None
        else f"none inside the ladder (NSR_B from {nsr[0]:.3g} to {nsr[-1]:.3g})"
    )
    lines.append(f"  NSR_B = 1 (Li-Malladi-Arora criterion, our reading) at eps = {where}")
    return "\n".join(lines)


EXPERIMENTS = (
    Experiment(
        name="departure",
        title="raise eps at fixed g until the SDE parts from SGD; noise-to-signal criterion",
        config=Config,
        presets={
            "tiny": Config(
                lrs=(0.05, 0.4), sde_time=0.02, n_train=100, seeds=3, refinements=(1, 2)
            ),
            "quick": Config(),
            "net": Config(
                model="net",
                noise_scale=10.0,
                lrs=(0.05, 0.1, 0.2, 0.4, 0.8, 1.6),
                sde_time=0.1,
                l2=0.0,
                n_train=1000,
                seeds=4,
                refinements=(2,),
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
