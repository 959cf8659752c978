"""Dynamics on a landscape (SGD, its SDE, the noise scale) and measurements of the landscape."""

from . import _checks as checks  # noqa: F401  (public: the validators)
from ._checks import InputError as InputError
from ._flat import METRICS as METRICS
from ._flat import FlatModel as FlatModel
from ._noise import AbstractNoise as AbstractNoise
from ._noise import GradientCovarianceNoise as GradientCovarianceNoise
from ._noise import IsotropicNoise as IsotropicNoise
from ._noise import gradient_covariance_trace as gradient_covariance_trace
from ._lanczos import Eigenvalues as Eigenvalues
from ._hessian import Estimate as Estimate
from ._evidence import Evidence as Evidence
from ._critical_batch import CriticalBatchSize as CriticalBatchSize
from ._critical_batch import critical_batch_size as critical_batch_size
from ._lanczos import hessian_top_eigenvalues as hessian_top_eigenvalues
from ._hessian import hessian_trace as hessian_trace
from ._hessian import hvp_cost as hvp_cost
from ._hessian import hvp_mean as hvp_mean
from ._evidence import log_evidence as log_evidence
from ._minimize import minimize as minimize
from ._summary import summary as summary
from ._noise_scale import noise_scale as noise_scale
from ._run import on_progress as on_progress
from ._sde import SGDNoiseTerm as SGDNoiseTerm
from ._sde import run_sde as run_sde
from ._sgd import run_sgd as run_sgd
from ._svag import run_svag as run_svag
from ._svag import svag_coefficients as svag_coefficients
from ._sgd import distinct_batch as distinct_batch
from ._sgd import sgd_step as sgd_step
from ._trajectory import Trajectory as Trajectory
from ._noise_shape import BatchMoments as BatchMoments
from ._noise_shape import NoiseDirections as NoiseDirections
from ._noise_shape import batch_noise_moments as batch_noise_moments
from ._noise_shape import gradient_projections as gradient_projections
from ._noise_shape import noise_top_directions as noise_top_directions
