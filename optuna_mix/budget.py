"""One study budget shared exactly by any number of workers: no trial too many, none missing.

Workers that stop once the study holds ``budget`` finished trials (Optuna's
``MaxTrialsCallback``) overshoot: each checks after its own trial, so ``N`` workers may finish
up to ``N - 1`` trials too many. Here a trial is a *claim* on one of the budget's slots, and
claims are ordered by trial number (the storage numbers trials atomically, and a WAITING
trial, a retry or an enqueued mixture, is always taken before a new one is made):

- a trial starts training only if the finished trials plus the RUNNING ones numbered below it
  leave it a slot; otherwise it is FAILed at once, untrained, with the reason (a race between
  workers asking for the last slot at the same moment, the only case that gets this far),
  and the worker goes on as after any trial:
- after each trial a worker stops if the study is full; if the remaining slots are all held
  by other workers' RUNNING trials, it waits for them rather than leave: should one of them
  fail, or its worker be killed (its heartbeat goes stale and the trial is retried), this
  worker runs what is missing, so the budget completes without a rerun.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from optuna_mix.attrs import FAIL_REASON_ATTR
from optuna_mix.signals import interruptible

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
POLL_SECONDS = 1.0  # a waiting worker reads two counts per poll: cheap for any database


class BudgetTaken(RuntimeError):
    """This trial found the study's budget already held by finished and running trials."""


@dataclass(frozen=True)
class Slots:
    finished: int
    running: int  # other trials RUNNING now (below ``number`` where one is given)

    def free(self, budget: int) -> int:
        return budget - self.finished - self.running


def count_slots(storage: BaseStorage, study_id: int, *, below: int | None = None) -> Slots:
    """Finished trials and RUNNING ones (those numbered below ``below`` where given).

    ``storage`` is best the RDB storage itself, not the cache an Optuna study wraps it in: its
    ``get_n_trials`` is a COUNT (:class:`optuna_mix.storage.MixRDBStorage`) that reads no
    finished trial.
    """
    # RUNNING first: a trial that finishes between the two reads is counted twice (a slot
    # refused that was free: the worker waits a poll) rather than not at all (one too many)
    running = storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,))
    finished = storage.get_n_trials(study_id, FINISHED)
    held = sum(1 for t in running if below is None or t.number < below)
    return Slots(finished, held)


def fail_stale_trials(study: optuna.Study) -> None:
    """Fail (and retry) trials of killed workers now, rather than at this worker's next trial."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


class SharedBudget:
    """The admission check (:meth:`admit`) and the stop-or-wait callback of one worker."""

    def __init__(self, budget: int, storage: BaseStorage, study_id: int, *,
                 timeout: float | None = None, poll_seconds: float = POLL_SECONDS) -> None:
        self.budget = budget
        self.storage, self.study_id = storage, study_id
        self.poll_seconds = poll_seconds
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.waited = 0.0  # seconds this worker spent waiting on other workers' last trials

    def refusal(self, number: int) -> str | None:
        """Why trial ``number`` may not train, or None when it holds a slot."""
        slots = count_slots(self.storage, self.study_id, below=number)
        if slots.free(self.budget) > 0:
            return None
        return (f"not run: the study's budget of {self.budget} trials was already held by "
                f"{slots.finished} finished and {slots.running} running trials")

    def admit(self, trial: optuna.Trial) -> None:
        """Raise :class:`BudgetTaken` (after writing why) unless ``trial`` holds a slot."""
        reason = self.refusal(trial.number)
        if reason is None:
            return
        trial.set_user_attr(FAIL_REASON_ATTR, reason)
        raise BudgetTaken(reason)  # then the callback stops this worker, or waits (see above)

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        """After each trial: stop when the study is full, wait while others hold the rest."""
        started = time.monotonic()
        while True:
            slots = count_slots(self.storage, self.study_id)
            if slots.finished >= self.budget:
                study.stop()
                break
            if slots.free(self.budget) > 0:
                break  # a slot is free (or a WAITING retry is there to take)
            if self.deadline is not None and time.monotonic() >= self.deadline:
                study.stop()  # --timeout: this worker's time is up, others finish the rest
                break
            # a killed worker's trial holds a slot until it is failed (Optuna does that before
            # each trial; a waiting worker starts none, so it checks here) and its retry frees it
            fail_stale_trials(study)
            with interruptible():  # no trial of this worker is in flight: a signal may stop it
                time.sleep(self.poll_seconds)
        self.waited += time.monotonic() - started
