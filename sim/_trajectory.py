"""What a run returns: recorded metrics per seed, final parameters, divergence."""

import dataclasses

import numpy as np

from ._flat import METRICS, FlatModel


@dataclasses.dataclass(frozen=True)
class Trajectory:
    """Metrics recorded along SGD or its SDE, for every seed.

    steps: (R,) SGD-equivalent step of each record (0 = the initialisation).
    time: (S, R) SDE time of each record per run (steps * eps/N, or steps * sqrt(eps/N) with
        momentum).
    train_loss, test_accuracy, test_xent: (S, R); NaN after a seed diverged.
    params: (S, p) final flat parameters (SDE: the last finite ones of a diverged seed; SGD:
        whatever they became, typically NaN).
    diverged_step: (S,) the SGD-equivalent step at which the parameters became non-finite; -1 if
        never.
    diagnostics: the model's own diagnostics at the same records (`Model.diagnostic_names`, e.g. the
        fraction of dead ReLU units), name -> (S, R); empty for a model without any.
    """

    kind: str
    steps: np.ndarray
    time: np.ndarray
    train_loss: np.ndarray
    test_accuracy: np.ndarray
    test_xent: np.ndarray
    params: np.ndarray
    diverged_step: np.ndarray
    config: dict
    flat: FlatModel = dataclasses.field(repr=False)
    diagnostics: dict = dataclasses.field(default_factory=dict)

    @property
    def n_seeds(self) -> int:
        return self.params.shape[0]

    @property
    def diverged(self) -> np.ndarray:
        return self.diverged_step >= 0

    @property
    def metric_names(self) -> tuple[str, ...]:
        """METRICS, then the model's diagnostics."""
        return METRICS + tuple(self.diagnostics)

    def metric(self, name: str) -> np.ndarray:
        if name in self.diagnostics:
            return self.diagnostics[name]
        if name not in METRICS:
            raise KeyError(f"unknown metric {name!r} (choose from {', '.join(self.metric_names)})")
        return getattr(self, name)

    def finals(self, s: int) -> dict:
        """Seed s's final value of every metric and diagnostic (NaN after divergence)."""
        return {name: float(self.metric(name)[s, -1]) for name in self.metric_names}

    def summary(self, name: str) -> tuple[float, float, int]:
        """(mean, standard error, number of finite seeds) of a metric's final value over seeds."""
        final = self.metric(name)[:, -1]
        final = final[~self.diverged & np.isfinite(final)]
        if final.size == 0:
            return float("nan"), float("nan"), 0
        se = final.std(ddof=1) / np.sqrt(final.size) if final.size > 1 else float("nan")
        return float(final.mean()), float(se), int(final.size)

    def model(self, seed: int = 0):
        """The trained model of one seed, rebuilt as an Equinox module."""
        import jax.numpy as jnp

        return self.flat.model(jnp.asarray(self.params[seed]))
