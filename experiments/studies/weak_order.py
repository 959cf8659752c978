"""The weak order of Euler–Maruyama, on the quadratic toy and on the linear model.

Part 1, quadratic (exact).
C(w) = 1/2 w^T A w with constant noise covariance F (models.quadratic_problem), SDE
dw = -A w dt + sqrt(g) L dW. For f(w) = |w|^2, E f(w_T) is known exactly both for the SDE
(m(T) = e^{-AT} w0, P(T) = P_inf - e^{-AT} P_inf e^{-AT}, A P_inf + P_inf A = g F) and for EM at any
dt (m <- (I - dt A) m, P <- (I - dt A) P (I - dt A)^T + g dt F). The weak error |E_EM f - E f|
against dt = eps/(N r) must fall like dt (weak order 1; Li, Tai & E): the fitted log-log slope is
reported. The EM values are also simulated with `sim.run_sde` (many seeds, Diffrax) at the coarse
steps, to show that the integrator has the exact EM moments (within Monte-Carlo error), not just the
algebra. Chosen here: A = N [[0.8, 0.2], [0.2, 0.5]], F = [[1, 0.3], [0.3, 0.6]], N = 120, eps = 1,
B = 60 (g = 1), w0 = (0.3, -0.2), T = 3 SGD steps of time (eps/N each), r = 1 ... 64.

Part 2, the linear model (binary task, N = 800, lam = 1, eps = 0.4, B = 73: g = 4, the regime where
`sgd-sde departure` sees the refined SDE part from SGD), T = 250 SGD steps of time. No closed form:
the reference is EM at r = 32, and every level r follows the SAME Brownian path as the reference
(`brownian_resolution`: each increment is the sum of the reference's increments). The weak error of
f = final mean train loss (and test cross-entropy) is then the mean of the PAIRED difference
f_r - f_32 over seeds, whose standard error is far below that of unpaired runs. Since the reference
has error c dt_32 itself, the paired difference estimates c (dt_r - dt_32): the slope is fitted
against dt_r - dt_32.

Each sweep point is one simulated level, its seeds summarised (or listed) inside its one row.
"""

import dataclasses
import math

import numpy as np

import models
import sim

from .. import analysis
from ..runner import contract, plotting, pools
from ..runner.contract import Experiment, RunContext, param

checks = sim.checks
N = 120
A = N * np.array([[0.8, 0.2], [0.2, 0.5]])
F = np.array([[1.0, 0.3], [0.3, 0.6]])
W0 = np.array([0.3, -0.2])
PARTS = ("quadratic", "linear")


def check_part(name: str, value: str) -> None:
    if value not in PARTS:
        raise sim.InputError(
            f"{name} must be a comma-separated subset of quadratic,linear (got {value!r})"
        )


@dataclasses.dataclass(frozen=True)
class Config(contract.Config):
    lr: float = param(1.0, checks.positive, help="quadratic: learning rate eps")
    batch_size: int = param(60, checks.integer, help=f"quadratic: batch size B (of N = {N})")
    steps: int = param(3, checks.integer, help="quadratic: SDE time T in SGD steps (eps/N each)")
    refinements: tuple = param(
        (1, 2, 4, 8, 16, 32, 64),
        checks.integer,
        help="quadratic: refinements r (dt = eps/(N r)) of the exact EM moments",
    )
    simulated: tuple = param(
        (1, 2, 4), checks.integer, help="quadratic: refinements also simulated by sim.run_sde"
    )
    seeds: int = param(
        20000, checks.integer, low=2, help="quadratic: seeds per simulated refinement"
    )
    parts: tuple = param(PARTS, check_part, help="parts to run, comma-separated: quadratic, linear")
    linear_lr: float = param(0.4, checks.positive, help="linear model: learning rate eps")
    linear_batch_size: int = param(73, checks.integer, help="linear model: batch size B")
    linear_steps: int = param(250, checks.integer, help="linear model: SDE time T in SGD steps")
    linear_l2: float = param(
        1.0, checks.non_negative, help="linear model: L2 lam in the summed cost C"
    )
    linear_n_train: int = param(800, checks.integer, help="linear model: training-set size N")
    linear_refinements: tuple = param(
        (1, 2, 4, 8), checks.integer, help="linear model: refinements r compared"
    )
    linear_reference: int = param(
        32,
        checks.integer,
        help="linear model: the reference refinement (a multiple of every r, larger)",
    )
    linear_seeds: int = param(
        128, checks.integer, low=2, help="linear model: seeds (one Brownian path each)"
    )

    def check(self):
        checks.integer("batch-size", self.batch_size, low=1, high=N)
        if len(self.refinements) < 2:
            raise sim.InputError("refinements needs at least two values to fit a slope")
        checks.integer("linear-batch-size", self.linear_batch_size, low=1, high=self.linear_n_train)
        if len(self.linear_refinements) < 2:
            raise sim.InputError("linear-refinements needs at least two values to fit a slope")
        for r in self.linear_refinements:
            if self.linear_reference % r or r >= self.linear_reference:
                raise sim.InputError(
                    "linear-reference must be a multiple of every linear refinement, "
                    f"and larger (got {self.linear_reference})"
                )


