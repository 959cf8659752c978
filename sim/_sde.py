"""The SDE of SGD, integrated by Diffrax's Euler–Maruyama with the exact, matrix-free noise g F(w)
(docs/mathematics.md, "Exact matrix-free noise", "Momentum as a second-order SDE")."""

from collections.abc import Sequence

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from jaxtyping import Array, PRNGKeyArray

from models import Dataset, Model

from . import _checks, _run
from ._flat import FlatModel
from ._noise import AbstractNoise, GradientCovarianceNoise
from ._trajectory import Trajectory


class SDEHyper(eqx.Module):
    """The SDE's coefficients as traced arrays of the parameters' dtype (a new value never
    recompiles): l2 = lam; noise_scale = g (g' in the second-order SDE); friction = gamma (0 in the
        first-order
    SDE); dt = the Euler–Maruyama step (unit / r)."""

    l2: Array
    noise_scale: Array
    friction: Array
    dt: Array


class SDEArgs(eqx.Module):
    """Diffrax's `args` for `SGDNoiseTerm`: the training set (x, labels) and the coefficients of the
    drift and noise: l2 = lam, noise_scale = g, friction = gamma (unused in the first-order SDE)."""

    x: Array
    labels: Array
    l2: Array
    noise_scale: Array
    friction: Array


class SGDNoiseTerm(dfx.AbstractTerm):
    """dy = f(y) dt + sigma(y) dW as ONE linear map of the control (dt, dW), for Diffrax.

    First order (y = w):        dw = -dC/dw dt + sqrt(g) L dW.
    Second order (y = (w, u)):  dw = u dt,  du = (-gamma u - dC/dw) dt + sqrt(g) L dW.
    With `semi_implicit`, w moves with the updated u (symplectic Euler–Maruyama, weak order 1 like
    EM; at r = 1 it is momentum SGD's own update with Gaussian noise). The increment is then not
    linear in the control, which Diffrax's Euler never needs.
    The noise model computes -dC/dw dt + sqrt(g) L dW; for `GradientCovarianceNoise` that is one
    weighted VJP, so a step costs one full-batch gradient. The Brownian increment of step k is
    sqrt(dt) * normal(fold_in(key, k)) with k = round(t0 / dt): deterministic for a key, independent
    across steps, and exact in float32 and float64 alike. With `fine` = q > 1 it is instead the sum
    of the q increments of a q-times finer grid (indices k q ... k q + q - 1), so runs at different
    dt share ONE Brownian path (coupled levels, for weak-error estimates by paired differences).
    """

    flat: FlatModel
    noise: AbstractNoise
    key: PRNGKeyArray
    dt: Array
    n_brownian: int = eqx.field(static=True)
    second_order: bool = eqx.field(static=True)
    semi_implicit: bool = eqx.field(static=True, default=False)
    fine: int = eqx.field(static=True, default=1)

    def contr(self, t0, t1, **kwargs):
        index = jnp.round(t0 / self.dt).astype(jnp.int32)
        if self.fine == 1:
            z = jr.normal(jr.fold_in(self.key, index), (self.n_brownian,), self.dt.dtype)
        else:
            sub = jax.vmap(
                lambda j: jr.normal(
                    jr.fold_in(self.key, index * self.fine + j), (self.n_brownian,), self.dt.dtype
                )
            )(jnp.arange(self.fine, dtype=jnp.int32))
            z = jnp.sum(sub, axis=0) / np.sqrt(self.fine)
        h = t1 - t0
        return h, jnp.sqrt(h) * z

    def vf(self, t, y, args: SDEArgs):
        return _Increment(self, y, args)

    def prod(self, vf, control):
        return vf(control)


class _Increment(eqx.Module):
    """The vector field at y as a linear operator on the control (dt, dW)."""

    term: SGDNoiseTerm
    y: object
    args: SDEArgs

    def __call__(self, control):
        dt, dW = control
        args, term = self.args, self.term
        if term.second_order:
            w, u = self.y
            force = term.noise.increment(
                term.flat, w, args.x, args.labels, l2=args.l2, dt=dt, dW=dW, g=args.noise_scale
            )
            du = -args.friction * u * dt + force
            # Semi-implicit (symplectic) Euler moves w with the NEW u, as momentum SGD does.
            return ((u + du) if term.semi_implicit else u) * dt, du
        return term.noise.increment(
            term.flat, self.y, args.x, args.labels, l2=args.l2, dt=dt, dW=dW, g=args.noise_scale
        )


