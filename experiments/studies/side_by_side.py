"""SGD and its SDE side by side at equal g, over many seeds, with two-sample tests.

SGD (eps, B, m, lam) and the SDE at the same g from the SAME initialisation per seed, integrated at
dt = one SGD step (r = 1) and refined (r = 4; second-order SDE with semi-implicit steps when m > 0).
For each dynamics and seed: final train loss, test accuracy, test cross-entropy, top Hessian
eigenvalue of the mean loss (Lanczos, 20 steps) and, for the linear model, the Laplace log evidence
ratio at the final parameters (exact Hessian; a minimum is not guaranteed after finite training, so
it is the evidence of the final point). Each SDE's distribution is compared with SGD's by the
two-sample Kolmogorov-Smirnov statistic and its p-value (scipy.stats.ks_2samp); trajectories are
drawn with s.e. bands. Quick: the linear model (binary task, N = 800), eps = 0.1, B = 10, lam = 1,
1,000 steps, 24 seeds. `--preset net`: the 784-800-10 net, N = 1000, eps = 0.1, B = 30, m = 0.9, 500
steps, 8 seeds: 6 minutes on 2 cores.
"""

import dataclasses

import numpy as np

import sim

from .. import analysis
from ..runner import plotting, pools, tasks
from ..runner.contract import Experiment, RunContext, param
from ..runner.rows import diagnostics_of

checks = sim.checks
METRICS = ("train_loss", "test_accuracy", "test_xent", "top_eigenvalue", "log_evidence_ratio")


@dataclasses.dataclass(frozen=True)
class Config(tasks.NetSetup):
    model: str = param(
        "logistic", tasks.check_model, help="'logistic' (binary task) or 'net' (ten digits)"
    )
    lr: float = param(0.1, checks.positive, help="learning rate eps")
    batch_size: int = param(10, help="batch size B, in [1, N]")
    momentum: float = param(0.0, checks.momentum, help="momentum m")
    l2: float = param(1.0, checks.non_negative, help="L2 lam in the summed cost C")
    steps: int = param(1000, checks.integer, help="SGD steps (the SDE runs for the same time)")
    record_every: int = param(50, checks.integer, help="steps between recorded metrics")
    record_early: bool = param(
        True,
        help="also record at steps 1, 2, 4, ... (the first interval is where the "
        "metrics move fastest)",
    )
    seeds: int = param(
        24, checks.integer, low=2, help="seeds (one initialisation each, shared by all dynamics)"
    )
    refinements: tuple = param(
        (1, 4), checks.integer, help="SDE steps per SGD step r (dt = eps/(N r))"
    )
    n_train: int = param(800, checks.integer, help="training-set size N")

    def check(self):
        checks.integer("batch-size", self.batch_size, low=1, high=self.n_train)


def grid(cfg: Config) -> list[dict]:
    base = dict(
        **tasks.setup_of(cfg),
        model=cfg.model,
        lr=cfg.lr,
        batch_size=cfg.batch_size,
        momentum=cfg.momentum,
        l2=cfg.l2,
        steps=cfg.steps,
        record_every=cfg.record_every,
        n_train=cfg.n_train,
        data=pools.source(cfg.mnist),
        **({"record_early": True} if cfg.record_early else {}),
    )
    return [dict(base, dynamics="sgd", refinement=1)] + [
        dict(base, dynamics="sde", refinement=r) for r in cfg.refinements
    ]


def evaluate(run: RunContext, points: list[dict], seeds: list[int]) -> list[list[dict]]:
    """Per point and seed: curves, final values, top eigenvalue and (linear model, lam > 0) the log
    evidence ratio of the final parameters."""
    out = []
    for p in points:
        traj, data = tasks.train(
            run,
            p,
            seeds,
            sde=dict(refinement=p["refinement"], scheme="semi-implicit"),
            lr=p["lr"],
            batch_size=p["batch_size"],
            momentum=p["momentum"],
            l2=p["l2"],
            steps=p["steps"],
            record_every=p["record_every"],
            record_early=p.get("record_early", False),
        )
        per_seed = []
        for s in range(len(seeds)):
            row = dict(
                steps=traj.steps.tolist(),
                train_loss_curve=traj.train_loss[s].tolist(),
                test_xent_curve=traj.test_xent[s].tolist(),
                train_loss=float(traj.train_loss[s, -1]),
                test_accuracy=float(traj.test_accuracy[s, -1]),
                test_xent=float(traj.test_xent[s, -1]),
                diverged=bool(traj.diverged[s]),
                diverged_step=int(traj.diverged_step[s]) if traj.diverged[s] else None,
                **diagnostics_of(traj, s),
            )
            if not traj.diverged[s]:
                model = traj.model(s)
                row["top_eigenvalue"] = float(
                    sim.hessian_top_eigenvalues(
                        model, data, key=run.keys.measure(), k=1, lanczos_steps=20
                    ).values[0]
                )
                if p["model"] == "logistic" and p["l2"] > 0:
                    row["log_evidence_ratio"] = sim.log_evidence(
                        model, data, l2=p["l2"]
                    ).log_evidence_ratio
            per_seed.append(row)
        out.append(per_seed)
    return out


