"""Fig 9 (Smith & Le 2018) and the question behind it: is the noise of a batch gradient Gaussian, on
the directions that matter, at the batch sizes we train with?

The paper's panel: one gradient component of the 784-800-10 net at initialisation (the parameter
whose per-example gradients vary most: an output bias, whose per-example gradient is a softmax
probability minus a one-hot, so it takes essentially two values). Its noise is lattice-valued by
construction and a normality test must reject it at any B; it says little about the SDE's
assumption, so it is kept only as the paper's picture.

The test: the noise of a batch of B distinct examples projected on a unit direction v is the mean of
B draws from the N centred per-example projections z_i = (grad l_i - mean) . v. Its skewness and
excess kurtosis are computed EXACTLY from the N values (finite-population moments,
`sim.batch_noise_moments`; for B << N they fall as S_1/sqrt(B) and K_1/B), for v the top
eigenvectors of the gradient covariance F (the directions carrying most of the noise,
`sim.noise_top_directions`) and random unit directions, at initialisation and after `train_steps`
updates of momentum SGD (eps = 0.1, B = 30, m = 0.9, as Figs 3-5). A Monte Carlo of `batches` random
batches per B checks the closed forms and gives a Jarque-Bera test (JB = n (S^2/6 + K^2/24), chi2(2)
under normality, p = exp(-JB/2)) and Q-Q plots. Seeds: initialisations (each with its own random
directions and training batches)."""

import dataclasses
import math
from typing import NamedTuple

import numpy as np

import models
import sim

from ..runner import plotting, pools, tasks
from ..runner.contract import Experiment, Rows, RunContext, param
from ..runner.keys import KeyRules
from ..studies import departure

checks = sim.checks

# Momentum SGD that produces the trained states (Figs 3-5's setting).
TRAIN = dict(lr=0.1, batch_size=30, momentum=0.9)
QQ_PROBS = (np.arange(200) + 0.5) / 200


class Normality(NamedTuple):
    """Jarque-Bera test of a sample: statistic n (S^2/6 + K^2/24), its chi2(2) p-value, S and K."""

    statistic: float
    p_value: float
    skewness: float
    excess_kurtosis: float


def _skewness(x):
    """Sample skewness (moments with divisor n) along the last axis."""
    c = x - x.mean(axis=-1, keepdims=True)
    return np.mean(c**3, axis=-1) / np.mean(c**2, axis=-1) ** 1.5


def normality(x) -> Normality:
    """Jarque-Bera normality test (moments with divisor n, as scipy.stats.jarque_bera)."""
    x = np.asarray(x, float)
    c = x - x.mean()
    m2 = np.mean(c**2)
    s = _skewness(x)
    k = np.mean(c**4) / m2**2 - 3
    jb = x.size * (s**2 / 6 + k**2 / 24)
    return Normality(float(jb), float(math.exp(-jb / 2)), float(s), float(k))


def jarque_bera(x):
    """(skew, excess kurtosis, JB, p) of a sample: the paper-panel row format."""
    t = normality(x)
    return t.skewness, t.excess_kurtosis, t.statistic, t.p_value


def _check_sizes(name, value):
    checks.integer(name, value, low=1)


@dataclasses.dataclass(frozen=True)
class Config(tasks.NetSetup):
    batch_size: int = param(30, help="the paper's panel: batch size B")
    batch_sizes: tuple = param(
        (1, 2, 4, 8, 16, 32, 64, 128, 256),
        _check_sizes,
        help="batch sizes at which the noise's shape is measured",
    )
    qq_batch_sizes: tuple = param((1, 30, 74), _check_sizes, help="batch sizes of the Q-Q plots")
    random_directions: int = param(8, checks.integer, low=1, help="random unit directions")
    top_directions: int = param(2, checks.integer, low=1, help="top eigenvectors of F")
    train_steps: tuple = param(
        (0, 100, 1000),
        lambda n, v: checks.integer(n, v, low=0),
        help="states: updates of momentum SGD (eps 0.1, B 30, m 0.9) from init",
    )
    batches: int = param(5000, checks.integer, low=10, help="Monte Carlo batches per batch size")
    n_train: int = param(1000, checks.integer, low=10, help="training-set size N")
    seeds: int = param(2, checks.integer, help="seeds (one initialisation each)")
    departure_batch_sizes: tuple = param(
        (38, 74),
        checks.integer,
        help="where this folder holds no departure rows of the net: the B at which the SDE tracks "
        "SGD and the B at which it parts (the departure study's net preset, g = 10: figures/net/)",
    )

    def check(self):
        checks.batch_size(self.batch_size, self.n_train)
        if len(self.departure_batch_sizes) != 2:
            raise sim.InputError(
                "departure-batch-sizes: two batch sizes, where it tracks and parts"
            )
        for b in self.batch_sizes + self.qq_batch_sizes:
            checks.integer("batch sizes", b, low=1, high=self.n_train - 1)
        if TRAIN["batch_size"] > self.n_train and any(self.train_steps):
            raise sim.InputError(f"training states need n-train >= {TRAIN['batch_size']}")


