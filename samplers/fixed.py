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

# The seed's fixed baselines over its five domains (books, web, code, papers, social), as exact
# shares of the source numbers, so they sum to 1 to machine precision (the seed's 4-decimal
# roundings sum to 0.9999 and 1.0001, outside FixedMixtureSampler's 1e-6).
#
# LLaMA-1's reported sampling proportions (Touvron et al. 2023, Table 1), mapped as the seed did:
# Books 4.5% -> books, CommonCrawl 67% -> web, GitHub 4.5% + StackExchange 2% -> code,
# ArXiv 2.5% -> papers, plus Reddit at 10% for social (LLaMA has none; the seed added it);
# C4 and Wikipedia have no domain here and are dropped; renormalised over 90.5.
# Rounded: 0.0497, 0.7403, 0.0718, 0.0276, 0.1105.
LLAMA_WEIGHTS: dict[str, float] = {
    "books": 4.5 / 90.5,
    "web": 67.0 / 90.5,
    "code": 6.5 / 90.5,
    "papers": 2.5 / 90.5,
    "social": 10.0 / 90.5,
}
# Dolma's natural proportions over the same five sources: tokens (billions) of Dolma v1's
# Project Gutenberg 6.0 -> books, Common Crawl 2,281 -> web, The Stack 411 -> code,
# peS2o 70 -> papers, Reddit 89 -> social (Soldaini et al. 2024), over their sum 2,857.
# Rounded: 0.0021, 0.7984, 0.1439, 0.0245, 0.0312.
DOLMA_WEIGHTS: dict[str, float] = {
    "books": 6.0 / 2857.0,
    "web": 2281.0 / 2857.0,
    "code": 411.0 / 2857.0,
    "papers": 70.0 / 2857.0,
    "social": 89.0 / 2857.0,
}


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

    Args:
        weights: the mixture, domain -> weight, each >= 0, summing to 1 within 1e-6. Domains
            the mixture has but ``weights`` omits get 0; a domain in ``weights`` that the
            mixture does not have is an error, named in the message.
        seed: seed of the independent sampler.
        independent_sampler: sampler for parameters outside any mixture (default: Random).
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
