"""Minimising a function over the probability simplex with the equality constraint held exactly."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
from scipy.optimize import minimize

from optuna_mix.samplers._simplex import project_to_simplex


def minimize_on_simplex(
    fun: Callable[[np.ndarray], float],
    starts: np.ndarray,
    *,
    maxiter: int = 200,
) -> tuple[np.ndarray, float]:
    """Multi-start SLSQP on {w >= 0, sum w = 1}; returns the best point found and its value.

    Bounds keep faces and edges reachable (optimal mixtures often zero a domain); every result
    is projected back onto the simplex before it is scored, so the constraint holds exactly.
    """
    starts = np.atleast_2d(starts)
    k = starts.shape[1]
    constraint = {"type": "eq", "fun": lambda w: np.sum(w) - 1.0, "jac": lambda w: np.ones(k)}
    best_w, best_value = project_to_simplex(starts[0]), float(fun(project_to_simplex(starts[0])))
    for start in starts:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            result = minimize(
                fun,
                project_to_simplex(start),
                method="SLSQP",
                bounds=[(0.0, 1.0)] * k,
                constraints=[constraint],
                options={"maxiter": maxiter, "ftol": 1e-12},
            )
        w = project_to_simplex(result.x)
        value = float(fun(w))
        if np.isfinite(value) and value < best_value:
            best_w, best_value = w, value
    return best_w, best_value