def grid(cfg: Config) -> list[dict]:
    """The linear model's levels (reference last), then the quadratic's simulated refinements."""
    points = []
    if "linear" in cfg.parts:
        base = dict(
            part="linear",
            lr=cfg.linear_lr,
            batch_size=cfg.linear_batch_size,
            steps=cfg.linear_steps,
            l2=cfg.linear_l2,
            n_train=cfg.linear_n_train,
            reference=cfg.linear_reference,
            seeds=cfg.linear_seeds,
            data=pools.source(cfg.mnist),
        )
        points += [
            dict(base, refinement=r) for r in [*cfg.linear_refinements, cfg.linear_reference]
        ]
    if "quadratic" in cfg.parts:  # these points carry no "part" (as they always have: same hashes)
        points += [
            dict(
                lr=cfg.lr, batch_size=cfg.batch_size, steps=cfg.steps, refinement=r, seeds=cfg.seeds
            )
            for r in cfg.simulated
        ]
    return points


def evaluate(run: RunContext, points: list[dict], seeds: list[int]) -> list[list[dict]]:
    """One row per point (its `seeds` runs inside it; `seeds` here is [0])."""
    return [
        _linear_level(run, p) if p.get("part") == "linear" else _simulate(run, p) for p in points
    ]


def _simulate(run: RunContext, point):
    """Quadratic: mean and s.e. of |w_T|^2 over the point's seeds, simulated by EM (Diffrax)."""
    import jax.numpy as jnp

    model, data = models.quadratic_problem(
        A, F, n_train=N, w0=jnp.asarray(W0, jnp.float32), seed=run.keys.problem
    )
    traj = sim.run_sde(
        model,
        data,
        lr=point["lr"],
        batch_size=point["batch_size"],
        steps=point["steps"],
        refinement=point["refinement"],
        key=run.keys.plain(point["refinement"]),
        n_seeds=point["seeds"],
        record_every=point["steps"],
        seed_batching="vmap",
    )
    f = np.sum(np.asarray(traj.params, float) ** 2, axis=1)
    return [dict(mean_f=float(f.mean()), se_f=float(f.std(ddof=1) / math.sqrt(f.size)))]


def _linear_level(run: RunContext, p):
    """Linear model: final train loss and test cross-entropy per seed at one refinement, on the
    shared path."""
    data = models.binary_task(run.pool(p["data"]), n_train=p["n_train"], seed=run.keys.draw)
    traj = sim.run_sde(
        models.LogisticRegression(),
        data,
        lr=p["lr"],
        batch_size=p["batch_size"],
        steps=p["steps"],
        l2=p["l2"],
        refinement=p["refinement"],
        brownian_resolution=p["reference"],
        key=run.keys.shared_path(),
        n_seeds=p["seeds"],
        record_every=p["steps"],
    )
    return [
        dict(
            train_loss=traj.train_loss[:, -1].tolist(),
            test_xent=traj.test_xent[:, -1].tolist(),
            diverged_runs=int(traj.diverged.sum()),
        )
    ]


def exact_sde(cfg):
    from scipy.linalg import expm, solve_continuous_lyapunov

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


