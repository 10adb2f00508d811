"""Quasi-random search on the simplex: the shared start-up design for the whole budget."""

from __future__ import annotations

import numpy as np
from optuna.samplers import BaseSampler
from optuna.study import Study
from optuna.trial import FrozenTrial

from optuna_mix.samplers._base import MixtureSampler
from optuna_mix.samplers._simplex import Mixture
from optuna_mix.samplers._startup import sequence_seed, sobol_simplex_points, startup_point

__all__ = ["SobolMixtureSampler", "sobol_simplex_points"]  # the points' old home: re-exported


class SobolMixtureSampler(MixtureSampler):
    """Scrambled Sobol sequence on the simplex, indexed by trial number.

    Every worker computes point ``trial.number`` of the same seeded sequence, so many workers
    on one study share one low-discrepancy design without talking to each other. With
    ``seed=None`` a random seed is drawn once, when the sampler is built (each worker then has
    its own sequence: pass a seed for multi-worker studies).
    """

    def __init__(
        self, *, seed: int | None = None, independent_sampler: BaseSampler | None = None
    ) -> None:
        super().__init__(seed=seed, independent_sampler=independent_sampler)
        self._sequence_seed = sequence_seed(seed)

    def propose_mixture(self, study: Study, trial: FrozenTrial, mixture: Mixture) -> np.ndarray:
        return startup_point(mixture, trial.number, self._sequence_seed)

    def reseed_rng(self) -> None:
        # the sequence seed stays: reseeding would break the shared design across workers
        self._independent_sampler.reseed_rng()
