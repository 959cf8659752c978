"""Does the SHAPE of the noise matter, or only its size?

The SDE with the paper's noise g F(w) (F the per-example gradient covariance) against the SDE with
isotropic noise of the same trace, g (tr F(w)/p) I (Zhu et al. 2019), and SGD itself, all at the
same g.

Part 1, escape (constructed landscape, `models.TwoWells`): along w_1 a sharp minimum (curvature
`h_sharp`) at 0 and a flat one (`h_flat`) at `distance`, quadratic valleys (`valley` curvatures) in
the other directions; constant F = sigma^2 H_sharp / h_sharp (noise aligned with the Hessian at the
sharp minimum, as the Fisher is near a minimum of a likelihood). Every run starts at the sharp
minimum;
recorded: the fraction of seeds beyond the barrier along SDE time. Prediction (two-state Kramers,
    the
noise along w_1 sets a temperature T = g F_11/2 for F-shaped noise and g tr F/(2p) for isotropic):
escape rate k = sqrt(U''(sharp) |U''(barrier)|)/(2 pi) exp(-dU/T), return rate k_b likewise from the
flat side, fraction escaped k/(k + k_b) (1 - exp(-(k + k_b) t)). Kramers is asymptotic in dU/T >> 1:
at dU/T ~ 3 it is a guide (a factor ~2), not a closed form. The escape part always runs; each of its
points is one dynamics, its `escape_seeds` runs summarised inside its one row.

Part 2, the 784-800-10 net (momentum SGD eps = 0.1, B = 30, m = 0.9 as Figs 3-5; second-order SDE,
semi-implicit, dt = one SGD step): final test accuracy, test cross-entropy, train loss and top
Hessian eigenvalue (mean loss, Lanczos) per seed, with Welch differences against SGD in standard
errors. The isotropic SDE computes tr F exactly at every step (per-example gradient norms in one
backward pass), so its step costs about two full-batch gradients.

Quick: part 1 with 1,000 seeds (N = 100, eps = 0.1, B = 10, g = 0.9, sigma^2 = 2, T = 5: 5,000
    steps),
part 2 with 4 seeds of 1,000 steps; about 6 minutes on 2 cores.
"""

import dataclasses
import math

import numpy as np

import models
import sim

from .. import analysis
from ..runner import plotting, pools, tasks
from ..runner.contract import Experiment, RunContext, param
from ..runner.rows import diagnostics_of, group_rows

checks = sim.checks


def _noise(dynamics: str):
    """The SDE's noise model of a dynamics: g F (gradient-shaped) or isotropic of the same trace."""
    return sim.GradientCovarianceNoise() if dynamics == "gradient" else sim.IsotropicNoise()


DYNAMICS = ("sgd", "gradient", "isotropic")
LABELS = dict(sgd="SGD", gradient="SDE, noise g F", isotropic="SDE, isotropic g trF/p")
NET_METRICS = ("test_accuracy", "test_xent", "train_loss", "top_eigenvalue")


def check_part(name: str, value: str) -> None:
    if value not in ("escape", "net"):
        raise sim.InputError(
            f"{name} must be a comma-separated subset of escape,net (got {value!r})"
        )


