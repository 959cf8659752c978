"""Each hyperparameter reaches its own term of the compiled update: a few steps of SGD, SVAG and the
SDE against their closed forms, at values chosen so that any two of them swapped moves the result by
far more than rounding (checked here, so a pass cannot be luck). Also: the record steps and progress
calls of both record loops (SGD's traced one, the SDE's static one), from one description.

The landscape is `models.Quadratic`: grad l_i(w) = A w / N + c_i with sum_i c_i = 0, so every update
is a closed form in numpy. float64 throughout (tests/conftest.py): the closed forms agree to
rounding."""

import itertools

import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

import models
import sim

N, B = 10, 4
A = np.diag([3.0, 7.0])
W0 = np.array([1.3, -0.7])
# eps, m, lam: 2, 3, 5 over 10 and 100; every permutation of them is a different update (tested).
LR, MOMENTUM, L2 = 0.02, 0.3, 0.5
# Float64 on both sides, a handful of operations on O(1) numbers: ~1e-16 relative rounding, so 1e-12
# has 1e4 ulps of room; a swapped pair moves w by > 1e-4 relative (asserted in each test).
RTOL = 1e-12
SWAP_GAP = 1e-4


def _problem():
    noise = np.array([[2.0, 0.5], [0.5, 1.0]])
    return models.quadratic_problem(A, noise, n_train=N, w0=jnp.asarray(W0))


def _grad(w, c, idx):
    """Mean gradient of the batch idx: A w / N + mean_{i in idx} c_i."""
    return A @ w / N + c[idx].mean(axis=0)


def _momentum_sgd(w, schedule, c, lr, momentum, l2):
    """The paper's update, v <- m v + g + lam w / N, w <- w - eps v, from v = 0."""
    v = np.zeros_like(w)
    for idx in schedule:
        v = momentum * v + _grad(w, c, idx) + l2 * w / N
        w = w - lr * v
    return w


def _assert_swaps_detected(closed_form, values, truth):
    """Every permutation of `values` other than the identity moves the closed form by > SWAP_GAP."""
    for perm in itertools.permutations(range(len(values))):
        if perm != tuple(range(len(values))):
            other = closed_form(*(values[k] for k in perm))
            assert np.abs(other - truth).max() > SWAP_GAP * np.abs(truth).max(), perm


def test_sgd_update_uses_each_hyperparameter_in_its_place():
    """Two momentum-SGD steps on an explicit schedule (two, so that m enters: v_1 = g_0 + lam w_0 /
    N does not involve m) equal v <- m v + g + lam w / N, w <- w - eps v in numpy."""
    model, data = _problem()
    c = np.asarray(data.x_train)
    schedule = np.array([[0, 3, 5, 8], [1, 2, 6, 9]])
    truth = _momentum_sgd(W0, schedule, c, LR, MOMENTUM, L2)
    _assert_swaps_detected(lambda *h: _momentum_sgd(W0, schedule, c, *h), (LR, MOMENTUM, L2), truth)
    traj = sim.run_sgd(
        model,
        data,
        lr=LR,
        momentum=MOMENTUM,
        l2=L2,
        batch_size=B,
        steps=2,
        key=jr.key(0),
        schedule=schedule,
    )
    np.testing.assert_allclose(traj.params[0], truth, rtol=RTOL)
    step_w, _, _ = sim.sgd_step(
        sim.FlatModel.split(model)[0],
        jnp.asarray(W0),
        jnp.zeros(2),
        data.x_train[schedule[0]],
        data.y_train[schedule[0]],
        lr=LR,
        momentum=MOMENTUM,
        l2=L2,
        n_train=N,
    )
    np.testing.assert_allclose(
        step_w, _momentum_sgd(W0, schedule[:1], c, LR, MOMENTUM, L2), rtol=RTOL
    )


