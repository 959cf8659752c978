"""How seeds run side by side never changes a number, and new hyperparameter values never recompile:
seeds mapped one after another (what "auto" picks on CPU for the net, so what the main job runs)
equal seeds vmapped, an ensemble of identical models equals one model broadcast, for SGD and for the
SDE (both schemes, both noise models)."""

import contextlib

import jax.random as jr
import numpy as np
import pytest
from jax import monitoring

import models
import sim


def _tiny_mlp_problem():
    data = models.Dataset(
        jr.normal(jr.key(1), (16, 5)),
        jr.randint(jr.key(2), (16,), 0, 3),
        jr.normal(jr.key(3), (8, 5)),
        jr.randint(jr.key(4), (8,), 0, 3),
        3,
    )
    return models.ShallowNet(5, 7, 3, key=jr.key(0)), data


# vmap and map run the same float64 operations, batched or not: XLA may order a reduction
# differently, which moves results by a few ulps per step; after 20 steps 1e-10 relative is ~1e5
# ulps of room, while any real difference (another batch, another increment) is O(1).
RTOL = 1e-10


def _same(a, b):
    np.testing.assert_allclose(a.params, b.params, rtol=RTOL, atol=1e-13)
    np.testing.assert_allclose(a.test_xent, b.test_xent, rtol=RTOL)
    np.testing.assert_array_equal(a.diverged_step, b.diverged_step)


def test_sgd_map_equals_vmap_and_an_ensemble_equals_one_model():
    model, data = _tiny_mlp_problem()
    kw = dict(lr=0.3, batch_size=5, steps=20, key=jr.key(3), momentum=0.7, l2=0.1, record_every=7)
    mapped = sim.run_sgd(model, data, n_seeds=3, seed_batching="map", **kw)
    vmapped = sim.run_sgd(model, data, n_seeds=3, seed_batching="vmap", **kw)
    ensemble = sim.run_sgd([model] * 3, data, seed_batching="map", **kw)
    _same(mapped, vmapped)
    _same(mapped, ensemble)
    assert np.abs(mapped.params[0] - mapped.params[1]).max() > 1e-3  # the seeds do differ


def _sde_case(noise, momentum, scheme, slow=False):
    name = "F" if isinstance(noise, sim.GradientCovarianceNoise) else "isotropic"
    return pytest.param(
        noise,
        momentum,
        scheme,
        id=f"{name}-{momentum}-{scheme}",
        marks=[pytest.mark.slow] if slow else [],
    )


F_NOISE, ISOTROPIC = sim.GradientCovarianceNoise(), sim.IsotropicNoise()


# Each case compiles three loops (~5 s each on 2 cores). The two run by default cover each noise,
# each scheme, and m = 0 and m > 0 (the main job's F-shaped semi-implicit SDE among them); the slow
# set (`pytest -m slow`, run by CI) completes the cross product.
@pytest.mark.parametrize(
    "noise, momentum, scheme",
    [
        _sde_case(F_NOISE, 0.8, "semi-implicit"),
        _sde_case(ISOTROPIC, 0.0, "euler"),
        _sde_case(F_NOISE, 0.0, "euler", slow=True),
        _sde_case(F_NOISE, 0.8, "euler", slow=True),
        _sde_case(ISOTROPIC, 0.8, "euler", slow=True),
        _sde_case(ISOTROPIC, 0.8, "semi-implicit", slow=True),
    ],
)
def test_sde_map_equals_vmap_and_an_ensemble_equals_one_model(noise, momentum, scheme):
    model, data = _tiny_mlp_problem()
    kw = dict(
        lr=0.3,
        batch_size=5,
        steps=15,
        key=jr.key(4),
        momentum=momentum,
        l2=0.1,
        record_every=5,
        refinement=2,
        scheme=scheme,
        noise=noise,
    )
    mapped = sim.run_sde(model, data, n_seeds=3, seed_batching="map", **kw)
    vmapped = sim.run_sde(model, data, n_seeds=3, seed_batching="vmap", **kw)
    ensemble = sim.run_sde([model] * 3, data, seed_batching="vmap", **kw)
    _same(mapped, vmapped)
    _same(vmapped, ensemble)
    assert np.abs(mapped.params[0] - mapped.params[1]).max() > 1e-3


