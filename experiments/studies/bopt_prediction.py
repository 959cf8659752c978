"""Does the gradient noise scale B_simple (McCandlish et al. 2018) or the paper's eps N / ((1 - m)
g_opt) predict the optimal batch size?

Reads the Fig 5 sweep rows (`fig5.jsonl` in the same folder: run `sgd-sde fig5` first), takes its
B_opt for each eps as fig5 prints it (the vertex of the parabola in ln B from test accuracy,
with its bootstrap interval: `batch_size.optima`, `analysis.b_opt`), and the noise scale g_opt =
eps (N/B_opt - 1)/(1 - m) at the middle eps; the paper's rule then predicts B_opt(eps) = N / ((1 -
m) g_opt / eps + 1). Separately it trains the net
with momentum SGD (eps = 0.1, B = 30, m = 0.9, as Figs 4-5) and measures B_simple = tr(Sigma)/|G|^2
(exact, per-example gradients in chunks) and B_noise (Gaussian probes) at checkpoints along
training. Reported: both predictions next to the measured B_opt, with the log-ratio error of each.
"""

import dataclasses
import math

import sim

from ..paper import batch_size as _batch_size
from ..runner import plotting, pools, tasks
from ..runner.contract import Experiment, Rows, RunContext, param
from ..runner.rows import diagnostics_of

checks = sim.checks


@dataclasses.dataclass(frozen=True)
class Config(tasks.NetSetup):
    lr: float = param(0.1, checks.positive, help="learning rate eps of the measured run")
    momentum: float = param(0.9, checks.momentum, help="momentum m of the measured run")
    batch_size: int = param(30, checks.integer, help="batch size B of the measured run")
    n_train: int = param(1000, checks.integer, help="training-set size N of the measured run")
    checkpoints: tuple = param(
        (0, 250, 500, 1000, 2000),
        checks.integer,
        low=0,
        help="SGD steps at which the noise scales are measured, increasing",
    )
    probes: int = param(10, checks.integer, low=2, help="Gaussian probes for B_noise")
    seeds: int = param(1, help="unused: one measured run (seed 0)")
    seeds: int = param(1, help="unused: one measured run (seed 0)")

    def check(self):
        checks.integer("batch-size", self.batch_size, low=1, high=self.n_train)
        if list(self.checkpoints) != sorted(self.checkpoints):
            raise sim.InputError("checkpoints must be increasing step counts >= 0")


def grid(cfg: Config) -> list[dict]:
    return [
        dict(
            lr=cfg.lr,
            momentum=cfg.momentum,
            batch_size=cfg.batch_size,
            n_train=cfg.n_train,
            checkpoints=list(cfg.checkpoints),
            probes=cfg.probes,
            data=pools.source(cfg.mnist),
            **tasks.setup_of(cfg),
        )
    ]


def evaluate(run: RunContext, points: list[dict], seeds: list[int]) -> list[list[dict]]:
    """Momentum SGD from each seed's initialisation; B_simple and B_noise at every checkpoint."""
    out = []
    for p in points:
        data = tasks.net_data(p, run)
        per_seed = []
        for seed in seeds:
            model = tasks.net(p, run.keys.init(seed))
            done, values, dead = 0, [], {}
            for k, target in enumerate(p["checkpoints"]):
                if target > done:
                    traj = sim.run_sgd(
                        model,
                        data,
                        lr=p["lr"],
                        momentum=p["momentum"],
                        batch_size=p["batch_size"],
                        steps=target - done,
                        key=run.keys.batches(k),
                        record_every=target - done,
                    )
                    model, done, dead = traj.model(0), target, diagnostics_of(traj, 0)
                ns = sim.critical_batch_size(model, data, key=run.keys.plain(k), probes=p["probes"])
                values.append(
                    dict(
                        step=target,
                        b_simple=ns.b_simple,
                        b_noise=ns.b_noise,
                        b_noise_error=ns.b_noise_error,
                        **dead,
                    )
                )
            per_seed.append(dict(along_training=values))
        out.append(per_seed)
    return out


@dataclasses.dataclass(frozen=True)
class Reads:
    """Fig 5's rows in this folder."""

    fig5: Rows


def _fig5_rows(fig5: list[dict], cfg: Config) -> list[dict]:
    """The rows of the curve fig5 prints for this run's net setup: a folder's fig5.jsonl may hold
    other presets' rows too (the quick leaky-ReLU control's, with the landscape). Rows measured
    with the landscape are other runs (the point, hashed into the chunk's batch key, differs): left
    out where rows without it are there. Two runs left for one (eps, B, seed), e.g. two budgets,
    are refused: which one fig5 printed is not in the rows."""
    setup = tasks.setup_of(cfg)
    own = [r for r in fig5 if tasks.setup_of(r["config"]) == setup]
    rows = [r for r in own if not r["config"].get("landscape")] or own
    seen = set()
    for r in rows:
        key = (r["config"]["lr"], r["config"]["batch_size"], r["seed"])
        if key in seen:
            raise sim.InputError(
                f"fig5's rows hold two runs of eps = {key[0]:g}, B = {key[1]}, seed {key[2]} "
                "(two budgets or setups in one folder): run bopt-prediction on a folder of one "
                "fig5 sweep"
            )
        seen.add(key)
    return rows