def test_per_run_hyperparameters_stay_with_their_run():
    """lr, momentum and l2 given per run: run k gets the k-th value of each (no run's value crosses
    to another run or another field)."""
    model, data = _problem()
    c = np.asarray(data.x_train)
    schedule = np.array([[0, 3, 5, 8], [1, 2, 6, 9]])
    runs = [(0.02, 0.3, 0.5), (0.07, 0.11, 0.13), (0.05, 0.7, 0.0)]
    lrs, moms, l2s = (list(v) for v in zip(*runs))
    traj = sim.run_sgd(
        model,
        data,
        lr=lrs,
        momentum=moms,
        l2=l2s,
        batch_size=B,
        steps=2,
        key=jr.key(0),
        schedule=schedule,
    )
    for k, hyper in enumerate(runs):
        np.testing.assert_allclose(
            traj.params[k], _momentum_sgd(W0, schedule, c, *hyper), rtol=RTOL
        )


@pytest.mark.parametrize("momentum", [0.0, MOMENTUM])
def test_svag_update_uses_each_coefficient_in_its_place(momentum):
    """SVAG at l = 3 for one SGD-equivalent step (three SVAG steps): gradient c1 g(b1) + c2 g(b2),
    then momentum SGD at SVAG's eps' = eps/l (m = 0) or eps/l^2 and m' = 1 - (1 - m)/l (m > 0). The
    batches are rebuilt from the documented draws: b1 = distinct_batch(fold_in(key_s, t)),
    b2 = distinct_batch(fold_in(fold_in(key_s, t), 1)), key_s = split(key, S)[s]. Swapping c1 and
    c2, or any two of (eps', m', lam), moves w by more than SWAP_GAP (checked)."""
    model, data = _problem()
    c = np.asarray(data.x_train)
    ell, key = 3, jr.key(4)
    key_s = jr.split(key, 1)[0]
    b1 = [np.asarray(sim.distinct_batch(jr.fold_in(key_s, t), N, B)) for t in range(ell)]
    b2 = [
        np.asarray(sim.distinct_batch(jr.fold_in(jr.fold_in(key_s, t), 1), N, B))
        for t in range(ell)
    ]
    c1, c2 = sim.svag_coefficients(ell)
    if momentum > 0:
        lr_l, m_l = LR / ell**2, 1 - (1 - momentum) / ell
    else:
        lr_l, m_l = LR / ell, 0.0

    def closed_form(lr, m, l2, c1, c2):
        w, v = W0.copy(), np.zeros(2)
        for t in range(ell):
            v = m * v + c1 * _grad(w, c, b1[t]) + c2 * _grad(w, c, b2[t]) + l2 * w / N
            w = w - lr * v
        return w

    values = (lr_l, m_l, L2, c1, c2)
    truth = closed_form(*values)
    _assert_swaps_detected(lambda c1, c2: closed_form(lr_l, m_l, L2, c1, c2), (c1, c2), truth)
    if momentum > 0:
        _assert_swaps_detected(lambda *h: closed_form(*h, c1, c2), (lr_l, m_l, L2), truth)
    traj = sim.run_svag(
        model, data, lr=LR, momentum=momentum, l2=L2, batch_size=B, steps=1, l=ell, key=key
    )
    np.testing.assert_allclose(traj.params[0], truth, rtol=RTOL)
    assert traj.config["svag_lr"] == lr_l and traj.config["svag_momentum"] == m_l


def _brownian(key_s, k, dt):
    """dW of Euler–Maruyama step k at r = 1 (SGDNoiseTerm.contr): sqrt(dt) normal(fold_in(key_s, k),
    N)."""
    return np.sqrt(dt) * np.asarray(jr.normal(jr.fold_in(key_s, k), (N,), jnp.float64))


def _force(w, c, dW, dt, l2, g):
    """The exact-noise increment -dC/dw dt + sqrt(g) L dW on the quadratic
    (GradientCovarianceNoise): -dt A w - lam w dt + sqrt(g / (N - 1)) sum_i (dW_i - mean dW) c_i
        (sum_i c_i = 0)."""
    return -dt * A @ w - l2 * w * dt + np.sqrt(g / (N - 1)) * ((dW - dW.mean()) @ c)


