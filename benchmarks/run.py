"""Speed, as ratios of contenders timed in turn. Not a test: nothing here fails on a time.

    python benchmarks/run.py [--repeats 7] [--evidence-repeats 2] [--steps 1000] [--sde-steps 100]
                             [--only sgd,sde,landscape,evidence] [--json benchmarks/run.json]

Each group below runs every contender once (compile and first run: reported apart), then times
them in turn, A B C A B C ..., for `--repeats` rounds. Every ratio is formed within one round, so
a load that comes and goes on the cores moves both of its sides; each quantity is reported as the
median over the rounds and its range (min-max over the rounds); the JSON keeps every round.

1. SGD on the 784-800-10 ReLU net, N = 1000, B = 30 and 128: our jitted lax.scan (`sim.run_sgd`,
   one seed; the metrics it measures at the start and the end timed alone and subtracted) against
   a plain PyTorch loop of the same net, batch, data and update (CPU; torch is a benchmark
   dependency only: pip install -e ".[bench]"), against the bare momentum update of the same
   636,010 parameters (memory traffic only), and against that floor plus the step's matmul FLOPs
   at the machine's float32 matmul peak (2048^3 matmuls, timed in the same rounds).
2. One SDE step (fused drift + noise as one weighted VJP, inside diffrax.diffeqsolve) against one
   full-batch value_and_grad (N = 1000), and against the same step in a hand-written lax.scan.
3. The runner's landscape measurement, `landscape(model, data, key=...)` (top Hessian eigenvalue
   by 20 Lanczos steps, trace by 20 Hutchinson probes, |w|^2), at the net after 500 SGD steps: in
   full-batch gradient evaluations and against 10,000 SGD updates at B = 30 (1,000 timed, times
   ten); its two parts and one Hessian-vector product alone. Then, in rounds of their own
   (`--evidence-repeats`), landscape(..., evidence=True): the SLQ log evidence on top.
`--only` runs some of the groups (sgd, sde, landscape, evidence) and keeps the JSON's others.
"""

import argparse
import importlib
import json
import os
import pathlib
import platform
import sys
import time

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np

import models
import sim

MATMUL_N = 2048
MATMULS = 5  # per round
GRADIENTS = 20  # full-batch gradients per round in the landscape's rounds
HVPS = 20
SGD_UPDATES = 10_000  # reported: SGD_TIMED updates timed, scaled up
SGD_TIMED = 1_000
# Where the runner's landscape measurement lives (experiments/runner is being reorganised).
LANDSCAPE_MODULES = ("experiments.runner.tasks", "experiments.runner.common")


def timed(fn) -> float:
    t = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - t


def interleaved(contenders: dict, repeats: int):
    """Seconds of each contender's first call (compile included), then of `repeats` rounds in which
    every contender runs once, in turn."""
    first = {name: timed(fn) for name, fn in contenders.items()}
    rounds = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, fn in contenders.items():
            rounds[name].append(timed(fn))
    return first, {name: np.asarray(t) for name, t in rounds.items()}


def spread(values) -> dict:
    v = np.asarray(values, dtype=float)
    if not np.all(np.isfinite(v)):
        return dict(median=float("nan"), min=float("nan"), max=float("nan"), rounds=v.tolist())
    return dict(
        median=float(np.median(v)), min=float(v.min()), max=float(v.max()), rounds=v.tolist()
    )


def sgd_flops(batch, sizes=(784, 800, 10)):
    """Matmul FLOPs of forward + backward of the MLP on a batch: 2 B W forward, 2 B W for the weight
    gradients, and 2 B W for input gradients of every layer but the first (the data needs none)."""
    layers = [a * b for a, b in zip(sizes[:-1], sizes[1:])]
    return batch * (4 * sum(layers) + 2 * sum(layers[1:]))


