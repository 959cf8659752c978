"""Landscape measurements on the 784-800-10 net at N = 1000. Not a test.

    python benchmarks/landscape.py

Reports wall time (compile included, and warm) of the top Hessian eigenvalue (Lanczos, 40 steps) and
the Hutchinson trace (30 probes), and Hessian-vector products per second against full-batch
gradients per second, in one run.
"""

import time

import jax
import jax.numpy as jnp
import jax.random as jr

import models
import sim


def timed(fn):
    t = time.perf_counter()
    out = fn()
    jax.block_until_ready(out)
    return out, time.perf_counter() - t


def main():
    data = models.multiclass_task(n_train=1000)
    net = models.ShallowNet(key=jr.key(0))
    trained = sim.run_sgd(
        net, data, lr=0.1, momentum=0.9, batch_size=30, steps=500, key=jr.key(1), record_every=500
    ).model(0)
    flat, w = sim.FlatModel.split(trained)
    reps = 20

    @jax.jit
    def grads(w):
        g = jax.grad(lambda u: jnp.sum(flat.losses(u, data.x_train, data.y_train)))
        return jax.lax.fori_loop(0, reps, lambda i, v: v + 1e-9 * g(w + v), jnp.zeros_like(w))

    @jax.jit
    def hvps(w):
        return jax.lax.fori_loop(
            0, reps, lambda i, v: 1e-3 * sim.hvp_mean(flat, w, v + 1.0, data), w
        )

    grads(w).block_until_ready()
    hvps(w).block_until_ready()
    _, t_grad = timed(lambda: grads(w))
    _, t_hvp = timed(lambda: hvps(w))
    print(
        f"full-batch gradients/s {reps / t_grad:.1f}, HVPs/s {reps / t_hvp:.1f} "
        f"(one HVP = {t_hvp / t_grad:.2f} gradients)"
    )
    for label in ("cold (compile included)", "warm"):
        top, t_top = timed(
            lambda: sim.hessian_top_eigenvalues(trained, data, key=jr.key(2), k=1, lanczos_steps=40)
        )
        tr, t_tr = timed(lambda: sim.hessian_trace(trained, data, key=jr.key(3), probes=30))
        print(
            f"{label}: top eigenvalue {top.values[0]:.4f} in {t_top:.1f} s ({top.steps_used} "
            "Lanczos steps); "
            f"trace {tr.value:.2f} ± {tr.error:.2f} in {t_tr:.1f} s (30 probes)"
        )


if __name__ == "__main__":
    main()
