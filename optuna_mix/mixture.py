"""``suggest_mixture``: a point on the probability simplex as Optuna parameters."""

from __future__ import annotations

from collections.abc import Sequence

import optuna

from optuna_mix.samplers import (
    WEIGHT_DISTRIBUTION,
    declare_mixture,
    normalise_weights,
    param_name,
    weights_dict,
)


def check_domains(domains: Sequence[str]) -> list[str]:
    """Domains as a list of distinct, non-empty names; at least two of them."""
    if isinstance(domains, str):
        raise ValueError("domains must be a sequence of names, not one string")
    names = [str(d) for d in domains]
    if len(names) < 2:
        raise ValueError(f"a mixture needs at least 2 domains, got {len(names)}")
    seen: set[str] = set()
    for d in names:
        if not d or d.strip() != d:
            raise ValueError(f"domain name {d!r} is empty or has surrounding spaces")
        if d in seen:
            raise ValueError(f"duplicate domain {d!r}")
        seen.add(d)
    return names


def suggest_mixture(
    trial: optuna.Trial, domains: Sequence[str], *, name: str = "mix"
) -> dict[str, float]:
    """Suggest mixture weights over ``domains``: each >= 0, summing to 1 within 1e-9.

    One float parameter ``f"{name}.{domain}"`` in [0, 1] per domain. The mixture is first
    declared in the study's storage, so simplex-aware samplers on every worker propose whole
    simplex points, which are kept exactly. Values from any other sampler are normalised onto
    the simplex (flat Dirichlet when that sampler is uniform). The weights are also stored as
    the trial user attr ``name``.
    """
    names = check_domains(domains)
    declare_mixture(trial.study, name, names)
    low, high = WEIGHT_DISTRIBUTION.low, WEIGHT_DISTRIBUTION.high
    raw = [trial.suggest_float(param_name(name, d), low, high) for d in names]
    weights = weights_dict(names, normalise_weights(raw))
    trial.set_user_attr(name, weights)
    return weights