def _component_gradients(flat, w, data, chunk=100):
    """Per-example gradients of the component with the largest variance, two chunked passes."""
    import jax
    import jax.numpy as jnp

    def grads(x, y):
        return jax.vmap(
            lambda xi, yi: jax.grad(lambda v: flat.losses(v, xi[None], yi[None])[0])(w)
        )(x, y)

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


def _batches(rng, n, b, count):
    """count batches of b distinct indices of n (uniform)."""
    return np.argsort(rng.random((count, n)), axis=1)[:, :b]


def _upper_cluster(x):
    """The values above the midpoint of their range (a boolean mask): the upper of the two clusters
    a two-point lattice forms."""
    return x > (x.max() + x.min()) / 2


def _cluster_spread(x):
    """Pooled within-cluster s.d. over the distance between the two clusters the values form when
    split at the midpoint of their range: ~0 for a two-point lattice, ~0.5 or more for a unimodal
    sample."""
    x = np.asarray(x, float)
    hi = _upper_cluster(x)
    if hi.all() or not hi.any():
        return float("nan")
    within = np.sqrt(
        (np.sum((x[hi] - x[hi].mean()) ** 2) + np.sum((x[~hi] - x[~hi].mean()) ** 2)) / x.size
    )
    return float(within / (x[hi].mean() - x[~hi].mean()))


def _paper_panel(net, data, p, rng):
    import jax

    flat, w = sim.FlatModel.split(net)
    chunk = math.gcd(p["n_train"], 100)
    comp, j = jax.jit(lambda w: _component_gradients(flat, w, data, chunk))(w)
    comp = np.asarray(comp, float)
    single = comp - comp.mean()
    batch = (
        comp[_batches(rng, p["n_train"], p["batch_size"], p["batches"])].mean(axis=1) - comp.mean()
    )
    # Var(batch mean) = (sigma^2 / B)(N - B)/(N - 1), sigma^2 the population variance (ddof = 0)
    theory = single.var() / p["batch_size"] * (p["n_train"] - p["batch_size"]) / (p["n_train"] - 1)
    return dict(
        component=int(j),
        single=single.tolist(),
        batch=batch.tolist(),
        cluster_spread=_cluster_spread(single),
        single_stats=jarque_bera(single),
        batch_stats=jarque_bera(batch),
        batch_var_ratio=float(np.mean(batch**2) / theory),
    )


def _bootstrap_skew_se(means, rng, resamples=100):
    """Bootstrap standard error of each row's sample skewness (sqrt(6/n) holds only for Gaussian
    data; heavy-tailed batch noise has a far wider sampling distribution)."""
    idx = rng.integers(0, means.shape[1], (resamples, means.shape[1]))
    return [float(_skewness(row[idx]).std(ddof=1)) for row in means]  # row[idx]: (resamples, n)


