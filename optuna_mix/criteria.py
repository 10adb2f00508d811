"""Criteria: how per-domain losses become one trial value (defined in
:mod:`optuna_mix.samplers.criteria`, where the loss-modelling samplers need them)."""

from optuna_mix.samplers.criteria import (
    CRITERIA,
    CRITERION_ATTR,
    PARAMETRISED,
    PARETO,
    Criterion,
    CriterionSpec,
    apply_criterion,
    as_criterion,
    criterion_key,
    criterion_fn,
    criterion_names,
    detect_criterion,
    register_criterion,
    set_criterion,
    study_criterion,
)

__all__ = ["CRITERIA", "CRITERION_ATTR", "PARAMETRISED", "PARETO", "Criterion", "CriterionSpec",
           "apply_criterion", "as_criterion", "criterion_key", "criterion_fn", "criterion_names", "detect_criterion",
           "register_criterion", "set_criterion", "study_criterion"]