@contextlib.contextmanager
def _count_compiles():
    """XLA compilations (backend compiles) while the block runs, from JAX's own monitoring
    events."""
    compiles = []

    def listen(event, start, end, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            compiles.append(event)

    monitoring.register_event_time_span_listener(listen)
    try:
        yield compiles
    finally:
        monitoring.unregister_event_time_span_listener(listen)


@pytest.mark.parametrize("backend", ["diffrax", "scan"])
def test_sde_never_recompiles_for_new_hyperparameters(backend):
    """lr (hence g, gamma and dt), momentum within the second-order SDE, L2 and the key are traced
    arrays: once compiled, runs with new values compile nothing (counted from XLA compile events; a
    static lr or g would compile once per value, i.e. 2 here)."""
    model, data = _tiny_mlp_problem()
    kw = dict(batch_size=5, steps=6, n_seeds=2, record_every=3, backend=backend)
    sim.run_sde(model, data, lr=0.1, momentum=0.5, l2=0.0, key=jr.key(0), **kw)
    with _count_compiles() as compiles:
        for lr, m, lam, seed in [(0.2, 0.9, 0.1, 1), (0.05, 0.3, 1.0, 2)]:
            sim.run_sde(model, data, lr=lr, momentum=m, l2=lam, key=jr.key(seed), **kw)
    assert compiles == []
    with _count_compiles() as compiles:  # the counter does see a compile: a new number of steps
        sim.run_sde(model, data, lr=0.1, momentum=0.5, l2=0.0, key=jr.key(0), **{**kw, "steps": 9})
    assert len(compiles) >= 1


def test_sgd_never_recompiles_for_new_hyperparameters():
    model, data = _tiny_mlp_problem()
    kw = dict(batch_size=5, steps=6, n_seeds=2, record_every=3)
    sim.run_sgd(model, data, lr=0.1, momentum=0.0, l2=0.0, key=jr.key(0), **kw)
    with _count_compiles() as compiles:
        for lr, m, lam, seed in [(0.2, 0.9, 0.1, 1), (0.05, 0.3, 1.0, 2)]:
            sim.run_sgd(model, data, lr=lr, momentum=m, l2=lam, key=jr.key(seed), **kw)
    assert compiles == []


def test_sgd_new_budget_does_not_recompile():
    """The number of steps and the record interval are traced integers; only the record layout (how
    many records, whether a shorter last interval ends the run, the early records) is static. A
    budget of another length with the same layout compiles nothing (Fig 5's budgets proportional to
    1/eps share one loop per B); SVAG shares the mechanism. A new layout does compile (the counter
    sees it). And the run is cut-invariant: a 9-step run equals the first record (step 9) of a
    37-step run."""
    model, data = _tiny_mlp_problem()
    kw = dict(batch_size=5, n_seeds=2, lr=0.1, momentum=0.5, key=jr.key(0))
    sim.run_sgd(model, data, steps=6, record_every=6, **kw)
    sim.run_svag(model, data, steps=6, record_every=6, l=2, **kw)
    with _count_compiles() as compiles:
        for steps in (9, 40):
            sim.run_sgd(model, data, steps=steps, record_every=steps, **kw)
            sim.run_svag(model, data, steps=steps, record_every=steps, l=2, **kw)
        short = sim.run_sgd(model, data, steps=9, record_every=9, **kw)
    assert compiles == []
    with _count_compiles() as compiles:
        # 4 records and a tail: new layout
        long = sim.run_sgd(model, data, steps=37, record_every=9, **kw)
    assert len(compiles) >= 1
    np.testing.assert_array_equal(long.test_xent[:, 1], short.test_xent[:, 1])


@pytest.mark.parametrize("dynamics", ["sgd", "sde"])
def test_early_records_add_points_and_change_no_number(dynamics):
    """record_early: records at steps 1, 2, 4, ... below the first regular record, inside the
        compiled
    loop. The run itself is the same: final parameters and every regular record equal the run
    without them (float64, to round-off: the steps are the same operations, cut at other places)."""
    model, data = _tiny_mlp_problem()
    run = sim.run_sgd if dynamics == "sgd" else sim.run_sde
    kw = dict(
        lr=0.3, batch_size=5, steps=45, key=jr.key(7), n_seeds=2, momentum=0.5, record_every=20
    )
    plain = run(model, data, **kw)
    early = run(model, data, record_early=True, **kw)
    assert plain.steps.tolist() == [0, 20, 40, 45]
    assert early.steps.tolist() == [0, 1, 2, 4, 8, 16, 20, 40, 45]
    regular = [early.steps.tolist().index(s) for s in plain.steps]
    np.testing.assert_allclose(early.params, plain.params, rtol=RTOL, atol=1e-13)
    np.testing.assert_allclose(early.test_xent[:, regular], plain.test_xent, rtol=RTOL)
    assert np.all(np.diff(early.time, axis=1) > 0)