def _shape(model, data, p, key, rng):
    """Exact and Monte Carlo shape statistics of the batch noise on the top-F and random
    directions."""
    import jax.random as jr

    k_top, k_rand = jr.split(key)
    top = sim.noise_top_directions(model, data, key=k_top, k=p["top_directions"])
    n_params = sim.FlatModel.split(model)[1].shape[0]
    rand = sim.gradient_projections(
        model, data, jr.normal(k_rand, (p["random_directions"], n_params))
    )
    z = np.concatenate([top.projections, rand]).astype(float)  # (directions, N)
    # Orient each direction so its single-example skewness is >= 0 (the sign of v is arbitrary).
    z *= np.where(np.mean(z**3, axis=1, keepdims=True) < 0, -1.0, 1.0)
    bs = np.asarray(p["batch_sizes"])
    exact = sim.batch_noise_moments(z[:, None, :], bs[None, :])
    mc_skew, mc_skew_se, mc_kurt, mc_jb = [], [], [], []
    for b in bs:
        idx = _batches(rng, p["n_train"], int(b), p["batches"])
        means = np.stack([row[idx].mean(axis=1) for row in z])  # one direction at a time: memory
        tests = [normality(m) for m in means]
        mc_skew.append([t.skewness for t in tests])
        mc_skew_se.append(_bootstrap_skew_se(means, rng))
        mc_kurt.append([t.excess_kurtosis for t in tests])
        mc_jb.append([t.statistic for t in tests])
    qq = {}
    for b in p["qq_batch_sizes"]:
        # Standardised quantiles of the batch noise on the top direction and the first random one:
        # B = 1 from the population itself, B > 1 from the Monte Carlo batches.
        pick = z[[0, top.projections.shape[0]]]
        sample = (
            pick if b == 1 else pick[:, _batches(rng, p["n_train"], b, p["batches"])].mean(axis=2)
        )
        sample = (sample - sample.mean(1, keepdims=True)) / sample.std(1, keepdims=True)
        qq[str(b)] = np.quantile(sample, QQ_PROBS, axis=1).T.tolist()
    return dict(
        top_values=top.values.tolist(),
        top_error_bounds=top.error_bounds.tolist(),
        lanczos_steps_used=top.steps_used,
        exact_skew=exact.skewness.tolist(),
        exact_kurtosis=exact.excess_kurtosis.tolist(),
        mc_skew=np.array(mc_skew).T.tolist(),
        mc_skew_se=np.array(mc_skew_se).T.tolist(),
        mc_kurtosis=np.array(mc_kurt).T.tolist(),
        mc_jarque_bera=np.array(mc_jb).T.tolist(),
        qq=qq,
    )


def grid(cfg: Config) -> list[dict]:
    return [
        dict(
            batch_size=cfg.batch_size,
            batch_sizes=tuple(cfg.batch_sizes),
            qq_batch_sizes=tuple(cfg.qq_batch_sizes),
            random_directions=cfg.random_directions,
            top_directions=cfg.top_directions,
            train_steps=tuple(cfg.train_steps),
            batches=cfg.batches,
            n_train=cfg.n_train,
            data=pools.source(cfg.mnist),
            **tasks.setup_of(cfg),
        )
    ]


def evaluate_points(points, seeds, pool, keys: KeyRules = KeyRules()):
    """The rows of `points` x `seeds` from the data pool `pool`, with the key rules `keys` (the
    training set drawn with `keys.draw`, a net's initialisation `keys.init(seed)`, its training
    batches `keys.batches(seed)`, the sampled batches of state i `keys.noise(1000 seed + i)`)."""
    out = []
    for p in points:
        data = models.multiclass_task(
            pool, n_train=p["n_train"], seed=keys.draw, inputs=p.get("inputs", "pixels")
        )
        per_seed = []
        for seed in seeds:
            net = tasks.net(p, keys.init(seed))
            rng = np.random.default_rng(seed)
            row = dict(_paper_panel(net, data, p, rng), states=[])
            for i, steps in enumerate(p["train_steps"]):
                model = net
                if steps:
                    traj = sim.run_sgd(net, data, steps=steps, key=keys.batches(seed), **TRAIN)
                    model = traj.model(0)
                state = _shape(model, data, p, keys.noise(1000 * seed + i), rng)
                flat, w = sim.FlatModel.split(model)
                metrics = np.asarray(flat.metrics(w, data))
                row["states"].append(
                    dict(
                        step=steps,
                        train_loss=float(metrics[0]),
                        test_accuracy=float(metrics[1]),
                        **state,
                        **dict(zip(flat.diagnostic_names, map(float, metrics[3:]))),
                    )
                )
            per_seed.append(row)
        out.append(per_seed)
    return out


def evaluate(run: RunContext, points: list[dict], seeds: list[int]) -> list[list[dict]]:
    return [evaluate_points([p], seeds, run.pool(p["data"]), run.keys)[0] for p in points]


def _at(bs, b):
    """Index of batch size b in bs, or of the nearest one (log scale)."""
    bs = np.asarray(bs, float)
    return int(np.argmin(np.abs(np.log(bs) - math.log(b))))


@dataclasses.dataclass(frozen=True)
class Reads:
    """The departure study's rows, where this folder has them."""

    departure: Rows | None = None


