"""Criteria: how per-domain validation losses become one trial value (lower is better).

The seed used the unweighted mean log-perplexity. Averaging lets the optimiser trade one
domain off against another; the others limit that trade:

| criterion  | trial value of the losses L (m validation sets)          | parameters            |
|------------|----------------------------------------------------------|-----------------------|
| ``mean``   | mean_i L_i (the seed's)                                  |                       |
| ``max``    | max_i L_i: the worst domain                              |                       |
| ``median`` | the median L_i                                           |                       |
| ``weighted`` | sum_i a_i L_i / sum_i a_i                              | ``weights`` a (default 1 each) |
| ``cvar``   | the mean of the worst ceil(q m) losses                   | ``fraction`` q in (0, 1] |
| ``excess`` | max_i (L_i - R_i), DoReMi's excess loss over a reference | ``reference`` R: its losses |

The first three need nothing but the losses (:data:`CRITERIA`, which user code may
extend); the last three are bound to their parameters and to the order of the outputs by a
:class:`CriterionSpec`, which a study stores (:func:`set_criterion`) so that every worker's
loss-modelling sampler optimises the criterion its values are.

``pareto`` (:data:`PARETO`) is no criterion but the absence of one: the study is
multi-objective, a trial's values are its losses (one direction per validation set), and the
report shows the front of mixtures no other beats on every validation set.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
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
    # where the criterion is a . losses: the weights a (m,), for the exact posterior transform
    linear: tuple[float, ...] | None = None
    params: tuple[Any, ...] = field(default=())  # what it was bound to: a hashable cache key

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

# the criteria bound to parameters (CriterionSpec.bind): name -> summary
PARAMETRISED = {
    "weighted": "a weighted mean: `criterion_weights` (validation set -> weight, default 1)",
    "cvar": "the mean of the worst `criterion_fraction` of the validation sets (CVaR)",
    "excess": "the largest loss above a reference mixture's own (DoReMi's excess loss; "
              "`criterion_reference`, trained once per study)",
}
# no single value: one objective per validation set (a multi-objective study)
PARETO = "pareto"
PARETO_SUMMARY = ("no single value: one objective per validation set, and the front of "
                  "mixtures no other beats on all of them")
CRITERION_ATTR = "optuna_mix:criterion"  # study system attr: the CriterionSpec, as JSON


def criterion_names() -> tuple[str, ...]:
    """Every criterion a study may name: the registered ones, the parametrised ones and
    ``pareto`` (several objectives)."""
    return (*CRITERIA, *PARAMETRISED, PARETO)


@dataclass(frozen=True)
class CriterionSpec:
    """A criterion by name with its parameters: what a study stores, JSON-able.

    ``weights`` (weighted): output -> weight, 1 for an output not named. ``fraction``
    (cvar): the share of outputs whose mean is taken, the worst first. ``reference``
    (excess): output -> the reference mixture's loss (None until that mixture is trained);
    ``reference_mixture``: its weights.
    """

    name: str
    weights: tuple[tuple[str, float], ...] = ()
    fraction: float | None = None
    reference: tuple[tuple[str, float], ...] | None = None
    reference_mixture: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        if self.name not in criterion_names():
            raise ValueError(f"unknown criterion {self.name!r} (choose from "
                             f"{', '.join(criterion_names())})")
        if self.weights and self.name != "weighted":
            raise ValueError(f"criterion weights are for the weighted criterion, not {self.name!r}")
        if any(not math.isfinite(w) or w < 0 for _, w in self.weights):
            raise ValueError("criterion weights must be finite and >= 0")
        if self.fraction is not None and (self.name != "cvar" or not 0 < self.fraction <= 1):
            raise ValueError("criterion fraction is for cvar and must be in (0, 1]"
                             if self.name == "cvar" else
                             f"criterion fraction is for the cvar criterion, not {self.name!r}")
        if (self.reference is not None or self.reference_mixture) and self.name != "excess":
            raise ValueError(f"a criterion reference is for the excess criterion, not "
                             f"{self.name!r}")

    @property
    def multi_objective(self) -> bool:
        """``pareto``: a trial has one value per validation set, not one criterion value."""
        return self.name == PARETO

    @property
    def needs_reference(self) -> bool:
        """An excess criterion whose reference mixture has not been trained yet."""
        return self.name == "excess" and self.reference is None

    def bind(self, outputs: Sequence[str]) -> Criterion:
        """The criterion on losses (..., m) of ``outputs`` in this order."""
        outputs = list(outputs)
        if self.name in CRITERIA:
            return CRITERIA[self.name]
        if self.multi_objective:
            raise ValueError("criterion 'pareto' has no single value: a trial keeps one value "
                             "per validation set")
        summary = PARAMETRISED[self.name]
        if self.name == "weighted":
            given = dict(self.weights)
            if unknown := sorted(set(given) - set(outputs)):
                raise ValueError(f"criterion weights for {', '.join(unknown)}: not among the "
                                 f"validation sets ({', '.join(outputs)})")
            a = np.array([given.get(o, 1.0) for o in outputs], float)
            if a.sum() <= 0:
                raise ValueError("criterion weights must not all be 0")
            a = a / a.sum()
            return Criterion("weighted", summary, lambda L: np.asarray(L) @ a,
                             lambda Y: Y @ Y.new_tensor(a), linear=tuple(a),
                             params=tuple(a))
        if self.name == "cvar":
            q = 0.25 if self.fraction is None else self.fraction
            j = max(1, math.ceil(q * len(outputs) - 1e-9))
            return Criterion("cvar", summary,
                             lambda L: np.sort(np.asarray(L), axis=-1)[..., -j:].mean(axis=-1),
                             lambda Y: Y.topk(j, dim=-1).values.mean(dim=-1), params=(j,))
        if self.reference is None:
            raise ValueError("the excess criterion's reference mixture has not been trained "
                             "yet: its losses are what every value is measured against")
        given = dict(self.reference)
        if missing := [o for o in outputs if o not in given]:
            raise ValueError(f"the excess criterion's reference has no loss for "
                             f"{', '.join(missing)}")
        r = np.array([given[o] for o in outputs], float)
        return Criterion("excess", summary, lambda L: (np.asarray(L) - r).max(axis=-1),
                         lambda Y: (Y - Y.new_tensor(r)).amax(dim=-1), params=tuple(r))

    def to_json(self) -> str:
        return json.dumps({"name": self.name, "weights": dict(self.weights),
                           "fraction": self.fraction,
                           "reference": None if self.reference is None else dict(self.reference),
                           "reference_mixture": dict(self.reference_mixture)})

    @classmethod
    def from_json(cls, text: str) -> CriterionSpec:
        d = json.loads(text)
        return cls(d["name"], _pairs(d.get("weights")), d.get("fraction"),
                   None if d.get("reference") is None else _pairs(d["reference"]),
                   _pairs(d.get("reference_mixture")))

    def with_reference(self, losses: Mapping[str, float]) -> CriterionSpec:
        return CriterionSpec(self.name, self.weights, self.fraction, _pairs(losses),
                             self.reference_mixture)


def _pairs(d: Mapping[str, float] | None) -> tuple[tuple[str, float], ...]:
    return tuple((str(k), float(v)) for k, v in (d or {}).items())


def set_criterion(study: Any, spec: CriterionSpec) -> None:
    """Store ``spec`` in the study: the loss-modelling samplers of every worker read it
    (:func:`study_criterion`) instead of guessing the criterion from the values."""
    study._storage.set_study_system_attr(study._study_id, CRITERION_ATTR, spec.to_json())


def study_criterion(study: Any) -> CriterionSpec | None:
    """The criterion the study stored (:func:`set_criterion`), or None."""
    text = study._storage.get_study_system_attrs(study._study_id).get(CRITERION_ATTR)
    if text is None:
        return None
    try:
        return CriterionSpec.from_json(text)
    except ValueError:  # a criterion registered in another process only: detected instead
        return None
criterion_fn = CRITERIA.lookup  # the criterion ``name``, vectorised over the last axis


def as_criterion(criterion: str | Criterion) -> Criterion:
    """A bound criterion as is, a registered one by name."""
    return criterion if isinstance(criterion, Criterion) else criterion_fn(criterion)


def criterion_key(criterion: str | Criterion) -> tuple[Any, ...]:
    """A hashable key of a criterion and what it is bound to (for caches of optima)."""
    c = as_criterion(criterion)
    return (c.name, c.params)


def apply_criterion(name: str | Criterion, losses: Mapping[str, float] | np.ndarray) -> float:
    """The trial value of ``losses`` (domain -> loss, or an array) under criterion ``name``
    (a registered name, or a bound :class:`Criterion`)."""
    fn = name if isinstance(name, Criterion) else criterion_fn(name)
    values = np.asarray(list(losses.values()) if isinstance(losses, Mapping) else losses, float)
    if values.size == 0:
        raise ValueError("no per-domain losses to combine")
    value = float(fn(values))
    if not math.isfinite(value):
        raise ValueError(f"criterion {getattr(name, 'name', name)!r} of the losses is not "
                         f"finite: {value}")
    return value


def detect_criterion(
    losses: np.ndarray, values: np.ndarray, *, rtol: float = 1e-6, atol: float = 1e-9
) -> str | None:
    """The criterion that gives every value from its row of ``losses`` (n, k), or None.

    How samplers that model per-domain losses learn what the study's values are, where the
    study stored none (:func:`study_criterion`): only the registered, parameter-free ones.
    """
    losses, values = np.asarray(losses, float), np.asarray(values, float)
    if losses.ndim != 2 or len(losses) != len(values) or len(values) == 0:
        return None
    for name, fn in CRITERIA.items():
        if reproduces(fn, losses, values, rtol=rtol, atol=atol):
            return name
    return None


def reproduces(criterion: Callable[[np.ndarray], np.ndarray], losses: np.ndarray,
               values: np.ndarray, *, rtol: float = 1e-6, atol: float = 1e-9) -> bool:
    """Whether ``criterion`` of each row of ``losses`` (n, m) is that row's value."""
    losses, values = np.asarray(losses, float), np.asarray(values, float)
    return (losses.ndim == 2 and len(losses) == len(values) > 0
            and bool(np.allclose(criterion(losses), values, rtol=rtol, atol=atol)))