def matmul_block():
    """MATMULS float32 matmuls of MATMUL_N^3, one after the other; and their FLOPs."""
    a = jr.normal(jr.key(0), (MATMUL_N, MATMUL_N), jnp.float32)
    mm = jax.jit(lambda a: a @ a)

    def run():
        for _ in range(MATMULS):
            mm(a).block_until_ready()

    return run, MATMULS * 2 * MATMUL_N**3


def bare_update(p, steps):
    """`steps` momentum updates of p parameters in a jitted scan: the memory traffic of a step."""

    @jax.jit
    def bare(w, v, g):
        def body(state, _):
            w, v = state
            v = 0.9 * v + g
            return (w - 0.1 * v, v), None

        return jax.lax.scan(body, (w, v), None, length=steps)[0]

    w = jnp.zeros(p, jnp.float32)
    return lambda: bare(w, w, w)


def gradient_block(flat, w, data, count):
    """`count` full-batch value_and_grad evaluations of the summed loss, each at the last one's
    output (a step of 1e-6), so that none can be skipped."""

    @jax.jit
    def gradients(w):
        def body(w, _):
            loss, grad = jax.value_and_grad(
                lambda v: jnp.sum(flat.losses(v, data.x_train, data.y_train))
            )(w)
            return w - 1e-6 * grad, loss

        return jax.lax.scan(body, w, None, length=count)[0]

    return lambda: gradients(w)


def torch_loop(data, batch, steps, lr=0.1, momentum=0.9):
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(784, 800), torch.nn.ReLU(), torch.nn.Linear(800, 10))
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum, dampening=0)
    x = torch.as_tensor(np.array(data.x_train))
    y = torch.as_tensor(np.array(data.y_train)).long()
    n = x.shape[0]
    loss_fn = torch.nn.CrossEntropyLoss()

    def run():
        for _ in range(steps):
            idx = torch.randperm(n)[:batch]
            opt.zero_grad(set_to_none=True)
            loss_fn(net(x[idx]), y[idx]).backward()
            opt.step()

    return run


def jax_sgd(net, data, batch, steps):
    return lambda: sim.run_sgd(
        net,
        data,
        lr=0.1,
        momentum=0.9,
        batch_size=batch,
        steps=steps,
        key=jr.key(1),
        record_every=steps,
    )


def metrics_twice(flat, w, data):
    """What run_sgd and run_sde measure besides the steps: the metrics at the start and the end."""
    metrics = jax.jit(flat.metrics)
    return lambda: (metrics(w, data), metrics(w, data))


def sgd_group(data, steps, repeats, batches=(30, 128)):
    net = models.ShallowNet(key=jr.key(0))
    flat, w = sim.FlatModel.split(net)
    matmuls, mm_flops = matmul_block()
    contenders = {
        "matmul": matmuls,
        "bare update": bare_update(w.shape[0], steps),
        "metrics": metrics_twice(flat, w, data),
    }
    try:
        import torch  # noqa: F401

        have_torch = True
    except ImportError:
        have_torch = False
    for b in batches:
        contenders[f"jax B={b}"] = jax_sgd(net, data, b, steps)
        if have_torch:
            contenders[f"torch B={b}"] = torch_loop(data, b, steps)
    first, t = interleaved(contenders, repeats)
    peak = mm_flops / t["matmul"]
    floor = t["bare update"] / steps
    out = dict(
        repeats=repeats,
        parameters=int(w.shape[0]),
        steps=steps,
        first_call_s=first,
        matmul_peak_gflops=spread(peak / 1e9),
        floor_ms=spread(floor * 1e3),
    )
    for b in batches:
        ours = (t[f"jax B={b}"] - t["metrics"]) / steps
        theirs = t[f"torch B={b}"] / steps if have_torch else np.full(repeats, np.nan)
        flops = sgd_flops(b)
        out[f"B{b}"] = dict(
            jax_ms=spread(ours * 1e3),
            torch_ms=spread(theirs * 1e3),
            speedup=spread(theirs / ours),
            gflops=spread(flops / ours / 1e9),
            peak_fraction=spread(flops / ours / peak),
            over_floor=spread(ours / floor),
            over_floor_plus_flops=spread(ours / (floor + flops / peak)),
        )
    return out


