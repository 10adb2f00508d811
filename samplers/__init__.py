"""Optuna samplers for mixtures on the probability simplex, usable in any Optuna study.

Each proposes whole simplex points for the mixtures that ``optuna_mix.suggest_mixture``
declares and hands every other parameter to an independent sampler.
"""

from optuna_mix.samplers._base import MixtureSampler
from optuna_mix.samplers._simplex import (
    Mixture,
    cube_to_simplex,
    declare_mixture,
    declared_mixtures,
    normalise_weights,
)
from optuna_mix.samplers.fixed import FixedMixtureSampler
from optuna_mix.samplers.mixing_law import MixingLawSampler
from optuna_mix.samplers.sobol import SobolMixtureSampler, sobol_simplex_points
from optuna_mix.samplers.uniform import UniformMixtureSampler

__all__ = [
    "FixedMixtureSampler",
    "Mixture",
    "MixingLawSampler",
    "MixtureSampler",
    "SobolMixtureSampler",
    "UniformMixtureSampler",
    "cube_to_simplex",
    "declare_mixture",
    "declared_mixtures",
    "normalise_weights",
    "sobol_simplex_points",
]
