"""Study 4 of issue 5 (first part): the weak order of Euler–Maruyama on the quadratic toy.

C(w) = 1/2 w^T A w with constant noise covariance F (models.quadratic_problem), SDE
dw = -A w dt + sqrt(g) L dW. For f(w) = |w|^2, E f(w_T) is known exactly both for the SDE
(m(T) = e^{-AT} w0, P(T) = P_inf - e^{-AT} P_inf e^{-AT}, A P_inf + P_inf A = g F) and for EM at any dt
(m <- (I - dt A) m, P <- (I - dt A) P (I - dt A)^T + g dt F). The weak error |E_EM f - E f| against
dt = eps/(N r) must fall like dt (weak order 1; Li, Tai & E): the fitted log-log slope is reported.
The EM values are also simulated with `sim.run_sde` (many seeds, Diffrax) at the coarse steps, to show
that the integrator has the exact EM moments (within Monte-Carlo error), not just the algebra.
Chosen here: A = N [[0.8, 0.2], [0.2, 0.5]], F = [[1, 0.3], [0.3, 0.6]], N = 120, eps = 1, B = 60
(g = 1), w0 = (0.3, -0.2), T = 3 SGD steps of time (eps/N each), r = 1 ... 64.
"""

import dataclasses
import math
import pathlib

import jax.numpy as jnp
import jax.random as jr
import numpy as np
from scipy.linalg import expm, solve_continuous_lyapunov

import models
import sim

from . import _common
from ._sweep import run_sweep

N = 120
A = N * np.array([[0.8, 0.2], [0.2, 0.5]])
F = np.array([[1.0, 0.3], [0.3, 0.6]])
W0 = np.array([0.3, -0.2])


@dataclasses.dataclass(frozen=True)
class Config:
    lr: float = 1.0
    batch_size: int = 60
    steps: int = 3
    refinements: tuple = (1, 2, 4, 8, 16, 32, 64)
    simulated: tuple = (1, 2, 4)
    seeds: int = 20000

    def validate(self):
        sim.noise_scale(self.lr, N, self.batch_size)
        sim._checks.integer("steps", self.steps)
        sim._checks.integer("seeds", self.seeds, low=2)
        for r in self.refinements + self.simulated:
            sim._checks.integer("refinements", r)
        if len(self.refinements) < 2:
            raise sim.InputError("refinements needs at least two values to fit a slope")
        return self


EXPERIMENT = "weak-order"
QUICK = Config()
TINY = Config(refinements=(1, 2, 4), simulated=(1,), seeds=2000)


def exact_sde(cfg):
    g = sim.noise_scale(cfg.lr, N, cfg.batch_size)
    t = cfg.steps * cfg.lr / N
    decay = expm(-A * t)
    p_inf = solve_continuous_lyapunov(A, g * F)
    m, p = decay @ W0, p_inf - decay @ p_inf @ decay
    return float(np.trace(p) + m @ m)


def exact_em(cfg, r):
    g = sim.noise_scale(cfg.lr, N, cfg.batch_size)
    dt = cfg.lr / (N * r)
    step = np.eye(2) - dt * A
    m, p = W0.copy(), np.zeros((2, 2))
    for _ in range(cfg.steps * r):
        m, p = step @ m, step @ p @ step.T + g * dt * F
    return float(np.trace(p) + m @ m)


def simulate(points, seeds):
    out = []
    for point in points:
        model, data = models.quadratic_problem(A, F, n_train=N, w0=jnp.asarray(W0, jnp.float32), seed=1)
        traj = sim.run_sde(model, data, lr=point["lr"], batch_size=point["batch_size"], steps=point["steps"],
                           refinement=point["refinement"], key=jr.key(point["refinement"]),
                           n_seeds=point["seeds"], record_every=point["steps"], seed_batching="vmap")
        f = np.sum(np.asarray(traj.params, float) ** 2, axis=1)
        out.append([dict(mean_f=float(f.mean()), se_f=float(f.std(ddof=1) / math.sqrt(f.size)))])
    return out


def main(cfg: Config, out: pathlib.Path) -> None:
    cfg.validate()
    reference = exact_sde(cfg)
    dts = [cfg.lr / (N * r) for r in cfg.refinements]
    errors = [abs(exact_em(cfg, r) - reference) for r in cfg.refinements]
    # Weak order is an asymptotic statement: fit where dt * lambda_max(A) <= 1/8 (at r = 1 here it is
    # 0.93, and the EM error even changes sign between r = 1 and r = 2).
    lam_max = float(np.linalg.eigvalsh(A).max())
    tail = [(d, e) for d, e in zip(dts, errors) if d * lam_max <= 0.125]
    if len(tail) < 2:
        tail = list(zip(dts, errors))[-2:]
    slope, _ = _common.loglog_slope([d for d, _ in tail], [e for _, e in tail], 0.0)
    points = [dict(lr=cfg.lr, batch_size=cfg.batch_size, steps=cfg.steps, refinement=r, seeds=cfg.seeds)
              for r in cfg.simulated]
    rows = run_sweep(EXPERIMENT, out, points, seeds=[0], evaluate=simulate, chunk_size=1)
    plt = _common.pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.loglog(dts, errors, "o-", label=f"exact EM weak error (slope {slope:.3f} where dt·λmax <= 1/8)")
    sim_dt = [cfg.lr / (N * r["config"]["refinement"]) for r in rows]
    sim_err = [abs(r["mean_f"] - reference) for r in rows]
    ax.errorbar(sim_dt, sim_err, yerr=[2 * r["se_f"] for r in rows], fmt="s", color="C3",
                label="simulated (Diffrax EM), ±2 s.e.")
    ax.set_xlabel("dt")
    ax.set_ylabel("|E f(w_T) - E_SDE f(w_T)|, f = |w|^2")
    ax.legend(fontsize=8)
    agreement = [abs(r["mean_f"] - exact_em(cfg, r["config"]["refinement"])) / r["se_f"] for r in rows]
    numbers = dict(reference=reference, dt=dts, error=errors, slope=slope, fitted_points=len(tail),
                   simulated=[dict(refinement=r["config"]["refinement"], mean=r["mean_f"], se=r["se_f"],
                                   exact_em=exact_em(cfg, r["config"]["refinement"]), z=z)
                              for r, z in zip(rows, agreement)])
    caption = (f"Quadratic toy, N = {N}, eps = {cfg.lr}, B = {cfg.batch_size} (g = 1), T = {cfg.steps} eps/N, "
               f"{cfg.seeds} seeds per simulated point.")
    _common.save(fig, out, "weak-order", numbers, caption)
    print(f"weak order of Euler–Maruyama: fitted slope {slope:.3f} over dt * lambda_max <= 1/8 "
          f"({len(tail)} points; weak order 1 expects 1)")
    for d, e in zip(dts, errors):
        print(f"  dt = {d:.3g}: exact EM weak error {e:.3g}")
    for item in numbers["simulated"]:
        print(f"  r = {item['refinement']}: simulated E|w_T|^2 {item['mean']:.6g} ± {item['se']:.2g}, "
              f"exact EM {item['exact_em']:.6g} ({item['z']:.1f} s.e.), SDE {reference:.6g}")
