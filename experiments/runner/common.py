"""Helpers shared by the experiments: data, per-seed rows, plotting. The statistics over seeds
and along curves in B live in `experiments.analysis`."""

import contextlib
import dataclasses
import json
import math
import pathlib

import numpy as np

from .contract import param

MODELS = ("logistic", "net")


def _choice(options):
    def check(name: str, value) -> None:
        import sim

        if value not in options:
            raise sim.InputError(f"{name} must be one of {', '.join(options)} (got {value!r})")

    return check


# The net's setup (mirrors models.ACTIVATIONS, models.INITS, models.INPUTS without importing JAX).
ACTIVATIONS = ("relu", "leaky_relu", "tanh", "gelu", "softplus")
INITS = ("default", "glorot", "he")
INPUTS = ("pixels", "centred", "standardised")
SETUP_DEFAULTS = {"activation": "relu", "init": "default", "inputs": "pixels"}


@dataclasses.dataclass(frozen=True)
class NetSetup:
    """The net's setup as config fields, shared by every net experiment: the hidden activation, the
    initialisation and the input preprocessing (`models.ShallowNet`, `models.multiclass_task`). A
    point records only the fields that differ from the defaults, so default points keep their
    hash."""

    activation: str = param(
        "relu",
        _choice(ACTIVATIONS),
        help="hidden activation: " + ", ".join(ACTIVATIONS) + " (leaky slope 0.01)",
    )
    init: str = param(
        "default",
        _choice(INITS),
        help="initialisation: default (U(+-1/sqrt(fan_in)), weights and biases), glorot "
        "(Glorot-uniform, zero biases: TensorFlow's), he (He-normal, zero biases)",
    )
    inputs: str = param(
        "pixels",
        _choice(INPUTS),
        help="input preprocessing: pixels in [0, 1], centred (minus the training mean "
        "per pixel) or standardised (minus the mean, over the std of all training pixels)",
    )


def setup_of(cfg_or_point) -> dict:
    """The non-default setup fields of a config or a point (what a point records)."""
    get = (
        (lambda k: cfg_or_point.get(k, SETUP_DEFAULTS[k]))
        if isinstance(cfg_or_point, dict)
        else (lambda k: getattr(cfg_or_point, k, SETUP_DEFAULTS[k]))
    )
    return {k: get(k) for k in SETUP_DEFAULTS if get(k) != SETUP_DEFAULTS[k]}


def setup_label(cfg_or_point) -> str:
    """\"" for the default setup, else e.g. ", leaky_relu, glorot init" (for captions)."""
    setup = setup_of(cfg_or_point)
    parts = [setup["activation"]] if "activation" in setup else []
    parts += [f"{setup['init']} init"] if "init" in setup else []
    parts += [f"{setup['inputs']} inputs"] if "inputs" in setup else []
    return "".join(", " + p for p in parts)


def net_data(point: dict, *, n_train: int | None = None, seed: int = 0):
    """The ten-digit task of a point: its data pool, N and input preprocessing."""
    import models

    n = point["n_train"] if n_train is None else n_train
    return models.multiclass_task(
        pool(point["data"]), n_train=n, seed=seed, inputs=point.get("inputs", "pixels")
    )


def net(point: dict, key, **shape):
    """The ShallowNet of a point (its activation and initialisation), from `key`."""
    import models

    return models.ShallowNet(
        key=key,
        activation=point.get("activation", "relu"),
        init=point.get("init", "default"),
        **shape,
    )


def check_model(name: str, value: str) -> None:
    import sim

    if value not in MODELS:
        raise sim.InputError(f"{name} must be 'logistic' or 'net' (got {value!r})")


def data_source(mnist: str | None) -> str:
    """What a point records as its data: "embedded" or the MNIST folder (from --mnist or
    $SGD_SDE_MNIST), so that a worker can load the same pool by itself."""
    import models

    return models.load_mnist(mnist).source


_POOLS: dict = {}


def pool(source: str):
    """The MNIST pool a point names (loaded once per process, or provided by the driver)."""
    import models

    if source not in _POOLS:
        _POOLS[source] = (
            models.embedded_mnist() if source == "embedded" else models.load_mnist(source)
        )
    return _POOLS[source]


