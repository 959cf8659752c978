"""Validation of user input: one clear line naming the parameter, raised as `InputError`."""

import math
import numbers


class InputError(ValueError):
    """Bad user input. The message is one line that names the parameter; the CLI exits with 2."""


def _number(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputError(f"{name} must be a number (got {value!r})")
    if not math.isfinite(value):
        raise InputError(f"{name} must be finite (got {value!r})")
    return value


def positive(name: str, value) -> float:
    if _number(name, value) <= 0:
        raise InputError(f"{name} must be > 0 (got {value!r})")
    return float(value)


def non_negative(name: str, value) -> float:
    if _number(name, value) < 0:
        raise InputError(f"{name} must be >= 0 (got {value!r})")
    return float(value)


def momentum(name: str, value) -> float:
    if not 0 <= _number(name, value) < 1:
        raise InputError(f"{name} must lie in [0, 1) (got {value!r})")
    return float(value)


def integer(name: str, value, *, low: int = 1, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InputError(f"{name} must be an integer (got {value!r})")
    if value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"between {low} and {high}"
        raise InputError(f"{name} must be {bound} (got {value!r})")
    return int(value)


def batch_size(value, n_train: int) -> int:
    return integer("batch_size", value, low=1, high=n_train)
