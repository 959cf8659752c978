"""Train a model briefly, then measure its landscape: sharpness, evidence, gradient noise scale.

`--model logistic`: the paper's linear model on the binary task (digits 0-4 against 5-9, N = 800),
trained by full-batch gradient descent (B = N) at lam = 1 to near its minimum, so the Laplace
evidence (exact: 785 parameters) is meaningful. `--preset net`: the 784-800-10 net on N = 1000,
momentum SGD; its evidence uses SLQ and is only meaningful at a minimum with lam > 0.
"""

import dataclasses
import json
import pathlib

import jax.random as jr
import numpy as np

import models
import sim

from . import _common


@dataclasses.dataclass(frozen=True)
class Config:
    model: str = "logistic"
    lr: float = 1.0
    batch_size: int = 800
    momentum: float = 0.9
    l2: float = 1.0
    steps: int = 1000
    n_train: int = 800
    k: int = 3
    probes: int = 30
    lanczos_steps: int = 40
    seed: int = 0
    mnist: str | None = None

    def validate(self):
        _common.check_model(self.model)
        sim.noise_scale(self.lr, self.n_train, self.batch_size, self.momentum)
        sim._checks.non_negative("l2", self.l2)
        for name in ("steps", "n_train", "k", "lanczos_steps"):
            sim._checks.integer(name.replace("_", "-"), getattr(self, name))
        sim._checks.integer("probes", self.probes, low=2)
        p = 785 if self.model == "logistic" else 784 * 800 + 800 + 8010
        sim._checks.integer("k", self.k, low=1, high=p)
        return self


QUICK = Config()
TINY = Config(steps=50, k=2, probes=4, lanczos_steps=10, n_train=100, batch_size=100)
NET = Config(model="net", lr=0.1, batch_size=30, l2=0.0, n_train=1000, steps=1000)
PRESETS = {"net": NET}


def run(cfg: Config):
    cfg.validate()
    pool = models.load_mnist(cfg.mnist)
    init_key, sgd_key, measure_key = jr.split(jr.key(cfg.seed), 3)
    data, make_model = _common.task(cfg.model, pool, n_train=cfg.n_train, seed=cfg.seed)
    model = make_model(init_key)
    traj = sim.run_sgd(model, data, lr=cfg.lr, batch_size=cfg.batch_size, momentum=cfg.momentum,
                       l2=cfg.l2, steps=cfg.steps, key=sgd_key, record_every=cfg.steps)
    if traj.diverged[0]:
        raise sim.InputError(f"training diverged at step {int(traj.diverged_step[0])}: lower --lr")
    return sim.summary(traj.model(0), data, key=measure_key, l2=cfg.l2, k=cfg.k, probes=cfg.probes,
                       lanczos_steps=min(cfg.lanczos_steps, 785) if cfg.model == "logistic" else cfg.lanczos_steps)


def _plain(value):
    if hasattr(value, "_asdict"):
        return {k: _plain(v) for k, v in value._asdict().items()}
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def main(cfg: Config, out: pathlib.Path) -> None:
    result = run(cfg)
    print(f"{cfg.model}: N = {cfg.n_train}, eps = {cfg.lr}, B = {cfg.batch_size}, m = {cfg.momentum}, "
          f"lam = {cfg.l2}, {cfg.steps} steps")
    for name, value in result.items():
        if isinstance(value, sim.Estimate):
            error = f" ± {value.error:.2g}" if value.error == value.error else ""
            print(f"  {name:<20}{value.value:.6g}{error}   [{value.method}]")
        elif isinstance(value, sim.Eigenvalues):
            found = ", ".join(f"{v:.6g} (± {b:.2g})" for v, b in zip(value.values, value.error_bounds))
            print(f"  {name:<20}{found}   [Lanczos, {value.steps_used} of {value.steps} steps; "
                  f"± residual bound]")
        elif isinstance(value, sim.Evidence):
            print(f"  {'log evidence ratio':<20}{value.log_evidence_ratio:.6g} ± {value.error:.2g}   "
                  f"[{value.method}; {value.n_dropped:g} eigenvalues below lam dropped; "
                  f"half-depth change {value.truncation:.2g}, Krylov dimension >= {value.steps_used}]")
        elif isinstance(value, sim.NoiseScale):
            print(f"  {'B_simple':<20}{value.b_simple:.6g}   [exact, per-example gradients]")
            print(f"  {'B_noise':<20}{value.b_noise:.6g} ± {value.b_noise_error:.2g}   [Gaussian probes]")
        else:
            print(f"  {name:<20}{value:.6g}")
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"measure-{cfg.model}.json"
    path.write_text(json.dumps({"config": dataclasses.asdict(cfg),
                                **{k: _plain(v) for k, v in result.items()}}, indent=1))
    print(f"wrote {path}")

