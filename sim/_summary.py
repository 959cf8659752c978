"""Every landscape measurement of a trained model in one call."""

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np

from models import Dataset, Model

from ._critical_batch import critical_batch_size
from ._evidence import log_evidence
from ._hessian import hessian_trace, split_model
from ._lanczos import hessian_top_eigenvalues


def summary(
    model: Model,
    data: Dataset,
    *,
    key,
    l2: float = 0.0,
    k: int = 1,
    probes: int = 30,
    lanczos_steps: int | None = None,
) -> dict:
    """One call for a trained model: accuracy and cross-entropy on train and test, top Hessian
    eigenvalue(s) (`Eigenvalues`, with error bounds) and trace (mean loss), Laplace log evidence
    ratio (when lam > 0), B_simple and B_noise; each entry a number or a result with its method and
    error."""
    flat, w = split_model(model, data)
    eig_key, trace_key, ev_key, noise_key = jr.split(key, 4)
    test = np.asarray(jax.jit(flat.metrics)(w, data))
    train_acc = float(jnp.mean(jax.vmap(flat.model(w).correct)(data.x_train, data.y_train)))
    top = hessian_top_eigenvalues(model, data, key=eig_key, k=k, lanczos_steps=lanczos_steps)
    out = {
        "train_accuracy": train_acc,
        "test_accuracy": float(test[1]),
        "train_xent": float(test[0]),
        "test_xent": float(test[2]),
        "top_eigenvalues": top,
        "hessian_trace": hessian_trace(model, data, key=trace_key, probes=probes),
        "critical_batch_size": critical_batch_size(model, data, key=noise_key, l2=l2),
    }
    if l2 > 0:
        out["evidence"] = log_evidence(model, data, l2=l2, key=ev_key)
    return out