def run_sde(
    model: Model | Sequence[Model],
    data: Dataset,
    *,
    lr: float,
    batch_size: int,
    steps: int,
    key,
    n_seeds: int = 1,
    momentum: float = 0.0,
    l2: float = 0.0,
    refinement: int = 1,
    noise: AbstractNoise = GradientCovarianceNoise(),
    record_every: int | None = None,
    record_early: bool = False,
    backend: str = "diffrax",
    scheme: str = "semi-implicit",
    seed_batching: str = "auto",
    brownian_resolution: int | None = None,
    progress=None,
) -> Trajectory:
    """Euler–Maruyama integration of the SDE that SGD(lr, batch_size, momentum, l2) approximates.

    Plain (momentum = 0), with C(w) = sum_i l_i(w) + (lam/2)|w|^2 and F the per-example gradient
    covariance (1/(N-1) normaliser):
        dw = -dC/dw dt + sqrt(g) L dW,   L L^T = F,   g = eps (N/B - 1),
    one SGD step = eps/N of SDE time, integrated with dt = eps / (N r) (r = refinement).
    With momentum m > 0, the second-order SDE (h = sqrt(eps/N) of SDE time per SGD step):
        dw = u dt,   du = (-gamma u - dC/dw) dt + sqrt(g') L dW,
        gamma = (1 - m)/h,  g' = h N (N/B - 1),  dt = h / r,
    whose overdamped noise scale g'/gamma = eps (N/B - 1)/(1 - m) equals SGD's. u = -eps v / h, so u
    starts at 0 like SGD's velocity.

    steps counts SGD-equivalent steps: the SDE runs to the time of `steps` SGD steps, taking
    steps * r Euler–Maruyama steps. At r = 1 (plain) one EM step has exactly the first two moments
    of one SGD step. `noise`: `GradientCovarianceNoise()` (g F, the paper's) or `IsotropicNoise()`
    (same trace). scheme (second order only): "semi-implicit" (the default: w moves with the NEW u,
    as momentum SGD moves w with the new velocity; at r = 1 one step then has exactly the mean and
    covariance of a momentum-SGD step with Gaussian noise, and it is weak order 1 like EM) or
    "euler" (plain Euler–Maruyama: w moves with the old u, so at r = 1 its w lags SGD's by a step:
    zero covariance after one step from rest, and after four still 45-117% of sd_i sd_j away from
    SGD's (tested); on the net it needs r >= 4 to track SGD; kept for weak-order studies). Both are
    weak order 1 (docs/mathematics.md, "Semi-implicit and plain Euler schemes"). backend "diffrax"
    runs `diffrax.diffeqsolve`; "scan" the same step in a hand-written `lax.scan` (for cross-checks
    and benchmarks). seed_batching as in `run_sgd`. Brownian increments: step k of a run (k counted
    on its own grid of dt = unit / r) uses the normal draw of `fold_in(key_s, k)`. So runs at
    different r with the SAME key are neither independent nor
    coupled: step k of every level reuses one draw, over different time intervals (final w at r = 1
        and
    r = 2 correlate at ~0.7 on the linear model). Pass different keys for independent levels, or
    brownian_resolution R (a multiple of `refinement`) for coupled ones: each increment is then the
    sum of the R/r increments of the grid at refinement R, so runs at r = 1, 2, ..., R with one key
    follow the same Brownian path (paired differences for weak-error estimates). record_early as in
    `run_sgd`. Other arguments as `run_sgd`; a seed whose state turns non-finite stops there and is
    marked diverged."""
    lr = _checks.positive("lr", lr)
    momentum = _checks.momentum("momentum", momentum)
    l2 = _checks.non_negative("l2", l2)
    steps = _checks.integer("steps", steps)
    refinement = _checks.integer("refinement", refinement)
    if brownian_resolution is None:
        brownian_resolution = refinement
    brownian_resolution = _checks.integer("brownian_resolution", brownian_resolution)
    if brownian_resolution % refinement:
        raise _checks.InputError(
            f"brownian_resolution must be a multiple of refinement ({refinement}); "
            f"got {brownian_resolution}"
        )
    batch_size = _checks.batch_size(batch_size, data.n_train)
    record_every = _run.record_interval(record_every, steps)
    if backend not in ("diffrax", "scan"):
        raise _checks.InputError(f"backend must be 'diffrax' or 'scan' (got {backend!r})")
    if scheme not in ("euler", "semi-implicit"):
        raise _checks.InputError(f"scheme must be 'euler' or 'semi-implicit' (got {scheme!r})")
    if not isinstance(noise, AbstractNoise):
        raise _checks.InputError("noise must be GradientCovarianceNoise() or IsotropicNoise()")
    if data.n_train < 2:
        raise _checks.InputError("data: the SDE needs at least 2 training examples")
    flat, w0, keys = _run.prepare(model, data, key, n_seeds)
    n = data.n_train
    second_order = momentum > 0
    if second_order:
        unit = np.sqrt(lr / n)
        g, gamma = unit * n * (n / batch_size - 1), (1 - momentum) / unit
    else:
        unit, g, gamma = lr / n, lr * (n / batch_size - 1), 0.0
    hyper = SDEHyper(
        l2=_run.hyper(l2, w0),
        noise_scale=_run.hyper(g, w0),
        friction=_run.hyper(gamma, w0),
        dt=_run.hyper(unit / refinement, w0),
    )
    mode = _run.seed_mode(seed_batching, w0.shape[-1])
    with _run.progress_to(progress):
        params, div, records, record_steps = _sde_compiled(
            flat,
            noise,
            w0,
            keys,
            data,
            hyper,
            steps=steps,
            record_every=record_every,
            early=record_early,
            refinement=refinement,
            second_order=second_order,
            semi_implicit=scheme == "semi-implicit",
            backend=backend,
            mode=mode,
            fine=brownian_resolution // refinement,
        )
    config = dict(
        lr=lr,
        batch_size=batch_size,
        steps=steps,
        momentum=momentum,
        l2=l2,
        n_train=n,
        n_seeds=w0.shape[0],
        record_every=record_every,
        refinement=refinement,
        noise=type(noise).__name__,
        backend=backend,
        brownian_resolution=brownian_resolution,
        scheme=scheme if second_order else "euler",
        noise_scale=lr * (n / batch_size - 1) / (1 - momentum),
    )
    return _run.to_trajectory("sde", flat, records, record_steps, unit, params, div, config)


