"""Analytic benchmark objectives: mixture -> per-domain losses with a known optimum.

They let samplers be compared in seconds instead of GPU-days. Both families are drawn from a
seed for any number of domains k:

- ``dml``, the Data Mixing Laws form (Ye et al. 2024): L_i = c_i + k_i * exp(sum_j t_ij w_j),
  with t_ii < 0 (own data helps) and mostly negative, sometimes positive, transfer t_ij.
- ``powerlaw``, power law with transfer: L_i = a_i + b_i * (eps + sum_j T_ij w_j)^(-alpha_i),
  with T_ii = 1 and sparse partial transfer 0 <= T_ij < 1 (the effective data of domain i).

``noise`` is the standard deviation of the *mean* criterion: each per-domain loss gets
independent Gaussian noise of sigma * sqrt(k), as a trial's run-to-run noise would show.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from optuna_mix.samplers.criteria import criterion_fn
from optuna_mix.samplers import minimize_on_simplex, sobol_simplex_points

POWERLAW_EPS = 0.02
_OPTIMA: dict[tuple[str, int, int, str], tuple[np.ndarray, float]] = {}


@dataclass(frozen=True)
class Surface:
    """A seeded analytic loss surface over ``domains``."""

    family: str
    domains: tuple[str, ...]
    params: dict[str, np.ndarray] = field(repr=False)
    noise: float = 0.0
    seed: int = 0

    @property
    def k(self) -> int:
        return len(self.domains)

    def losses(self, w: np.ndarray) -> np.ndarray:
        """Noise-free per-domain losses for weights of shape (..., k)."""
        w = np.asarray(w, dtype=float)
        p = self.params
        if self.family == "dml":
            return p["c"] + p["k"] * np.exp(w @ p["t"].T)
        effective = POWERLAW_EPS + w @ p["T"].T
        return p["a"] + p["b"] * effective ** (-p["alpha"])

    def noisy_losses(self, w: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        clean = self.losses(w)
        if self.noise <= 0:
            return clean
        return clean + rng.normal(0.0, self.noise * np.sqrt(self.k), size=clean.shape)

    def value(self, w: np.ndarray, criterion: str = "mean") -> np.ndarray | float:
        """The noise-free criterion of the losses at ``w`` (vectorised over leading axes)."""
        return criterion_fn(criterion)(self.losses(w))

    def optimum(self, criterion: str = "mean") -> tuple[np.ndarray, float]:
        """The minimiser on the simplex and its value (multi-start SLSQP, cached per process).

        A surface is fixed by (family, k, seed), so every study on it shares one solve.
        """
        key = (self.family, self.k, self.seed, criterion)
        if key not in _OPTIMA:
            _OPTIMA[key] = self._solve(criterion)
        w, v = _OPTIMA[key]
        return w.copy(), v

    def regret(self, w: np.ndarray, criterion: str = "mean") -> float:
        return float(self.value(w, criterion)) - self.optimum(criterion)[1]

    def _solve(self, criterion: str) -> tuple[np.ndarray, float]:
        candidates = sobol_simplex_points(self.k, 4096, seed=self.seed)
        values = self.value(candidates, criterion)
        order = np.argsort(values)[:16]
        starts = np.vstack([candidates[order], np.full(self.k, 1.0 / self.k)])
        return minimize_on_simplex(lambda x: float(self.value(x, criterion)), starts)


def make_surface(
    family: str, domains: int | list[str] | tuple[str, ...], *, seed: int = 0, noise: float = 0.0
) -> Surface:
    """Draw a surface of ``family`` ("dml" or "powerlaw") over ``domains`` (names or a count)."""
    names = tuple(f"d{i}" for i in range(domains)) if isinstance(domains, int) else tuple(domains)
    k = len(names)
    if k < 2:
        raise ValueError(f"a surface needs at least 2 domains, got {k}")
    rng = np.random.default_rng([seed, k, 0 if family == "dml" else 1])
    off = ~np.eye(k, dtype=bool)
    if family == "dml":
        t = np.where(
            rng.random((k, k)) < 0.7, -rng.uniform(0.0, 1.2, (k, k)), rng.uniform(0.0, 0.4, (k, k))
        )
        t[~off] = -rng.uniform(1.5, 3.5, k)
        params = {"c": rng.uniform(2.0, 3.5, k), "k": rng.uniform(0.6, 1.6, k), "t": t}
    elif family == "powerlaw":
        T = np.where(rng.random((k, k)) < 0.4, rng.uniform(0.05, 0.6, (k, k)), 0.0)
        T[~off] = 1.0
        params = {
            "a": rng.uniform(2.0, 3.5, k),
            "b": rng.uniform(0.2, 0.8, k),
            "alpha": rng.uniform(0.2, 0.6, k),
            "T": T,
        }
    else:
        raise ValueError(f"unknown surface family {family!r} (choose from dml, powerlaw)")
    return Surface(family, names, params, float(noise), seed)