def summarize(rows: list[dict], cfg: Config) -> dict:
    numbers = (
        _quadratic([r for r in rows if "part" not in r["config"]], cfg)
        if "quadratic" in cfg.parts
        else {}
    )
    if "linear" in cfg.parts:
        numbers["linear"] = _linear([r for r in rows if r["config"].get("part") == "linear"], cfg)
    return numbers


def _quadratic(rows, cfg):
    """Exact EM weak errors, their slope where dt * lambda_max(A) <= 1/8, and the simulated
    levels."""
    reference = exact_sde(cfg)
    dts = [cfg.lr / (N * r) for r in cfg.refinements]
    errors = [abs(exact_em(cfg, r) - reference) for r in cfg.refinements]
    # Weak order is an asymptotic statement: fit where dt * lambda_max(A) <= 1/8 (at r = 1 here it
    # is 0.93, and the EM error even changes sign between r = 1 and r = 2).
    lam_max = float(np.linalg.eigvalsh(A).max())
    tail = [(d, e) for d, e in zip(dts, errors) if d * lam_max <= 0.125]
    if len(tail) < 2:
        tail = list(zip(dts, errors))[-2:]
    slope, _ = analysis.loglog_slope([d for d, _ in tail], [e for _, e in tail], 0.0)
    agreement = [
        abs(r["mean_f"] - exact_em(cfg, r["config"]["refinement"])) / r["se_f"] for r in rows
    ]
    return dict(
        reference=reference,
        dt=dts,
        error=errors,
        slope=slope,
        fitted_points=len(tail),
        simulated=[
            dict(
                refinement=r["config"]["refinement"],
                mean=r["mean_f"],
                se=r["se_f"],
                exact_em=exact_em(cfg, r["config"]["refinement"]),
                z=z,
            )
            for r, z in zip(rows, agreement)
        ],
    )


def _linear(rows, cfg):
    """Paired weak errors E f_r - E f_ref (reference: the last row) and their slope against dt_r -
    dt_ref."""
    ref = rows[-1]
    dt = lambda r: cfg.linear_lr / (cfg.linear_n_train * r)  # noqa: E731
    result = dict(reference_refinement=cfg.linear_reference, levels={})
    for name in ("train_loss", "test_xent"):
        errors = []
        for row in rows[:-1]:
            diff = np.asarray(row[name]) - np.asarray(ref[name])
            diff = diff[np.isfinite(diff)]
            errors.append(
                (
                    row["config"]["refinement"],
                    float(diff.mean()),
                    float(diff.std(ddof=1) / math.sqrt(diff.size)),
                )
            )
        xs = [dt(r) - dt(cfg.linear_reference) for r, _, _ in errors]
        ys = [abs(e) for _, e, _ in errors]
        sigma = [se / abs(e) if e else 1.0 for _, e, se in errors]
        slope, slope_se = analysis.loglog_slope(xs, ys, sigma)
        result["levels"][name] = dict(
            refinements=[r for r, _, _ in errors],
            dt_minus_reference=xs,
            error=[e for _, e, _ in errors],
            se=[se for _, _, se in errors],
            slope=slope,
            slope_se=slope_se,
            reference_mean=float(np.nanmean(ref[name])),
        )
    result["diverged_runs"] = {r["config"]["refinement"]: r["diverged_runs"] for r in rows}
    return result


def figure(numbers: dict, cfg: Config, out) -> None:
    plt = plotting.pyplot()
    quadratic, linear = "reference" in numbers, numbers.get("linear")
    wide = quadratic and linear
    fig, axes = plt.subplots(
        1, 2 if wide else 1, figsize=(11, 4) if wide else (5.5, 4), squeeze=False
    )
    captions = []
    if quadratic:
        captions.append(_plot_quadratic(axes[0][0], cfg, numbers))
    if linear:
        captions.append(_plot_linear(axes[0][-1], cfg, linear))
    out.save(fig, "weak-order", numbers, " ".join(captions))


