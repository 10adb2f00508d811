"""Criteria: how per-domain validation losses become one trial value (lower is better).

The seed used the unweighted mean log-perplexity. Averaging lets the optimiser trade one
domain off against another; ``max`` (the worst domain) is the robust alternative.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np

# each maps an (..., k) array of per-domain losses to an (...) array of values
CRITERIA: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "mean": lambda losses: np.mean(losses, axis=-1),
    "max": lambda losses: np.max(losses, axis=-1),
    "median": lambda losses: np.median(losses, axis=-1),
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