@dataclasses.dataclass(frozen=True)
class Config(tasks.NetSetup):
    h_sharp: float = param(50.0, checks.positive, help="escape: curvature of the sharp minimum")
    h_flat: float = param(2.0, checks.positive, help="escape: curvature of the flat minimum")
    distance: float = param(
        2.0, checks.positive, help="escape: distance between the minima along w_1"
    )
    valley: tuple = param(
        (5.0, 5.0, 5.0, 5.0), checks.positive, help="escape: curvatures of the other directions"
    )
    noise_variance: float = param(
        2.0, checks.positive, help="escape: sigma^2 in F = sigma^2 H_sharp / h_sharp"
    )
    escape_n_train: int = param(100, checks.integer, help="escape: training-set size N")
    escape_lr: float = param(0.1, checks.positive, help="escape: learning rate eps")
    escape_batch_size: int = param(10, checks.integer, help="escape: batch size B")
    escape_time: float = param(5.0, checks.positive, help="escape: SDE time T (steps = T N / eps)")
    escape_seeds: int = param(1000, checks.integer, low=2, help="escape: seeds per dynamics")
    lr: float = param(0.1, checks.positive, help="net: learning rate eps")
    batch_size: int = param(30, checks.integer, help="net: batch size B")
    momentum: float = param(0.9, checks.momentum, help="net: momentum m")
    steps: int = param(1000, checks.integer, help="net: SGD steps (the SDE runs the same time)")
    n_train: int = param(1000, checks.integer, help="net: training-set size N")
    seeds: int = param(
        4,
        checks.integer,
        low=2,
        help="net: seeds (one initialisation each, shared by all dynamics)",
    )
    parts: tuple = param(
        ("escape", "net"),
        check_part,
        help="parts to run, comma-separated: escape, net (escape always runs)",
    )

    def check(self):
        checks.integer("escape-batch-size", self.escape_batch_size, low=1, high=self.escape_n_train)
        if self.escape_n_train < len(self.valley) + 2:
            raise sim.InputError("escape-n-train must exceed the toy's dimension")
        checks.integer("batch-size", self.batch_size, low=1, high=self.n_train)

    @property
    def net(self) -> bool:
        return "net" in self.parts

    def escape_covariance(self):
        curv = np.array([self.h_sharp, *self.valley])
        return np.diag(self.noise_variance * curv / self.h_sharp)