def sde_group(data, steps, repeats):
    net = models.ShallowNet(key=jr.key(0))
    flat, w = sim.FlatModel.split(net)
    matmuls, mm_flops = matmul_block()
    contenders = {
        "matmul": matmuls,
        "value_and_grad": gradient_block(flat, w, data, steps),
        "metrics": metrics_twice(flat, w, data),
    }
    for backend in ("diffrax", "scan"):
        contenders[backend] = lambda backend=backend: sim.run_sde(
            net,
            data,
            lr=0.1,
            batch_size=30,
            steps=steps,
            key=jr.key(1),
            record_every=steps,
            backend=backend,
        )
    first, t = interleaved(contenders, repeats)
    peak = mm_flops / t["matmul"]
    grad = t["value_and_grad"] / steps
    diffrax, scan = ((t[k] - t["metrics"]) / steps for k in ("diffrax", "scan"))
    return dict(
        repeats=repeats,
        steps=steps,
        first_call_s=first,
        value_and_grad_ms=spread(grad * 1e3),
        grad_peak_fraction=spread(sgd_flops(data.n_train) / grad / peak),
        diffrax_ms=spread(diffrax * 1e3),
        scan_ms=spread(scan * 1e3),
        diffrax_over_grad=spread(diffrax / grad),
        diffrax_over_scan=spread(diffrax / scan),
    )


def find_landscape():
    """The runner's landscape function and the module it was found in."""
    for name in LANDSCAPE_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if callable(getattr(module, "landscape", None)):
            return module.landscape, module
    raise ImportError(f"no landscape() in any of {LANDSCAPE_MODULES}")


def landscape_setup(data):
    """The runner's landscape function, its settings, the net after 500 SGD steps, and the
    contenders that both landscape groups time."""
    landscape, module = find_landscape()
    settings = dict(lanczos_steps=20, trace_probes=20, slq_probes=10, slq_steps=60)
    settings.update(getattr(module, "LANDSCAPE", {}))
    net = models.ShallowNet(key=jr.key(0))
    trained = sim.run_sgd(
        net, data, lr=0.1, momentum=0.9, batch_size=30, steps=500, key=jr.key(1), record_every=500
    ).model(0)
    flat, w = sim.FlatModel.split(trained)
    common = {
        "gradients": gradient_block(flat, w, data, GRADIENTS),
        "landscape": lambda: landscape(trained, data, key=jr.key(2)),
        "SGD": jax_sgd(net, data, 30, SGD_TIMED),
    }
    return landscape, module, settings, trained, flat, w, common


def landscape_group(data, repeats):
    landscape, module, settings, trained, flat, w, common = landscape_setup(data)

    @jax.jit
    def hvps(w):
        return jax.lax.fori_loop(
            0, HVPS, lambda i, v: 1e-3 * sim.hvp_mean(flat, w, v + 1.0, data), w
        )

    contenders = dict(
        common,
        hvps=lambda: hvps(w),
        lanczos=lambda: sim.hessian_top_eigenvalues(
            trained, data, key=jr.key(3), k=1, lanczos_steps=settings["lanczos_steps"]
        ),
        hutchinson=lambda: sim.hessian_trace(
            trained, data, key=jr.key(4), probes=settings["trace_probes"]
        ),
    )
    first, t = interleaved(contenders, repeats)
    grad = t["gradients"] / GRADIENTS
    sgd = t["SGD"] * SGD_UPDATES / SGD_TIMED
    out = dict(
        repeats=repeats,
        module=module.__name__,
        settings=settings,
        first_call_s=first,
        gradient_ms=spread(grad * 1e3),
        hvp_over_grad=spread(t["hvps"] / HVPS / grad),
        sgd_updates=SGD_UPDATES,
        sgd_updates_s=spread(sgd),
    )
    for k in ("lanczos", "hutchinson", "landscape"):
        out[k] = dict(s=spread(t[k]), gradients=spread(t[k] / grad), over_sgd=spread(t[k] / sgd))
    return out