@pytest.mark.parametrize("backend", ["diffrax", "scan"])
def test_sde_step_uses_each_coefficient_in_its_place(backend):
    """Two semi-implicit Euler–Maruyama steps of the second-order SDE at r = 1 (two, so that the
    friction enters: u starts at 0), and one step of the first-order SDE, against the closed forms
    with h = sqrt(eps/N), gamma = (1 - m)/h, g' = h N (N/B - 1) (second order) and dt = eps/N,
    g = eps (N/B - 1) (first order). The increments are rebuilt from the documented draws. Swapping
    any two of (lam, g, gamma) moves w by more than SWAP_GAP (checked). Tolerance: the SDE's step is
    t1 - t0 of its time grid, equal to dt within rounding, so 1e-10 relative (still 1e6 below a
    swap)."""
    model, data = _problem()
    c = np.asarray(data.x_train)
    key = jr.key(7)
    key_s = jr.split(key, 1)[0]
    h = np.sqrt(LR / N)
    gamma, g = (1 - MOMENTUM) / h, h * N * (N / B - 1)

    def second_order(l2, g, gamma):
        w, u = W0.copy(), np.zeros(2)
        for k in range(2):
            u = u + (-gamma * u * h + _force(w, c, _brownian(key_s, k, h), h, l2, g))
            w = w + u * h
        return w

    truth = second_order(L2, g, gamma)
    _assert_swaps_detected(second_order, (L2, g, gamma), truth)
    traj = sim.run_sde(
        model,
        data,
        lr=LR,
        momentum=MOMENTUM,
        l2=L2,
        batch_size=B,
        steps=2,
        key=key,
        backend=backend,
    )
    np.testing.assert_allclose(traj.params[0], truth, rtol=1e-10)

    dt, g1 = LR / N, LR * (N / B - 1)

    def first_order(l2, g):
        return W0 + _force(W0, c, _brownian(key_s, 0, dt), dt, l2, g)

    truth = first_order(L2, g1)
    _assert_swaps_detected(first_order, (L2, g1), truth)
    traj = sim.run_sde(model, data, lr=LR, l2=L2, batch_size=B, steps=1, key=key, backend=backend)
    np.testing.assert_allclose(traj.params[0], truth, rtol=1e-10)


def _expected_record_steps(steps, record_every, early):
    """Written out independently: 0, the early steps 1, 2, 4, ... below min(record_every, steps)
    when a regular record exists, the multiples of record_every up to steps, and steps itself."""
    out = {0, steps, *range(record_every, steps + 1, record_every)}
    if early and steps >= record_every:
        out |= {2**j for j in range(64) if 2**j < record_every}
    return sorted(out)


@pytest.mark.parametrize(
    "steps, record_every, early",
    [(7, 3, False), (7, 3, True), (20, 8, True), (5, 9, True), (4, 1, True)],
)
def test_both_record_loops_record_the_same_steps(steps, record_every, early):
    """SGD's loop (traced lengths) and the SDE's (static lengths) record at the same steps, the ones
    `run_sgd` documents (including record_every = 1 with early records, where there are none)."""
    model, data = _problem()
    kw = dict(
        lr=LR,
        batch_size=B,
        steps=steps,
        key=jr.key(0),
        record_every=record_every,
        record_early=early,
    )
    expected = _expected_record_steps(steps, record_every, early)
    for run in (sim.run_sgd, sim.run_sde, sim.run_svag):
        traj = run(model, data, **kw)
        np.testing.assert_array_equal(traj.steps, expected, err_msg=run.__name__)
        assert traj.train_loss.shape == (1, len(expected))


@pytest.mark.parametrize("run", [sim.run_sgd, sim.run_sde])
def test_progress_is_called_after_each_twentieth_of_an_interval(run):
    """The documented progress: after each twentieth of every record interval, not once per record.
    40 steps recorded every 20: 20 calls per interval, one per step here (each twentieth is a step),
    ending at the run's length."""
    model, data = _problem()
    calls = []
    run(
        model,
        data,
        lr=LR,
        batch_size=B,
        steps=40,
        key=jr.key(0),
        record_every=20,
        progress=calls.append,
    )
    assert calls == list(range(1, 41))
