"""Criteria: how per-domain losses become one trial value (defined in
:mod:`optuna_mix.samplers.criteria`, where the loss-modelling samplers need them)."""

from optuna_mix.samplers.criteria import (
    CRITERIA,
    Criterion,
    apply_criterion,
    criterion_fn,
    detect_criterion,
    register_criterion,
)

__all__ = ["CRITERIA", "Criterion", "apply_criterion", "criterion_fn", "detect_criterion",
           "register_criterion"]
