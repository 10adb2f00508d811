"""Domain utility from the fitted surrogate: what a little more or less of each domain is
predicted to do to the criterion, read from the GP's joint posterior.

:func:`step_mixtures` moves one domain's weight up and down by a step, the change taken from
(or given to) the other domains in proportion to their weights; :func:`domain_utility` asks a
:class:`~optuna_mix.samplers.SimplexGPSampler` for the predicted change of each move
(``predict_change``: the joint posterior of the two mixtures, so a small step's std is
small); :func:`utility_sentence` says one domain's result in words. :func:`improved_over`
compares two mixtures' per-domain losses (which domains the best mixture improves over,
e.g., the uniform one).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from optuna_mix.samplers.fixed import SUM_TOLERANCE  # a user's mixture: sum 1 within 1e-6

# the criteria's names in a sentence (others: "<name> criterion")
CRITERION_WORDS = {"mean": "mean loss", "max": "worst-domain loss", "median": "median loss"}
DEFAULT_STEP = 0.1


def step_mixtures(
    weights: Mapping[str, float], domain: str, step: float
) -> tuple[dict[str, float] | None, dict[str, float] | None]:
    """The mixture with ``domain``'s weight raised by ``step`` and the one with it lowered.

    The weight is clipped to [0, 1]; the change is taken from (given to) the other domains in
    proportion to their weights, equally where they are all 0 (the domain is at 1 and can only
    be lowered). Both are exact simplex points (>= 0, summing to 1 within 1e-12) over the
    domains of ``weights``, in its order; None where the move is impossible (raising a domain
    at 1, lowering one at 0).
    """
    domains = list(weights)
    if domain not in weights:
        raise ValueError(f"unknown domain {domain!r} (the mixture has {', '.join(domains)})")
    if len(domains) < 2:
        raise ValueError("a step needs a mixture of at least two domains")
    if not (math.isfinite(step) and 0 < step <= 1):
        raise ValueError(f"step must be in (0, 1], got {step}")
    w = np.array([float(weights[d]) for d in domains])
    if not np.all(np.isfinite(w)) or np.any(w < 0) or abs(w.sum() - 1) > SUM_TOLERANCE:
        raise ValueError(f"the weights must be >= 0 and sum to 1, got {dict(weights)}")
    i = domains.index(domain)
    others = np.arange(len(w)) != i
    rest = w[others]
    total = float(rest.sum())
    # the others' share of what is left, as they held it (equal where they held none)
    share = rest / total if total > 0 else np.full(len(rest), 1.0 / len(rest))

    def moved(new: float) -> dict[str, float] | None:
        new = min(1.0, max(0.0, new))
        if new == w[i] or (total == 0 and new > w[i]):
            return None
        out = np.empty_like(w)
        out[others] = share * (1.0 - new)
        out[i] = new
        return dict(zip(domains, (float(v) for v in out)))

    return moved(w[i] + step), moved(w[i] - step)


@dataclass(frozen=True)
class DomainUtility:
    """The predicted effect of raising and of lowering one domain's weight by a step.

    ``up_change``/``down_change`` are the posterior means of criterion(moved) -
    criterion(mixture), in the study's units (negative: the criterion falls), with their stds
    from the joint posterior; the ``up_*``/``down_*`` fields are None where that move is
    impossible (raising a domain at 1, lowering one at 0).
    """

    domain: str
    weight: float
    up_weight: float | None
    up_change: float | None
    up_std: float | None
    down_weight: float | None
    down_change: float | None
    down_std: float | None


def domain_utility(
    sampler: Any, study: Any, weights: Mapping[str, float], *, step: float = DEFAULT_STEP
) -> list[DomainUtility]:
    """Each domain's utility at mixture ``weights`` (domain -> weight, the study's mixture):
    the predicted change of the criterion when its weight is raised or lowered by ``step``
    (:func:`step_mixtures`), from ``sampler.predict_change`` (a fitted
    :class:`~optuna_mix.samplers.SimplexGPSampler` of ``study``; one call for every move)."""
    moves = {d: step_mixtures(weights, d, step) for d in weights}
    asked = [m for pair in moves.values() for m in pair if m is not None]
    predicted = iter(sampler.predict_change(study, dict(weights), asked))

    def effect(d: str, moved: dict[str, float] | None) -> tuple[float | None, ...]:
        return (None, None, None) if moved is None else (moved[d], *next(predicted))

    return [
        DomainUtility(d, float(weights[d]), *effect(d, up), *effect(d, down))
        for d, (up, down) in moves.items()
    ]


def utility_sentence(u: DomainUtility, criterion: str) -> str:
    """One sentence on ``u`` for a person, for a minimised ``criterion`` (a loss), e.g.
    "raising code from 0.24 to 0.34 is predicted to lower the mean loss by 0.004 +- 0.002;
    lowering it to 0.14 to raise it by 0.006 +- 0.002". A change smaller than its std is
    "not distinguishable from no change"."""
    what = CRITERION_WORDS.get(criterion, f"{criterion} criterion")
    places = _weight_places(u)
    w = f"{u.weight:.{places}f}"
    if u.up_weight is not None:
        head = f"raising {u.domain} from {w} to {u.up_weight:.{places}f} is predicted to "
        clauses = [head + _effect(u.up_change, u.up_std, f"the {what}")]
        if u.down_weight is not None:
            clauses.append(f"lowering it to {u.down_weight:.{places}f} to "
                           + _effect(u.down_change, u.down_std, "it"))
        else:
            clauses.append("it cannot be lowered below 0")
    else:
        clauses = [f"{u.domain} is at {w} and cannot be raised",
                   f"lowering it to {u.down_weight:.{places}f} is predicted to "
                   + _effect(u.down_change, u.down_std, f"the {what}")]
    return "; ".join(clauses)


def _effect(change: float | None, std: float | None, what: str) -> str:
    """'lower the mean loss by 0.004 +- 0.002', or the same with 'raise', or no change."""
    assert change is not None and std is not None
    places = _change_places(std)
    if abs(change) < std:
        return (f"change {what} by {change:+.{places}f} +- {std:.{places}f}: "
                f"not distinguishable from no change")
    verb = "lower" if change < 0 else "raise"
    return f"{verb} {what} by {abs(change):.{places}f} +- {std:.{places}f}"


def _change_places(std: float) -> int:
    """Decimal places of a change: 3, or enough to show the std's first digit."""
    if not (std > 0 and math.isfinite(std)):
        return 3
    return int(min(8, max(3, -math.floor(math.log10(std)))))


def _weight_places(u: DomainUtility) -> int:
    """Decimal places of the weights: 2, or enough to tell the moved weights apart."""
    shown = [v for v in (u.weight, u.up_weight, u.down_weight) if v is not None]
    for places in range(2, 7):
        if len({f"{v:.{places}f}" for v in shown}) == len(shown):
            return places
    return 6


def improved_over(
    best_losses: Mapping[str, float], reference_losses: Mapping[str, float]
) -> dict[str, float]:
    """Per domain, reference - best: positive where the best mixture's loss is lower (e.g.
    which domains the best mixture improves over the uniform one), in ``best_losses``' order.
    Both must name the same domains."""
    if set(best_losses) != set(reference_losses):
        only = sorted(set(best_losses) ^ set(reference_losses))
        raise ValueError(f"the two mixtures' losses name different domains ({', '.join(only)})")
    return {d: float(reference_losses[d]) - float(best_losses[d]) for d in best_losses}