def departure_batch_sizes(reads: Reads, cfg: Config) -> dict:
    """{"tracks": B, "parts": B, "source": ...}: where the departure study's most refined SDE
    still tracks SGD and where it parts, from its rows of the net in this folder
    (`departure.where_it_parts`) where there are some, else the config's `departure_batch_sizes`."""
    found = departure.where_it_parts(reads.departure) if reads.departure else None
    if found is not None:
        return dict(found, source="the departure rows of the net in this folder")
    tracks, parts = cfg.departure_batch_sizes
    return dict(tracks=tracks, parts=parts, source="departure-batch-sizes")


def summarize(rows, cfg: Config, reads: Reads) -> dict:
    """Per state: the exact skewness and excess kurtosis against B on the leading eigenvector of F
    (mean and range over seeds) and the random directions (median and 10-90% range over directions
    and seeds), the
    Monte Carlo check against the closed form (in bootstrap standard errors of the sample skewness),
    JB at each B; the fitted exponent of |skew| against B; the paper panel's claims (first seed's
    samples for the histogram, statistics averaged over seeds)."""
    k = cfg.top_directions
    where = departure_batch_sizes(reads, cfg)
    bs = list(cfg.batch_sizes)
    states = []
    for i, steps in enumerate(cfg.train_steps):
        per = [r["states"][i] for r in rows]
        skew = np.array([s["exact_skew"] for s in per])  # (seeds, directions, B)
        kurt = np.array([s["exact_kurtosis"] for s in per])
        mc = np.array([s["mc_skew"] for s in per])
        mc_se = np.array([s["mc_skew_se"] for s in per])
        jb = np.array([s["mc_jarque_bera"] for s in per])

        def band(a, top):
            a = a[:, :k] if top else a[:, k:]
            flat = a.reshape(-1, a.shape[-1])
            if top:
                return dict(
                    mid=a[:, 0].mean(0).tolist(),
                    low=a[:, 0].min(0).tolist(),
                    high=a[:, 0].max(0).tolist(),
                )
            return dict(
                mid=np.median(flat, 0).tolist(),
                low=np.quantile(flat, 0.1, 0).tolist(),
                high=np.quantile(flat, 0.9, 0).tolist(),
            )

        # The sample skewness is biased toward 0 by O(1/n) and, for heavy tails, by more: compared
        # against the exact value in bootstrap standard errors (a diagnostic, not a test).
        mc_error = np.abs(np.abs(mc) - np.abs(skew)) / np.maximum(mc_se, 1e-12)
        b_tracks, b_parts = (_at(bs, where[w]) for w in ("tracks", "parts"))
        states.append(
            dict(
                step=steps,
                test_accuracy=float(np.mean([s["test_accuracy"] for s in per])),
                top_eigenvalue=float(np.mean([s["top_values"][0] for s in per])),
                skew_top=band(np.abs(skew), True),
                skew_random=band(np.abs(skew), False),
                kurtosis_top=band(kurt, True),
                kurtosis_random=band(kurt, False),
                jarque_bera_top=band(jb, True),
                jarque_bera_random=band(jb, False),
                mc_vs_exact_max_se=float(mc_error.max()),
                # Where the departure study finds the SDE tracking SGD (B ~ 38 on the net) and
                # parting (B ~ 74):
                at_tracks=dict(
                    batch_size=bs[b_tracks],
                    skew_top=float(np.abs(skew[:, 0, b_tracks]).mean()),
                    kurtosis_top=float(kurt[:, 0, b_tracks].mean()),
                    skew_random_median=float(np.median(np.abs(skew[:, k:, b_tracks]))),
                ),
                at_parts=dict(
                    batch_size=bs[b_parts],
                    skew_top=float(np.abs(skew[:, 0, b_parts]).mean()),
                    kurtosis_top=float(kurt[:, 0, b_parts].mean()),
                    skew_random_median=float(np.median(np.abs(skew[:, k:, b_parts]))),
                ),
                qq={b: np.mean([s["qq"][b] for s in per], axis=0).tolist() for b in per[0]["qq"]},
            )
        )
    paper = rows
    claims = {
        f"{part}_{name}": float(np.mean([r[f"{part}_stats"][j] for r in paper]))
        for part in ("single", "batch")
        for j, name in enumerate(("skew", "excess_kurtosis", "jarque_bera", "p_value"))
    }
    claims["batch_variance_over_theory"] = float(np.mean([r["batch_var_ratio"] for r in paper]))
    claims["component_cluster_spread"] = float(np.mean([r["cluster_spread"] for r in paper]))
    first = {
        key: paper[0][key]
        for key in ("component", "single", "batch", "single_stats", "batch_stats")
    }
    return {
        "first": first,
        "claims": claims,
        "batch_sizes": bs,
        "states": states,
        "seeds": cfg.seeds,
        "batches": cfg.batches,
        "departure": where,
    }