def grid(cfg: Config) -> list[dict]:
    """The escape toy under each dynamics, then (with the net part) the net under each."""
    steps = max(1, round(cfg.escape_time * cfg.escape_n_train / cfg.escape_lr))
    escape = dict(
        part="escape",
        h_sharp=cfg.h_sharp,
        h_flat=cfg.h_flat,
        distance=cfg.distance,
        valley=list(cfg.valley),
        noise_diagonal=np.diag(cfg.escape_covariance()).tolist(),
        n_train=cfg.escape_n_train,
        lr=cfg.escape_lr,
        batch_size=cfg.escape_batch_size,
        steps=steps,
        record_every=max(1, steps // 50),
        seeds=cfg.escape_seeds,
    )
    points = [dict(escape, dynamics=d) for d in DYNAMICS]
    if cfg.net:
        net = dict(
            **tasks.setup_of(cfg),
            part="net",
            lr=cfg.lr,
            batch_size=cfg.batch_size,
            momentum=cfg.momentum,
            steps=cfg.steps,
            n_train=cfg.n_train,
            data=pools.source(cfg.mnist),
        )
        points += [dict(net, dynamics=d) for d in DYNAMICS]
    return points


def seeds_of(cfg: Config, point: dict) -> list[int]:
    """The escape part keeps one row per dynamics (its seeds are summarised inside the row)."""
    return [0] if point["part"] == "escape" else list(range(cfg.seeds))


def evaluate(run: RunContext, points: list[dict], seeds: list[int]) -> list[list[dict]]:
    return [_escape(run, p) if p["part"] == "escape" else _net(run, p, seeds) for p in points]


def _escape(run: RunContext, p):
    """The fraction of the point's seeds beyond the barrier along SDE time (one row)."""
    model, data = models.escape_problem(
        np.diag(p["noise_diagonal"]),
        h_sharp=p["h_sharp"],
        h_flat=p["h_flat"],
        distance=p["distance"],
        valley=p["valley"],
        n_train=p["n_train"],
        seed=run.keys.problem,
    )
    common = dict(
        lr=p["lr"],
        batch_size=p["batch_size"],
        steps=p["steps"],
        n_seeds=p["seeds"],
        record_every=p["record_every"],
    )
    if p["dynamics"] == "sgd":
        traj = sim.run_sgd(model, data, key=run.keys.batches(), **common)
    else:
        traj = sim.run_sde(model, data, key=run.keys.noise(), noise=_noise(p["dynamics"]), **common)
    escaped = np.nan_to_num(traj.test_accuracy, nan=1.0)  # a diverged run has left the well
    return [
        dict(
            time=traj.time[0].tolist(),
            escaped=escaped.mean(0).tolist(),
            diverged_runs=int(traj.diverged.sum()),
        )
    ]


def _net(run: RunContext, p, seeds):
    """The net: final metrics, the test-accuracy curve and the top Hessian eigenvalue, per seed."""
    sde = (
        None
        if p["dynamics"] == "sgd"
        else dict(noise=_noise(p["dynamics"]), scheme="semi-implicit")
    )
    traj, data = tasks.train(
        run,
        dict(p, model="net"),
        seeds,
        sde=sde,
        lr=p["lr"],
        batch_size=p["batch_size"],
        momentum=p["momentum"],
        steps=p["steps"],
        record_every=max(1, p["steps"] // 10),
    )
    per_seed = []
    for s in range(len(seeds)):
        row = dict(
            steps=traj.steps.tolist(),
            test_accuracy_curve=traj.test_accuracy[s].tolist(),
            diverged=bool(traj.diverged[s]),
            diverged_step=int(traj.diverged_step[s]) if traj.diverged[s] else None,
            **{m: float(traj.metric(m)[s, -1]) for m in sim.METRICS},
            **diagnostics_of(traj, s),
        )
        if not traj.diverged[s]:
            row["top_eigenvalue"] = float(
                sim.hessian_top_eigenvalues(
                    traj.model(s), data, key=run.keys.measure(), k=1, lanczos_steps=20
                ).values[0]
            )
        per_seed.append(row)
    return per_seed


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
        out[name] = dict(
            temperature=temp, barrier_over_t=prof["height"] / temp, rate=k, return_rate=k_back
        )
    return prof, out


def escaped_fraction(rates, t):
    k, kb = rates["rate"], rates["return_rate"]
    return k / (k + kb) * (1 - np.exp(-(k + kb) * np.asarray(t)))


def summarize(rows: list[dict], cfg: Config) -> dict:
    """The figure's numbers (escape fractions against Kramers, the net's Welch differences) and,
    under "curves", what the figure draws besides (not written to the JSON)."""
    esc = {r["config"]["dynamics"]: r for r in rows if r["config"]["part"] == "escape"}
    g = sim.noise_scale(cfg.escape_lr, cfg.escape_n_train, cfg.escape_batch_size)
    profile, theory = kramers(cfg, g)
    summary = dict(profile=profile, g=g, kramers=theory, escape={})
    for name, r in esc.items():
        p = r["escaped"][-1]
        summary["escape"][name] = dict(
            final=p,
            se=math.sqrt(max(p * (1 - p), 1e-12) / cfg.escape_seeds),
            diverged_runs=r["diverged_runs"],
        )
    curves = dict(
        escape={name: dict(time=r["time"], escaped=r["escaped"]) for name, r in esc.items()}, net={}
    )
    tests = {}
    if cfg.net:
        net_rows = group_rows(
            [r for r in rows if r["config"]["part"] == "net"], lambda c: c["dynamics"]
        )
        finite = {k: [r for r in v if not r["diverged"]] for k, v in net_rows.items()}
        for name in ("gradient", "isotropic"):
            for m in NET_METRICS:
                a, b, z = analysis.welch(
                    [r.get(m) for r in finite["sgd"]], [r.get(m) for r in finite[name]]
                )
                tests[f"{name} {m}"] = dict(sgd=a, sde=b, z=z)
        curves["net"] = {
            name: dict(
                steps=sel[0]["steps"] if sel else [],
                test_accuracy_curves=[r["test_accuracy_curve"] for r in sel],
                top_eigenvalue=[r["top_eigenvalue"] for r in sel],
                test_accuracy=[r["test_accuracy"] for r in sel],
            )
            for name, sel in finite.items()
        }
    summary["net"] = tests
    return dict(summary, curves=curves)


def figure(summary: dict, cfg: Config, out) -> None:
    plt = plotting.pyplot()
    fig, axes = plt.subplots(
        1, 3 if cfg.net else 1, figsize=(13, 3.9) if cfg.net else (5, 3.9), squeeze=False
    )
    _plot_escape(axes[0][0], summary)
    caption = (
        f"Two wells: h_sharp = {cfg.h_sharp:g}, h_flat = {cfg.h_flat:g}, "
        f"barrier {summary['profile']['height']:.3g}, F = {cfg.noise_variance:g} H/h_sharp, "
        f"g = {summary['g']:.3g}, {cfg.escape_seeds} seeds."
    )
    if cfg.net:
        _plot_net(axes[0][1], axes[0][2], summary["curves"]["net"])
        caption += (
            f" Net: eps = {cfg.lr}, B = {cfg.batch_size}, m = {cfg.momentum}, N = {cfg.n_train}, "
            f"{cfg.steps} steps, {cfg.seeds} seeds, same initialisation per seed."
        )
    numbers = {k: v for k, v in summary.items() if k != "curves"}
    out.save(fig, "noise-shape", numbers, caption)


def _plot_escape(ax, summary):
    esc = summary["curves"]["escape"]
    for k, name in enumerate(DYNAMICS):
        ax.plot(esc[name]["time"], esc[name]["escaped"], color=f"C{k}", label=LABELS[name])
    t = np.asarray(esc["gradient"]["time"])
    for k, name in ((1, "gradient"), (2, "isotropic")):
        ax.plot(t, escaped_fraction(summary["kramers"][name], t), color=f"C{k}", ls="--", lw=0.9)
    ax.set_xlabel("SDE time")
    ax.set_ylabel("fraction escaped to the flat minimum")
    ax.set_title("escape from a sharp minimum (dashed: Kramers)")
    ax.legend(fontsize=8)


def _plot_net(ax_curve, ax_sharp, net):
    for k, name in enumerate(DYNAMICS):
        c = net[name]
        if c["test_accuracy"]:
            plotting.band(
                ax_curve, c["steps"], c["test_accuracy_curves"], color=f"C{k}", label=LABELS[name]
            )
            ax_sharp.scatter(
                c["top_eigenvalue"], c["test_accuracy"], color=f"C{k}", label=LABELS[name]
            )
    ax_curve.set_xlabel("SGD step (SDE: same time)")
    ax_curve.set_title("net: test accuracy (bands: s.e.)")
    ax_curve.legend(fontsize=8)
    ax_sharp.set_xscale("log")
    ax_sharp.xaxis.set_minor_formatter(plotting.pyplot().NullFormatter())
    ax_sharp.set_xlabel("top Hessian eigenvalue (mean loss), final")
    ax_sharp.set_ylabel("final test accuracy")
    ax_sharp.set_title("net: sharpness against accuracy, per seed")


def report(summary: dict, cfg: Config) -> str:
    theory = summary["kramers"]
    lines = [
        "shape of the noise at equal g: escape from a sharp minimum (barrier "
        f"{summary['profile']['height']:.3g}, "
        f"g = {summary['g']:.3g}, T = {cfg.escape_time:g}, {cfg.escape_seeds} seeds)"
    ]
    for name in DYNAMICS:
        e = summary["escape"][name]
        pred = (
            f"; Kramers {escaped_fraction(theory[name], cfg.escape_time):.3f} (dU/T = "
            f"{theory[name]['barrier_over_t']:.2f})"
            if name in theory
            else ""
        )
        lines.append(f"  {LABELS[name]:<24} escaped {e['final']:.3f} ± {e['se']:.3f}{pred}")
    if summary["net"]:
        lines.append(f"  net after {cfg.steps} steps ({cfg.seeds} seeds): SDE - SGD in s.e.")
        for key, t in summary["net"].items():
            lines.append(
                f"    {key:<26} SGD {t['sgd'][0]:.4g} ± {t['sgd'][1]:.2g}   SDE {t['sde'][0]:.4g} "
                "± "
                f"{t['sde'][1]:.2g}   ({t['z']:+.1f} s.e.)"
            )
    return "\n".join(lines)


EXPERIMENTS = (
    Experiment(
        name="noise-shape",
        title="gradient-shaped against isotropic noise: escape from a sharp minimum, net sharpness",
        config=Config,
        presets={
            "tiny": Config(escape_seeds=50, escape_time=0.5, steps=4, n_train=100, seeds=2),
            "quick": Config(),
        },
        grid=grid,
        evaluate=evaluate,
        summarize=summarize,
        figure=figure,
        report=report,
        chunk_size=1,
        seeds=seeds_of,
        section="studies",
    ),
)
