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
    """E[(x - mean)(x - mean)^T] from samples with a KNOWN mean, and the standard error of each
    entry (std of the products / sqrt(n): valid for any distribution with finite fourth moments)."""
    c = samples - mean
    prods = c[:, :, None] * c[:, None, :]
    n = samples.shape[0]
    return prods.mean(axis=0), prods.std(axis=0, ddof=1) / np.sqrt(n)


def newton_logistic(x, y, lam, *, bias=True, iters=50):
    """Minimum of C = sum_i [softplus(z_i) - y_i z_i] + lam/2 |w|^2 by Newton's method (numpy), and
    the dense Hessian there: X^T diag(p(1-p)) X + lam I (X with a column of ones when there is a
    bias)."""
    xb = np.concatenate([x, np.ones((x.shape[0], 1))], axis=1) if bias else x
    w = np.zeros(xb.shape[1])
    for _ in range(iters):
        prob = 1 / (1 + np.exp(-(xb @ w)))
        grad = xb.T @ (prob - y) + lam * w
        hess = xb.T @ (xb * (prob * (1 - prob))[:, None]) + lam * np.eye(xb.shape[1])
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-13:
            break
    prob = 1 / (1 + np.exp(-(xb @ w)))
    hess = xb.T @ (xb * (prob * (1 - prob))[:, None]) + lam * np.eye(xb.shape[1])
    z = xb @ w
    cost = np.sum(np.logaddexp(0, z) - y * z) + 0.5 * lam * w @ w
    return w, hess, cost
