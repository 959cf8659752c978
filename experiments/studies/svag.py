"""Two roads to the SDE at equal g: Euler-Maruyama with the exact noise (r = 1, 4) and SVAG
(l = 1, 2, 4, 8, 16; Li, Malladi & Arora 2021), against SGD, from the same initialisation per seed.

For each dynamics and seed, at the end of training: train loss, test accuracy and test
cross-entropy, and Li-Malladi-Arora's C-closeness quantities: |w|^2, the full-batch gradient norm
|grad L|^2 of the mean training loss, and the noise trace tr Sigma (= tr F, the per-example gradient
covariance). Each is compared with SGD's by the two-sample Kolmogorov-Smirnov test, and with the
finest road (EM at the largest r, SVAG at the largest l) by the Welch difference in standard errors:
where SVAG and EM agree with each other but not with SGD, SGD has parted from its SDE. Along
training: the same three quantities at `checkpoints` equally spaced SDE times (runs of fewer steps:
    batches and Brownian
increments are keyed by the step's absolute index, so a shorter run is exactly the start of the
longer one). Cost: seconds per unit of SDE time of each run, wall and without compilation.
Quick: the linear model (binary task, N = 800), eps = 0.4, B = 32, lam = 1, 250 SGD steps, 24 seeds
(eps = 0.4 is where the departure study finds the refined SDE parting from SGD). `--preset net`: the
784-800-10 net, eps = 0.1, B = 30, m = 0.9, 300 steps, 6 seeds.
"""

import dataclasses
import functools

import numpy as np

import sim

from .. import analysis
from ..runner import plotting, pools, tasks, timing
from ..runner.contract import Experiment, RunContext, param
from ..runner.rows import final_rows

checks = sim.checks
METRICS = ("train_loss", "test_accuracy", "test_xent", "w_norm_sq", "grad_norm_sq", "noise_trace")


@dataclasses.dataclass(frozen=True)
class Config(tasks.NetSetup):
    model: str = param(
        "logistic", tasks.check_model, help="'logistic' (binary task) or 'net' (ten digits)"
    )
    lr: float = param(0.4, checks.positive, help="learning rate eps")
    batch_size: int = param(32, help="batch size B, in [1, N]")
    momentum: float = param(0.0, checks.momentum, help="momentum m")
    l2: float = param(1.0, checks.non_negative, help="L2 lam in the summed cost C")
    steps: int = param(
        250, checks.integer, help="SGD steps (every road runs for the same SDE time)"
    )
    seeds: int = param(
        24, checks.integer, low=2, help="seeds (one initialisation each, shared by all roads)"
    )
    refinements: tuple = param((1, 4), checks.integer, help="Euler-Maruyama steps per SGD step r")
    ls: tuple = param((1, 2, 4, 8, 16), checks.integer, help="SVAG parameters l")
    checkpoints: int = param(
        4, checks.integer, help="SDE times along training at which C-closeness is measured"
    )
    n_train: int = param(800, checks.integer, help="training-set size N")

    def check(self):
        checks.integer("batch-size", self.batch_size, low=1, high=self.n_train)
        checks.integer("checkpoints", self.checkpoints, low=1, high=self.steps)


def grid(cfg: Config) -> list[dict]:
    base = dict(
        **tasks.setup_of(cfg),
        model=cfg.model,
        lr=cfg.lr,
        batch_size=cfg.batch_size,
        momentum=cfg.momentum,
        l2=cfg.l2,
        steps=cfg.steps,
        n_train=cfg.n_train,
        data=pools.source(cfg.mnist),
    )
    roads = (
        [dict(base, dynamics="sgd")]
        + [dict(base, dynamics="sde", refinement=r) for r in cfg.refinements]
        + [dict(base, dynamics="svag", l=ell) for ell in cfg.ls]
    )
    along = [
        dict(road, steps=s)
        for s in checkpoint_steps(cfg)[:-1]
        for road in roads
        if road["dynamics"] == "sgd"
        or road.get("refinement") == max(cfg.refinements)
        or road.get("l") == max(cfg.ls)
    ]
    return roads + along


def checkpoint_steps(cfg: Config) -> list[int]:
    """SGD-equivalent steps of the checkpoints along training (the last is the full run)."""
    return sorted({round(cfg.steps * (k + 1) / cfg.checkpoints) for k in range(cfg.checkpoints)})


def _closeness(flat, w, x, y):
    import jax.numpy as jnp

    n = x.shape[0]
    total = flat.weighted_loss_grad(w, jnp.ones((n,), w.dtype), x, y)
    return (
        jnp.dot(w, w),
        jnp.dot(total, total) / n**2,
        sim.gradient_covariance_trace(flat, w, x, y, total=total),
    )


@functools.cache
def _closeness_jit():
    import jax

    return jax.jit(_closeness)