def summarize(rows: list[dict], cfg: Config) -> dict:
    """Per SDE and metric: the KS test against SGD and both mean ± s.e.; diverged runs per dynamics;
    the mean curves' inputs for the figure."""
    from scipy.stats import ks_2samp

    groups = {}
    for row in rows:
        c = row["config"]
        groups.setdefault(
            "SGD" if c["dynamics"] == "sgd" else f"SDE r={c['refinement']}", []
        ).append(row)
    finite = {k: [r for r in v if not r["diverged"]] for k, v in groups.items()}
    tests = {}
    for name, sel in finite.items():
        if name == "SGD":
            continue
        for m in METRICS:
            a = [r[m] for r in finite["SGD"] if m in r]
            b = [r[m] for r in sel if m in r]
            if len(a) > 1 and len(b) > 1:
                stat, pvalue = ks_2samp(a, b)
                tests[f"{name} {m}"] = dict(
                    ks=float(stat),
                    p=float(pvalue),
                    sgd=analysis.mean_se(a),
                    sde=analysis.mean_se(b),
                )
    curves = {
        name: dict(
            steps=sel[0]["steps"],
            **{m: [r[m] for r in sel] for m in ("train_loss_curve", "test_xent_curve")},
        )
        if sel
        else None
        for name, sel in finite.items()
    }
    finals = {
        name: {m: sorted(r[m] for r in sel if m in r) for m in METRICS}
        for name, sel in finite.items()
    }
    return {
        "tests": tests,
        "diverged": {k: sum(r["diverged"] for r in v) for k, v in groups.items()},
        "curves": curves,
        "finals": finals,
        "noise_scale": sim.noise_scale(cfg.lr, cfg.n_train, cfg.batch_size, cfg.momentum),
    }


def figure(summary: dict, cfg: Config, out) -> None:
    """Top: mean curves with s.e. bands. Bottom: the empirical CDFs of the final values over seeds,
        per
    metric: the distributions the two-sample KS tests compare (KS statistic = the largest vertical
        gap)."""
    plt = plotting.pyplot()
    metrics = [m for m in METRICS if any(summary["finals"][k][m] for k in summary["finals"])]
    ncols = max(2, len(metrics))
    fig, axes = plt.subplots(2, ncols, figsize=(4.2 * ncols, 7.4), squeeze=False)
    for k, (name, c) in enumerate(summary["curves"].items()):
        if c is None:  # every seed of this dynamics diverged
            continue
        for ax, m in zip(axes[0], ("train_loss_curve", "test_xent_curve")):
            plotting.band(ax, c["steps"], c[m], color=f"C{k}", label=name)
    axes[0, 0].set_yscale("log")
    axes[0, 0].set_title("train cross-entropy (mean ± s.e.)")
    axes[0, 1].set_title("test cross-entropy (mean ± s.e.)")
    for ax in axes[0, :2]:
        ax.set_xscale("symlog", linthresh=10)
        ax.set_xlabel("SGD step, SDE at the same time (log scale beyond 10)")
    axes[0, 0].legend(fontsize=8)
    for ax in axes[0, 2:]:
        ax.axis("off")
    for ax, m in zip(axes[1], metrics):
        for k, name in enumerate(summary["finals"]):
            values = summary["finals"][name][m]
            if values:
                ax.step(
                    values,
                    np.arange(1, len(values) + 1) / len(values),
                    where="post",
                    color=f"C{k}",
                    label=name,
                )
        pvals = [
            f"{key.split()[1]}: KS p {t['p']:.2g}"
            for key, t in summary["tests"].items()
            if key.endswith(m)
        ]
        ax.set_title(f"final {m.replace('_', ' ')}\n" + "; ".join(pvals), fontsize=8)
        ax.set_ylabel("fraction of seeds <= x")
        ax.set_xlabel(m.replace("_", " "))
    axes[1, 0].legend(fontsize=8)
    caption = (
        f"{cfg.model}, N = {cfg.n_train}, eps = {cfg.lr}, B = {cfg.batch_size}, m = "
        f"{cfg.momentum}, "
        f"lam = {cfg.l2}, g = {summary['noise_scale']:.3g}, {cfg.seeds} seeds, same "
        "initialisation per "
        "seed; bands: s.e.; bottom: empirical CDFs over seeds of the final values the KS tests "
        "compare."
    )
    out.save(
        fig,
        "side-by-side",
        {"tests": summary["tests"], "diverged": summary["diverged"]},
        caption,
    )


def report(summary: dict, cfg: Config) -> str:
    lines = [
        f"SGD against its SDE at g = {summary['noise_scale']:.4g} ({cfg.model}, {cfg.seeds} "
        "seeds); "
        "two-sample KS test",
        f"  {'dynamics / metric':<34}{'SGD':>20}{'SDE':>20}{'KS':>7}{'p':>9}",
    ]
    for key, t in summary["tests"].items():
        lines.append(
            f"  {key:<34}{t['sgd'][0]:>12.5g} ±{t['sgd'][1]:<7.2g}{t['sde'][0]:>12.5g} ±"
            f"{t['sde'][1]:<7.2g}{t['ks']:>7.3f}{t['p']:>9.3g}"
        )
    if any(summary["diverged"].values()):
        lines.append(f"  diverged runs: {summary['diverged']}")
    return "\n".join(lines)


EXPERIMENTS = (
    Experiment(
        name="side-by-side",
        title="SGD and its SDE at equal g over many seeds, two-sample tests",
        config=Config,
        presets={
            "tiny": Config(
                steps=20, record_every=10, seeds=3, n_train=100, batch_size=10, refinements=(1, 2)
            ),
            "quick": Config(),
            "net": Config(
                model="net",
                lr=0.1,
                batch_size=30,
                momentum=0.9,
                l2=0.0,
                n_train=1000,
                seeds=8,
                steps=500,
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
