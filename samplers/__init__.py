"""Optuna samplers for mixtures on the probability simplex, usable in any Optuna study.

Each proposes whole simplex points for the mixtures that ``optuna_mix.suggest_mixture``
declares and hands every other parameter to an independent sampler.
"""

from optuna_mix.samplers._base import MixtureSampler, SamplerFallbackWarning
from optuna_mix.samplers import attrs, criteria
from optuna_mix.samplers._optimize import minimize_on_simplex
from optuna_mix.samplers._scale import Scale, declare_scale, declared_scales
from optuna_mix.samplers._simplex import (
    WEIGHT_DISTRIBUTION,
    Mixture,
    cube_to_simplex,
    declare_mixture,
    declared_mixtures,
    normalise_weights,
    param_name,
    project_to_simplex,
    weights_dict,
)
from optuna_mix.samplers.fixed import FixedMixtureSampler
from optuna_mix.samplers._startup import sobol_simplex_points
from optuna_mix.samplers.sobol import SobolMixtureSampler
from optuna_mix.samplers.uniform import UniformMixtureSampler

# Samplers that need torch/BoTorch load on first use, so that the CLI and the light samplers
# start in a fraction of a second (PEP 562 module __getattr__).
_LAZY = {
    "SimplexGPSampler": "optuna_mix.samplers.gp",
    "Recommendation": "optuna_mix.samplers.gp",
    "MixingLawSampler": "optuna_mix.samplers.mixing_law",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)

__all__ = [
    "WEIGHT_DISTRIBUTION",
    "FixedMixtureSampler",
    "Mixture",
    "MixingLawSampler",
    "MixtureSampler",
    "Recommendation",
    "SamplerFallbackWarning",
    "Scale",
    "SimplexGPSampler",
    "SobolMixtureSampler",
    "UniformMixtureSampler",
    "attrs",
    "criteria",
    "cube_to_simplex",
    "declare_mixture",
    "declared_mixtures",
    "declare_scale",
    "declared_scales",
    "minimize_on_simplex",
    "normalise_weights",
    "param_name",
    "project_to_simplex",
    "sobol_simplex_points",
    "weights_dict",
]
