"""The budget shared by workers (``optuna_mix.budget``): who may train, who stops, who waits."""

from __future__ import annotations

import threading
import time

import optuna
import pytest
from optuna.trial import TrialState

from optuna_mix.attrs import FAIL_REASON_ATTR
from optuna_mix.budget import BudgetTaken, SharedBudget, count_slots

X = {"x": optuna.distributions.FloatDistribution(0, 1)}


def study_with(finished: int, failed: int = 0) -> optuna.Study:
    study = optuna.create_study(storage=optuna.storages.InMemoryStorage())
    for i in range(finished):
        study.add_trial(optuna.create_trial(value=float(i), params={"x": 0.5}, distributions=X))
    for _ in range(failed):
        study.add_trial(optuna.create_trial(state=TrialState.FAIL, params={"x": 0.5},
                                            distributions=X))
    return study


@pytest.mark.parametrize(
    "budget, finished, failed, running_below, running_above, refused",
    [
        (4, 0, 0, 0, 0, False),  # the first trial
        (4, 3, 0, 0, 0, False),  # the last slot
        (4, 4, 0, 0, 0, True),  # full
        (4, 3, 0, 1, 0, True),  # the last slot is held by an earlier running trial
        (4, 3, 0, 0, 1, False),  # a later running trial is the one that must give way
        (4, 2, 0, 1, 3, False),
        (4, 1, 0, 3, 0, True),
        (4, 3, 2, 0, 0, False),  # failed trials hold no slot
    ],
)
def test_a_trial_trains_only_if_it_holds_a_slot(
    budget, finished, failed, running_below, running_above, refused
):
    study = study_with(finished, failed)
    for _ in range(running_below):
        study.ask()
    trial = study.ask()
    for _ in range(running_above):
        study.ask()
    reason = budget_of(study, budget).refusal(trial.number)
    if not refused:
        assert reason is None
        return
    assert reason == (f"not run: the study's budget of {budget} trials was already held by "
                      f"{finished} finished and {running_below} running trials")


def budget_of(study: optuna.Study, budget: int, **kwargs) -> SharedBudget:
    """The shared budget of ``study``'s storage, as a worker builds it from its MixStudy."""
    storage = study._storage
    return SharedBudget(budget, storage, storage.get_study_id_from_name(study.study_name),
                        **kwargs)


def slots(study: optuna.Study, **kwargs):
    storage = study._storage
    return count_slots(storage, storage.get_study_id_from_name(study.study_name), **kwargs)


def run_worker(study: optuna.Study, shared: SharedBudget, n_trials: int = 5) -> int:
    """Trials this worker runs with the shared budget; returns how many it trained."""
    trained = []

    def objective(trial: optuna.Trial) -> float:
        shared.admit(trial)
        trained.append(trial.number)
        return 0.0

    study.optimize(objective, n_trials=n_trials, callbacks=[shared], catch=(BudgetTaken,))
    return len(trained)


def test_a_refused_trial_fails_untrained_with_its_reason_and_the_worker_stops():
    study = study_with(2)
    other = study.ask()  # another worker's running trial holds the last of 3 slots
    threading.Timer(0.5, lambda: study.tell(other, 1.0)).start()
    assert run_worker(study, budget_of(study, 3, poll_seconds=0.05)) == 0
    refused = study.trials[-1]
    assert refused.state == TrialState.FAIL and not refused.params
    assert refused.user_attrs[FAIL_REASON_ATTR].startswith("not run: the study's budget of 3")
    assert len(study.trials) == 4  # one refused trial, then it waited for the other and stopped


def test_count_slots_counts_running_trials_below_a_number():
    study = study_with(2)
    first, second = study.ask(), study.ask()
    assert slots(study) == slots(study, below=second.number + 1)
    assert slots(study, below=second.number).running == 1
    assert slots(study, below=first.number).running == 0


def test_a_worker_stops_exactly_at_the_budget():
    study = study_with(1)
    assert run_worker(study, budget_of(study, 4), n_trials=10) == 3
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 4


def test_a_worker_waits_on_others_last_trials_and_runs_what_a_failed_one_leaves():
    study = study_with(1)
    other = study.ask()  # another worker's trial holds the last slot once this one finishes
    threading.Timer(0.5, lambda: study.tell(other, state=TrialState.FAIL)).start()
    shared = budget_of(study, 3, poll_seconds=0.05)
    assert run_worker(study, shared) == 2  # its own slot, then the one the failure freed
    assert shared.waited >= 0.4
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 3


def test_a_worker_waits_on_others_last_trials_and_stops_when_they_complete():
    study = study_with(1)
    other = study.ask()
    threading.Timer(0.5, lambda: study.tell(other, 1.0)).start()
    shared = budget_of(study, 3, poll_seconds=0.05)
    assert run_worker(study, shared) == 1
    assert shared.waited >= 0.4
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 3


def test_a_timeout_ends_the_wait():
    study = study_with(1)
    study.ask()  # never finishes
    shared = budget_of(study, 3, timeout=0.3, poll_seconds=0.05)
    started = time.monotonic()
    assert run_worker(study, shared) == 1
    assert 0.2 <= time.monotonic() - started < 10


def test_a_trial_finishing_between_the_two_reads_is_never_missed(monkeypatch):
    """The running trials are read before the finished ones are counted: a trial that
    completes in between counts twice (a free slot refused, the worker waits a poll), never
    zero times (which let MariaDB studies of 8 workers end one trial over budget)."""
    study = study_with(2)
    other = study.ask()  # holds the last of 3 slots, and completes during the check below
    trial = study.ask()
    storage = study._storage
    reads = []

    def between_the_reads(read):
        def wrapped(*args, **kwargs):
            reads.append(read.__name__)
            if len(reads) == 2:  # the other trial completes just before the second read
                storage.set_trial_state_values(other._trial_id, TrialState.COMPLETE, [1.0])
            return read(*args, **kwargs)
        return wrapped

    for name in ("get_all_trials", "get_n_trials"):
        monkeypatch.setattr(storage, name, between_the_reads(getattr(storage, name)))
    assert budget_of(study, 3).refusal(trial.number) is not None
    assert reads[:2] == ["get_all_trials", "get_n_trials"]