def provide_pool(source: str, value) -> None:
    """Install a pool shipped by the driver (a Ray worker on a machine without the user's
    folder)."""
    _POOLS[source] = value


def final_rows(traj, **extra_per_seed) -> list[dict]:
    """One row per seed of a trajectory: final train loss, test accuracy and test cross-entropy, the
    model's diagnostics (e.g. `dead_fraction`), and whether (and when) the seed diverged."""
    return [
        final_row(traj, s, **{k: v[s] for k, v in extra_per_seed.items()})
        for s in range(traj.n_seeds)
    ]


def diagnostics_of(traj, r: int) -> dict:
    """Run r's final diagnostics (e.g. `dead_fraction`); empty for a model without any."""
    return {name: float(values[r, -1]) for name, values in traj.diagnostics.items()}


def final_row(traj, r: int, **extra) -> dict:
    """Run r's final metrics and diagnostics, and whether (and when) it diverged."""
    div = int(traj.diverged_step[r])
    return dict(traj.finals(r), diverged=div >= 0, diverged_step=div if div >= 0 else None, **extra)


def task(
    name: str,
    pool,
    *,
    n_train: int,
    seed: int = 0,
    activation: str = "relu",
    init: str = "default",
    inputs: str = "pixels",
):
    """(data, make_model(key)): 'logistic' is the paper's linear model on the binary task, 'net' the
    784-800-10 net on all ten digits (with its setup: `NetSetup`)."""
    import models

    if name == "logistic":
        return (
            models.binary_task(pool, n_train=n_train, seed=seed, inputs=inputs),
            lambda key: models.LogisticRegression(),
        )
    return (
        models.multiclass_task(pool, n_train=n_train, seed=seed, inputs=inputs),
        lambda key: models.ShallowNet(key=key, activation=activation, init=init),
    )


def train(point: dict, pool, seeds, *, sde: dict | None = None, **common):
    """(trajectory, data) of one sweep point: SGD when point["dynamics"] is "sgd", else the SDE
    (with the `sde` options), over the given seeds, from the SAME initialisations for both dynamics
    (seed s: key fold_in(key(0), s)) so that their distributions compare run by run."""
    import jax.random as jr

    import sim

    data, make = task(point["model"], pool, n_train=point["n_train"], **setup_of(point))
    inits = [make(jr.fold_in(jr.key(0), s)) for s in seeds]
    if point["dynamics"] == "sgd":
        return sim.run_sgd(inits, data, key=jr.key(1), **common), data
    return sim.run_sde(inits, data, key=jr.key(2), **(sde or {}), **common), data


EVIDENCE_PRIOR = 1.0  # lam of the Gaussian prior N(0, 1/lam) per weight for the net's log evidence
LANDSCAPE = dict(lanczos_steps=20, trace_probes=20, slq_probes=10, slq_steps=60)