def _not_finite(t, y, args, **kwargs):
    return jnp.logical_not(
        jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(y)]))
    )


@eqx.filter_jit
def _sde_compiled(
    flat,
    noise,
    w0,
    keys,
    data,
    hyper: SDEHyper,
    *,
    steps,
    record_every,
    early,
    refinement,
    second_order,
    semi_implicit,
    backend,
    mode,
    fine,
):
    dt = hyper.dt
    n_brownian = noise.brownian_dim(data.n_train, w0.shape[-1])
    args = SDEArgs(
        x=data.x_train,
        labels=data.y_train,
        l2=hyper.l2,
        noise_scale=hyper.noise_scale,
        friction=hyper.friction,
    )

    def one_seed(state, key, start, length):
        y, div = state
        term = SGDNoiseTerm(flat, noise, key, dt, n_brownian, second_order, semi_implicit, fine)
        n_sub = length * refinement
        ts = (start * refinement + jnp.arange(n_sub + 1, dtype=jnp.int32)).astype(dt.dtype) * dt
        if backend == "diffrax":
            sol = dfx.diffeqsolve(
                term,
                dfx.Euler(),
                ts[0],
                ts[-1],
                None,
                y,
                args,
                stepsize_controller=dfx.StepTo(ts),
                saveat=dfx.SaveAt(t1=True),
                event=dfx.Event(_not_finite),
                adjoint=dfx.ForwardMode(),
                max_steps=n_sub,
                throw=False,
            )
            y_new = jax.tree.map(lambda a: a[-1], sol.ys)
            n_done = jnp.asarray(sol.stats["num_steps"], jnp.int32)
        else:

            def em_step(y, k):
                control = term.contr(ts[k], ts[k + 1])
                return jax.tree.map(jnp.add, y, term.vf_prod(ts[k], y, args, control)), None

            y_new, _ = jax.lax.scan(em_step, y, jnp.arange(n_sub, dtype=jnp.int32))
            n_done = n_sub
        w_new = y_new[0] if second_order else y_new
        candidate = start + (n_done + refinement - 1) // refinement
        take, div = _run.freeze_diverged(w_new, div, candidate)
        y = jax.tree.map(lambda new, old: jnp.where(take, new, old), y_new, y)
        return y, div

    def advance(state, start, length):
        return _run.over_seeds(lambda s, k: one_seed(s, k, start, length), mode)(state, keys)

    def measure(state):
        y, div = state
        w = y[0] if second_order else y
        return _run.nan_if_diverged(_run.over_seeds(lambda v: flat.metrics(v, data), mode)(w), div)

    y0 = (w0, jnp.zeros_like(w0)) if second_order else w0
    div0 = jnp.full((w0.shape[0],), -1, jnp.int32)
    (y, div), records, record_steps = _run.scan_records(
        advance, measure, (y0, div0), steps=steps, record_every=record_every, early=early
    )
    return (y[0] if second_order else y), div, records, record_steps
