"""Fig 3's configuration across the net's setups: does any make B = 30 train and beat full batch?

The paper's base configuration: eps = 1, m = 0.9 (undampened momentum, v <- m v + g, w <- w - eps v:
the paper's equations, TensorFlow's MomentumOptimizer and Keras' SGD), N = 1000 digits, no L2, B =
30 against B = N. Every combination of the hidden activation (relu, leaky_relu, tanh, gelu,
softplus), the initialisation (default, glorot, he) and the input preprocessing (pixels, centred,
standardised) runs first for a short budget, where the verdict of a setup that dies or diverges is
already plain; every setup whose B = 30 runs train there (seed-mean test accuracy above
`trains_above`) then runs, at both batch sizes, for the long budget (the paper's 10,000 updates).
Recorded per run: test accuracy, test cross-entropy, the fraction of hidden units dead (ReLU) or
negative on every training example (the others), and divergence.
"""

import dataclasses
import itertools
import math

import numpy as np

import sim

from .. import analysis
from ..runner import contract, plotting, pools, tasks
from ..runner.contract import Experiment, RunContext, choice, param
from ..runner.rows import final_rows, group_rows

checks = sim.checks


@dataclasses.dataclass(frozen=True)
class Config(contract.Config):
    lr: float = param(1.0, checks.positive, help="learning rate eps (the paper's 1)")
    momentum: float = param(0.9, checks.momentum, help="momentum m")
    small_batch: int = param(
        30, checks.integer, help="the small batch size B, against full batch (B = N)"
    )
    n_train: int = param(1000, checks.integer, low=10, help="training-set size N")
    activations: tuple = param(
        tasks.ACTIVATIONS, choice(tasks.ACTIVATIONS), help="hidden activations"
    )
    inits: tuple = param(tasks.INITS, choice(tasks.INITS), help="initialisations")
    inputs: tuple = param(tasks.INPUTS, choice(tasks.INPUTS), help="input preprocessings")
    short_steps: int = param(500, checks.integer, help="updates of the first pass over every setup")
    long_steps: int = param(
        10000, checks.integer, low=0, help="updates for the setups whose B = 30 trains (0: none)"
    )
    trains_above: float = param(
        0.5, checks.non_negative, help="test accuracy that counts as training"
    )
    seeds: int = param(
        4, checks.integer, low=2, help="seeds (one initialisation each, shared by both batch sizes)"
    )

    def check(self):
        checks.integer("small-batch", self.small_batch, low=1, high=self.n_train - 1)


def _point(cfg, setup, batch_size, steps, source):
    return dict(
        lr=cfg.lr,
        momentum=cfg.momentum,
        l2=0.0,
        batch_size=batch_size,
        steps=steps,
        n_train=cfg.n_train,
        data=source,
        **tasks.setup_of(setup),
    )


def _setups(cfg):
    return [
        dict(activation=a, init=i, inputs=x)
        for a, i, x in itertools.product(cfg.activations, cfg.inits, cfg.inputs)
    ]


def grid(cfg: Config) -> list[dict]:
    source = pools.source(cfg.mnist)
    return [
        _point(cfg, s, b, cfg.short_steps, source)
        for s in _setups(cfg)
        for b in (cfg.small_batch, cfg.n_train)
    ]


def evaluate(run: RunContext, points: list[dict], seeds: list[int]) -> list[list[dict]]:
    """Momentum SGD per point over the seeds (initialisation of seed s from `run.keys.init(s)`,
    batches from `run.keys.batches(B)`, as in Fig 3); final metrics and the dead (or negative)
    fraction."""
    out = []
    for p in points:
        data = tasks.net_data(p, run)
        nets = [tasks.net(p, run.keys.init(s)) for s in seeds]
        traj = sim.run_sgd(
            nets,
            data,
            lr=p["lr"],
            momentum=p["momentum"],
            l2=p["l2"],
            batch_size=p["batch_size"],
            steps=p["steps"],
            key=run.keys.batches(p["batch_size"]),
            record_every=p["steps"],
        )
        out.append(final_rows(traj))
    return out


