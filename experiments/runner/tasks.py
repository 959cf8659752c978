"""The models and tasks the experiments train: the net's setup as config fields, the task of a
point, its training (SGD or the SDE from the same initialisations) and the landscape at a trained
model."""

import dataclasses

import numpy as np

from .contract import Config, RunContext, choice, param

MODELS = ("logistic", "net")


# The net's setup (mirrors models.ACTIVATIONS, models.INITS, models.INPUTS without importing JAX).
ACTIVATIONS = ("relu", "leaky_relu", "tanh", "gelu", "softplus")
INITS = ("default", "glorot", "he")
INPUTS = ("pixels", "centred", "standardised")
SETUP_DEFAULTS = {"activation": "relu", "init": "default", "inputs": "pixels"}


@dataclasses.dataclass(frozen=True)
class NetSetup(Config):
    """The net's setup as config fields, shared by every net experiment: the hidden activation, the
    initialisation and the input preprocessing (`models.ShallowNet`, `models.multiclass_task`). A
    point records only the fields that differ from the defaults, so default points keep their
    hash."""

    activation: str = param(
        "relu",
        choice(ACTIVATIONS),
        help="hidden activation: " + ", ".join(ACTIVATIONS) + " (leaky slope 0.01)",
    )
    init: str = param(
        "default",
        choice(INITS),
        help="initialisation: default (U(+-1/sqrt(fan_in)), weights and biases), "
        "glorot (Glorot-uniform, zero biases: TensorFlow's), he (He-normal, "
        "zero biases)",
    )
    inputs: str = param(
        "pixels",
        choice(INPUTS),
        help="input preprocessing: pixels in [0, 1], centred (minus the training "
        "mean per pixel) or standardised (minus the mean, over the std of all "
        "training pixels)",
    )

    def net_setup(self) -> dict | None:
        """The whole setup, defaults included, as every JSON of a net run records it; None where
        the config's model is not the net (a `model` field naming another)."""
        if dataclasses.asdict(self).get("model", "net") != "net":
            return None
        return {**SETUP_DEFAULTS, **setup_of(self)}


def setup_of(cfg_or_point: "NetSetup | dict") -> dict:
    """The non-default setup fields of a net config or of a point (what a point records)."""
    if isinstance(cfg_or_point, dict):
        values = {k: cfg_or_point.get(k, default) for k, default in SETUP_DEFAULTS.items()}
    else:
        cfg = cfg_or_point
        values = dict(activation=cfg.activation, init=cfg.init, inputs=cfg.inputs)
    return {k: v for k, v in values.items() if v != SETUP_DEFAULTS[k]}


def setup_label(cfg_or_point) -> str:
    """ "" for the default setup, else e.g. ", leaky_relu, glorot init" (for captions)."""
    setup = setup_of(cfg_or_point)
    parts = [setup["activation"]] if "activation" in setup else []
    parts += [f"{setup['init']} init"] if "init" in setup else []
    parts += [f"{setup['inputs']} inputs"] if "inputs" in setup else []
    return "".join(", " + p for p in parts)


def net_data(
    point: dict,
    run: RunContext,
    *,
    n_train: int | None = None,
    seed: int | None = None,
):
    """The ten-digit task of a point: its data pool (`run.pool`), N and input preprocessing; its
    training set drawn with `seed`, by default the run's draw rule (`run.keys.draw`)."""
    import models

    n = point["n_train"] if n_train is None else n_train
    return models.multiclass_task(
        run.pool(point["data"]),
        n_train=n,
        seed=run.keys.draw if seed is None else seed,
        inputs=point.get("inputs", "pixels"),
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


def task(
    name: str,
    pool,
    *,
    n_train: int,
    seed: int,
    activation: str = "relu",
    init: str = "default",
    inputs: str = "pixels",
):
    """(data, make_model(key)): 'logistic' is the paper's linear model on the binary task, 'net' the
    784-800-10 net on all ten digits (with its setup: `NetSetup`); `seed` draws the training set."""
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


def train(run, point: dict, seeds, *, sde: dict | None = None, **common):
    """(trajectory, data) of one sweep point: SGD when point["dynamics"] is "sgd", else the SDE
    (with the `sde` options), over the given seeds, from the SAME initialisations for both dynamics
    (`run.keys.init(seed)`) so that their distributions compare run by run; SGD's batches from
    `run.keys.batches()`, the SDE's Brownian motion from `run.keys.noise()`; the training set drawn
    with `run.keys.draw`."""
    import sim

    data, make = task(
        point["model"],
        run.pool(point["data"]),
        n_train=point["n_train"],
        seed=run.keys.draw,
        **setup_of(point),
    )
    inits = [make(run.keys.init(s)) for s in seeds]
    if point["dynamics"] == "sgd":
        return sim.run_sgd(inits, data, key=run.keys.batches(), **common), data
    return sim.run_sde(inits, data, key=run.keys.noise(), **(sde or {}), **common), data


def step_cost(point: dict) -> float:
    """Relative run time of a net training point: steps x (B + 30), a step costing about as much as
    30 more examples in the batch (measured on the 784-800-10 net: 0.5 ms at B = 10, 14 ms at
    B = 1000)."""
    return float(point["steps"]) * (point["batch_size"] + 30)


EVIDENCE_PRIOR = 1.0  # lam of the Gaussian prior N(0, 1/lam) per weight for the net's log evidence
LANDSCAPE = dict(lanczos_steps=20, trace_probes=20, slq_probes=10, slq_steps=60)


def landscape(
    model,
    data,
    *,
    key,
    evidence: bool = False,
    prior: float = EVIDENCE_PRIOR,
    l2: float = 0.0,
) -> dict:
    """The landscape at a trained model, each number with its error: the top eigenvalue of the
    mean-loss Hessian (Lanczos, 20 steps; `sharpness_bound` its residual bound, `sharpness_steps`
    the Krylov dimension used), its trace (Hutchinson, 20 Rademacher probes; `hessian_trace_se` the
    standard error) and |w|^2: about 40 Hessian-vector products, ~130 full-batch gradients' time
    (~5 s on the 784-800-10 net at N = 1000, 2 cores; `benchmarks/run.py`).

    evidence: also the Laplace log evidence (`sim.log_evidence`: exact for small models, else SLQ
    with 10 probes and 60 Lanczos steps, its standard error and truncation estimate; ~600 more
    products, ~5,000 gradients' time, ~1 min at N = 1000: 5x a run of 10,000 updates) under a
    Gaussian prior of precision `prior` + `l2` on every parameter (the run's own L2 term is part
    of the prior). Directions whose curvature is below the prior's (the weights of dead units:
    exactly zero) add nothing to the Occam factor: the prior alone sets their width."""
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