def landscape(
    model, data, *, key, evidence: bool = False, prior: float = EVIDENCE_PRIOR, l2: float = 0.0
) -> dict:
    """The landscape at a trained model, each number with its error: the top eigenvalue of the
    mean-loss Hessian (Lanczos, 20 steps; `sharpness_bound` its residual bound, `sharpness_steps`
    the Krylov dimension used), its trace (Hutchinson, 20 Rademacher probes; `hessian_trace_se` the
    standard error) and |w|^2: about 40 Hessian-vector products (~2 s on the 784-800-10 net at
    N = 1000, 2 cores).

    evidence: also the Laplace log evidence (`sim.log_evidence`: exact for small models, else SLQ
        with
    10 probes and 60 Lanczos steps, its standard error and truncation estimate; ~600 more products,
    ~30 s at N = 1000) under a Gaussian prior of precision `prior` + `l2` on every parameter (the
    run's own L2 term is part of the prior). Directions whose curvature is below the prior's (the
    weights of dead units: exactly zero) add nothing to the Occam factor: the prior alone sets their
    width."""
    import jax.random as jr

    import sim

    k_top, k_trace, k_ev = jr.split(key, 3)
    _, w = sim.FlatModel.split(model)
    p = w.shape[0]
    top = sim.hessian_top_eigenvalues(
        model, data, key=k_top, k=1, lanczos_steps=min(LANDSCAPE["lanczos_steps"], p)
    )
    trace = sim.hessian_trace(model, data, key=k_trace, probes=LANDSCAPE["trace_probes"])
    w = np.asarray(w, dtype=float)
    out = dict(
        sharpness=float(top.values[0]),
        sharpness_bound=float(top.error_bounds[0]),
        sharpness_steps=int(top.steps_used),
        hessian_trace=trace.value,
        hessian_trace_se=trace.error,
        w_norm_sq=float(w @ w),
    )
    if evidence:
        ev = sim.log_evidence(
            model,
            data,
            l2=prior + l2,
            key=k_ev,
            probes=LANDSCAPE["slq_probes"],
            lanczos_steps=min(LANDSCAPE["slq_steps"], p),
        )
        out.update(
            log_evidence=ev.log_evidence,
            log_evidence_ratio=ev.log_evidence_ratio,
            log_evidence_se=ev.error,
            log_evidence_truncation=ev.truncation,
            evidence_dropped=ev.n_dropped,
            evidence_prior=prior + l2,
        )
    return out


def group_rows(rows, key):
    out = {}
    for row in rows:
        out.setdefault(key(row["config"]), []).append(row)
    return out


def band(ax, x, values, *, color, label):
    """Mean over seeds (rows of `values`) as a line, with a band of one standard error."""
    values = np.asarray(values, dtype=float)
    mean = values.mean(axis=0)
    n = values.shape[0]
    se = values.std(axis=0, ddof=1) / math.sqrt(n) if n > 1 else np.zeros_like(mean)
    ax.plot(x, mean, color=color, label=label)
    ax.fill_between(x, mean - se, mean + se, color=color, alpha=0.25, lw=0)


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


_OUTPUT_NAMES: dict[str, str] = {}


@contextlib.contextmanager
def outputs_named(name: str, new: str):
    """Within the block, figures and numbers saved as `name` are written as `new` (a preset other
    than tiny/quick/paper writes `<name>-<preset>.png/.json`, so it never overwrites the standard
    preset's outputs in a shared folder; the rows share one file, told apart by their config
    hash)."""
    _OUTPUT_NAMES[name] = new
    try:
        yield
    finally:
        _OUTPUT_NAMES.pop(name, None)


def save(fig, out: pathlib.Path, name: str, numbers: dict, caption: str) -> None:
    name = _OUTPUT_NAMES.get(name, name)
    fig.text(0.01, 0.005, caption, fontsize=7, va="bottom", ha="left", wrap=True)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(out / f"{name}.png", dpi=110)
    pyplot().close(fig)
    (out / f"{name}.json").write_text(json.dumps(numbers, indent=1, default=float))
    print(f"wrote {out / (name + '.png')} and {out / (name + '.json')}")


def step_cost(point: dict) -> float:
    """Relative run time of a net training point: steps x (B + 30), a step costing about as much as
    30 more examples in the batch (measured on the 784-800-10 net: 0.5 ms at B = 10, 14 ms at B =
    1000)."""
    return float(point["steps"]) * (point["batch_size"] + 30)


_COMPILE_EVENTS = (
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
)


@contextlib.contextmanager
def timed():
    """Yields elapsed() -> (wall seconds, seconds compiling) since entry. Compiling: the union of
    JAX's tracing, lowering and XLA-compile spans (reads from the persistent cache happen inside the
    last; nested traces are counted once)."""
    import time

    from jax import monitoring

    spans = []

    def listen(event, start, end, **kwargs):
        if event in _COMPILE_EVENTS:
            spans.append((start, end))

    monitoring.register_event_time_span_listener(listen)
    start = time.time()

    def elapsed():
        busy, reach = 0.0, -math.inf
        for a, b in sorted(spans):
            if b > reach:
                busy += b - max(a, reach)
                reach = b
        return time.time() - start, busy

    try:
        yield elapsed
    finally:
        monitoring.unregister_event_time_span_listener(listen)