def _setup_key(c):
    return tuple(c.get(k, tasks.SETUP_DEFAULTS[k]) for k in ("activation", "init", "inputs"))


def refine(rows, cfg: Config) -> list[dict]:
    """The long budget for every setup whose B = 30 runs trained in the short pass."""
    if not cfg.long_steps:
        return []
    source = pools.source(cfg.mnist)
    extra = []
    for setup, sel in group_rows(rows, _setup_key).items():
        small = [
            r["test_accuracy"]
            for r in sel
            if r["config"]["batch_size"] == cfg.small_batch
            and r["config"]["steps"] == cfg.short_steps
            and not r["diverged"]
        ]
        if small and analysis.mean_se(small)[0] > cfg.trains_above:
            s = dict(zip(("activation", "init", "inputs"), setup))
            extra += [
                _point(cfg, s, b, cfg.long_steps, source) for b in (cfg.small_batch, cfg.n_train)
            ]
    return extra


def summarize(rows, cfg: Config) -> dict:
    """Per setup and budget: test accuracy, cross-entropy and dead (negative) fraction at B = 30 and
    B = N, mean and s.e. over seeds, diverged runs; the gap (B = 30 minus full batch) in s.e."""
    table = []
    key = lambda c: (*_setup_key(c), c["steps"])  # noqa: E731
    for (activation, init, inputs, steps), sel in sorted(group_rows(rows, key).items()):
        entry = dict(activation=activation, init=init, inputs=inputs, steps=steps)
        acc = {}
        for label, b in (("small", cfg.small_batch), ("full", cfg.n_train)):
            runs = [r for r in sel if r["config"]["batch_size"] == b]
            dead_key = "dead_fraction" if activation == "relu" else "negative_fraction"
            acc[label] = [r["test_accuracy"] for r in runs if not r["diverged"]]
            entry[label] = dict(
                batch_size=b,
                test_accuracy=analysis.mean_se(acc[label]),
                test_xent=analysis.mean_se([r["test_xent"] for r in runs if not r["diverged"]]),
                dead=analysis.mean_se([r.get(dead_key) for r in runs if not r["diverged"]]),
                dead_key=dead_key,
                diverged=sum(r["diverged"] for r in runs),
                runs=len(runs),
            )
        entry["gap_z"] = analysis.welch(acc["full"], acc["small"])[2]
        table.append(entry)
    trained = [e for e in table if e["steps"] == cfg.long_steps]
    beats = [e for e in trained if e["gap_z"] > 2]
    return dict(
        table=table,
        lr=cfg.lr,
        momentum=cfg.momentum,
        n_train=cfg.n_train,
        seeds=cfg.seeds,
        short_steps=cfg.short_steps,
        long_steps=cfg.long_steps,
        small_trains=[
            e
            for e in (
                f"{t['activation']}/{t['init']}/{t['inputs']}"
                for t in table
                if t["steps"] == cfg.short_steps
                and t["small"]["test_accuracy"][0] > cfg.trains_above
            )
        ],
        small_beats_full=[f"{e['activation']}/{e['init']}/{e['inputs']}" for e in beats],
    )


