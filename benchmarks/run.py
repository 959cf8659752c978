"""Speed ratios measured in one run. Not a test: nothing here fails on a time.

    python benchmarks/run.py [--steps 2000] [--sde-steps 100]

1. SGD on the 784-800-10 net, N = 1000, B = 30 and 128: steps/s of our jitted lax.scan (one seed)
   against a plain PyTorch loop of the same net, batch, data and update (CPU; torch is a benchmark
   dependency only: pip install -e .[bench]).
2. One SDE step (fused drift + noise as one weighted VJP, inside diffrax.diffeqsolve) against one
   full-batch value_and_grad, and against the same step in a hand-written lax.scan.
3. The machine's float32 matmul peak (2048^3), and the FLOP rate each loop reaches against it.
Timings are the best of 3 warm repetitions (compile excluded), single seed, float32.
"""

import argparse
import json
import os
import time

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np

import models
import sim


def best_of(fn, repeat=3):
    fn()  # warm-up / compile
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def matmul_peak(n=2048):
    a = jr.normal(jr.key(0), (n, n), jnp.float32)
    f = jax.jit(lambda a: a @ a)
    seconds = best_of(lambda: f(a).block_until_ready(), repeat=5)
    return 2 * n**3 / seconds


def sgd_flops(batch, sizes=(784, 800, 10)):
    """Matmul FLOPs of forward + backward of the MLP on a batch: 2 B W forward, 2 B W for the weight
    gradients, and 2 B W for input gradients of every layer but the first (the data needs none)."""
    layers = [a * b for a, b in zip(sizes[:-1], sizes[1:])]
    return batch * (4 * sum(layers) + 2 * sum(layers[1:]))


def torch_loop(data, batch, steps, lr=0.1, momentum=0.9):
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(784, 800), torch.nn.ReLU(), torch.nn.Linear(800, 10))
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum, dampening=0)
    x = torch.as_tensor(np.array(data.x_train))
    y = torch.as_tensor(np.asarray(data.y_train)).long()
    n = x.shape[0]
    loss_fn = torch.nn.CrossEntropyLoss()

    def run():
        for _ in range(steps):
            idx = torch.randperm(n)[:batch]
            opt.zero_grad(set_to_none=True)
            loss_fn(net(x[idx]), y[idx]).backward()
            opt.step()

    return best_of(run) / steps


def jax_sgd(data, batch, steps):
    net = models.ShallowNet(key=jr.key(0))

    def run():
        return sim.run_sgd(
            net,
            data,
            lr=0.1,
            momentum=0.9,
            batch_size=batch,
            steps=steps,
            key=jr.key(1),
            record_every=steps,
        )

    # run_sgd measures the metrics twice (start, end): time them alone and subtract.
    flat, w = sim.FlatModel.split(net)
    metrics = jax.jit(flat.metrics)
    t_metrics = best_of(lambda: metrics(w, data).block_until_ready())
    return (best_of(run) - 2 * t_metrics) / steps


def sde_vs_gradient(data, steps):
    net = models.ShallowNet(key=jr.key(0))
    flat, w = sim.FlatModel.split(net)

    @jax.jit
    def gradients(w):
        def body(w, _):
            loss, grad = jax.value_and_grad(
                lambda v: jnp.sum(flat.losses(v, data.x_train, data.y_train))
            )(w)
            return w - 1e-6 * grad, loss

        return jax.lax.scan(body, w, None, length=steps)[0]

    t_grad = best_of(lambda: gradients(w).block_until_ready()) / steps
    metrics = jax.jit(flat.metrics)
    t_metrics = best_of(lambda: metrics(w, data).block_until_ready())
    out = {}
    for backend in ("diffrax", "scan"):

        def run():
            return sim.run_sde(
                net,
                data,
                lr=0.1,
                batch_size=30,
                steps=steps,
                key=jr.key(1),
                record_every=steps,
                backend=backend,
            )

        out[backend] = (best_of(run) - 2 * t_metrics) / steps
    return t_grad, out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--sde-steps", type=int, default=100)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    data = models.multiclass_task(n_train=1000)
    peak = matmul_peak()
    rows = {"device": str(jax.devices()[0]), "matmul_peak_gflops": peak / 1e9}
    print(f"device {rows['device']}; float32 matmul peak {peak / 1e9:.1f} GFLOP/s")
    for batch in (30, 128):
        ours = jax_sgd(data, batch, args.steps)
        try:
            theirs = torch_loop(data, batch, args.steps)
        except ImportError:
            theirs = float("nan")
        rows[f"sgd_B{batch}"] = dict(
            jax_ms=ours * 1e3,
            torch_ms=theirs * 1e3,
            speedup=theirs / ours,
            peak_fraction=sgd_flops(batch) / ours / peak,
        )
        print(
            f"SGD B={batch:<4} jax {ours * 1e3:7.3f} ms/step  torch {theirs * 1e3:7.3f} ms/step  "
            f"speed-up x{theirs / ours:.2f}  ({sgd_flops(batch) / ours / 1e9:.1f} GFLOP/s, "
            f"{100 * sgd_flops(batch) / ours / peak:.0f}% of peak)"
        )
    t_grad, sde = sde_vs_gradient(data, args.sde_steps)
    rows["sde"] = dict(
        value_and_grad_ms=t_grad * 1e3,
        diffrax_ms=sde["diffrax"] * 1e3,
        scan_ms=sde["scan"] * 1e3,
        diffrax_over_grad=sde["diffrax"] / t_grad,
        diffrax_over_scan=sde["diffrax"] / sde["scan"],
        grad_peak_fraction=sgd_flops(1000) / t_grad / peak,
    )
    print(
        f"full-batch value_and_grad {t_grad * 1e3:.2f} ms "
        f"({100 * sgd_flops(1000) / t_grad / peak:.0f}% of peak); "
        f"SDE step: diffrax {sde['diffrax'] * 1e3:.2f} ms (x{sde['diffrax'] / t_grad:.3f} of a "
        "gradient), "
        f"hand-written scan {sde['scan'] * 1e3:.2f} ms (diffrax/scan "
        f"x{sde['diffrax'] / sde['scan']:.3f})"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
