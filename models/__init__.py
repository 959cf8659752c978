"""Landscapes C(w) = sum_i l_i(w) + (lam/2)|w|^2: Equinox models and the data they are fitted to.

Reading MNIST (`load_mnist`, `DataError`, ...) needs numpy alone; every other name loads its module,
and with it JAX, on first use (PEP 562), so that `import models` stays cheap for the command
line."""

from importlib import import_module as _import_module

from ._mnist import BINARY_SPLITS as BINARY_SPLITS
from ._mnist import MNIST_ENV as MNIST_ENV
from ._mnist import DataError as DataError
from ._mnist import check_draw as check_draw
from ._mnist import MnistPool as MnistPool
from ._mnist import embedded_mnist as embedded_mnist
from ._mnist import load_mnist as load_mnist
from ._mnist import read_idx as read_idx

_LAZY = {  # name -> the private module that defines it
    "Constant": "_base",
    "Model": "_base",
    "trainable_filter": "_base",
    "INPUTS": "_data",
    "Dataset": "_data",
    "binary_task": "_data",
    "escape_problem": "_data",
    "multiclass_task": "_data",
    "quadratic_problem": "_data",
    "LogisticRegression": "_models",
    "Quadratic": "_models",
    "ACTIVATIONS": "_models",
    "INITS": "_models",
    "ShallowNet": "_models",
    "TwoWells": "_models",
    "two_wells_profile": "_models",
}

__all__ = [
    "BINARY_SPLITS",
    "MNIST_ENV",
    "DataError",
    "check_draw",
    "MnistPool",
    "embedded_mnist",
    "load_mnist",
    "read_idx",
    *_LAZY,
]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(_import_module(f"{__name__}.{_LAZY[name]}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