def figure(summary, cfg: Config, out) -> None:
    plt = plotting.pyplot()
    budgets = sorted({e["steps"] for e in summary["table"]})
    fig, axes = plt.subplots(len(budgets), 1, figsize=(14, 3.6 * len(budgets)), squeeze=False)
    for ax, steps in zip(axes[:, 0], budgets):
        sel = [e for e in summary["table"] if e["steps"] == steps]
        x = np.arange(len(sel))
        for shift, label, color in ((-0.2, "small", "C0"), (0.2, "full", "C1")):
            mean = np.array([e[label]["test_accuracy"][0] for e in sel], float)
            se = np.nan_to_num(np.array([e[label]["test_accuracy"][1] for e in sel], float))
            ax.bar(
                x + shift,
                np.nan_to_num(mean),
                width=0.4,
                yerr=1.96 * se,
                color=color,
                capsize=2,
                label=f"B = {sel[0][label]['batch_size']}",
            )
            dead = np.array([e[label]["dead"][0] for e in sel], float)
            ax.plot(
                x + shift,
                dead,
                "kv",
                ms=4,
                label="dead (ReLU) / negative fraction" if label == "small" else None,
            )
        ax.axhline(0.1, color="grey", lw=0.8, ls=":")
        ax.set_xticks(
            x, [f"{e['activation']}\n{e['init']}\n{e['inputs']}" for e in sel], fontsize=6
        )
        ax.set(ylabel="test accuracy (95% interval)", ylim=(0, 1), title=f"{steps} updates")
        ax.legend(fontsize=7, loc="upper right")
    caption = (
        f"784-800-10 net, eps = {cfg.lr}, m = {cfg.momentum} (undampened), N = {cfg.n_train}, "
        f"{cfg.seeds} seeds; "
        f"B = {cfg.small_batch} against full batch. Triangles: fraction of hidden units dead "
        "(ReLU) or negative "
        "(other activations) on every training example. Long budget: setups whose small batch "
        "trained."
    )
    out.save(fig, "fig3-setups", summary, caption)


def report(summary, cfg: Config) -> str:
    lines = [
        f"fig3-setups: eps = {cfg.lr}, m = {cfg.momentum}, N = {cfg.n_train}; test accuracy (dead "
        "or negative "
        f"fraction) at B = {cfg.small_batch} | B = {cfg.n_train}",
        f"  {'activation':<11}{'init':<9}{'inputs':<13}{'steps':>6}  {'small B':>22}  "
        f"{'full batch':>22}  gap z",
    ]
    for e in summary["table"]:
        cells = []
        for label in ("small", "full"):
            a, d = e[label]["test_accuracy"], e[label]["dead"]
            div = f" {e[label]['diverged']} div" if e[label]["diverged"] else ""
            cells.append(f"{a[0]:.3f}±{a[1]:.3f} ({d[0]:.2f}){div}")
        z = e["gap_z"]
        lines.append(
            f"  {e['activation']:<11}{e['init']:<9}{e['inputs']:<13}{e['steps']:>6}  "
            f"{cells[0]:>22}  "
            f"{cells[1]:>22}  {z:+.1f}"
            if math.isfinite(z)
            else f"  {e['activation']:<11}{e['init']:<9}{e['inputs']:<13}{e['steps']:>6}  "
            f"{cells[0]:>22}  {cells[1]:>22}"
        )
    lines.append(
        f"  B = {cfg.small_batch} trains at {cfg.short_steps} updates: "
        f"{', '.join(summary['small_trains']) or 'none'}"
    )
    lines.append(
        f"  B = {cfg.small_batch} beats full batch (> 2 s.e.) at {cfg.long_steps} updates: "
        f"{', '.join(summary['small_beats_full']) or 'none'}"
    )
    return "\n".join(lines)


EXPERIMENTS = (
    Experiment(
        name="fig3-setups",
        title="Fig 3's eps = 1 across activations, initialisations and input preprocessing",
        config=Config,
        presets={
            "tiny": Config(
                n_train=100,
                small_batch=10,
                activations=("relu", "tanh"),
                inits=("default",),
                inputs=("pixels", "centred"),
                short_steps=30,
                long_steps=60,
                trains_above=0.3,
                seeds=2,
            ),
            "quick": Config(inits=("default",), inputs=("pixels",), long_steps=2000, seeds=2),
            "paper": Config(),
        },
        grid=grid,
        evaluate=evaluate,
        refine=refine,
        summarize=summarize,
        figure=figure,
        report=report,
        chunk_size=1,
        section="paper",
        cost=tasks.step_cost,
    ),
)
