"""Analytic multi-scale surfaces: per-domain losses over (mixture, model size) whose best
mixture moves as the model grows, for benchmarks of scale-aware studies. Two families
(``family=``), of different shapes, so that no constant is tuned on one:

``transfer`` (the default):
``L_i(w, N) = a_i + b_i (N / N0)^(-beta_i) (eps + sum_j T_ij(N) w_j)^(-alpha_i)``, with

- ``beta_i``: how fast domain i's reducible loss falls with model size; domains whose loss
  falls fast matter less to a large model, so the optimum gives them less weight as N grows;
- ``T_ij(N) = min(1, T_ij (N / N0)^gamma_ij)`` for j != i (``T_ii = 1``): the share of domain
  j's data that counts as domain i's, growing with N for some pairs (a larger model
  transfers more across domains), shrinking for others.

``capacity``: a Chinchilla-like sum of a model term, a data term and an interference term,
``L_i(w, N) = a_i + b_i r^(-beta_i) + d_i (r (eps + sum_j T_ij w_j))^(-alpha_i)
+ c r^(-delta) H(w) / log k``, r = N / N0 (tokens proportional to parameters), H the
mixture's entropy: a small model pays for every domain it must fit (its capacity is shared),
so it prefers few domains; the price falls faster with size than the data term, so a large
model prefers a diverse mixture.

Neither is a nested data-mixing law of the kind the scale-aware GP's prior is, and the
cross-domain transfer changing with size is no law in the weights times a law in N at all.
``cost(N) = N^2`` (a Chinchilla-like budget: tokens proportional to parameters) is what a
trial at size N costs, in units where a trial at N0 costs 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from optuna_mix.criteria import Criterion, as_criterion, criterion_key
from optuna_mix.samplers import minimize_on_simplex, sobol_simplex_points

SCALED_EPS = 0.02
N0 = 25_000.0  # the reference size: the smallest CPU preset's non-embedding parameters
SCALED_FAMILIES = ("transfer", "capacity")
_OPTIMA: dict[tuple, tuple[np.ndarray, float]] = {}  # (surface, size, criterion) -> optimum


@dataclass(frozen=True)
class ScaledSurface:
    """A seeded multi-scale loss surface over ``domains``; sizes in parameters."""

    domains: tuple[str, ...]
    params: dict[str, np.ndarray] = field(repr=False)
    noise: float = 0.0
    seed: int = 0
    family: str = "transfer"

    @property
    def k(self) -> int:
        return len(self.domains)

    @property
    def outputs(self) -> tuple[str, ...]:
        return self.domains

    def losses(self, w: np.ndarray, size: float) -> np.ndarray:
        """Noise-free losses (..., k) for weights (..., k) at model size ``size``."""
        w = np.asarray(w, dtype=float)
        p, r = self.params, float(size) / N0
        if self.family == "capacity":
            share = SCALED_EPS + w @ p["T"].T
            with np.errstate(divide="ignore", invalid="ignore"):
                entropy = -np.sum(np.where(w > 0, w * np.log(w), 0.0), axis=-1)
            interference = p["c"] * r ** (-p["delta"]) * entropy / np.log(self.k)
            return (p["a"] + p["b"] * r ** (-p["beta"]) + p["d"] * (r * share) ** (-p["alpha"])
                    + interference[..., None])
        T = np.minimum(1.0, p["T"] * r ** p["gamma"])
        np.fill_diagonal(T, 1.0)
        return p["a"] + p["b"] * r ** (-p["beta"]) * (SCALED_EPS + w @ T.T) ** (-p["alpha"])

    def noisy_losses(self, w: np.ndarray, size: float, rng: np.random.Generator) -> np.ndarray:
        clean = self.losses(w, size)
        if self.noise <= 0:
            return clean
        return clean + rng.normal(0.0, self.noise * np.sqrt(self.k), size=clean.shape)

    def value(self, w: np.ndarray, size: float, criterion: str | Criterion = "mean") -> np.ndarray | float:
        """The noise-free criterion of the losses at ``w`` and ``size``."""
        return as_criterion(criterion)(self.losses(w, size))

    def optimum(self, size: float, criterion: str | Criterion = "mean") -> tuple[np.ndarray, float]:
        """The best mixture at ``size`` and its value (multi-start SLSQP, cached per process)."""
        key = (self.domains, self.seed, self.family, float(size), criterion_key(criterion))
        if key not in _OPTIMA:
            candidates = sobol_simplex_points(self.k, 4096, seed=self.seed)
            values = self.value(candidates, size, criterion)
            starts = np.vstack([candidates[np.argsort(values)[:16]],
                                np.full(self.k, 1.0 / self.k)])
            _OPTIMA[key] = minimize_on_simplex(
                lambda x: float(self.value(x, size, criterion)), starts)
        w, v = _OPTIMA[key]
        return w.copy(), v

    def regret(self, w: np.ndarray, size: float, criterion: str | Criterion = "mean") -> float:
        return float(self.value(w, size, criterion)) - self.optimum(size, criterion)[1]

    @staticmethod
    def cost(size: float) -> float:
        """A trial's compute at ``size``, relative to one at N0: params x tokens, tokens
        proportional to params."""
        return (float(size) / N0) ** 2


def make_scaled_surface(
    domains: int | Sequence[str], *, seed: int = 0, noise: float = 0.0,
    family: str = "transfer",
) -> ScaledSurface:
    """Draw a multi-scale surface of ``family`` over ``domains`` (names, or a count:
    ``d0 .. d{k-1}``)."""
    names = tuple(f"d{i}" for i in range(domains)) if isinstance(domains, int) else tuple(domains)
    k = len(names)
    if k < 2:
        raise ValueError(f"a surface needs at least 2 domains, got {k}")
    if family not in SCALED_FAMILIES:
        raise ValueError(f"unknown scaled surface family {family!r}; one of "
                         f"{', '.join(SCALED_FAMILIES)}")
    if family == "capacity":
        return ScaledSurface(names, _capacity_params(k, seed), float(noise), seed, family)
    rng = np.random.default_rng([seed, k, 101])
    off = ~np.eye(k, dtype=bool)
    T = np.where(rng.random((k, k)) < 0.5, rng.uniform(0.05, 0.5, (k, k)), 0.0)
    T[~off] = 1.0
    gamma = np.where(rng.random((k, k)) < 0.6, rng.uniform(0.1, 0.5, (k, k)),
                     -rng.uniform(0.0, 0.3, (k, k)))
    gamma[~off] = 0.0
    params = {
        "a": rng.uniform(2.0, 3.0, k),
        "b": rng.uniform(0.3, 0.9, k),
        "alpha": rng.uniform(0.2, 0.6, k),
        "beta": rng.uniform(0.05, 0.45, k),
        "T": T,
        "gamma": gamma,
    }
    return ScaledSurface(names, params, float(noise), seed)


def _capacity_params(k: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng([seed, k, 202])
    T = np.where(rng.random((k, k)) < 0.4, rng.uniform(0.05, 0.4, (k, k)), 0.0)
    np.fill_diagonal(T, 1.0)
    return {
        "a": rng.uniform(1.5, 2.5, k),
        "b": rng.uniform(0.2, 0.6, k),
        "d": rng.uniform(0.3, 0.8, k),
        "alpha": rng.uniform(0.15, 0.45, k),
        "beta": rng.uniform(0.2, 0.5, k),
        "T": T,
        "c": np.array(rng.uniform(0.08, 0.2)),
        "delta": np.array(rng.uniform(0.7, 1.1)),
    }
