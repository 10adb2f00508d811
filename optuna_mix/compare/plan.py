"""Planning a comparison: which approaches run, and each study's config, name and budget."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from optuna_mix.catalogue import APPROACHES, Approach, objective_problem
from optuna_mix.config import StudyConfig, parse_config


def study_name(config: StudyConfig, approach: str, seed: int) -> str:
    return f"{config.name}/{approach}/seed{seed}"


def compare_approaches() -> list[str]:
    """Every approach ``compare`` can run, the defaults first."""
    return [a.name for a in APPROACHES.values() if a.in_compare and a.compare_default] + [
        a.name for a in APPROACHES.values() if a.in_compare and not a.compare_default
    ]


def default_approaches() -> list[str]:
    return [a.name for a in APPROACHES.values() if a.in_compare and a.compare_default]


def is_fixed(approach: str) -> bool:
    """Whether every trial of ``approach`` evaluates one mixture (its repeats: the noise)."""
    return not APPROACHES[approach].searching


def unavailable_reason(config: StudyConfig, approach: str) -> str | None:
    """Why ``approach`` cannot run on ``config`` (None when it can)."""
    entry: Approach | None = APPROACHES.get(approach)
    if entry is None or not entry.in_compare:
        return f"unknown approach {approach!r} (choose from {', '.join(compare_approaches())})"
    try:
        entry.sampler_class()
    except ValueError:  # not there, or its module fails to import (e.g. a missing dependency)
        return f"approach {approach!r} is not available in this installation of optuna-mix"
    if entry.weights is not None:
        missing = [d for d in entry.weights if d not in config.domains]
        if missing:
            return (
                f"approach {approach!r} needs the seed's domains {', '.join(entry.weights)}; "
                f"the config lacks {', '.join(missing)}"
            )
    if problem := objective_problem(approach, config.validation_sets, config.domain_names):
        return problem
    for key in entry.required_options():
        if key not in config.options_for(approach):
            return f"approach {approach!r} needs {key} in a [sampler.{approach}] table of the config"
    return None

def resolve_approaches(
    config: StudyConfig, requested: Sequence[str] | None
) -> tuple[list[str], list[str]]:
    """The approaches to run and notes on default ones skipped.

    Explicitly requested approaches must all be available (else ValueError naming the first
    that is not); of the defaults, unavailable ones are skipped with a note.
    """
    if requested is not None:
        names = [a.strip() for a in requested if a.strip()]
        if not names:
            raise ValueError("--approaches names no approach")
        dupes = sorted({a for a in names if names.count(a) > 1})
        if dupes:
            raise ValueError(f"--approaches names {', '.join(dupes)} twice")
        for a in names:
            reason = unavailable_reason(config, a)
            if reason:
                raise LookupError(reason)
        return names, []
    names, notes = [], []
    for a in default_approaches():
        reason = unavailable_reason(config, a)
        if reason:
            notes.append(f"skipping {reason}")
        else:
            names.append(a)
    return names, notes


def approach_config(
    config: StudyConfig, approach: str, seed: int, n_trials: int
) -> StudyConfig:
    """The config of one study of the comparison: the approach's sampler, the seed, the budget.

    The objective stays the same across seeds (a surface keeps its seed); only the sampler's
    seed (and the GPT objective's, which is the run-to-run noise) changes.
    """
    raw = copy.deepcopy(config.raw)
    raw["study"] = {
        **raw.get("study", {}),
        "name": study_name(config, approach, seed),
        "seed": seed,
        "n_trials": n_trials,
    }
    options: dict[str, Any] = copy.deepcopy(config.options_for(approach))
    raw["sampler"] = {"name": approach, **options}
    if config.objective == "surface":
        objective = dict(raw.get("objective", {}))
        objective.setdefault("seed", config.seed)
        raw["objective"] = objective
    return parse_config(raw, source=f"approach {approach!r}")


@dataclass
class Plan:
    approach: str
    seed: int
    name: str
    config: StudyConfig

    @property
    def budget(self) -> int:
        return self.config.n_trials


def budget_of(approach: str, n_trials: int, fixed_trials: int | None) -> int:
    """Trials per study: ``fixed_trials`` for the fixed-mixture approaches when given."""
    if fixed_trials is not None and is_fixed(approach):
        return fixed_trials
    return n_trials


def make_plans(
    config: StudyConfig,
    approaches: Sequence[str],
    seeds: int,
    n_trials: int,
    fixed_trials: int | None = None,
) -> list[Plan]:
    return [
        Plan(
            a, s, study_name(config, a, s),
            approach_config(config, a, s, budget_of(a, n_trials, fixed_trials)),
        )
        for a in approaches
        for s in range(config.seed, config.seed + seeds)
    ]