def summarize(rows: list[dict], cfg: Config, reads: Reads) -> dict:
    """B_opt per eps as fig5 prints it (`_fig5_rows`, `batch_size.optima`: the vertex with its
    interval, and the best grid point beside it), the paper's rule with g_opt fitted at the middle
    eps, and the log errors of both predictions (B_simple at the last checkpoint)."""
    fig5 = reads.fig5
    fig5 = _fig5_rows(fig5, cfg)
    opt = _batch_size.optima(fig5, "lr")
    along = rows[0]["along_training"]
    lrs = sorted(opt)
    n = fig5[0]["config"]["n_train"]
    m = fig5[0]["config"]["momentum"]
    middle = lrs[len(lrs) // 2]
    g_opt = middle * (n / opt[middle]["fit"]["b_opt"] - 1) / (1 - m)
    b_simple_final = along[-1]["b_simple"]
    table = []
    for lr in lrs:
        fit = opt[lr]["fit"]
        paper = n / ((1 - m) * g_opt / lr + 1)
        table.append(
            dict(
                lr=lr,
                b_opt=fit["b_opt"],
                b_opt_ci95=fit["b_opt_ci95"],
                method=fit["method"],
                b_grid=opt[lr]["b_grid"],
                log_sigma=opt[lr]["log_sigma"],
                paper_rule=paper,
                paper_log_error=math.log(paper / fit["b_opt"]),
                b_simple_log_error=math.log(b_simple_final / fit["b_opt"]),
            )
        )
    return {"table": table, "along_training": along, "g_opt": g_opt}


def figure(summary: dict, cfg: Config, out) -> None:
    table, along, g_opt = summary["table"], summary["along_training"], summary["g_opt"]
    plt = plotting.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    axes[0].plot([a["step"] for a in along], [a["b_simple"] for a in along], "o-", label="B_simple")
    axes[0].errorbar(
        [a["step"] for a in along],
        [a["b_noise"] for a in along],
        yerr=[a["b_noise_error"] for a in along],
        fmt="s-",
        label="B_noise",
    )
    axes[0].set_yscale("log")
    axes[0].set_xlabel("SGD step")
    axes[0].set_title(f"noise scales along training (eps {cfg.lr}, B {cfg.batch_size})")
    axes[0].legend(fontsize=8)
    x = [t["lr"] for t in table]
    axes[1].errorbar(
        x,
        [t["b_opt"] for t in table],
        yerr=[
            [t["b_opt"] - t["b_opt_ci95"][0] for t in table],
            [t["b_opt_ci95"][1] - t["b_opt"] for t in table],
        ],
        fmt="o",
        capsize=3,
        label="measured B_opt (fig5's, bootstrap interval)",
    )
    axes[1].plot(x, [t["b_grid"] for t in table], "x", color="C0", label="best grid point")
    axes[1].plot(
        x, [t["paper_rule"] for t in table], "--", label=f"eps N/((1-m) g_opt), g_opt = {g_opt:.3g}"
    )
    axes[1].axhline(
        along[-1]["b_simple"], color="C2", ls=":", label=f"B_simple at step {along[-1]['step']}"
    )
    axes[1].set_xscale("log")
    axes[1].set_yscale("log")
    axes[1].set_xlabel("eps")
    axes[1].legend(fontsize=7)
    caption = (
        "B_opt from fig5.jsonl as fig5 prints it (the vertex of a parabola in ln B near the best "
        f"grid point); g_opt fitted at eps = {x[len(x) // 2]:g} only (the rule is then tested at "
        "the other eps); B_simple exact from per-example gradients."
    )
    out.save(fig, "bopt-prediction", summary, caption)


def report(summary: dict, cfg: Config) -> str:
    b_simple_final = summary["along_training"][-1]["b_simple"]
    lines = ["optimal batch size: measured (fig5) against eps N/((1-m) g_opt) and B_simple"]
    for t in summary["table"]:
        lines.append(
            f"  eps = {t['lr']:g}: B_opt {t['b_opt']:.3g} [{t['b_opt_ci95'][0]:.3g}, "
            f"{t['b_opt_ci95'][1]:.3g}] ({t['method']}; best grid point {t['b_grid']:g}); "
            "paper rule "
            f"{t['paper_rule']:.3g} (log error {t['paper_log_error']:+.2f}); B_simple "
            f"{b_simple_final:.3g} "
            f"(log error {t['b_simple_log_error']:+.2f})"
        )
    for a in summary["along_training"]:
        lines.append(
            f"  step {a['step']}: B_simple {a['b_simple']:.4g}, B_noise {a['b_noise']:.4g} ± "
            f"{a['b_noise_error']:.2g}"
        )
    return "\n".join(lines)


EXPERIMENTS = (
    Experiment(
        name="bopt-prediction",
        title="does B_simple or eps N/((1-m) g_opt) predict B_opt?",
        config=Config,
        presets={"tiny": Config(n_train=100, checkpoints=(0, 10), probes=2), "quick": Config()},
        grid=grid,
        evaluate=evaluate,
        summarize=summarize,
        figure=figure,
        report=report,
        seeds=lambda cfg, point: [0],
        reads=Reads,
        section="studies",
    ),
)