def evaluate(run: RunContext, points: list[dict], seeds: list[int]) -> list[list[dict]]:
    out = []
    for p in points:
        data, make = tasks.task(
            p["model"],
            run.pool(p["data"]),
            n_train=p["n_train"],
            seed=run.keys.draw,
            **tasks.setup_of(p),
        )
        inits = [make(run.keys.init(s)) for s in seeds]
        common = dict(
            lr=p["lr"],
            batch_size=p["batch_size"],
            momentum=p["momentum"],
            l2=p["l2"],
            steps=p["steps"],
            record_every=p["steps"],
        )
        with timing.timed() as elapsed:
            if p["dynamics"] == "sgd":
                traj = sim.run_sgd(inits, data, key=run.keys.batches(), **common)
            elif p["dynamics"] == "sde":
                traj = sim.run_sde(
                    inits, data, key=run.keys.noise(), refinement=p["refinement"], **common
                )
            else:
                traj = sim.run_svag(inits, data, key=run.keys.batches(), l=p["l"], **common)
            seconds, compiling = elapsed()
        rows = final_rows(traj)
        for s, row in enumerate(rows):
            if not row["diverged"]:
                values = _closeness_jit()(traj.flat, traj.params[s], data.x_train, data.y_train)
                row.update(
                    zip(("w_norm_sq", "grad_norm_sq", "noise_trace"), (float(v) for v in values))
                )
            row["seconds_per_sde_time"] = seconds / float(traj.time[s, -1])
            row["compute_seconds_per_sde_time"] = (seconds - compiling) / float(traj.time[s, -1])
        out.append(rows)
    return out


def _label(c):
    return {"sgd": "SGD", "sde": f"EM r={c.get('refinement')}", "svag": f"SVAG l={c.get('l')}"}[
        c["dynamics"]
    ]


CLOSENESS = ("w_norm_sq", "grad_norm_sq", "noise_trace")


def _sde_time(cfg: Config, steps: int) -> float:
    """SDE time of `steps` SGD steps: steps eps/N (m = 0), steps sqrt(eps/N) (second-order SDE)."""
    return steps * (np.sqrt(cfg.lr / cfg.n_train) if cfg.momentum > 0 else cfg.lr / cfg.n_train)


def _along(rows: list[dict], cfg: Config, finest: dict) -> dict:
    """C-closeness along training: per road (SGD and the finest EM and SVAG) and checkpoint, the
    mean and s.e. of |w|^2, |grad L|^2 and tr Sigma, and each road's Welch difference from SGD."""
    by = {}
    for row in rows:
        if not row["diverged"]:
            by.setdefault((_label(row["config"]), row["config"]["steps"]), []).append(row)
    steps = checkpoint_steps(cfg)
    out = {"time": [_sde_time(cfg, k) for k in steps], "steps": steps, "roads": {}}
    for name in ("SGD", finest["EM"], finest["SVAG"]):
        road = {}
        for m in CLOSENESS:
            road[m] = []
            for k in steps:
                values = [r[m] for r in by.get((name, k), [])]
                sgd = [r[m] for r in by.get(("SGD", k), [])]
                z = (
                    analysis.welch(sgd, values)[2]
                    if name != "SGD" and len(values) > 1 and len(sgd) > 1
                    else None
                )
                road[m].append(dict(mean_se=analysis.mean_se(values), z_sgd=z))
        out["roads"][name] = road
    return out


def summarize(rows: list[dict], cfg: Config) -> dict:
    from scipy.stats import ks_2samp

    groups = {}
    for row in rows:
        if row["config"]["steps"] == cfg.steps:
            groups.setdefault(_label(row["config"]), []).append(row)
    finite = {k: [r for r in v if not r["diverged"]] for k, v in groups.items()}
    finest = {"EM": f"EM r={max(cfg.refinements)}", "SVAG": f"SVAG l={max(cfg.ls)}"}
    table = {}
    for name, sel in finite.items():
        entry = {
            "diverged": sum(r["diverged"] for r in groups[name]),
            "seconds_per_sde_time": float(
                np.median([r["seconds_per_sde_time"] for r in groups[name]])
            ),
            "compute_seconds_per_sde_time": float(
                np.median([r.get("compute_seconds_per_sde_time", np.nan) for r in groups[name]])
            ),
        }
        for m in METRICS:
            values = [r[m] for r in sel if m in r]
            sgd = [r[m] for r in finite["SGD"] if m in r]
            entry[m] = dict(mean_se=analysis.mean_se(values))
            if name != "SGD" and len(values) > 1 and len(sgd) > 1:
                stat, pvalue = ks_2samp(sgd, values)
                entry[m].update(
                    ks_sgd=float(stat), p_sgd=float(pvalue), z_sgd=analysis.welch(sgd, values)[2]
                )
            for road, ref in finest.items():
                if name != ref and ref in finite:
                    entry[m][f"z_{road.lower()}"] = analysis.welch(
                        [r[m] for r in finite[ref] if m in r], values
                    )[2]
        table[name] = entry
    return {
        "table": table,
        "along": _along(rows, cfg, finest),
        "noise_scale": sim.noise_scale(cfg.lr, cfg.n_train, cfg.batch_size, cfg.momentum),
    }


