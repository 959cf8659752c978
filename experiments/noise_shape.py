"""Study 5 of issue 5: does the SHAPE of the noise matter, or only its size?

The SDE with the paper's noise g F(w) (F the per-example gradient covariance) against the SDE with
isotropic noise of the same trace, g (tr F(w)/p) I (Zhu et al. 2019), and SGD itself, all at the same g.

Part 1, escape (constructed landscape, `models.TwoWells`): along w_1 a sharp minimum (curvature
`h_sharp`) at 0 and a flat one (`h_flat`) at `distance`, quadratic valleys (`valley` curvatures) in the
other directions; constant F = sigma^2 H_sharp / h_sharp (noise aligned with the Hessian at the sharp
minimum, as the Fisher is near a minimum of a likelihood). Every run starts at the sharp minimum;
recorded: the fraction of seeds beyond the barrier along SDE time. Prediction (two-state Kramers, the
noise along w_1 sets a temperature T = g F_11/2 for F-shaped noise and g tr F/(2p) for isotropic):
escape rate k = sqrt(U''(sharp) |U''(barrier)|)/(2 pi) exp(-dU/T), return rate k_b likewise from the
flat side, fraction escaped k/(k + k_b) (1 - exp(-(k + k_b) t)). Kramers is asymptotic in dU/T >> 1:
at dU/T ~ 3 it is a guide (a factor ~2), not a closed form.

Part 2, the 784-800-10 net (momentum SGD eps = 0.1, B = 30, m = 0.9 as Figs 3-5; second-order SDE,
semi-implicit, dt = one SGD step): final test accuracy, test cross-entropy, train loss and top Hessian
eigenvalue (mean loss, Lanczos) per seed, with Welch differences against SGD in standard errors.
The isotropic SDE computes tr F exactly at every step (per-example gradient norms in one backward
pass), so its step costs about two full-batch gradients.

Quick: part 1 with 1,000 seeds (N = 100, eps = 0.1, B = 10, g = 0.9, sigma^2 = 2, T = 5: 5,000 steps),
part 2 with 4 seeds of 1,000 steps; about 6 minutes on 2 cores.
"""

import dataclasses
import math
import pathlib

import jax.random as jr
import numpy as np

import models
import sim

from . import _common
from ._sweep import run_sweep

NOISES = {"gradient": sim.GradientNoise(), "isotropic": sim.IsotropicNoise()}
NET_METRICS = ("test_accuracy", "test_xent", "train_loss", "top_eigenvalue")


@dataclasses.dataclass(frozen=True)
class Config:
    # Part 1: escape
    h_sharp: float = 50.0
    h_flat: float = 2.0
    distance: float = 2.0
    valley: tuple = (5.0, 5.0, 5.0, 5.0)
    noise_variance: float = 2.0
    escape_n_train: int = 100
    escape_lr: float = 0.1
    escape_batch_size: int = 10
    escape_time: float = 5.0
    escape_seeds: int = 1000
    # Part 2: the net
    lr: float = 0.1
    batch_size: int = 30
    momentum: float = 0.9
    steps: int = 1000
    n_train: int = 1000
    seeds: int = 4
    parts: tuple = ("escape", "net")
    mnist: str | None = None

    def validate(self):
        for name in ("h_sharp", "h_flat", "distance", "noise_variance", "escape_time"):
            sim._checks.positive(name.replace("_", "-"), getattr(self, name))
        for h in self.valley:
            sim._checks.positive("valley", h)
        sim.noise_scale(self.escape_lr, self.escape_n_train, self.escape_batch_size)
        sim._checks.integer("escape-seeds", self.escape_seeds, low=2)
        if self.escape_n_train < len(self.valley) + 2:
            raise sim.InputError("escape-n-train must exceed the toy's dimension")
        if not self.parts or not set(self.parts) <= {"escape", "net"}:
            raise sim.InputError("parts must be a comma-separated subset of escape,net")
        if self.net:
            sim.noise_scale(self.lr, self.n_train, self.batch_size, self.momentum)
            sim._checks.integer("steps", self.steps)
            sim._checks.integer("seeds", self.seeds, low=2)
        return self

    @property
    def net(self) -> bool:
        return "net" in self.parts

    def escape_covariance(self):
        curv = np.array([self.h_sharp, *self.valley])
        return np.diag(self.noise_variance * curv / self.h_sharp)


EXPERIMENT = "noise-shape"
QUICK = Config()
TINY = Config(escape_seeds=50, escape_time=0.5, steps=4, n_train=100, seeds=2)


def _escape_problem(p):
    cov = np.diag(p["noise_diagonal"])
    return models.escape_problem(cov, h_sharp=p["h_sharp"], h_flat=p["h_flat"], distance=p["distance"],
                                 valley=p["valley"], n_train=p["n_train"], seed=1)


