"""Fig 9 (Smith & Le 2018): the distribution of one gradient component's noise, single examples
against batches of 30. The batch noise is close to Gaussian (central limit), single examples are not.

784-800-10 net at initialisation on N = 1000 embedded digits. The component is the parameter whose
per-example gradients vary most (found in one chunked pass). Single-example noise: dl_i/dw_j - mean;
batch noise: the mean over B = 30 distinct examples minus the full mean, for `batches` random batches.
Normality statistic: Jarque-Bera JB = n (S^2/6 + K^2/24) with skewness S and excess kurtosis K; under
normality JB ~ chi2(2), p = exp(-JB/2). Seeds: initialisations.
"""

import dataclasses
import math

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np

import models
import sim

from ..runner import common as _common
from ..runner.contract import Experiment, param

checks = sim.checks


@dataclasses.dataclass(frozen=True)
class Config:
    batch_size: int = param(30, help="batch size B (distinct examples per batch)")
    batches: int = param(5000, checks.integer, low=10, help="random batches drawn")
    n_train: int = param(1000, checks.integer, low=10, help="training-set size N")
    seeds: int = param(1, checks.integer, help="seeds (one initialisation each)")
    mnist: str | None = param(None, help="folder of your own MNIST (default: the embedded subset)")

    def check(self):
        checks.batch_size(self.batch_size, self.n_train)


def jarque_bera(x):
    x = np.asarray(x, float)
    c = x - x.mean()
    s = np.mean(c**3) / np.mean(c**2) ** 1.5
    k = np.mean(c**4) / np.mean(c**2) ** 2 - 3
    jb = x.size * (s**2 / 6 + k**2 / 24)
    return float(s), float(k), float(jb), float(math.exp(-jb / 2))


def _component_gradients(flat, w, data, chunk=100):
    """Per-example gradients of the component with the largest variance, two chunked passes."""

    def grads(x, y):
        return jax.vmap(lambda xi, yi: jax.grad(lambda v: flat.losses(v, xi[None], yi[None])[0])(w))(x, y)

    n = data.n_train
    xs = data.x_train.reshape(n // chunk, chunk, -1)
    ys = data.y_train.reshape(n // chunk, chunk)

    def moments(carry, xy):
        g = grads(*xy)
        return (carry[0] + g.sum(0), carry[1] + (g**2).sum(0)), None

    zero = jnp.zeros_like(w)
    (s1, s2), _ = jax.lax.scan(moments, (zero, zero), (xs, ys))
    j = jnp.argmax(s2 / n - (s1 / n) ** 2)
    comp = jax.lax.map(lambda xy: grads(*xy)[:, j], (xs, ys)).reshape(n)
    return comp, j


def grid(cfg: Config) -> list[dict]:
    return [dict(batch_size=cfg.batch_size, batches=cfg.batches, n_train=cfg.n_train,
                 data=_common.data_source(cfg.mnist))]


def evaluate_points(points, seeds, pool):
    """Per point and seed (an initialisation): the chosen component's per-example noise, the noise of
    `batches` random batches, their Jarque-Bera statistics and the batch variance over its theory."""
    out = []
    for p in points:
        data = models.multiclass_task(pool, n_train=p["n_train"])
        per_seed = []
        for seed in seeds:
            net = models.ShallowNet(key=jr.fold_in(jr.key(0), seed))
            flat, w = sim.FlatModel.split(net)
            chunk = math.gcd(p["n_train"], 100)
            comp, j = jax.jit(lambda w: _component_gradients(flat, w, data, chunk))(w)
            comp = np.asarray(comp, float)
            single = comp - comp.mean()
            rng = np.random.default_rng(seed)
            idx = np.argsort(rng.random((p["batches"], p["n_train"])), axis=1)[:, : p["batch_size"]]
            batch = comp[idx].mean(axis=1) - comp.mean()
            per_seed.append(dict(component=int(j), single=single.tolist(), batch=batch.tolist(),
                                 single_stats=jarque_bera(single), batch_stats=jarque_bera(batch),
                                 # Var(batch mean) = (sigma^2 / B)(N - B)/(N - 1) with sigma^2 the
                                 # population variance (ddof = 0), batch means about the known mean
                                 batch_var_ratio=float(np.mean(batch**2) / (single.var() / p["batch_size"]
                                                        * (p["n_train"] - p["batch_size"]) / (p["n_train"] - 1)))))
        out.append(per_seed)
    return out


def evaluate(points: list[dict], seeds: list[int]) -> list[list[dict]]:
    return [evaluate_points([p], seeds, _common.pool(p["data"]))[0] for p in points]


def summarize(rows, cfg: Config) -> dict:
    """The first seed's noise samples (for the histograms) and the claims, averaged over seeds."""
    claims = {f"{k}_{name}": v for k in ("single", "batch")
              for name, v in zip(("skew", "excess_kurtosis", "jarque_bera", "p_value"),
                                 [np.mean([r[f"{k}_stats"][i] for r in rows]) for i in range(4)])}
    claims["batch_variance_over_theory"] = float(np.mean([r["batch_var_ratio"] for r in rows]))
    first = {k: rows[0][k] for k in ("component", "single", "batch", "single_stats", "batch_stats")}
    return {"first": first, "claims": claims}


def figure(summary: dict, cfg: Config, out) -> None:
    plt = _common.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    row = summary["first"]
    for ax, key, title in ((axes[0], "single", "single examples"), (axes[1], "batch", f"batches of {cfg.batch_size}")):
        x = np.asarray(row[key])
        ax.hist(x, bins=60, density=True, color="C0", alpha=0.7)
        grid = np.linspace(x.min(), x.max(), 200)
        sd = x.std()
        ax.plot(grid, np.exp(-0.5 * (grid / sd) ** 2) / (sd * math.sqrt(2 * math.pi)), color="C3", label="Gaussian")
        s, k, jb, pv = row[f"{key}_stats"]
        ax.set_title(f"{title}: skew {s:.2f}, excess kurtosis {k:.1f}, JB {jb:.3g}", fontsize=9)
        ax.set_xlabel(f"noise of gradient component {row['component']}")
    axes[0].legend()
    caption = (f"784-800-10 net at initialisation, N = {cfg.n_train}; {cfg.batches} random batches of "
               f"{cfg.batch_size} distinct examples; Jarque-Bera normality statistic (chi2(2) under normality).")
    _common.save(fig, out, "fig9", {"claims": summary["claims"]}, caption)


def report(summary: dict, cfg: Config) -> str:
    return "\n".join(["Fig 9: gradient noise of one component"]
                     + [f"  {k:<30}{v:.4g}" for k, v in summary["claims"].items()])


EXPERIMENTS = (
    Experiment(name="fig9", summary="Fig 9: gradient noise of single examples vs batches of 30, normality statistic",
               config=Config, presets={"tiny": Config(batches=200, n_train=100), "quick": Config(),
                                       "paper": Config(batches=20000, seeds=3)},
               grid=grid, evaluate=f"{__name__}:evaluate", summarize=summarize, figure=figure, report=report,
               section="paper"),
)