def figure(summary: dict, cfg: Config, out) -> None:
    plt = plotting.pyplot()
    fig, axes = plt.subplots(2, 3, figsize=(14, 8))
    _plot_paper(axes[0, 0], summary, cfg)
    for ax, state in zip(axes[0, 1:], (summary["states"][0], summary["states"][-1])):
        _plot_qq(ax, state)
    bs = np.asarray(summary["batch_sizes"], float)
    for ax, key, label, power in (
        (axes[1, 0], "skew", "|skewness|", 0.5),
        (axes[1, 1], "kurtosis", "|excess kurtosis|", 1.0),
    ):
        _plot_moment(ax, summary, bs, key, label, power)
    _plot_jb(axes[1, 2], summary, bs, cfg)
    caption = (
        f"784-800-10 net, N = {cfg.n_train}, {summary['seeds']} seeds (initialisations). Top "
        "left: the "
        f"paper's panel, one output-bias gradient component at init (per-example values in "
        f"two clusters, spread {summary['claims']['component_cluster_spread']:.3f} of their "
        "distance: "
        f"nearly a lattice). Others: batch noise projected on the top "
        f"{cfg.top_directions} eigenvectors of F (curves: the leading one) and "
        f"{cfg.random_directions} random unit directions, at "
        f"init and after {', '.join(str(st['step']) for st in summary['states'][1:])} updates of "
        "momentum SGD (eps 0.1, B 30, m 0.9); skewness and "
        "kurtosis exact (finite-population moments; bands: seeds' range for the leading "
        "eigenvector, 10-90% of random "
        f"directions), Q-Q and Jarque-Bera from {summary['batches']} random batches per B."
    )
    out.save(
        fig,
        "fig9",
        {k: summary[k] for k in ("claims", "batch_sizes", "states", "seeds", "batches")},
        caption,
    )


def _plot_paper(ax, summary, cfg):
    row = summary["first"]
    x = np.asarray(row["batch"])
    single = np.asarray(row["single"])
    # The component's per-example values sit in two tight clusters, so a batch mean of B of them
    # sits on a lattice of spacing (cluster distance)/B: one bin per lattice point, so the bars'
    # density is comparable with the Gaussian's (bins finer than the lattice would show spikes B
    # times too
    # tall).
    hi = _upper_cluster(single)
    step = (single[hi].mean() - single[~hi].mean()) / cfg.batch_size
    edges = np.arange(x.min() - step / 2, x.max() + step, step)
    ax.hist(
        x, bins=edges, density=True, color="C0", alpha=0.6, label=f"batches of {cfg.batch_size}"
    )
    grid = np.linspace(x.min(), x.max(), 200)
    sd = x.std()
    ax.plot(
        grid,
        np.exp(-0.5 * (grid / sd) ** 2) / (sd * math.sqrt(2 * math.pi)),
        color="C3",
        label="Gaussian, same s.d.",
    )
    s, k, jb, _ = row["batch_stats"]
    s1, k1, jb1, _ = row["single_stats"]
    ax.set_title(
        f"paper's panel, component {row['component']}\nB = 1: skew {s1:.2f}, kurt {k1:.1f}, JB "
        f"{jb1:.3g};"
        f" B = {cfg.batch_size}: skew {s:.2f}, kurt {k:.2f}, JB {jb:.3g}",
        fontsize=8,
    )
    ax.set_xlabel("batch noise of the component (gradient units)")
    ax.set_ylabel("density")
    ax.legend(fontsize=7)


def _plot_qq(ax, state):
    from statistics import NormalDist

    normal = np.array([NormalDist().inv_cdf(q) for q in QQ_PROBS])
    for j, (b, curves) in enumerate(state["qq"].items()):
        for c, (label, ls) in zip(curves, (("leading F", "-"), ("random", ":"))):
            ax.plot(normal, c, ls=ls, color=f"C{j}", label=f"B = {b}, {label}")
    ax.plot(normal, normal, color="k", lw=0.7)
    ax.set_xlabel("standard normal quantile")
    ax.set_ylabel("standardised batch-noise quantile")
    ax.set_title(
        f"Q-Q, step {state['step']} (test accuracy {state['test_accuracy']:.2f})", fontsize=9
    )
    ax.legend(fontsize=6, ncol=2)


