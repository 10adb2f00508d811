"""SimplexGPSampler: Optuna's conformance suite plus the promises of issue 4."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import optuna
import pytest
from optuna.testing.pytest_samplers import BasicSamplerTestCase, RelativeSamplerTestCase
from optuna.trial import TrialState

from gp_helpers import FAST, is_simplex, surface_objective, weights
from optuna_mix import suggest_mixture
from optuna_mix.samplers import SamplerFallbackWarning, SimplexGPSampler, SobolMixtureSampler
from optuna_mix.samplers.gp import sampler as sampler_module
from optuna_mix.samplers.gp.law import REPEAT_TOL, LawMean
from optuna_mix.surfaces import make_surface


class TestGPConformance(BasicSamplerTestCase, RelativeSamplerTestCase):
    @pytest.fixture
    def sampler(self):
        return lambda: SimplexGPSampler(seed=0, n_startup_trials=0, **FAST)


@pytest.mark.parametrize("n_restarts", [0, 1], ids=["local rounds", "SLSQP refinement"])
def test_proposals_are_exact_simplex_points(n_restarts):
    surface = make_surface("powerlaw", 4, seed=1)
    sampler = SimplexGPSampler(seed=0, n_startup_trials=2, n_restarts=n_restarts)
    study = optuna.create_study(sampler=sampler)
    study.optimize(surface_objective(surface), n_trials=7)
    for t in study.trials:
        w = weights(t)
        assert len(w) == 4 and is_simplex(w)
        assert np.allclose(w, list(t.user_attrs["mix"].values()), atol=0, rtol=0)


def test_answers_from_the_first_completed_trial(monkeypatch):
    sampler = SimplexGPSampler(seed=0, n_startup_trials=0, **FAST)
    study = optuna.create_study(sampler=sampler)
    study.optimize(surface_objective(make_surface("dml", 3, seed=0)), n_trials=1)
    proposals = []
    real_propose = sampler_module.propose
    monkeypatch.setattr(
        sampler_module, "propose", lambda *a, **kw: proposals.append(1) or real_propose(*a, **kw)
    )
    trial = study.ask()
    space = sampler.infer_relative_search_space(study, trial._cached_frozen_trial)
    params = sampler.sample_relative(study, trial._cached_frozen_trial, space)
    assert is_simplex([params[f"mix.d{i}"] for i in range(3)])
    assert proposals, "the GP was not used"


def test_faces_are_reachable():
    # the optimum puts zero weight on c and d: the sampler must propose exact zeros
    def objective(trial):
        w = suggest_mixture(trial, ["a", "b", "c", "d"])
        return (w["a"] - 0.6) ** 2 + (w["b"] - 0.6) ** 2 + w["c"] + w["d"]

    study = optuna.create_study(sampler=SimplexGPSampler(seed=0, n_startup_trials=3))
    study.optimize(objective, n_trials=10)
    zeros = [t for t in study.trials[3:] if (weights(t) == 0.0).any()]
    assert zeros, [list(weights(t).round(3)) for t in study.trials]
    assert study.best_value < 0.06


def test_pending_trials_get_distinct_proposals():
    surface = make_surface("powerlaw", 3, seed=0)
    sampler = SimplexGPSampler(seed=0, n_startup_trials=3)
    study = optuna.create_study(sampler=sampler)
    study.optimize(surface_objective(surface), n_trials=4)
    running = [study.ask() for _ in range(3)]
    points = [np.array(list(suggest_mixture(t, list(surface.domains)).values())) for t in running]
    for i in range(3):
        for j in range(i):
            assert np.abs(points[i] - points[j]).sum() > 1e-3, points


def test_seeded_runs_are_reproducible():
    import torch

    def run(torch_seed: int, keep_losses: bool):
        torch.manual_seed(torch_seed)  # whatever state torch's global generator is in
        study = optuna.create_study(sampler=SimplexGPSampler(seed=3, n_startup_trials=2))
        surface = make_surface("dml", 3, seed=2, noise=0.01)
        objective = surface_objective(surface, np.random.default_rng(0), keep_losses=keep_losses)
        study.optimize(objective, n_trials=8)  # from trial 7 on: the law prior too
        return [list(weights(t)) for t in study.trials]

    assert run(0, False) == run(1, False)
    assert run(0, True) == run(1, True)


def test_pickles_and_keeps_working():
    sampler = SimplexGPSampler(seed=0, n_startup_trials=1, **FAST)
    study = optuna.create_study(sampler=sampler)
    objective = surface_objective(make_surface("dml", 3, seed=0))
    study.optimize(objective, n_trials=3)
    clone = pickle.loads(pickle.dumps(sampler))
    assert isinstance(clone, SimplexGPSampler)
    study.sampler = clone
    study.optimize(objective, n_trials=2)
    assert all(is_simplex(weights(t)) for t in study.trials)


def test_failed_and_pruned_trials_are_excluded():
    sampler = SimplexGPSampler(seed=0, n_startup_trials=1, **FAST)
    study = optuna.create_study(sampler=sampler)
    objective = surface_objective(make_surface("dml", 3, seed=0))
    study.optimize(objective, n_trials=3)

    def failing(trial):
        suggest_mixture(trial, ["d0", "d1", "d2"])
        raise RuntimeError("boom")

    def pruned(trial):
        suggest_mixture(trial, ["d0", "d1", "d2"])
        raise optuna.TrialPruned()

    study.optimize(failing, n_trials=1, catch=(RuntimeError,))
    study.optimize(pruned, n_trials=1)
    study.optimize(objective, n_trials=1)
    states = [t.state for t in study.trials]
    assert TrialState.FAIL in states and TrialState.PRUNED in states
    rec = sampler.recommend(study)
    assert rec.n_trials == 4
    assert rec.trial_number in [t.number for t in study.trials if t.state == TrialState.COMPLETE]


def test_recommend_returns_a_simplex_point_with_mean_and_std():
    surface = make_surface("powerlaw", 4, seed=0, noise=0.01)
    sampler = SimplexGPSampler(seed=0, n_startup_trials=3)
    study = optuna.create_study(sampler=sampler)
    study.optimize(surface_objective(surface, np.random.default_rng(0)), n_trials=8)
    for among in ("evaluated", "all"):
        rec = sampler.recommend(study, among=among)
        assert is_simplex(list(rec.weights.values()))
        assert list(rec.weights) == list(surface.domains)
        assert np.isfinite(rec.value) and np.isfinite(rec.std) and rec.std >= 0
        # the prediction is in the objective's units, near the true value of that mixture
        assert abs(rec.value - surface.value(np.array(list(rec.weights.values())))) < 0.1
    with pytest.raises(ValueError):
        sampler.recommend(study, among="best")


def _regret_of_recommendation(surface, sampler, study, criterion="mean"):
    return surface.regret(np.array(list(sampler.recommend(study).weights.values())), criterion)


def test_regret_below_sobol_at_a_small_budget():
    budget = 16
    gp_regrets, sobol_regrets = [], []
    for seed in range(3):  # three surfaces: one surface says little about a sampler
        surface = make_surface("powerlaw", 4, seed=seed, noise=0.01)
        gp = SimplexGPSampler(seed=seed)
        study = optuna.create_study(sampler=gp)
        objective = surface_objective(surface, np.random.default_rng(seed), keep_losses=True)
        study.optimize(objective, n_trials=budget)
        gp_regrets.append(_regret_of_recommendation(surface, gp, study))
        s = optuna.create_study(sampler=SobolMixtureSampler(seed=seed))
        s.optimize(surface_objective(surface, np.random.default_rng(seed)), n_trials=budget)
        sobol_regrets.append(
            surface.regret(np.array(list(s.best_trial.user_attrs["mix"].values())))
        )
    assert np.median(gp_regrets) < 0.5 * np.median(sobol_regrets), (gp_regrets, sobol_regrets)


def _joint_objective(trial):
    """Two mixtures, a log-scale float, an int and a categorical, each with its own effect."""
    a = suggest_mixture(trial, ["x", "y", "z"], name="a")
    b = suggest_mixture(trial, ["p", "q"], name="b")
    lr = trial.suggest_float("lr", 1e-5, 1e-1, log=True)
    layers = trial.suggest_int("layers", 1, 8)
    act = trial.suggest_categorical("act", ["relu", "gelu"])
    return (
        (a["x"] - 0.5) ** 2 + b["q"] + (np.log10(lr) + 3) ** 2 / 10 + abs(layers - 4) / 10
        + (0.1 if act == "relu" else 0.0)
    )


def test_other_parameters_and_several_mixtures_are_modelled_jointly():
    # with the SLSQP refinement: the categorical one-hot stays fixed while it moves
    sampler = SimplexGPSampler(seed=0, n_startup_trials=3, **{**FAST, "n_restarts": 1})
    study = optuna.create_study(sampler=sampler)
    study.optimize(_joint_objective, n_trials=7)
    trial = study.ask()
    space = sampler.infer_relative_search_space(study, trial._cached_frozen_trial)
    assert {"a.x", "b.p", "lr", "layers", "act"} <= set(space)
    for t in study.trials[:7]:
        assert is_simplex(weights(t, "a")) and is_simplex(weights(t, "b"))
        assert 1e-5 <= t.params["lr"] <= 1e-1 and isinstance(t.params["layers"], int)
        # relative params of GP trials are in storage: nothing fell back to independent sampling
    gp_trials = study.trials[3:7]
    assert all(any(k.startswith("optuna_mix:gp:relative") for k in t.system_attrs)
               for t in gp_trials)


def test_maximize_direction():
    surface = make_surface("dml", 3, seed=0)
    domains = list(surface.domains)

    def objective(trial):
        return -float(surface.value(np.array(list(suggest_mixture(trial, domains).values()))))

    sampler = SimplexGPSampler(seed=0, n_startup_trials=3, **FAST)
    study = optuna.create_study(sampler=sampler, direction="maximize")
    study.optimize(objective, n_trials=6)
    rec = sampler.recommend(study)
    assert rec.value > np.median([t.value for t in study.trials]) - 0.05


def test_unknown_prior_mean_is_refused():
    with pytest.raises(ValueError, match="prior_mean"):
        SimplexGPSampler(prior_mean="quadratic")


def test_jitter_notices_of_linear_operator_do_not_reach_the_study_log():
    import warnings

    from linear_operator.utils.warnings import NumericalWarning

    surface = make_surface("powerlaw", 3, seed=0)
    gp = SimplexGPSampler(seed=0, n_startup_trials=0, **FAST)
    study = optuna.create_study(sampler=gp)
    for _ in range(4):  # the same mixture four times: a singular kernel matrix without jitter
        study.enqueue_trial({"mix.d0": 0.2, "mix.d1": 0.3, "mix.d2": 0.5})
    with warnings.catch_warnings():
        warnings.simplefilter("error", NumericalWarning)
        study.optimize(surface_objective(surface, keep_losses=True), n_trials=7)
        gp.recommend(study)
    assert len(study.trials) == 7


def test_a_law_model_that_only_repeats_a_trial_hands_over_to_the_constant_mean_gp(
    monkeypatch,
):
    surface = make_surface("powerlaw", 4, seed=0, noise=0.01)
    objective = surface_objective(surface, np.random.default_rng(0), keep_losses=True)
    study = optuna.create_study(sampler=SobolMixtureSampler(seed=0))
    study.optimize(objective, n_trials=10)  # k + 4 + 2: the law prior is on
    gp = SimplexGPSampler(seed=0, **FAST)
    study.sampler = gp
    first = np.array([study.trials[3].params[f"mix.{d}"] for d in surface.domains])
    calls = []
    real_propose = sampler_module.propose

    def propose(model, space, X, *args, **kwargs):
        law = isinstance(model.gp.mean_module, LawMean)
        calls.append(law)
        # the law model "repeats" trial 3; the constant-mean one proposes what it finds
        return X[3] if law else real_propose(model, space, X, *args, **kwargs)

    monkeypatch.setattr(sampler_module, "propose", propose)
    study.optimize(objective, n_trials=1)
    assert calls == [True, False]
    proposed = weights(study.trials[-1])
    assert np.max(np.abs(proposed - first / first.sum())) > REPEAT_TOL


@pytest.mark.parametrize("prior_mean", ["law", "constant"])
def test_only_prior_mean_law_puts_a_law_under_the_gp(prior_mean, monkeypatch):
    surface = make_surface("dml", 4, seed=2)
    objective = surface_objective(surface, keep_losses=True)
    study = optuna.create_study(sampler=SobolMixtureSampler(seed=0))
    study.optimize(objective, n_trials=12)  # k + 8: enough for the law
    laws = []
    real_propose = sampler_module.propose

    def propose(model, *args, **kwargs):
        laws.append(isinstance(model.gp.mean_module, LawMean))
        return real_propose(model, *args, **kwargs)

    monkeypatch.setattr(sampler_module, "propose", propose)
    study.sampler = SimplexGPSampler(seed=0, prior_mean=prior_mean, **FAST)
    study.optimize(objective, n_trials=1)
    assert laws[0] == (prior_mean == "law") and laws[1:] in ([], [False])


def test_losses_it_cannot_model_are_said_once_with_the_reason_not_dropped_silently():
    surface = make_surface("powerlaw", 4, seed=0)
    domains = list(surface.domains)

    def objective(trial):  # the value is a weighted mean: no criterion of the losses
        w = np.array(list(suggest_mixture(trial, domains).values()))
        losses = surface.losses(w)
        trial.set_user_attr("losses", dict(zip(domains, map(float, losses))))
        return float(losses @ np.array([0.4, 0.3, 0.2, 0.1]))

    study = optuna.create_study(sampler=SimplexGPSampler(seed=0, n_startup_trials=2, **FAST))
    with pytest.warns(SamplerFallbackWarning, match="not the mean, max or median") as caught:
        study.optimize(objective, n_trials=5)
    assert len([w for w in caught if w.category is SamplerFallbackWarning]) == 1
    assert "modelling the trial values only" in str(caught[0].message)


def test_a_reason_whose_counts_change_from_trial_to_trial_is_still_said_once():
    surface = make_surface("powerlaw", 4, seed=0)
    domains = list(surface.domains)

    def objective(trial):  # the first trial keeps no losses, the others do
        w = np.array(list(suggest_mixture(trial, domains).values()))
        losses = surface.losses(w)
        if trial.number > 0:
            trial.set_user_attr("losses", dict(zip(domains, map(float, losses))))
        return float(np.mean(losses))

    study = optuna.create_study(sampler=SimplexGPSampler(seed=0, n_startup_trials=2, **FAST))
    with pytest.warns(SamplerFallbackWarning, match="keep no 'losses'") as caught:
        study.optimize(objective, n_trials=6)
    assert len([w for w in caught if w.category is SamplerFallbackWarning]) == 1


def test_a_values_only_study_gets_no_warning():
    surface = make_surface("powerlaw", 4, seed=0)
    study = optuna.create_study(sampler=SimplexGPSampler(seed=0, n_startup_trials=2, **FAST))
    with warnings.catch_warnings():
        warnings.simplefilter("error", SamplerFallbackWarning)
        study.optimize(surface_objective(surface), n_trials=4)


STALL_CASES = {
    "no trials": ([], "minimize", 0),
    "best is the last": ([3.0, 2.0, 1.0], "minimize", 0),
    "best is the first": ([1.0, 2.0, 3.0], "minimize", 2),
    "a tie keeps the earlier": ([1.0, 2.0, 1.0, 5.0], "minimize", 3),
    "maximised": ([1.0, 2.0, 3.0], "maximize", 0),
}


@pytest.mark.parametrize("values,direction,expected", STALL_CASES.values(), ids=STALL_CASES)
def test_trials_since_best(values, direction, expected):
    trials = [optuna.trial.create_trial(value=v) for v in values]
    for number, t in enumerate(trials):
        t.number = number
    trials = trials[::-1]  # read in trial-number order, not the order given
    assert sampler_module.trials_since_best(
        trials, optuna.study.StudyDirection[direction.upper()]) == expected


def test_a_stalled_study_gets_a_thompson_proposal_every_stall_trials(monkeypatch):
    # the first trial stays the best: after 3 trials without a better value, then after 6,
    # the proposal is a Thompson draw; the others are qLogNEI's, and every one says which
    surface = make_surface("powerlaw", 3, seed=0)
    best = {"mix.d0": 0.2, "mix.d1": 0.3, "mix.d2": 0.5}

    def objective(trial):
        w = np.array(list(suggest_mixture(trial, list(surface.domains)).values()))
        return 0.0 if trial.number == 0 else 1.0 + float(surface.value(w))

    gp = SimplexGPSampler(seed=0, n_startup_trials=1, stall_trials=3, **FAST)
    study = optuna.create_study(sampler=gp)
    study.enqueue_trial(best)
    study.optimize(objective, n_trials=9)
    how = [t.system_attrs.get(sampler_module.ACQUISITION_ATTR, "") for t in study.trials]
    thompson = [i for i, h in enumerate(how) if h.startswith("thompson")]
    assert thompson == [4, 7], how
    assert all(h.startswith("qlognei") for i, h in enumerate(how[1:], 1) if i not in thompson)
    assert all(is_simplex(weights(t)) for t in study.trials)


def test_stall_trials_none_never_draws_and_below_one_is_refused():
    surface = make_surface("powerlaw", 3, seed=0)
    gp = SimplexGPSampler(seed=0, n_startup_trials=1, stall_trials=None, **FAST)
    study = optuna.create_study(sampler=gp)
    study.optimize(lambda t: t.number + float(surface.value(
        np.array(list(suggest_mixture(t, list(surface.domains)).values())))), n_trials=6)
    assert not any(t.system_attrs.get(sampler_module.ACQUISITION_ATTR, "").startswith("thompson")
                   for t in study.trials)
    with pytest.raises(ValueError, match="stall_trials"):
        SimplexGPSampler(stall_trials=0)


def test_workers_asking_at_once_in_a_stall_make_one_thompson_draw_not_several():
    # four asks while trials 1-3 have not beaten trial 0: one draw, the rest qLogNEI's with
    # that draw's point pending (a draw is blind to the running trials' points)
    surface = make_surface("powerlaw", 3, seed=0)
    gp = SimplexGPSampler(seed=0, n_startup_trials=1, stall_trials=3, **FAST)
    study = optuna.create_study(sampler=gp)
    study.enqueue_trial({"mix.d0": 0.2, "mix.d1": 0.3, "mix.d2": 0.5})
    study.optimize(lambda t: float(t.number) + float(surface.value(
        np.array(list(suggest_mixture(t, list(surface.domains)).values())))), n_trials=4)
    asked = [study.ask() for _ in range(4)]
    for t in asked:
        suggest_mixture(t, list(surface.domains))
    how = [study._storage.get_trial(t._trial_id).system_attrs[sampler_module.ACQUISITION_ATTR]
           for t in asked]
    assert sum(h.startswith("thompson") for h in how) == 1, how
