"""Dynamics on a landscape (SGD, its SDE, the noise scale) and measurements of the landscape.

The validators (`sim.checks`, `InputError`) are plain Python; every other name loads its module, and
with it JAX, on first use (PEP 562), so that `import sim` stays cheap for the command line."""

from importlib import import_module as _import_module

from . import _checks as checks  # noqa: F401  (public: the validators)
from ._checks import InputError as InputError

_LAZY = {  # name -> the private module that defines it
    "METRICS": "_flat",
    "FlatModel": "_flat",
    "AbstractNoise": "_noise",
    "GradientCovarianceNoise": "_noise",
    "IsotropicNoise": "_noise",
    "gradient_covariance_trace": "_noise",
    "Eigenvalues": "_lanczos",
    "Estimate": "_hessian",
    "Evidence": "_evidence",
    "CriticalBatchSize": "_critical_batch",
    "critical_batch_size": "_critical_batch",
    "hessian_top_eigenvalues": "_lanczos",
    "hessian_trace": "_hessian",
    "hvp_cost": "_hessian",
    "hvp_mean": "_hessian",
    "log_evidence": "_evidence",
    "minimize": "_minimize",
    "summary": "_summary",
    "noise_scale": "_noise_scale",
    "on_progress": "_run",
    "SGDNoiseTerm": "_sde",
    "run_sde": "_sde",
    "run_sgd": "_sgd",
    "run_svag": "_svag",
    "svag_coefficients": "_svag",
    "distinct_batch": "_sgd",
    "sgd_step": "_sgd",
    "Trajectory": "_trajectory",
    "BatchMoments": "_noise_shape",
    "NoiseDirections": "_noise_shape",
    "batch_noise_moments": "_noise_shape",
    "gradient_projections": "_noise_shape",
    "noise_top_directions": "_noise_shape",
}

__all__ = ["checks", "InputError", *_LAZY]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(_import_module(f"{__name__}.{_LAZY[name]}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