def _plot_moment(ax, summary, bs, key, label, power):
    for state, ls in zip(summary["states"], ("-", "--", "-.", ":")):
        for which, color in (("top", "C3"), ("random", "C0")):
            band = state[f"{key}_{which}"]
            mid, lo, hi = (np.asarray(band[x], float) for x in ("mid", "low", "high"))
            # |value| on a log axis: a band that straddles 0 reaches down to the axis' floor.
            floor = 1e-4
            low = np.where(np.sign(lo) != np.sign(hi), floor, np.minimum(np.abs(lo), np.abs(hi)))
            ax.plot(
                bs,
                np.maximum(np.abs(mid), floor),
                ls=ls,
                color=color,
                marker="o",
                ms=3,
                label=f"{'leading F eigenvector' if which == 'top' else 'random'}, step "
                f"{state['step']}",
            )
            ax.fill_between(
                bs,
                np.maximum(low, floor),
                np.maximum(np.abs(lo), np.abs(hi)),
                color=color,
                alpha=0.12,
            )
    first = np.abs(np.asarray(summary["states"][0][f"{key}_top"]["mid"]))
    ax.plot(
        bs, first[0] * bs**-power, color="k", lw=0.7, ls=":", label=f"B^-{power:g} (central limit)"
    )
    for name in ("tracks", "parts"):
        b = summary["departure"][name]
        ax.axvline(b, color="grey", lw=0.7, ls="--")
        ax.text(
            b,
            0.02,
            f" SDE {name}",
            fontsize=6,
            rotation=90,
            va="bottom",
            transform=ax.get_xaxis_transform(),
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("batch size B")
    ax.set_ylabel(f"{label} of the batch noise")
    ax.legend(fontsize=6)


def _plot_jb(ax, summary, bs, cfg):
    for state, ls in zip(summary["states"], ("-", "--", "-.", ":")):
        for which, color in (("top", "C3"), ("random", "C0")):
            band = state[f"jarque_bera_{which}"]
            ax.plot(
                bs,
                band["mid"],
                ls=ls,
                color=color,
                marker="o",
                ms=3,
                label=f"{'leading F eigenvector' if which == 'top' else 'random'}, step "
                f"{state['step']}",
            )
    ax.axhline(-2 * math.log(0.01), color="k", lw=0.7, ls=":", label="p = 0.01 (chi2(2))")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("batch size B")
    ax.set_ylabel(f"Jarque-Bera statistic, {summary['batches']} batches")
    ax.legend(fontsize=6)


def report(summary: dict, cfg: Config) -> str:
    lines = [
        "Fig 9: shape of the batch noise",
        "  paper's panel (one output-bias component): "
        + ", ".join(f"{k} {v:.3g}" for k, v in summary["claims"].items()),
        "  where the SDE tracks SGD (B = {tracks}) and parts (B = {parts}): from {source}".format(
            **summary["departure"]
        ),
    ]
    for s in summary["states"]:
        lines.append(
            f"  step {s['step']} (test accuracy {s['test_accuracy']:.3f}, top eigenvalue of F "
            f"{s['top_eigenvalue']:.3g}): Monte Carlo skewness vs exact <= "
            f"{s['mc_vs_exact_max_se']:.1f} "
            "bootstrap s.e."
        )
        for name in ("at_tracks", "at_parts"):
            a = s[name]
            lines.append(
                f"    B = {a['batch_size']}: top-F |skew| {a['skew_top']:.3f}, excess kurtosis "
                f"{a['kurtosis_top']:.3f}; random |skew| median {a['skew_random_median']:.3f}"
            )
    return "\n".join(lines)


EXPERIMENTS = (
    Experiment(
        name="fig9",
        title="Fig 9: the shape of the batch noise (paper's component panel; skewness, kurtosis, "
        "Q-Q against B on the top-F and random directions)",
        config=Config,
        presets={
            "tiny": Config(
                batches=200,
                n_train=100,
                batch_sizes=(1, 4, 16),
                qq_batch_sizes=(1, 4),
                random_directions=2,
                top_directions=1,
                train_steps=(0, 5),
                seeds=1,
            ),
            "quick": Config(),
            "paper": Config(
                batches=20000,
                seeds=4,
                random_directions=16,
                top_directions=4,
                train_steps=(0, 1000, 10000),
            ),
        },
        grid=grid,
        evaluate=evaluate,
        summarize=summarize,
        figure=figure,
        report=report,
        reads=Reads,
        section="paper",
    ),
)
