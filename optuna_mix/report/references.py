"""The references a study's best mixture is compared with, per domain.

Found by themselves: a trial of this study at the uniform mixture, the excess criterion's
reference mixture (optuna_mix.excess: the study's first trial), and the sibling studies
of a ``study compare`` run (``<name>/<approach>/seed<s>``: the same seed's sobol, uniform,
llama, dolma and fixed studies). Named by the user: ``--against STUDY``, any study in the
same storage whose trials keep per-domain losses.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from optuna_mix.attrs import LOSSES_ATTR, MIXTURE_ATTR
from optuna_mix.catalogue import APPROACHES
from optuna_mix.excess import REFERENCE_ATTR

UNIFORM_TOL = 1e-6  # a trial within this of 1/k in every weight is the uniform mixture
SIBLING = re.compile(r"^(?P<prefix>.+)/(?P<approach>[^/]+)/seed(?P<seed>\d+)$")


@dataclass(frozen=True)
class Reference:
    label: str  # "uniform", "best sobol trial", "study 'x'"
    source: str  # where it comes from: "this study", "study 'demo/sobol/seed0'"
    trial_number: int  # -1: no trial, the report's GP predicted its losses
    value: float
    weights: dict[str, float]
    losses: dict[str, float]
    stds: dict[str, float] | None = None  # a predicted reference's posterior std per set

    @property
    def tag(self) -> str:
        """How a table names it: the label with its trial (or its source) in brackets."""
        if self.trial_number < 0:
            return f"{self.label} ({self.source})"
        return f"{self.label} (#{self.trial_number}, {self.source})"


PREDICTED_UNIFORM = "uniform, predicted"


def _minimises(study: optuna.Study) -> bool:
    return study.directions[0] == optuna.study.StudyDirection.MINIMIZE


def _value(trial: FrozenTrial) -> float:
    """The trial's value; NaN for a pareto study's trial (one value per validation set: its
    losses, which are what a reference is compared by)."""
    return float(trial.values[0]) if len(trial.values) == 1 else math.nan


def _has_losses(trial: FrozenTrial) -> bool:
    losses = trial.user_attrs.get(LOSSES_ATTR)
    return isinstance(losses, dict) and bool(losses)


def _best(trials: list[FrozenTrial], minimise: bool) -> FrozenTrial | None:
    ok = [t for t in trials if _has_losses(t)]
    if not ok:
        return None
    return min(ok, key=lambda t: _value(t) if minimise else -_value(t))


def _reference(label: str, source: str, trial: FrozenTrial, domains: Sequence[str]) -> Reference:
    weights = trial.user_attrs.get(MIXTURE_ATTR, {})
    return Reference(
        label, source, trial.number, _value(trial),
        {d: float(weights.get(d, math.nan)) for d in domains},
        {k: float(v) for k, v in trial.user_attrs[LOSSES_ATTR].items()},
    )


def _mean_reference(
    label: str, source: str, trials: list[FrozenTrial], domains: Sequence[str]
) -> Reference | None:
    """A fixed mixture evaluated several times: its mean losses, not the luckiest repeat."""
    ok = [t for t in trials if _has_losses(t)]
    if not ok:
        return None
    names = list(ok[0].user_attrs[LOSSES_ATTR])
    losses = {n: float(np.mean([t.user_attrs[LOSSES_ATTR][n] for t in ok])) for n in names}
    first = min(ok, key=lambda t: t.number)
    weights = first.user_attrs.get(MIXTURE_ATTR, {})
    if len(ok) > 1:
        label = f"{label} (mean of {len(ok)} trials)"
    return Reference(label, source, first.number, float(np.mean([_value(t) for t in ok])),
                     {d: float(weights.get(d, math.nan)) for d in domains}, losses)


def _complete(study: optuna.Study) -> list[FrozenTrial]:
    return [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if t.values and all(math.isfinite(v) for v in t.values)]


def _comparable(other: optuna.Study, name: str, study: optuna.Study,
                domains: Sequence[str]) -> str | None:
    """Why ``other`` cannot be a reference of ``study`` (None when it can)."""
    if len(other.directions) != 1:
        return f"study {name!r} has several objectives"
    if len(study.directions) == 1 and other.directions[0] != study.directions[0]:
        return f"study {name!r} has the other direction"
    for t in _complete(other):
        weights = t.user_attrs.get(MIXTURE_ATTR)
        if isinstance(weights, dict) and set(weights) != set(domains):
            return (f"study {name!r} mixes {', '.join(weights)}, not "
                    f"{', '.join(domains)}")
        if isinstance(weights, dict):
            break
    return None


def find_references(
    study: optuna.Study,
    storage: optuna.storages.BaseStorage,
    domains: Sequence[str],
    against: Sequence[str] = (),
) -> list[Reference]:
    """The references of ``study``: its uniform trials, its compare siblings, ``against``.

    A fixed mixture (a uniform trial, a fixed approach's study) counts as the mean of its
    evaluations, so that the luck of one noisy repeat does not decide a comparison; a
    searching study counts by its best trial. ValueError, naming the study, for an
    ``against`` study that is not in the storage, has several objectives, the other
    direction, other domains, or no complete trial with per-domain losses. A pareto study
    (several objectives) has references too: they are compared by their losses.
    """
    found: list[Reference] = []
    k = len(domains)
    uniform = [t for t in _complete(study)
               if isinstance(t.user_attrs.get(MIXTURE_ATTR), dict)
               and all(abs(t.user_attrs[MIXTURE_ATTR].get(d, 0.0) - 1 / k) < UNIFORM_TOL
                       for d in domains)]
    excess_reference = [t for t in _complete(study)
                        if t.user_attrs.get(REFERENCE_ATTR) and t not in uniform]
    searched = [t for t in _complete(study) if t not in uniform and t not in excess_reference]
    if uniform and searched:  # a study of uniform trials alone has nothing to compare
        if (ref := _mean_reference("uniform", "this study", uniform, domains)) is not None:
            found.append(ref)
    if excess_reference and searched:
        if (ref := _mean_reference("reference mixture", "this study",
                                   excess_reference, domains)) is not None:
            found.append(ref)

    names = set(optuna.get_all_study_names(storage))
    match = SIBLING.match(study.study_name)
    if match:
        for approach in ("sobol", *(a.name for a in APPROACHES.values() if not a.searching)):
            sibling = f"{match['prefix']}/{approach}/seed{match['seed']}"
            if sibling == study.study_name or sibling not in names:
                continue
            other = optuna.load_study(study_name=sibling, storage=storage)
            if _comparable(other, sibling, study, domains) is not None:
                continue
            if approach == "sobol":
                best = _best(_complete(other), _minimises(other))
                ref = _reference("best sobol trial", f"study {sibling!r}", best, domains) \
                    if best is not None else None
            else:
                ref = _mean_reference(approach, f"study {sibling!r}", _complete(other), domains)
            if ref is not None:
                found.append(ref)
    for name in against:
        if name not in names:
            raise ValueError(f"--against: no study named {name!r} in this storage")
        other = optuna.load_study(study_name=name, storage=storage)
        if (why := _comparable(other, name, study, domains)) is not None:
            raise ValueError(f"--against: {why}")
        best = _best(_complete(other), _minimises(other))
        if best is None:
            raise ValueError(f"--against: study {name!r} has no complete trial with losses")
        found.append(_reference(f"study {name!r}", f"study {name!r}", best, domains))
    return found