def evidence_group(data, repeats):
    landscape, module, settings, trained, flat, w, common = landscape_setup(data)
    contenders = dict(
        common, evidence=lambda: landscape(trained, data, key=jr.key(2), evidence=True)
    )
    first, t = interleaved(contenders, repeats)
    grad = t["gradients"] / GRADIENTS
    sgd = t["SGD"] * SGD_UPDATES / SGD_TIMED
    extra = t["evidence"] - t["landscape"]
    return dict(
        repeats=repeats,
        module=module.__name__,
        settings=settings,
        first_call_s=first,
        gradient_ms=spread(grad * 1e3),
        sgd_updates_s=spread(sgd),
        s=spread(t["evidence"]),
        gradients=spread(t["evidence"] / grad),
        over_sgd=spread(t["evidence"] / sgd),
        evidence_s=spread(extra),
        evidence_gradients=spread(extra / grad),
        evidence_over_sgd=spread(extra / sgd),
    )


def table(rows):
    """The quantities to read, as (group, label, spread, digits, unit), for the groups present."""
    out = []
    if "sgd" in rows:
        sgd = rows["sgd"]
        out += [
            ("sgd", f"float32 matmul peak ({MATMUL_N}^3)", sgd["matmul_peak_gflops"], 0, "GFLOP/s"),
            (
                "sgd",
                f"bare momentum update, {sgd['parameters']:,} params",
                sgd["floor_ms"],
                4,
                "ms",
            ),
        ]
        for b in (30, 128):
            r = sgd[f"B{b}"]
            out += [
                ("sgd", f"SGD step B = {b}: ours", r["jax_ms"], 3, "ms"),
                ("sgd", f"SGD step B = {b}: plain PyTorch loop", r["torch_ms"], 3, "ms"),
                ("sgd", f"SGD B = {b}: PyTorch / ours", r["speedup"], 2, "x"),
                ("sgd", f"SGD B = {b}: fraction of the matmul peak", r["peak_fraction"], 2, ""),
                ("sgd", f"SGD B = {b}: ours / bare update", r["over_floor"], 2, "x"),
                (
                    "sgd",
                    f"SGD B = {b}: ours / (update + FLOPs at peak)",
                    r["over_floor_plus_flops"],
                    2,
                    "x",
                ),
            ]
    if "sde" in rows:
        sde = rows["sde"]
        out += [
            ("sde", "full-batch value_and_grad (N = 1000)", sde["value_and_grad_ms"], 2, "ms"),
            ("sde", "... fraction of the matmul peak", sde["grad_peak_fraction"], 2, ""),
            ("sde", "SDE step, diffrax", sde["diffrax_ms"], 2, "ms"),
            ("sde", "SDE step, hand-written scan", sde["scan_ms"], 2, "ms"),
            ("sde", "SDE step diffrax / value_and_grad", sde["diffrax_over_grad"], 3, "x"),
            ("sde", "SDE step diffrax / scan", sde["diffrax_over_scan"], 3, "x"),
        ]
    if "landscape" in rows:
        land = rows["landscape"]
        out += [
            ("landscape", "one full-batch gradient", land["gradient_ms"], 2, "ms"),
            ("landscape", "one HVP / one gradient", land["hvp_over_grad"], 2, "x"),
            ("landscape", f"{SGD_UPDATES:,} SGD updates, B = 30", land["sgd_updates_s"], 2, "s"),
        ]
        names = dict(
            lanczos=f"top eigenvalue, {land['settings']['lanczos_steps']} Lanczos steps",
            hutchinson=f"trace, {land['settings']['trace_probes']} Hutchinson probes",
            landscape="landscape(evidence=False)",
        )
        for k, label in names.items():
            out += [
                ("landscape", label, land[k]["s"], 2, "s"),
                ("landscape", f"{label} / one gradient", land[k]["gradients"], 0, "x"),
                ("landscape", f"{label} / the SGD updates", land[k]["over_sgd"], 3, "x"),
            ]
    if "evidence" in rows:
        r = rows["evidence"]
        out += [
            ("evidence", "one full-batch gradient", r["gradient_ms"], 2, "ms"),
            ("evidence", "landscape(evidence=True)", r["s"], 2, "s"),
            ("evidence", "... of which the evidence (SLQ)", r["evidence_s"], 2, "s"),
            ("evidence", "the evidence / one gradient", r["evidence_gradients"], 0, "x"),
            ("evidence", "the evidence / the SGD updates", r["evidence_over_sgd"], 3, "x"),
            ("evidence", "landscape(evidence=True) / one gradient", r["gradients"], 0, "x"),
        ]
    return out


