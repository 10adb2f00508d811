"""A given mixture, e.g. LLaMA's reported weights or a corpus's natural proportions."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from optuna.samplers import BaseSampler
from optuna.study import Study
from optuna.trial import FrozenTrial

from optuna_mix.samplers._base import MixtureSampler
from optuna_mix.samplers._simplex import Mixture

SUM_TOLERANCE = 1e-6


def validate_weights(weights: Mapping[str, float]) -> dict[str, float]:
    """Check a user's mixture: numbers, none negative, summing to 1 within 1e-6."""
    if not isinstance(weights, Mapping) or not weights:
        raise ValueError("fixed mixture weights must be a non-empty table of domain = weight")
    clean: dict[str, float] = {}
    for domain, value in weights.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"weight of domain {domain!r} is not a number: {value!r}")
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"weight of domain {domain!r} is negative or not finite: {value}")
        clean[str(domain)] = float(value)
    total = sum(clean.values())
    if abs(total - 1.0) > SUM_TOLERANCE:
        raise ValueError(f"fixed mixture weights sum to {total:.9g}, not 1 (within 1e-6)")
    return clean


class FixedMixtureSampler(MixtureSampler):
    """Always proposes ``weights`` (domain -> weight) for every mixture of the study.

    Domains the mixture has but ``weights`` omits get 0; a domain in ``weights`` that the
    mixture does not have is an error, named in the message.
    """

    def __init__(
        self,
        weights: Mapping[str, float],
        *,
        seed: int | None = None,
        independent_sampler: BaseSampler | None = None,
    ) -> None:
        super().__init__(seed=seed, independent_sampler=independent_sampler)
        self.weights = validate_weights(weights)

    def propose_mixture(self, study: Study, trial: FrozenTrial, mixture: Mixture) -> np.ndarray:
        unknown = sorted(set(self.weights) - set(mixture.domains))
        if unknown:
            raise ValueError(
                f"fixed mixture names unknown domain(s) {unknown}; "
                f"mixture {mixture.name!r} has {list(mixture.domains)}"
            )
        return np.array([self.weights.get(d, 0.0) for d in mixture.domains])
