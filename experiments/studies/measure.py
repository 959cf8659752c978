"""Train a model briefly, then measure its landscape: sharpness, evidence, gradient noise scale.

`--model logistic`: the paper's linear model on the binary task (digits 0-4 against 5-9, N = 800),
trained by full-batch gradient descent (B = N) at lam = 1 to near its minimum, so the Laplace
evidence (exact: 785 parameters) is meaningful. `--preset net`: the 784-800-10 net on N = 1000,
momentum SGD; its evidence uses SLQ and is only meaningful at a minimum with lam > 0.

A sweep of one point, run with one seed (--seed): its row holds every measurement.
"""

import dataclasses

import numpy as np

import sim

from ..runner import pools, rows, tasks
from ..runner.contract import Experiment, RunContext, param

checks = sim.checks


@dataclasses.dataclass(frozen=True)
class Config(tasks.NetSetup):
    model: str = param(
        "logistic", tasks.check_model, help="'logistic' (binary task) or 'net' (ten digits)"
    )
    lr: float = param(1.0, checks.positive, help="learning rate eps")
    batch_size: int = param(800, help="batch size B, in [1, N]")
    momentum: float = param(0.9, checks.momentum, help="momentum m")
    l2: float = param(1.0, checks.non_negative, help="L2 lam in the summed cost C")
    steps: int = param(1000, checks.integer, help="training steps before measuring")
    n_train: int = param(800, checks.integer, help="training-set size N")
    k: int = param(
        3, checks.integer, help="top Hessian eigenvalues to find (at most the parameter count)"
    )
    probes: int = param(30, checks.integer, low=2, help="probes of the trace and SLQ estimates")
    lanczos_steps: int = param(40, checks.integer, help="Lanczos depth")
    seed: int = param(0, help="seed (data draw, initialisation, minibatches, probes)")
    seeds: int = param(1, help="unused: one run, of seed --seed")

    def check(self):
        checks.integer("batch-size", self.batch_size, low=1, high=self.n_train)
        p = 785 if self.model == "logistic" else 784 * 800 + 800 + 8010
        checks.integer("k", self.k, low=1, high=p)


def grid(cfg: Config) -> list[dict]:
    return [
        dict(
            model=cfg.model,
            lr=cfg.lr,
            batch_size=cfg.batch_size,
            momentum=cfg.momentum,
            l2=cfg.l2,
            steps=cfg.steps,
            n_train=cfg.n_train,
            k=cfg.k,
            probes=cfg.probes,
            lanczos_steps=cfg.lanczos_steps,
            data=pools.source(cfg.mnist),
            **tasks.setup_of(cfg),
        )
    ]


def evaluate(run: RunContext, points: list[dict], seeds: list[int]) -> list[list[dict]]:
    """Train (SGD), then `sim.summary` of the trained model, beside the model's final diagnostics
    (the net's `dead_fraction`); a diverged run is a row without measurements. `names` keeps the
    order of the measurements."""
    import jax.random as jr

    out = []
    for p in points:
        per_seed = []
        for seed in seeds:
            init_key, sgd_key, measure_key = jr.split(run.keys.plain(seed), 3)
            data, make_model = tasks.task(
                p["model"],
                run.pool(p["data"]),
                n_train=p["n_train"],
                seed=seed,
                **tasks.setup_of(p),
            )
            traj = sim.run_sgd(
                make_model(init_key),
                data,
                lr=p["lr"],
                batch_size=p["batch_size"],
                momentum=p["momentum"],
                l2=p["l2"],
                steps=p["steps"],
                key=sgd_key,
                record_every=p["steps"],
            )
            if traj.diverged[0]:
                per_seed.append(dict(diverged=True, diverged_step=int(traj.diverged_step[0])))
                continue
            lanczos = (
                min(p["lanczos_steps"], 785) if p["model"] == "logistic" else p["lanczos_steps"]
            )
            result = sim.summary(
                traj.model(0),
                data,
                key=measure_key,
                l2=p["l2"],
                k=p["k"],
                probes=p["probes"],
                lanczos_steps=lanczos,
            )
            diagnostics = rows.diagnostics_of(traj, 0)  # e.g. the net's dead_fraction
            per_seed.append(
                dict(
                    names=list(result) + list(diagnostics),
                    **{k: _plain(v) for k, v in result.items()},
                    **diagnostics,
                )
            )
        out.append(per_seed)
    return out


