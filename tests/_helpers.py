"""Dense references shared by the tests (numpy only, independent of sim/)."""

import numpy as np


def logistic_per_example_grads(w, b, x, y):
    """Rows: gradient of l_i = softplus(z_i) - y_i z_i w.r.t. (weights, bias), z_i = x_i . w + b."""
    z = x @ w + b
    r = 1 / (1 + np.exp(-z)) - y
    return np.concatenate([r[:, None] * x, r[:, None]], axis=1)


def small_logistic(n=12, d=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    y = (rng.random(n) < 0.5).astype(np.int32)
    w = rng.normal(size=d) * 0.5
    b = 0.3
    return x, y, w, b


def second_moment_with_se(samples, mean):
    """E[(x - mean)(x - mean)^T] from samples with a KNOWN mean, and the standard error of each entry
    (std of the products / sqrt(n): valid for any distribution with finite fourth moments)."""
    c = samples - mean
    prods = c[:, :, None] * c[:, None, :]
    n = samples.shape[0]
    return prods.mean(axis=0), prods.std(axis=0, ddof=1) / np.sqrt(n)
