"""Every criterion, end to end: the trial value is what its definition says of the trial's
losses, the study stores the criterion for its samplers, and the excess criterion's reference
is trained once, first, and again only if it failed."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from helpers import run_study
from optuna_mix.config import parse_config
from optuna_mix.criteria import CriterionSpec, set_criterion, study_criterion
from optuna_mix.excess import REFERENCE_ATTR, ReferenceFailed, wait_for_reference
from optuna_mix.runner import create_mix_study, load_mix_study, optimize
from optuna_mix.storage import open_storage

DOMAINS = ["a", "b", "c", "d"]


def _config(sampler: str = "sobol", **study) -> dict:
    return {"study": {"name": "crit", "n_trials": 6, "seed": 0, **study},
            "sampler": {"name": sampler, "n_startup_trials": 3} if sampler == "gp"
            else {"name": sampler},
            "objective": {"kind": "surface", "family": "dml", "noise": 0.01},
            "domains": {d: {} for d in DOMAINS}}


_run = run_study


def _losses(trial) -> np.ndarray:
    return np.array([trial.user_attrs["losses"][d] for d in DOMAINS])


DEFINITIONS = {  # the trial value of losses L (a, b, c, d order), written out by hand
    "mean": lambda L, ref: L.mean(),
    "max": lambda L, ref: L.max(),
    "median": lambda L, ref: np.median(L),
    "weighted": lambda L, ref: (3 * L[0] + L[1] + L[2] + 0 * L[3]) / 5,
    "cvar": lambda L, ref: np.sort(L)[-2:].mean(),  # ceil(0.5 * 4) = 2 worst
    "excess": lambda L, ref: (L - ref).max(),
}
KEYS = {"weighted": {"criterion_weights": {"a": 3, "d": 0}}, "cvar": {"criterion_fraction": 0.5}}


@pytest.mark.parametrize("criterion", list(DEFINITIONS))
def test_each_criterion_makes_the_trial_value_its_definition(sqlite_url, criterion):
    study = _run(sqlite_url, _config(criterion=criterion, **KEYS.get(criterion, {})))
    done = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(done) == 6
    ref = _losses(done[0]) if criterion == "excess" else None
    for t in done:
        assert t.value == pytest.approx(DEFINITIONS[criterion](_losses(t), ref), abs=1e-12)
    spec = study_criterion(study)
    assert spec is not None and spec.name == criterion


def test_the_excess_reference_is_the_first_trial_trained_once(sqlite_url):
    study = _run(sqlite_url, _config(criterion="excess"))
    first = study.trials[0]
    assert first.user_attrs[REFERENCE_ATTR] is True and first.value == 0.0
    assert first.user_attrs["mix"] == pytest.approx({d: 0.25 for d in DOMAINS})
    assert [t.number for t in study.trials if t.user_attrs.get(REFERENCE_ATTR)] == [0]
    spec = study_criterion(study)
    assert dict(spec.reference) == pytest.approx(first.user_attrs["losses"])


def _broken_evaluator(calls: list, failing: int):
    """A surface evaluator whose first ``failing`` calls crash, counting every call."""
    from optuna_mix import objective as objective_module

    real = objective_module.SurfaceEvaluator.__call__

    def evaluate(self, trial, weights):
        calls.append(trial.number)
        if len(calls) <= failing:
            raise RuntimeError("the proxy crashed")
        return real(self, trial, weights)

    return evaluate


def test_a_reference_that_fails_is_trained_again_in_the_same_run(sqlite_url, monkeypatch):
    from optuna_mix import objective as objective_module

    config = parse_config(_config(criterion="excess"))
    create_mix_study(config, open_storage(sqlite_url))
    mix = load_mix_study(config.name, open_storage(sqlite_url))
    calls: list = []
    monkeypatch.setattr(objective_module.SurfaceEvaluator, "__call__",
                        _broken_evaluator(calls, failing=1))
    optimize(mix, n_trials=3, show_progress=False)
    refs = [t for t in mix.study.trials if t.user_attrs.get(REFERENCE_ATTR)]
    assert [t.state for t in refs] == [TrialState.FAIL, TrialState.COMPLETE]
    assert refs[0].user_attrs["fail_reason"] == "RuntimeError: the proxy crashed"
    last = mix.study.trials[-1]
    assert last.state == TrialState.COMPLETE and last.value == pytest.approx(
        (_losses(last) - _losses(refs[1])).max())


def test_a_reference_that_fails_twice_stops_the_run_and_the_next_optimize_trains_it(
        sqlite_url, monkeypatch):
    from optuna_mix import objective as objective_module
    from optuna_mix.excess import ReferenceFailed

    config = parse_config(_config(criterion="excess"))
    create_mix_study(config, open_storage(sqlite_url))
    mix = load_mix_study(config.name, open_storage(sqlite_url))
    calls: list = []
    with monkeypatch.context() as m:
        m.setattr(objective_module.SurfaceEvaluator, "__call__",
                  _broken_evaluator(calls, failing=10))
        with pytest.raises(ReferenceFailed, match="trial #1 failed: RuntimeError: the proxy"):
            optimize(mix, n_trials=5, show_progress=False)
    # the retry, then the stop: no other trial trained only to fail unvalued
    assert calls == [0, 1] and [t.state for t in mix.study.trials] == [TrialState.FAIL] * 2
    assert study_criterion(mix.study).needs_reference
    # a trial that cannot be valued fails before it trains, saying why
    mix.study.optimize(objective_module.MixtureObjective(config), n_trials=1,
                       catch=(RuntimeError,))
    assert calls == [0, 1]
    assert "reference mixture is not trained" in mix.study.trials[-1].user_attrs["fail_reason"]
    optimize(load_mix_study(config.name, open_storage(sqlite_url)), show_progress=False)
    refs = [t for t in mix.study.trials if t.user_attrs.get(REFERENCE_ATTR)]
    assert [t.state for t in refs] == [TrialState.FAIL, TrialState.FAIL, TrialState.COMPLETE]
    assert not study_criterion(mix.study).needs_reference
    later = [t for t in mix.study.get_trials(states=(TrialState.COMPLETE,)) if t.number > refs[2].number]
    ref = _losses(refs[2])
    assert later and all(t.value == pytest.approx((_losses(t) - ref).max()) for t in later)


class _AlwaysPrune(optuna.pruners.BasePruner):
    def prune(self, study, trial) -> bool:
        return True


def test_a_pruner_never_stops_the_excess_reference(sqlite_url):
    from optuna_mix.excess import SpareReference

    def reporting(trial):
        for step in range(3):
            trial.report(1.0, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return 1.0

    study = optuna.create_study(pruner=SpareReference(_AlwaysPrune()))
    study.enqueue_trial({}, user_attrs={REFERENCE_ATTR: True})
    study.optimize(reporting, n_trials=2)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.PRUNED]
    assert sorted(study.trials[0].intermediate_values) == [0, 1, 2]  # trained whole
    # an excess study's pruner is wrapped so, whichever the config names
    config = parse_config(_config(criterion="excess", pruner="median"))
    create_mix_study(config, open_storage(sqlite_url))
    pruner = load_mix_study(config.name, open_storage(sqlite_url)).study.pruner
    assert isinstance(pruner, SpareReference)
    assert isinstance(pruner.pruner, optuna.pruners.MedianPruner)


def test_a_trial_waits_for_the_reference_and_fails_with_the_reason_if_it_is_gone():
    study = optuna.create_study()
    set_criterion(study, CriterionSpec("excess", reference_mixture=(("a", 0.5), ("b", 0.5))))
    with pytest.raises(ReferenceFailed, match="reference mixture is not trained"):
        wait_for_reference(study, poll=0.0)
    study.enqueue_trial({"mix.a": 0.5, "mix.b": 0.5}, user_attrs={REFERENCE_ATTR: True})
    polls = []

    def trained_meanwhile(seconds):  # the reference finishes in another worker
        polls.append(seconds)
        set_criterion(study, study_criterion(study).with_reference({"a": 1.0, "b": 2.0}))

    import optuna_mix.excess as excess

    original = excess.time.sleep
    excess.time.sleep = trained_meanwhile
    try:
        spec = wait_for_reference(study, poll=0.5)
    finally:
        excess.time.sleep = original
    assert polls == [0.5] and dict(spec.reference) == {"a": 1.0, "b": 2.0}


@pytest.mark.parametrize("sampler", ["gp", "dml"])
@pytest.mark.parametrize("criterion", ["weighted", "cvar", "excess"])
def test_the_loss_modelling_samplers_model_the_stored_criterion(sqlite_url, sampler, criterion):
    raw = _config(sampler, criterion=criterion, **KEYS.get(criterion, {}))
    if sampler == "dml":
        raw["sampler"] = {"name": "dml", "n_startup_trials": 6}
    raw["study"]["n_trials"] = 9
    study = _run(sqlite_url, raw)
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 9
    if sampler == "gp":
        from optuna_mix.samplers import SimplexGPSampler
        from optuna_mix.samplers.gp.model import training_data

        gp = SimplexGPSampler()
        space = gp._space(study, gp.infer_relative_search_space(study, None))
        _, _, _, composite = training_data(study, space, "losses")
        assert composite is not None and composite.criterion.name == criterion
        assert composite.linear == (criterion == "weighted")  # the exact transform
        acq = [t.system_attrs.get("optuna_mix:gp:acquisition") for t in study.trials[3:]]
        assert all(a and a.startswith("qlognei") for a in acq)
    else:
        fitted = [t.user_attrs["mixing_law.mix"] for t in study.trials[6:]]
        assert all(f["status"] == "fitted" and f["criterion"] == criterion for f in fitted)


def test_a_second_reference_is_valued_against_the_first_not_recorded_over_it():
    # a retry of a reference killed after it recorded, or two references enqueued by workers
    # that started at once: the first losses stay the study's, so no stored value changes
    from optuna_mix.excess import record_reference

    study = optuna.create_study()
    set_criterion(study, CriterionSpec("excess", reference_mixture=(("a", 0.5), ("b", 0.5))))
    first = record_reference(study, {"a": 1.0, "b": 2.0})
    second = record_reference(study, {"a": 1.1, "b": 1.9})
    assert dict(first.reference) == dict(second.reference) == {"a": 1.0, "b": 2.0}
    assert dict(study_criterion(study).reference) == {"a": 1.0, "b": 2.0}
    assert second.bind(["a", "b"])(np.array([1.1, 1.9])) == pytest.approx(0.1)
