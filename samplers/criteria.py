"""Criteria: how per-domain validation losses become one trial value (lower is better).

The seed used the unweighted mean log-perplexity. Averaging lets the optimiser trade one
domain off against another; ``max`` (the worst domain) is the robust alternative.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from optuna_mix.samplers.registry import Registry



@dataclass(frozen=True)
class Criterion:
    """One criterion, on numpy arrays and on torch tensors, (..., k) -> (...).

    Calling it applies the numpy form (trial values, the mixing laws); ``torch`` is the same
    function on tensors, differentiable, for the GP's Monte-Carlo objective over the joint
    posterior of the per-domain losses (tensor methods only, so no torch import here).
    """

    name: str
    summary: str
    numpy: Callable[[np.ndarray], np.ndarray]
    torch: Callable[[Any], Any]

    def __call__(self, losses: np.ndarray) -> np.ndarray:
        return self.numpy(losses)


CRITERIA: Registry[Criterion] = Registry(
    "criterion",
    [
        Criterion("mean", "the unweighted mean (the seed's mean log-perplexity)",
                  lambda losses: np.mean(losses, axis=-1), lambda Y: Y.mean(dim=-1)),
        Criterion("max", "the worst domain: no domain is traded off for the others",
                  lambda losses: np.max(losses, axis=-1), lambda Y: Y.amax(dim=-1)),
        Criterion("median", "the median domain",
                  lambda losses: np.median(losses, axis=-1),
                  lambda Y: Y.quantile(0.5, dim=-1)),  # interpolated, as numpy's median
    ],
)
register_criterion = CRITERIA.add
criterion_fn = CRITERIA.lookup  # the criterion ``name``, vectorised over the last axis


def apply_criterion(name: str, losses: Mapping[str, float] | np.ndarray) -> float:
    """The trial value of ``losses`` (domain -> loss, or an array) under criterion ``name``."""
    fn = criterion_fn(name)
    values = np.asarray(list(losses.values()) if isinstance(losses, Mapping) else losses, float)
    if values.size == 0:
        raise ValueError("no per-domain losses to combine")
    value = float(fn(values))
    if not math.isfinite(value):
        raise ValueError(f"criterion {name!r} of the losses is not finite: {value}")
    return value


def detect_criterion(
    losses: np.ndarray, values: np.ndarray, *, rtol: float = 1e-6, atol: float = 1e-9
) -> str | None:
    """The criterion that gives every value from its row of ``losses`` (n, k), or None.

    How samplers that model per-domain losses learn what the study's values are.
    """
    losses, values = np.asarray(losses, float), np.asarray(values, float)
    if losses.ndim != 2 or len(losses) != len(values) or len(values) == 0:
        return None
    for name, fn in CRITERIA.items():
        if np.allclose(fn(losses), values, rtol=rtol, atol=atol):
            return name
    return None
