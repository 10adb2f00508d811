"""The excess criterion's reference: a mixture trained once per study, as one of its trials.

DoReMi's excess loss, ``max_i (L_i - R_i)``, measures each trial against a reference
mixture's own per-domain losses R (uniform by default). The reference is the study's first
trial, enqueued when the study is created (and again by ``optimize`` if it failed before it
finished): it trains like any trial, its value is 0 by the definition, and as it finishes
its losses go into the study's stored criterion (:func:`optuna_mix.criteria.set_criterion`),
where every worker's objective and sampler read them. A trial that finishes training before
the reference waits for it, failing a reference whose worker was killed as it polls (the
heartbeat's retry trains that one again); if the reference fails meanwhile, the trial fails
with the reason. A reference that fails is enqueued again once in the same run
(:class:`RetryReference`); a second failure stops the run, and the next ``optimize`` trains
it first; meanwhile no other trial trains (:func:`missing_reference`, asked first). A
pruner never stops the reference (:class:`SpareReference`). The first reference
losses recorded are the study's for good: a retried or a second reference (workers that
start at once may each enqueue one, at the cost of a trial of the budget) is valued
against them, so no value the study holds changes meaning.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import optuna
from optuna.trial import TrialState

from optuna_mix.attrs import FAIL_REASON_ATTR, MIXTURE_ATTR
from optuna_mix.budget import fail_stale_trials
from optuna_mix.criteria import CriterionSpec, set_criterion, study_criterion

REFERENCE_ATTR = "optuna_mix:reference"  # trial user attr: True on the reference's trials
POLL_SECONDS = 2.0  # how often a finished trial looks for the reference's losses


class ReferenceFailed(RuntimeError):
    """The reference mixture's trial failed before this trial could be valued."""


def reference_trials(study: optuna.Study, states: tuple[TrialState, ...] | None = None
                     ) -> list[optuna.trial.FrozenTrial]:
    return [t for t in study.get_trials(deepcopy=False, states=states)
            if t.user_attrs.get(REFERENCE_ATTR)]


def ensure_reference(study: optuna.Study, spec: CriterionSpec) -> bool:
    """Store ``spec`` if the study has no criterion yet, and enqueue the reference mixture's
    trial where the criterion needs one and none is trained, waiting or running. Returns
    whether it enqueued one."""
    if study_criterion(study) is None:
        set_criterion(study, spec)
    stored = study_criterion(study)
    if stored is None or not stored.needs_reference:
        return False
    if reference_trials(study, (TrialState.WAITING, TrialState.RUNNING)):
        return False
    params = {f"{MIXTURE_ATTR}.{d}": w for d, w in stored.reference_mixture}
    study.enqueue_trial(params, user_attrs={REFERENCE_ATTR: True})
    return True


def record_reference(study: optuna.Study, losses: Mapping[str, float]) -> CriterionSpec:
    """The reference's trial trained: its losses become the study's criterion's reference,
    unless one is recorded already (a retry of a reference killed after it recorded, or a
    second reference enqueued by workers starting at once): every trial is then measured
    against that first one, so no value the study holds changes meaning."""
    stored = study_criterion(study)
    assert stored is not None and stored.name == "excess"
    if stored.reference is not None:
        return stored
    spec = stored.with_reference(losses)
    set_criterion(study, spec)
    return spec


def missing_reference(study: optuna.Study) -> str | None:
    """Why no trial of ``study`` can be valued by its excess criterion: its reference is
    neither recorded nor waiting or running (the reason, with the failed trial's), or None.
    Asked before a trial trains, so that no compute goes into a trial that must fail."""
    spec = study_criterion(study)
    if spec is None or not spec.needs_reference:
        return None
    if reference_trials(study, (TrialState.WAITING, TrialState.RUNNING)):
        return None
    which = ""
    if failed := reference_trials(study, (TrialState.FAIL,)):
        reason = failed[-1].user_attrs.get(FAIL_REASON_ATTR)
        which = f" (trial #{failed[-1].number} failed{f': {reason}' if reason else ''})"
    return (f"the excess criterion's reference mixture is not trained{which}: rerun "
            "`optuna-mix study optimize`, which trains it first")


class RetryReference:
    """An ``optimize`` callback: a reference trial that failed is enqueued again, once, so
    that this worker's next trial trains it; a second failure stops the run with the reason
    (:class:`ReferenceFailed`): every other trial would train and then fail unvalued."""

    def __init__(self, retries: int = 1) -> None:
        self.retries = retries

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if trial.state != TrialState.FAIL or not trial.user_attrs.get(REFERENCE_ATTR):
            return
        if (problem := missing_reference(study)) is None:
            return  # recorded before it failed, or retried by another worker (or heartbeat)
        spec = study_criterion(study)
        assert spec is not None
        if self.retries <= 0:  # raised out of study.optimize: the run ends here
            raise ReferenceFailed(problem)
        self.retries -= 1
        ensure_reference(study, spec)


class SpareReference(optuna.pruners.BasePruner):
    """``pruner``, except that it never prunes the reference's trial: every trial's value
    needs the reference's losses of a whole training run."""

    def __init__(self, pruner: optuna.pruners.BasePruner) -> None:
        self.pruner = pruner

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return not trial.user_attrs.get(REFERENCE_ATTR) and self.pruner.prune(study, trial)


def wait_for_reference(study: optuna.Study, *, poll: float = POLL_SECONDS) -> CriterionSpec:
    """The study's criterion with its reference's losses, waiting while the reference trains
    in another worker; :class:`ReferenceFailed` if no reference trial is left to finish."""
    while True:
        fail_stale_trials(study)  # a reference whose worker was killed: failed (and retried)
        spec = study_criterion(study)
        if spec is None:
            raise ReferenceFailed("the study stores no criterion (it was not created by "
                                  "optuna-mix study create)")
        if not spec.needs_reference:
            return spec
        if (problem := missing_reference(study)) is not None:
            raise ReferenceFailed(problem)
        time.sleep(poll)