def _plain(value):
    if hasattr(value, "_asdict"):
        return {k: _plain(v) for k, v in value._asdict().items()}
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def _kind(value):
    """The result type a plain dict came from (by its fields), or None."""
    if isinstance(value, dict):
        # how measurements are reported
        for cls in (sim.Estimate, sim.Eigenvalues, sim.Evidence, sim.CriticalBatchSize):
            if set(value) == set(cls._fields):
                return cls
    return None


def summarize(rows: list[dict], cfg: Config) -> dict:
    """The measurements in their order (each result's fields in its type's order)."""
    (row,) = rows
    if row["diverged"]:
        raise sim.InputError(f"training diverged at step {row['diverged_step']}: lower --lr")
    out = {}
    for name in row["names"]:
        cls = _kind(row[name])
        out[name] = {f: row[name][f] for f in cls._fields} if cls else row[name]
    return out


def figure(summary: dict, cfg: Config, out) -> None:
    """The numbers alone: measure.json (measure-<preset>.json for a preset other than tiny and
    quick)."""
    out.json("measure", {"config": dataclasses.asdict(cfg), **summary})


def report(summary: dict, cfg: Config) -> str:
    lines = [
        f"{cfg.model}: N = {cfg.n_train}, eps = {cfg.lr}, B = {cfg.batch_size}, m = "
        f"{cfg.momentum}, "
        f"lam = {cfg.l2}, {cfg.steps} steps"
    ]
    for name, plain in summary.items():
        cls = _kind(plain)
        value = cls(**plain) if cls else plain
        if isinstance(value, sim.Estimate):
            error = f" ± {value.error:.2g}" if value.error == value.error else ""
            lines.append(f"  {name:<20}{value.value:.6g}{error}   [{value.method}]")
        elif isinstance(value, sim.Eigenvalues):
            found = ", ".join(
                f"{v:.6g} (± {b:.2g})" for v, b in zip(value.values, value.error_bounds)
            )
            lines.append(
                f"  {name:<20}{found}   [Lanczos, {value.steps_used} of {value.steps} steps; "
                f"± residual bound]"
            )
        elif isinstance(value, sim.Evidence):
            lines.append(
                f"  {'log evidence ratio':<20}{value.log_evidence_ratio:.6g} ± {value.error:.2g}   "
                f"[{value.method}; {value.n_dropped:g} eigenvalues below lam dropped; "
                f"half-depth change {value.truncation:.2g}, Krylov dimension >= {value.steps_used}]"
            )
        elif isinstance(value, sim.CriticalBatchSize):
            lines.append(f"  {'B_simple':<20}{value.b_simple:.6g}   [exact, per-example gradients]")
            lines.append(
                f"  {'B_noise':<20}{value.b_noise:.6g} ± {value.b_noise_error:.2g}   [Gaussian "
                "probes]"
            )
        else:
            lines.append(f"  {name:<20}{value:.6g}")
    return "\n".join(lines)


EXPERIMENTS = (
    Experiment(
        name="measure",
        title="train a model, then measure sharpness, evidence and gradient noise scale",
        config=Config,
        presets={
            "tiny": Config(steps=50, k=2, probes=4, lanczos_steps=10, n_train=100, batch_size=100),
            "quick": Config(),
            "net": Config(model="net", lr=0.1, batch_size=30, l2=0.0, n_train=1000, steps=1000),
        },
        grid=grid,
        evaluate=evaluate,
        summarize=summarize,
        figure=figure,
        report=report,
        seeds=lambda cfg, point: [cfg.seed],
        chunk_size=1,
        section="tools",
    ),
)