def _plot_quadratic(ax, cfg, numbers):
    ax.loglog(
        numbers["dt"],
        numbers["error"],
        "o-",
        label=f"exact EM weak error (slope {numbers['slope']:.3f} where dt·λmax <= 1/8)",
    )
    simulated = numbers["simulated"]
    ax.errorbar(
        [cfg.lr / (N * s["refinement"]) for s in simulated],
        [abs(s["mean"] - numbers["reference"]) for s in simulated],
        yerr=[2 * s["se"] for s in simulated],
        fmt="s",
        color="C3",
        label="simulated (Diffrax EM), ±2 s.e.",
    )
    ax.set_xlabel("dt")
    ax.set_ylabel("|E f(w_T) - E_SDE f(w_T)|, f = |w|^2")
    ax.legend(fontsize=8)
    ax.set_title("quadratic: exact moments")
    return (
        f"Quadratic toy, N = {N}, eps = {cfg.lr}, B = {cfg.batch_size} (g = 1), T = {cfg.steps} "
        "eps/N, "
        f"{cfg.seeds} seeds per simulated point."
    )


def _plot_linear(ax, cfg, linear):
    for k, (name, lv) in enumerate(linear["levels"].items()):
        ax.errorbar(
            lv["dt_minus_reference"],
            np.abs(lv["error"]),
            yerr=2 * np.asarray(lv["se"]),
            marker="o",
            color=f"C{k}",
            label=f"{name.replace('_', ' ')}: slope {lv['slope']:.2f} ± {lv['slope_se']:.2f}",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_minor_formatter(plotting.pyplot().NullFormatter())
    ax.set_xlabel("dt - dt_ref")
    ax.set_ylabel(f"|E f_r - E f_ref| (paired, r_ref = {cfg.linear_reference}), ±2 s.e.")
    ax.set_title("linear model: one Brownian path per seed")
    ax.legend(fontsize=8)
    g = sim.noise_scale(cfg.linear_lr, cfg.linear_n_train, cfg.linear_batch_size)
    return (
        f"Linear model: N = {cfg.linear_n_train}, eps = {cfg.linear_lr}, B = "
        f"{cfg.linear_batch_size} "
        f"(g = {g:.3g}), lam = {cfg.linear_l2}, T = {cfg.linear_steps} eps/N, {cfg.linear_seeds} "
        "seeds."
    )


def report(numbers: dict, cfg: Config) -> str:
    if "reference" not in numbers:
        lines = ["weak order of Euler–Maruyama"]
    else:
        lines = [
            f"weak order of Euler–Maruyama: fitted slope {numbers['slope']:.3f} over dt * "
            "lambda_max <= 1/8 "
            f"({numbers['fitted_points']} points; weak order 1 expects 1)"
        ]
        lines += [
            f"  dt = {d:.3g}: exact EM weak error {e:.3g}"
            for d, e in zip(numbers["dt"], numbers["error"])
        ]
        lines += [
            f"  r = {s['refinement']}: simulated E|w_T|^2 {s['mean']:.6g} ± {s['se']:.2g}, exact "
            "EM "
            f"{s['exact_em']:.6g} ({s['z']:.1f} s.e.), SDE {numbers['reference']:.6g}"
            for s in numbers["simulated"]
        ]
    if "linear" in numbers:
        lines.append(
            f"  linear model (paired differences against r = {cfg.linear_reference}, "
            f"{cfg.linear_seeds} seeds):"
        )
        for name, lv in numbers["linear"]["levels"].items():
            cells = ", ".join(
                f"r={r}: {e:.3g} ± {se:.2g}"
                for r, e, se in zip(lv["refinements"], lv["error"], lv["se"])
            )
            lines.append(
                f"    {name:<11} slope {lv['slope']:.2f} ± {lv['slope_se']:.2f}; E f_r - E f_ref: "
                f"{cells}"
            )
    return "\n".join(lines)


EXPERIMENTS = (
    Experiment(
        name="weak-order",
        title="weak order of Euler-Maruyama on the quadratic and on the linear model",
        config=Config,
        presets={
            "tiny": Config(
                refinements=(1, 2, 4),
                simulated=(1,),
                seeds=2000,
                linear_n_train=100,
                linear_batch_size=20,
                linear_steps=10,
                linear_refinements=(1, 2),
                linear_reference=4,
                linear_seeds=8,
            ),
            "quick": Config(),
        },
        grid=grid,
        evaluate=evaluate,
        summarize=summarize,
        figure=figure,
        report=report,
        chunk_size=1,
        seeds=lambda cfg, point: [0],
        section="studies",
    ),
)