def evaluate(points, seeds, pool):
    out = []
    for p in points:
        if p["part"] == "escape":
            model, data = _escape_problem(p)
            common = dict(lr=p["lr"], batch_size=p["batch_size"], steps=p["steps"], n_seeds=p["seeds"],
                          record_every=p["record_every"])
            if p["dynamics"] == "sgd":
                traj = sim.run_sgd(model, data, key=jr.key(1), **common)
            else:
                traj = sim.run_sde(model, data, key=jr.key(2), noise=NOISES[p["dynamics"]], **common)
            escaped = np.nan_to_num(traj.test_accuracy, nan=1.0)  # a diverged run has left the well
            out.append([dict(time=traj.time[0].tolist(), escaped=escaped.mean(0).tolist(),
                             diverged_runs=int(traj.diverged.sum()))])
            continue
        sde = None if p["dynamics"] == "sgd" else dict(noise=NOISES[p["dynamics"]], scheme="semi-implicit")
        traj, data = _common.train(dict(p, model="net"), pool, seeds, sde=sde, lr=p["lr"], batch_size=p["batch_size"],
                                   momentum=p["momentum"], steps=p["steps"], record_every=max(1, p["steps"] // 10))
        per_seed = []
        for s in range(len(seeds)):
            row = dict(steps=traj.steps.tolist(), test_accuracy_curve=traj.test_accuracy[s].tolist(),
                       diverged=bool(traj.diverged[s]),
                       diverged_step=int(traj.diverged_step[s]) if traj.diverged[s] else None,
                       **{m: float(traj.metric(m)[s, -1]) for m in sim.METRICS})
            if not traj.diverged[s]:
                row["top_eigenvalue"] = float(sim.hessian_top_eigenvalues(
                    traj.model(s), data, key=jr.key(3), k=1, lanczos_steps=20).values[0])
            per_seed.append(row)
        out.append(per_seed)
    return out


def kramers(cfg, g):
    """Two-state Kramers prediction of the escaped fraction for each noise shape."""
    prof = models.two_wells_profile(cfg.h_sharp, cfg.h_flat, cfg.distance)
    cov = np.diag(cfg.escape_covariance())
    temps = dict(gradient=g * cov[0] / 2, isotropic=g * cov.sum() / (2 * cov.size))
    out = {}
    for name, temp in temps.items():
        up = math.sqrt(prof["curvature_sharp"] * -prof["curvature_barrier"]) / (2 * math.pi)
        down = math.sqrt(prof["curvature_flat"] * -prof["curvature_barrier"]) / (2 * math.pi)
        k = up * math.exp(-prof["height"] / temp)
        k_back = down * math.exp(-(prof["height"] - prof["depth_difference"]) / temp)
        out[name] = dict(temperature=temp, barrier_over_t=prof["height"] / temp, rate=k, return_rate=k_back)
    return prof, out


def escaped_fraction(rates, t):
    k, kb = rates["rate"], rates["return_rate"]
    return k / (k + kb) * (1 - np.exp(-(k + kb) * np.asarray(t)))


def main(cfg: Config, out: pathlib.Path) -> None:
    cfg.validate()
    n_esc = cfg.escape_n_train
    steps = max(1, round(cfg.escape_time * n_esc / cfg.escape_lr))
    escape = dict(part="escape", h_sharp=cfg.h_sharp, h_flat=cfg.h_flat, distance=cfg.distance,
                  valley=list(cfg.valley), noise_diagonal=np.diag(cfg.escape_covariance()).tolist(),
                  n_train=n_esc, lr=cfg.escape_lr, batch_size=cfg.escape_batch_size, steps=steps,
                  record_every=max(1, steps // 50), seeds=cfg.escape_seeds)
    # The escape part keeps one row per dynamics (its seeds are summarised inside the row).
    rows = run_sweep(EXPERIMENT, out, [dict(escape, dynamics=d) for d in ("sgd", "gradient", "isotropic")],
                     seeds=[0], evaluate=lambda pts, seeds: evaluate(pts, seeds, None), chunk_size=1,
                     label=f"{EXPERIMENT}, escape (3 dynamics x {cfg.escape_seeds} seeds)")
    if cfg.net:
        pool = models.load_mnist(cfg.mnist)
        net = dict(part="net", lr=cfg.lr, batch_size=cfg.batch_size, momentum=cfg.momentum, steps=cfg.steps,
                   n_train=cfg.n_train, data=pool.source)
        rows += run_sweep(EXPERIMENT, out, [dict(net, dynamics=d) for d in ("sgd", "gradient", "isotropic")],
                          seeds=list(range(cfg.seeds)), evaluate=lambda pts, seeds: evaluate(pts, seeds, pool),
                          chunk_size=1, label=f"{EXPERIMENT}, net (3 dynamics x {cfg.seeds} seeds)")
    esc = {r["config"]["dynamics"]: r for r in rows if r["config"]["part"] == "escape"}
    g = sim.noise_scale(cfg.escape_lr, n_esc, cfg.escape_batch_size)
    profile, theory = kramers(cfg, g)
    summary = dict(profile=profile, g=g, kramers=theory, escape={})
    for name, r in esc.items():
        p = r["escaped"][-1]
        summary["escape"][name] = dict(final=p, se=math.sqrt(max(p * (1 - p), 1e-12) / cfg.escape_seeds),
                                       diverged_runs=r["diverged_runs"])
    plt = _common.pyplot()
    fig, axes = plt.subplots(1, 3 if cfg.net else 1, figsize=(13, 3.9) if cfg.net else (5, 3.9), squeeze=False)
    axes = axes[0]
    labels = dict(sgd="SGD", gradient="SDE, noise g F", isotropic="SDE, isotropic g trF/p")
    for k, name in enumerate(("sgd", "gradient", "isotropic")):
        axes[0].plot(esc[name]["time"], esc[name]["escaped"], color=f"C{k}", label=labels[name])
    t = np.asarray(esc["gradient"]["time"])
    for k, name in ((1, "gradient"), (2, "isotropic")):
        axes[0].plot(t, escaped_fraction(theory[name], t), color=f"C{k}", ls="--", lw=0.9)
    axes[0].set_xlabel("SDE time")
    axes[0].set_ylabel("fraction escaped to the flat minimum")
    axes[0].set_title("escape from a sharp minimum (dashed: Kramers)")
    axes[0].legend(fontsize=8)
    caption = (f"Two wells: h_sharp = {cfg.h_sharp:g}, h_flat = {cfg.h_flat:g}, barrier {profile['height']:.3g}, "
               f"F = {cfg.noise_variance:g} H/h_sharp, g = {g:.3g}, {cfg.escape_seeds} seeds.")
    tests = {}
    if cfg.net:
        net_rows = _common.group_rows([r for r in rows if r["config"]["part"] == "net"], lambda c: c["dynamics"])
        finite = {k: [r for r in v if not r["diverged"]] for k, v in net_rows.items()}
        for name in ("gradient", "isotropic"):
            for m in NET_METRICS:
                a, b, z = _common.welch([r.get(m) for r in finite["sgd"]], [r.get(m) for r in finite[name]])
                tests[f"{name} {m}"] = dict(sgd=a, sde=b, z=z)
        for k, name in enumerate(("sgd", "gradient", "isotropic")):
            sel = finite[name]
            if sel:
                _common.band(axes[1], sel[0]["steps"], [r["test_accuracy_curve"] for r in sel], color=f"C{k}",
                             label=labels[name])
                eig = [r["top_eigenvalue"] for r in sel]
                acc = [r["test_accuracy"] for r in sel]
                axes[2].scatter(eig, acc, color=f"C{k}", label=labels[name])
        axes[1].set_xlabel("SGD step (SDE: same time)")
        axes[1].set_title("net: test accuracy (bands: s.e.)")
        axes[1].legend(fontsize=8)
        axes[2].set_xscale("log")
        axes[2].xaxis.set_minor_formatter(plt.NullFormatter())
        axes[2].set_xlabel("top Hessian eigenvalue (mean loss), final")
        axes[2].set_ylabel("final test accuracy")
        axes[2].set_title("net: sharpness against accuracy, per seed")
        caption += (f" Net: eps = {cfg.lr}, B = {cfg.batch_size}, m = {cfg.momentum}, N = {cfg.n_train}, "
                    f"{cfg.steps} steps, {cfg.seeds} seeds, same initialisation per seed.")
    summary["net"] = tests
    _common.save(fig, out, "noise-shape", summary, caption)
    print(f"shape of the noise at equal g: escape from a sharp minimum (barrier {profile['height']:.3g}, "
          f"g = {g:.3g}, T = {cfg.escape_time:g}, {cfg.escape_seeds} seeds)")
    for name in ("sgd", "gradient", "isotropic"):
        e = summary["escape"][name]
        pred = (f"; Kramers {escaped_fraction(theory[name], cfg.escape_time):.3f} (dU/T = "
                f"{theory[name]['barrier_over_t']:.2f})" if name in theory else "")
        print(f"  {labels[name]:<24} escaped {e['final']:.3f} ± {e['se']:.3f}{pred}")
    if tests:
        print(f"  net after {cfg.steps} steps ({cfg.seeds} seeds): SDE - SGD in s.e.")
        for key, t in tests.items():
            print(f"    {key:<26} SGD {t['sgd'][0]:.4g} ± {t['sgd'][1]:.2g}   SDE {t['sde'][0]:.4g} ± "
                  f"{t['sde'][1]:.2g}   ({t['z']:+.1f} s.e.)")