def report(rows) -> str:
    lines = [
        f"{rows['device']}, {rows['cpus']} CPUs; median [min, max] over the interleaved rounds; "
        "compile excluded"
    ]
    group = None
    for name, label, s, digits, unit in table(rows):
        if name != group:
            group = name
            lines.append(
                f"-- {name}: {rows[name]['repeats']} rounds, load average "
                f"{rows[name]['load_average_1min']:.1f} at its start"
            )
        value = f"{s['median']:.{digits}f}"
        span = f"[{s['min']:.{digits}f}, {s['max']:.{digits}f}]"
        lines.append(f"{label:<50} {value:>9} {span:<20} {unit}")
    return "\n".join(lines)


GROUPS = ("sgd", "sde", "landscape", "evidence")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="interleaved rounds per group")
    parser.add_argument(
        "--evidence-repeats", type=int, default=2, help="rounds of landscape(evidence=True)"
    )
    parser.add_argument("--steps", type=int, default=1000, help="SGD steps per timed SGD run")
    parser.add_argument("--sde-steps", type=int, default=100)
    parser.add_argument(
        "--only",
        default=",".join(GROUPS),
        help="the groups to run, comma-separated (the JSON keeps the others' last results)",
    )
    parser.add_argument("--json", default=str(pathlib.Path(__file__).with_name("run.json")))
    args = parser.parse_args()
    only = [g for g in args.only.split(",") if g]
    if args.repeats < 1 or args.evidence_repeats < 1 or not set(only) <= set(GROUPS):
        parser.error(f"--repeats and --evidence-repeats must be >= 1, --only among {GROUPS}")
    start = time.perf_counter()
    data = models.multiclass_task(n_train=1000)
    rows = {}
    if args.json and set(only) != set(GROUPS) and pathlib.Path(args.json).exists():
        old = json.loads(pathlib.Path(args.json).read_text())
        rows = {k: v for k, v in old.items() if k in GROUPS}
    rows.update(
        device=str(jax.devices()[0]),
        cpus=os.cpu_count(),
        processor=platform.processor() or platform.machine(),
        jax=jax.__version__,
        spread="min-max over the rounds",
    )
    try:
        import torch

        rows["torch"] = torch.__version__
    except ImportError:
        rows["torch"] = None
    groups = dict(
        sgd=lambda: sgd_group(data, args.steps, args.repeats),
        sde=lambda: sde_group(data, args.sde_steps, args.repeats),
        landscape=lambda: landscape_group(data, args.repeats),
        evidence=lambda: evidence_group(data, args.evidence_repeats),
    )
    for name in GROUPS:
        if name in only:
            load, t = os.getloadavg()[0], time.perf_counter()
            rows[name] = dict(
                groups[name](), load_average_1min=load, wall_s=time.perf_counter() - t
            )
            print(
                f"[{time.perf_counter() - start:.0f} s] {name}: done", file=sys.stderr, flush=True
            )
    print(report(rows))
    print(f"{time.perf_counter() - start:.0f} s in all")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
