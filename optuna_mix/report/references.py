"""The references a study's best mixture is compared with, per domain.

Found by themselves: a trial of this study at the uniform mixture, and the sibling studies
of a ``study compare`` run (``<name>/<approach>/seed<s>``: the same seed's sobol, uniform,
llama, dolma and fixed studies). Named by the user: ``--against STUDY``, any study in the
same storage whose trials keep per-domain losses.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import optuna
from optuna.trial import FrozenTrial, TrialState

from optuna_mix.attrs import LOSSES_ATTR, MIXTURE_ATTR
from optuna_mix.catalogue import APPROACHES

UNIFORM_TOL = 1e-6  # a trial within this of 1/k in every weight is the uniform mixture
SIBLING = re.compile(r"^(?P<prefix>.+)/(?P<approach>[^/]+)/seed(?P<seed>\d+)$")


@dataclass(frozen=True)
class Reference:
    label: str  # "uniform", "best sobol trial", "study 'x'"
    source: str  # where it comes from: "this study", "study 'demo/sobol/seed0'"
    trial_number: int
    value: float
    weights: dict[str, float]
    losses: dict[str, float]


def _best(trials: list[FrozenTrial], minimise: bool) -> FrozenTrial | None:
    ok = [t for t in trials if isinstance(t.user_attrs.get(LOSSES_ATTR), dict)]
    if not ok:
        return None
    return min(ok, key=lambda t: t.value if minimise else -t.value)


def _reference(label: str, source: str, trial: FrozenTrial, domains: Sequence[str]) -> Reference:
    weights = trial.user_attrs.get(MIXTURE_ATTR, {})
    return Reference(
        label, source, trial.number, float(trial.value),
        {d: float(weights.get(d, math.nan)) for d in domains},
        {k: float(v) for k, v in trial.user_attrs[LOSSES_ATTR].items()},
    )


def _complete(study: optuna.Study) -> list[FrozenTrial]:
    return [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if t.value is not None and math.isfinite(t.value)]


def find_references(
    study: optuna.Study,
    storage: optuna.storages.BaseStorage,
    domains: Sequence[str],
    against: Sequence[str] = (),
) -> list[Reference]:
    """The references of ``study``: its uniform trial, its compare siblings, ``against``.

    ValueError naming the study when an ``against`` study is not in the storage or has no
    complete trial with per-domain losses.
    """
    minimise = study.directions[0] == optuna.study.StudyDirection.MINIMIZE
    found: list[Reference] = []
    k = len(domains)
    uniform = [t for t in _complete(study)
               if isinstance(t.user_attrs.get(MIXTURE_ATTR), dict)
               and all(abs(t.user_attrs[MIXTURE_ATTR].get(d, 0.0) - 1 / k) < UNIFORM_TOL
                       for d in domains)]
    if (best := _best(uniform, minimise)) is not None:
        found.append(_reference("uniform", "this study", best, domains))

    names = set(optuna.get_all_study_names(storage))
    match = SIBLING.match(study.study_name)
    if match:
        for approach in ("sobol", *(a.name for a in APPROACHES.values() if not a.searching)):
            sibling = f"{match['prefix']}/{approach}/seed{match['seed']}"
            if sibling == study.study_name or sibling not in names:
                continue
            other = optuna.load_study(study_name=sibling, storage=storage)
            if (best := _best(_complete(other), minimise)) is not None:
                label = f"best {approach} trial" if approach == "sobol" else approach
                found.append(_reference(label, f"study {sibling!r}", best, domains))
    for name in against:
        if name not in names:
            raise ValueError(f"--against: no study named {name!r} in this storage")
        other = optuna.load_study(study_name=name, storage=storage)
        best = _best(_complete(other), minimise)
        if best is None:
            raise ValueError(f"--against: study {name!r} has no complete trial with losses")
        found.append(_reference(f"study {name!r}", f"study {name!r}", best, domains))
    return found
