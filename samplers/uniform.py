"""The uniform mixture: every domain gets 1/k. The seed's "Uniform (20% each)" baseline."""

from __future__ import annotations

import numpy as np
from optuna.study import Study
from optuna.trial import FrozenTrial

from optuna_mix.samplers._base import MixtureSampler
from optuna_mix.samplers._simplex import Mixture


class UniformMixtureSampler(MixtureSampler):
    """Proposes 1/k for every domain of every mixture; other parameters go to ``Random``.

    Evaluated n times it measures the objective's run-to-run noise at the uniform mixture.
    """

    def propose_mixture(self, study: Study, trial: FrozenTrial, mixture: Mixture) -> np.ndarray:
        return np.full(mixture.k, 1.0 / mixture.k)
