"""The probability simplex: maps onto it and the mixture declarations samplers read.

A *mixture* is a group of Optuna float parameters ``f"{name}.{domain}"`` in [0, 1] whose
values are the weights of one point on the simplex. ``optuna_mix.suggest_mixture`` declares
each group in the study's system attrs before it suggests a single parameter, so that every
sampler on every worker can find the group from the storage, even on the very first trial.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, FloatDistribution

DECLARATION_PREFIX = "optuna_mix:mixture:"
PROPOSAL_PREFIX = "optuna_mix:proposal:"
WEIGHT_DISTRIBUTION = FloatDistribution(0.0, 1.0)


@dataclass(frozen=True)
class Mixture:
    """One declared mixture: its name and its domains, in order."""

    name: str
    domains: tuple[str, ...]

    @property
    def param_names(self) -> list[str]:
        return [param_name(self.name, d) for d in self.domains]

    @property
    def k(self) -> int:
        return len(self.domains)


def param_name(name: str, domain: str) -> str:
    return f"{name}.{domain}"


def declare_mixture(study: optuna.Study, name: str, domains: Sequence[str]) -> Mixture:
    """Record the mixture ``name`` over ``domains`` in the study's storage (idempotent).

    One system attr per mixture, so concurrent workers never race on a shared dict.
    """
    domains = tuple(domains)
    key = DECLARATION_PREFIX + name
    existing = study._storage.get_study_system_attrs(study._study_id).get(key)
    if existing is None:
        study._storage.set_study_system_attr(study._study_id, key, list(domains))
    elif tuple(existing) != domains:
        raise ValueError(
            f"mixture {name!r} is declared in this study over {list(existing)}, "
            f"not {list(domains)}"
        )
    return Mixture(name, domains)


def declared_mixtures(study: optuna.Study) -> list[Mixture]:
    """All mixtures declared in the study's storage, in name order."""
    attrs = study._storage.get_study_system_attrs(study._study_id)
    return [
        Mixture(key[len(DECLARATION_PREFIX) :], tuple(value))
        for key, value in sorted(attrs.items())
        if key.startswith(DECLARATION_PREFIX)
    ]


def mixture_search_space(mixtures: Sequence[Mixture]) -> dict[str, BaseDistribution]:
    return {p: WEIGHT_DISTRIBUTION for m in mixtures for p in m.param_names}


def is_simplex_point(values: Sequence[float], tol: float = 1e-9) -> bool:
    arr = np.asarray(values, dtype=float)
    return bool(np.all(arr >= 0.0) and np.all(arr <= 1.0) and abs(arr.sum() - 1.0) <= tol)


def project_to_simplex(w: np.ndarray) -> np.ndarray:
    """Clip negatives to 0 and renormalise so that the weights sum to 1 to machine precision."""
    w = np.maximum(np.asarray(w, dtype=float), 0.0)
    total = w.sum()
    if not np.isfinite(total) or total <= 0.0:
        return np.full(w.shape, 1.0 / w.shape[-1])
    w = w / total
    # put the rounding residue on the largest weight so sum(w) == 1 to the last bit we can
    w[np.argmax(w)] += 1.0 - w.sum()
    return np.clip(w, 0.0, 1.0)


def cube_to_simplex(u: np.ndarray) -> np.ndarray:
    """Map points of the unit (k-1)-cube onto the k-simplex, uniform measure to uniform measure.

    Stick-breaking with inverse Beta(1, m) CDFs: w_1 = 1 - (1-u_1)^(1/(k-1)), then the same on
    the rest of the stick. The map is smooth and measure-preserving, so a low-discrepancy set
    in the cube stays low-discrepancy on the simplex (sorting-based maps fold the cube k-1!
    times instead).
    """
    u = np.atleast_2d(np.asarray(u, dtype=float))
    n, d = u.shape
    k = d + 1
    w = np.empty((n, k))
    rest = np.ones(n)
    for i in range(d):
        m = k - 1 - i
        frac = 1.0 - (1.0 - u[:, i]) ** (1.0 / m)
        w[:, i] = rest * frac
        rest = rest - w[:, i]
    w[:, -1] = rest
    return np.vstack([project_to_simplex(row) for row in w])


def simplex_to_cube(w: np.ndarray) -> np.ndarray:
    """Inverse of :func:`cube_to_simplex` (for points in the simplex's interior)."""
    w = np.atleast_2d(np.asarray(w, dtype=float))
    n, k = w.shape
    u = np.empty((n, k - 1))
    rest = np.ones(n)
    for i in range(k - 1):
        m = k - 1 - i
        frac = np.where(rest > 0, w[:, i] / np.maximum(rest, 1e-300), 0.0)
        u[:, i] = 1.0 - (1.0 - np.clip(frac, 0.0, 1.0)) ** m
        rest = rest - w[:, i]
    return u


def normalise_weights(values: Sequence[float]) -> np.ndarray:
    """Turn k independent values in [0, 1] into a point of the simplex.

    Exact simplex points (from a simplex-aware sampler) are kept. Anything else goes through
    w_i ∝ -log(u_i): independent uniforms then give the flat Dirichlet, so Random/TPE search
    the simplex uniformly. All-ones (which GPSampler likes to propose) gives the centre instead
    of 0/0.
    """
    arr = np.asarray(values, dtype=float)
    if is_simplex_point(arr):
        return project_to_simplex(arr)
    exps = -np.log(np.clip(arr, 1e-12, 1.0)) + 0.0  # + 0.0 turns -0.0 into 0.0
    return project_to_simplex(exps)


def weights_dict(domains: Sequence[str], w: np.ndarray) -> dict[str, float]:
    return {d: float(x) for d, x in zip(domains, w)}


def mixtures_in(
    search_space: Mapping[str, BaseDistribution], mixtures: Sequence[Mixture]
) -> list[Mixture]:
    """The declared mixtures all of whose parameters are in ``search_space`` as [0, 1] floats."""
    return [
        m
        for m in mixtures
        if all(search_space.get(p) == WEIGHT_DISTRIBUTION for p in m.param_names)
    ]
