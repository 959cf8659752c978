"""Tests run in float64 with strict dtype promotion: closed forms are compared at tight tolerances,
and any silent float32/float64 mix in the library is an error."""

import jax

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")


# The files whose tests take longest start first, so that on two pytest workers (`-n auto --dist
# loadfile`, pyproject.toml) the last file to finish is a short one. Every worker sorts the same
# collection the same way, as pytest-xdist requires.
_LONGEST_FILES = ("test_experiments.py", "test_runner.py")


def pytest_collection_modifyitems(config, items):
    def rank(item):
        name = item.path.name
        return _LONGEST_FILES.index(name) if name in _LONGEST_FILES else len(_LONGEST_FILES)

    items.sort(key=rank)  # stable: the order within a file is kept
