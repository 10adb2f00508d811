"""Criteria: how per-domain validation losses become one trial value (lower is better).

The seed used the unweighted mean log-perplexity. Averaging lets the optimiser trade one
domain off against another; ``max`` (the worst domain) is the robust alternative.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

# each maps an (..., k) array of per-domain losses to an (...) array of values
CRITERIA: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "mean": lambda losses: np.mean(losses, axis=-1),
    "max": lambda losses: np.max(losses, axis=-1),
    "median": lambda losses: np.median(losses, axis=-1),
}
# the same criteria on torch tensors (..., k) -> (...), for the GP's Monte-Carlo objective
# (differentiable; tensor methods only, so this module needs no torch import)
TORCH_CRITERIA: dict[str, Callable[[Any], Any]] = {
    "mean": lambda Y: Y.mean(dim=-1),
    "max": lambda Y: Y.amax(dim=-1),
    "median": lambda Y: Y.quantile(0.5, dim=-1),  # interpolated, as numpy's median
}


def criterion_fn(name: str) -> Callable[[np.ndarray], np.ndarray]:
    """The vectorised criterion ``name`` (over the last axis)."""
    try:
        return CRITERIA[name]
    except KeyError:
        raise ValueError(f"unknown criterion {name!r} (choose from {', '.join(CRITERIA)})") from None


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
