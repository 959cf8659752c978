"""Landscapes C(w) = sum_i l_i(w) + (lam/2)|w|^2: Equinox models and the data they are fitted to."""

from ._base import Constant as Constant
from ._base import Model as Model
from ._base import trainable_filter as trainable_filter
from ._data import INPUTS as INPUTS
from ._data import MNIST_ENV as MNIST_ENV
from ._data import DataError as DataError
from ._data import Dataset as Dataset
from ._data import MnistPool as MnistPool
from ._data import binary_task as binary_task
from ._data import BINARY_SPLITS as BINARY_SPLITS
from ._data import embedded_mnist as embedded_mnist
from ._data import escape_problem as escape_problem
from ._data import load_mnist as load_mnist
from ._data import multiclass_task as multiclass_task
from ._data import quadratic_problem as quadratic_problem
from ._data import read_idx as read_idx
from ._models import LogisticRegression as LogisticRegression
from ._models import Quadratic as Quadratic
from ._models import ACTIVATIONS as ACTIVATIONS
from ._models import INITS as INITS
from ._models import ShallowNet as ShallowNet
from ._models import TwoWells as TwoWells
from ._models import two_wells_profile as two_wells_profile