def figure(summary: dict, cfg: Config, out) -> None:
    plt = plotting.pyplot()
    fig, axes = plt.subplots(3, 3, figsize=(13, 10.5))
    names = list(summary["table"])
    x = np.arange(len(names))
    for ax, m in zip(axes[:2].ravel(), METRICS):
        stats = [summary["table"][n][m]["mean_se"] for n in names]
        colours = ["k" if n == "SGD" else ("C0" if n.startswith("EM") else "C3") for n in names]
        for k, (mean, se, count) in enumerate(stats):
            if count:
                ax.errorbar(
                    k,
                    mean,
                    yerr=0 if not np.isfinite(se) else se,
                    marker="o",
                    color=colours[k],
                    capsize=3,
                )
        sgd_mean, sgd_se, _ = summary["table"]["SGD"][m]["mean_se"]
        ax.axhspan(sgd_mean - 2 * sgd_se, sgd_mean + 2 * sgd_se, color="grey", alpha=0.2, lw=0)
        ax.set_xticks(x, names, rotation=45, fontsize=7)
        ax.set_title(m.replace("_", " ") + " (final)", fontsize=9)
    along = summary["along"]
    for ax, m in zip(axes[2], CLOSENESS):
        for k, (name, road) in enumerate(along["roads"].items()):
            mean, se = (np.array([c["mean_se"][i] for c in road[m]]) for i in (0, 1))
            colour = "k" if name == "SGD" else ("C0" if name.startswith("EM") else "C3")
            ax.errorbar(
                np.asarray(along["time"]) * (1 + 0.01 * (k - 1)),
                mean,
                yerr=np.nan_to_num(se),
                marker="o",
                ms=3,
                color=colour,
                capsize=2,
                label=name,
            )
        ax.set_xlabel("SDE time")
        ax.set_title(m.replace("_", " ") + " along training", fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle(
        f"SGD (black, grey band: ± 2 s.e.), Euler-Maruyama (blue) and SVAG (red) at g = "
        f"{summary['noise_scale']:.3g}: mean ± s.e. over seeds",
        fontsize=10,
    )
    caption = (
        f"{cfg.model}, N = {cfg.n_train}, eps = {cfg.lr}, B = {cfg.batch_size}, m = "
        f"{cfg.momentum}, "
        f"lam = {cfg.l2}, {cfg.steps} SGD steps of SDE time, {cfg.seeds} seeds, same "
        "initialisation per seed."
    )
    out.save(fig, "svag", summary, caption)


def report(summary: dict, cfg: Config) -> str:
    lines = [
        f"SGD against Euler-Maruyama and SVAG at g = {summary['noise_scale']:.4g} ({cfg.model}, "
        f"{cfg.seeds} seeds)",
        f"  {'road':<12}"
        + "".join(f"{m:>16}" for m in METRICS)
        + f"{'s / SDE time':>14}{'no compile':>12}",
    ]
    for name, e in summary["table"].items():
        cells = []
        for m in METRICS:
            mean, se, _ = e[m]["mean_se"]
            z = e[m].get("z_sgd")
            cells.append(
                f"{mean:>9.4g}" + (f" {z:+5.1f}" if z is not None and np.isfinite(z) else "      ")
            )
        lines.append(
            f"  {name:<12}"
            + "".join(f"{c:>16}" for c in cells)
            + f"{e['seconds_per_sde_time']:>14.3g}"
            + f"{e['compute_seconds_per_sde_time']:>12.3g}"
        )
    lines.append("  (after each value: the difference from SGD in standard errors)")
    along = summary["along"]
    lines.append(
        "  C-closeness along training (difference from SGD in s.e. at SDE times "
        + ", ".join(f"{t:.3g}" for t in along["time"])
        + "):"
    )
    for name, road in along["roads"].items():
        if name != "SGD":
            lines.append(
                f"    {name:<10}"
                + "  ".join(
                    f"{m} "
                    + " ".join(
                        f"{c['z_sgd']:+.1f}" if c["z_sgd"] is not None else "nan" for c in road[m]
                    )
                    for m in CLOSENESS
                )
            )
    return "\n".join(lines)


EXPERIMENTS = (
    Experiment(
        name="svag",
        title="Euler-Maruyama and SVAG against SGD at equal g: two roads to the SDE",
        config=Config,
        presets={
            "tiny": Config(
                steps=10, seeds=3, n_train=100, batch_size=10, refinements=(1, 2), ls=(1, 2)
            ),
            "quick": Config(),
            "net": Config(
                model="net",
                lr=0.1,
                batch_size=30,
                momentum=0.9,
                l2=0.0,
                n_train=1000,
                steps=300,
                seeds=6,
                ls=(1, 2, 4, 8),
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
