"""Sweep throughput and the small-batch step against its floor, measured in one run. Not a test.

    python benchmarks/sweep.py [--steps 4000] [--out benchmarks/sweep.json]

1. Seed-steps per second of a Fig-5-like grid at small B (784-800-10 net, N = 1000, eps in {0.05,
   0.1}, B in {2, 4, ..., 64} (Fig 5's paper grid below 128), 2 seeds; six chunks, one per B):
   in-process (1 worker), one worker process pinned to one core, 2 local worker processes (pinned,
   one core each, and unpinned, each seeing every core), and a local Ray instance with 2 CPUs. Each
   in a fresh folder, compile included (what a sweep pays), after one warm-up run that fills the
   persistent compilation cache (which the workers share).
2. One seed-step of momentum SGD at B = 1, 10, 30 against the floor of its update: the bare momentum
   update of the same 636,010 parameters in a jitted scan (memory traffic only), and at B = 30 the
   floor plus the step's matmul FLOPs at the machine's matmul peak.
Ratios are what to read: absolute times depend on the machine (say which in the README).
"""

import argparse
import dataclasses
import json
import os
import pathlib
import platform
import tempfile
import time

import jax
import jax.numpy as jnp
import jax.random as jr

import models
import sim
from experiments.paper import batch_size
from experiments.runner import workers
from experiments.runner.cli import _enable_compilation_cache
from experiments.runner.sweep import run_sweep

FIG5 = {e.name: e for e in batch_size.EXPERIMENTS}["fig5"]


def sweep_throughput(steps: int) -> dict:
    cfg = dataclasses.replace(
        FIG5.presets["quick"],
        lrs=(0.05, 0.1),
        batch_sizes=(2, 4, 8, 16, 32, 64),
        steps=steps,
        budget_lr=0.0,
        seeds=2,
    )
    points = batch_size.grid(cfg)
    seed_steps = sum(p["steps"] for p in points) * cfg.seeds
    out = {}
    cache = _enable_compilation_cache()
    executors = {
        "1 worker (in-process)": lambda: workers.Serial(),
        "1 worker process on one core": lambda: workers.LocalWorkers(
            1, cache_dir=cache, cores_per_worker=1
        ),
        "2 local workers": lambda: workers.LocalWorkers(2, cache_dir=cache),
        "2 local workers, unpinned (--no-pin)": lambda: workers.LocalWorkers(
            2, cache_dir=cache, cores_per_worker=0
        ),
        "Ray local, 2 CPUs": lambda: workers.RayWorkers(None, num_cpus=2, cache_dir=cache),
    }
    for label, make in [("warm-up", executors["1 worker (in-process)"])] + list(executors.items()):
        try:
            make()
        except Exception as err:  # Ray not installed
            out[label] = f"not run: {err}"
            continue
        # The in-process worker's XLA uses every core (matmuls of the metrics, compilation); one
        # worker process pinned to one core is the baseline against which two pinned workers measure
        # parallel efficiency (both pay the same process start-up).
        with tempfile.TemporaryDirectory() as folder:
            t = time.perf_counter()
            run_sweep(
                "fig5",
                pathlib.Path(folder),
                points,
                seeds=list(range(cfg.seeds)),
                evaluate=FIG5.evaluate,
                shape=FIG5.shape,
                chunk_size=FIG5.chunk_size,
                executor=make(),
            )
            seconds = time.perf_counter() - t
        if label != "warm-up":
            out[label] = dict(seconds=seconds, seed_steps_per_s=seed_steps / seconds)
    base = out["1 worker (in-process)"]["seed_steps_per_s"]
    one_core = out["1 worker process on one core"]["seed_steps_per_s"]
    for label, value in out.items():
        if isinstance(value, dict):
            value["speedup"] = value["seed_steps_per_s"] / base
            value["speedup_over_one_core"] = value["seed_steps_per_s"] / one_core
    return dict(
        grid=dict(
            lrs=cfg.lrs,
            batch_sizes=cfg.batch_sizes,
            steps=steps,
            seeds=cfg.seeds,
            seed_steps=seed_steps,
        ),
        results=out,
    )


def best_of(fn, repeat=3):
    fn()
    return min(_timed(fn) for _ in range(repeat))


def _timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def step_floor(steps: int) -> dict:
    data = models.multiclass_task()
    net = models.ShallowNet(key=jr.key(0))
    p = sum(x.size for x in jax.tree.leaves(net))

    @jax.jit
    def bare(w, v, g):
        def body(state, _):
            w, v = state
            v = 0.9 * v + g
            return (w - 0.1 * v, v), None

        return jax.lax.scan(body, (w, v), None, length=steps)[0]

    w = jnp.zeros(p, jnp.float32)
    floor = best_of(lambda: jax.block_until_ready(bare(w, w, w))) / steps
    n = 2048
    a = jr.normal(jr.key(0), (n, n), jnp.float32)
    mm = jax.jit(lambda a: a @ a)
    peak = 2 * n**3 / best_of(lambda: mm(a).block_until_ready())
    out = dict(parameters=p, floor_ms=1e3 * floor, matmul_peak_gflops=peak / 1e9, per_batch={})
    for b in (1, 10, 30):

        def run():
            return sim.run_sgd(
                net,
                data,
                lr=0.1,
                batch_size=b,
                momentum=0.9,
                steps=steps,
                key=jr.key(1),
                record_every=steps,
            )

        per_step = best_of(run) / steps
        flops = b * (4 * (784 * 800 + 800 * 10) + 2 * 800 * 10)
        out["per_batch"][b] = dict(
            ms=1e3 * per_step,
            over_floor=per_step / floor,
            over_floor_plus_flops=per_step / (floor + flops / peak),
        )
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--out", default="benchmarks/sweep.json")
    args = parser.parse_args()
    result = dict(
        machine=dict(
            cpus=os.cpu_count(),
            processor=platform.processor() or platform.machine(),
            backend=jax.default_backend(),
        ),
        sweep=sweep_throughput(args.steps),
        step=step_floor(2000),
    )
    pathlib.Path(args.out).write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
