"""MixingLawSampler: Optuna's conformance suite, law recovery, fallbacks, dedup, attrs."""

from __future__ import annotations

import time

import numpy as np
import optuna
import pytest
from optuna.testing.pytest_samplers import (
    BasicSamplerTestCase,
    MultiObjectiveSamplerTestCase,
    RelativeSamplerTestCase,
)

from optuna_mix import suggest_mixture
from optuna_mix.samplers import (
    MixingLawSampler,
    SamplerFallbackWarning,
    sobol_simplex_points,
)
from optuna_mix.samplers._laws import LawFitError, make_law
from optuna_mix.samplers._optimize import minimize_on_simplex
from optuna_mix.surfaces import make_surface

DOMAINS = ["books", "web", "code", "papers"]
ATTR = "mixing_law.mix"


@pytest.fixture(params=["bimix", "dml", "regmix"])
def law(request) -> str:
    return request.param


class TestMixingLawConformance(
    BasicSamplerTestCase, RelativeSamplerTestCase, MultiObjectiveSamplerTestCase
):
    @pytest.fixture
    def sampler(self):
        return lambda: MixingLawSampler(law="dml", n_startup_trials=3, seed=0)


# -- objectives built from each law's own form ----------------------------------------------
def bimix_losses(rng: np.random.Generator, k: int):
    B = rng.uniform(2.0, 3.0, k)
    b = rng.uniform(0.05, 0.15, k)
    return lambda w: B * np.clip(w, 1e-6, 1.0) ** (-b)


def dml_losses(rng: np.random.Generator, k: int):
    surface = make_surface("dml", k, seed=int(rng.integers(1000)))
    return surface.losses


def regmix_losses(rng: np.random.Generator, k: int):
    """Convex quadratics with interior minima: exactly the Scheffé quadratic family."""
    centres = rng.dirichlet(np.full(k, 4.0), size=k)
    scales = rng.uniform(0.5, 2.0, k)
    base = rng.uniform(2.5, 3.5, k)
    return lambda w: base + scales * np.sum((np.atleast_2d(w)[:, None, :] - centres) ** 2, -1).squeeze()


FORMS = {"bimix": bimix_losses, "dml": dml_losses, "regmix": regmix_losses}
NOISE = 0.005


def law_objective(losses_fn, noise: float = NOISE, seed: int = 0):
    def objective(trial: optuna.Trial) -> float:
        weights = suggest_mixture(trial, DOMAINS)
        w = np.array([weights[d] for d in DOMAINS])
        rng = np.random.default_rng([seed, trial.number])
        losses = np.asarray(losses_fn(w)) + rng.normal(0, noise, len(DOMAINS))
        trial.set_user_attr("losses", dict(zip(DOMAINS, map(float, losses))))
        return float(np.mean(losses))

    return objective


def true_optimum(losses_fn) -> float:
    starts = sobol_simplex_points(len(DOMAINS), 256, seed=0)
    values = np.array([np.mean(losses_fn(s)) for s in starts])
    _, value = minimize_on_simplex(
        lambda w: float(np.mean(losses_fn(w))), starts[np.argsort(values)[:8]]
    )
    return value


@pytest.mark.parametrize("law_name", ["bimix", "dml", "regmix"])
def test_each_law_recovers_a_near_optimal_mixture_from_its_own_form(law_name):
    losses_fn = FORMS[law_name](np.random.default_rng(3), len(DOMAINS))
    optimum = true_optimum(losses_fn)
    study = optuna.create_study(sampler=MixingLawSampler(law=law_name, n_startup_trials=20, seed=1))
    study.optimize(law_objective(losses_fn), n_trials=24)
    fitted = [t for t in study.trials if t.user_attrs[ATTR]["status"] == "fitted"]
    assert len(fitted) == 4
    first = fitted[0]
    assert first.user_attrs[ATTR]["proposal"] == "minimiser"
    w = np.array([first.user_attrs["mix"][d] for d in DOMAINS])
    regret = float(np.mean(losses_fn(w))) - optimum
    # a small regret: well below the spread of the start-up design's values
    startup_values = [np.mean(losses_fn(np.array([t.user_attrs["mix"][d] for d in DOMAINS])))
                      for t in study.trials[:20]]
    assert regret < 0.005, (law_name, regret)
    assert regret < 0.1 * (np.median(startup_values) - optimum)


def test_law_fits_report_r2_and_loo_on_their_own_form(law):
    losses_fn = FORMS[law](np.random.default_rng(0), len(DOMAINS))
    R = sobol_simplex_points(len(DOMAINS), 32, seed=2)
    Y = np.vstack([losses_fn(r) for r in R]) + np.random.default_rng(1).normal(0, NOISE, (32, 4))
    fitted = make_law(law).fit(R, Y)
    assert fitted.r2.shape == (4,) and np.all(fitted.r2 > 0.8)
    rmse = np.sqrt(np.nanmean((fitted.loo - Y) ** 2, axis=0))
    assert np.all(rmse < 0.05)
    np.testing.assert_allclose(fitted.predict(R), fitted.fitted)


def test_startup_is_sobol_then_the_law_with_attrs_explaining_the_proposal(law):
    losses_fn = FORMS["dml"](np.random.default_rng(0), len(DOMAINS))
    study = optuna.create_study(sampler=MixingLawSampler(law=law, n_startup_trials=10, seed=0))
    study.optimize(law_objective(losses_fn), n_trials=12)
    sobol = sobol_simplex_points(len(DOMAINS), 10, seed=None)  # shape only
    assert sobol.shape == (10, 4)
    for t in study.trials[:10]:
        assert t.user_attrs[ATTR]["status"] == "startup"
    info = study.trials[11].user_attrs[ATTR]
    assert info["status"] == "fitted" and info["law"] == law
    assert info["n_trials_fitted"] == 11
    assert info["criterion"] == "mean"
    assert set(info["r2"]) == set(DOMAINS) and set(info["loo_rmse"]) == set(DOMAINS)
    assert info["loo_rmse_value"] is not None and info["loo_method"]
    assert info["params"]["form"]
    assert np.isfinite(info["predicted_value"])
    for t in study.trials:
        w = np.array([t.user_attrs["mix"][d] for d in DOMAINS])
        assert np.all(w >= 0) and abs(w.sum() - 1.0) <= 1e-12


def test_too_few_trials_or_no_losses_falls_back_to_sobol_and_says_why():
    study = optuna.create_study(sampler=MixingLawSampler(law="dml", n_startup_trials=2, seed=0))
    losses_fn = FORMS["dml"](np.random.default_rng(0), len(DOMAINS))
    study.optimize(law_objective(losses_fn), n_trials=4)  # dml needs k + 2 = 6 trials
    info = study.trials[3].user_attrs[ATTR]
    assert info["status"] == "fallback" and "at least 6 trials" in info["reason"]

    def no_losses(trial):
        return sum(suggest_mixture(trial, DOMAINS).values())

    study = optuna.create_study(sampler=MixingLawSampler(law="bimix", n_startup_trials=2, seed=0))
    with pytest.warns(SamplerFallbackWarning, match="no completed trial has any") as caught:
        study.optimize(no_losses, n_trials=4)
    assert len([w for w in caught if w.category is SamplerFallbackWarning]) == 1  # once
    info = study.trials[3].user_attrs[ATTR]
    assert info["status"] == "unusable"  # not "startup": more trials will not change it
    assert "user attr 'losses'" in info["reason"]
    assert len({tuple(t.params.values()) for t in study.trials}) == 4


HELD_OUT = ["heldout_web", "downstream", "math"]


def held_out_objective(seed: int = 0):
    """Losses on validation sets that are no training domain: each a blend of the domains."""
    surface = make_surface("heldout", DOMAINS, seed=seed, outputs=HELD_OUT)

    def objective(trial: optuna.Trial) -> float:
        weights = suggest_mixture(trial, DOMAINS)
        losses = surface.losses(np.array([weights[d] for d in DOMAINS]))
        trial.set_user_attr("losses", dict(zip(HELD_OUT, map(float, losses))))
        return float(np.mean(losses))

    return objective, surface


@pytest.mark.parametrize("law_name", ["dml", "regmix"])
def test_laws_that_model_any_output_fit_validation_sets_that_are_not_the_domains(law_name):
    objective, surface = held_out_objective()
    study = optuna.create_study(sampler=MixingLawSampler(law=law_name, n_startup_trials=10,
                                                         seed=0))
    study.optimize(objective, n_trials=14)
    info = study.trials[-1].user_attrs[ATTR]
    assert info["status"] == "fitted", info
    assert info["outputs"] == HELD_OUT
    assert set(info["r2"]) == set(HELD_OUT) and min(info["r2"].values()) > 0.9
    best = min(surface.regret(np.array([t.user_attrs["mix"][d] for d in DOMAINS]))
               for t in study.trials[10:])
    startup = np.median([surface.regret(np.array([t.user_attrs["mix"][d] for d in DOMAINS]))
                         for t in study.trials[:10]])
    assert best < 0.5 * startup  # the fitted law's proposals beat the start-up design


def test_bimix_says_once_why_it_cannot_use_validation_sets_that_are_not_the_domains():
    objective, _ = held_out_objective()
    study = optuna.create_study(sampler=MixingLawSampler(law="bimix", n_startup_trials=2,
                                                         seed=0))
    with pytest.warns(SamplerFallbackWarning, match="bimix ties each loss") as caught:
        study.optimize(objective, n_trials=5)
    assert len([w for w in caught if w.category is SamplerFallbackWarning]) == 1
    for t in study.trials[1:]:
        info = t.user_attrs[ATTR]
        assert info["status"] == "unusable" and "heldout_web" in info["reason"]
        assert "law='dml' or 'regmix'" in info["reason"]


def test_a_multi_objective_study_is_said_once_to_be_unusable_with_that_reason():
    surface = make_surface("powerlaw", 3, seed=0)
    domains = list(surface.domains)

    def objective(trial):
        losses = surface.losses(np.array(list(suggest_mixture(trial, domains).values())))
        trial.set_user_attr("losses", dict(zip(domains, map(float, losses))))
        return float(losses[0]), float(losses[1])

    study = optuna.create_study(directions=["minimize", "minimize"],
                                sampler=MixingLawSampler(law="dml", n_startup_trials=2, seed=0))
    with pytest.warns(SamplerFallbackWarning, match="multi-objective") as caught:
        study.optimize(objective, n_trials=4)
    assert len([w for w in caught if w.category is SamplerFallbackWarning]) == 1
    assert all(t.user_attrs[ATTR]["status"] == "unusable" for t in study.trials)
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)


def test_singular_fit_falls_back_and_the_study_goes_on(law):
    def flat(trial):
        suggest_mixture(trial, DOMAINS)
        trial.set_user_attr("losses", dict.fromkeys(DOMAINS, 3.0))
        return 3.0

    study = optuna.create_study(sampler=MixingLawSampler(law=law, n_startup_trials=0, seed=0))
    # every trial at the same mixture: no law can be fitted to that
    for _ in range(8):
        study.enqueue_trial({f"mix.{d}": 0.25 for d in DOMAINS})
    study.optimize(flat, n_trials=10)
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    info = study.trials[9].user_attrs[ATTR]
    assert info["status"] in ("fallback", "fitted")
    if info["status"] == "fallback":
        assert info["reason"]


def test_an_evaluated_minimiser_is_not_proposed_again():
    losses_fn = FORMS["bimix"](np.random.default_rng(3), len(DOMAINS))
    sampler = MixingLawSampler(law="bimix", n_startup_trials=12, seed=0, min_distance=0.05)
    study = optuna.create_study(sampler=sampler)
    objective = law_objective(losses_fn, noise=0.0)
    study.optimize(objective, n_trials=13)
    minimiser = study.trials[12].user_attrs["mix"]
    assert study.trials[12].user_attrs[ATTR]["proposal"] == "minimiser"
    study.optimize(objective, n_trials=3)
    seen = np.array([[t.user_attrs["mix"][d] for d in DOMAINS] for t in study.trials])
    for j in range(13, 16):
        others = np.delete(seen, j, axis=0)
        assert 0.5 * np.abs(others - seen[j]).sum(1).min() >= 0.05 - 1e-9
    assert "not-yet-evaluated" in study.trials[13].user_attrs[ATTR]["proposal"]
    assert minimiser  # the first proposal stays recorded


def test_max_criterion_is_detected_and_other_params_are_sampled():
    losses_fn = FORMS["dml"](np.random.default_rng(0), len(DOMAINS))

    def objective(trial):
        weights = suggest_mixture(trial, DOMAINS)
        x = trial.suggest_float("lr", 1e-4, 1e-2, log=True)
        losses = losses_fn(np.array([weights[d] for d in DOMAINS]))
        trial.set_user_attr("losses", dict(zip(DOMAINS, map(float, losses))))
        return float(np.max(losses)) + 0 * x

    study = optuna.create_study(sampler=MixingLawSampler(law="regmix", n_startup_trials=8, seed=0))
    study.optimize(objective, n_trials=10)
    assert study.trials[9].user_attrs[ATTR]["criterion"] == "max"
    assert all(1e-4 <= t.params["lr"] <= 1e-2 for t in study.trials)


def test_fit_and_proposal_at_64_trials_is_quick(law):
    losses_fn = FORMS["dml"](np.random.default_rng(0), len(DOMAINS))
    study = optuna.create_study(sampler=MixingLawSampler(law=law, n_startup_trials=64, seed=0))
    study.optimize(law_objective(losses_fn), n_trials=64)
    study.sampler.n_startup_trials = 0
    started = time.perf_counter()
    study.optimize(law_objective(losses_fn), n_trials=1)
    assert study.trials[-1].user_attrs[ATTR]["status"] == "fitted"
    assert time.perf_counter() - started < 2.0  # ~0.5 s budget, slack for a busy machine


def test_bad_arguments_are_value_errors():
    with pytest.raises(ValueError, match="unknown mixing law"):
        MixingLawSampler(law="chinchilla")
    with pytest.raises(ValueError, match="criterion"):
        MixingLawSampler(law="dml", criterion="sum")
    with pytest.raises(ValueError, match="n_startup_trials"):
        MixingLawSampler(law="dml", n_startup_trials=-1)
    with pytest.raises(LawFitError):
        make_law("dml").fit(np.full((3, 4), 0.25), np.ones((3, 4)))


def test_the_data_mixing_law_with_a_free_log_size_column_recovers_the_nested_form():
    # L_i = c_i + k_i exp(t_i . w + s_i u): exact data at three sizes, predicted at a fourth
    from optuna_mix.samplers._laws import DataMixingLaw

    rng = np.random.default_rng(0)
    k = 4
    c, kk = rng.uniform(2, 3, k), rng.uniform(0.5, 1.0, k)
    t = -rng.uniform(0.5, 2.0, (k, k))
    s = -rng.uniform(0.2, 1.0, k)
    W = rng.dirichlet(np.ones(k), 40)
    u = rng.choice([0.0, 0.25, 0.5], 40)

    def truth(W, u):
        return c + kk * np.exp(W @ t.T + np.outer(u, s))

    law = DataMixingLaw(loo_time_budget=0.0, free_columns=1).fit(np.column_stack([W, u]),
                                                                 truth(W, u))
    W_new = rng.dirichlet(np.ones(k), 20)
    at_target = law.predict(np.column_stack([W_new, np.ones(20)]))
    np.testing.assert_allclose(at_target, truth(W_new, np.ones(20)), atol=1e-4)
    # the gauge holds on the weights only: the size's coefficient is s itself
    np.testing.assert_allclose(law.t[:, -1], s, atol=1e-4)
    np.testing.assert_allclose(law.t[:, :k].sum(axis=1), 0.0, atol=1e-9)


@pytest.mark.parametrize("loo_time_budget", [0.0, 5.0])  # first-order, exact refits
def test_the_nested_law_never_has_a_loss_grow_with_model_size(loo_time_budget):
    # output 0 falls with size, output 1 rises (noise at a few trials of a second size can
    # say so): the rising one is refitted without the size column, so its prediction at a
    # size far beyond the trials is its value at the trained ones, not an unbounded rise
    from optuna_mix.samplers._laws import DataMixingLaw

    rng = np.random.default_rng(1)
    k = 3
    W = rng.dirichlet(np.ones(k), 30)
    u = rng.choice([0.0, 0.3], 30)
    falls = 2.0 + 0.8 * np.exp(W @ np.array([-1.5, 0.5, 1.0]) - 0.7 * u)
    rises = 2.5 + 0.6 * np.exp(W @ np.array([1.0, -1.0, 0.0]) + 0.9 * u)
    R = np.column_stack([W, u])
    law = DataMixingLaw(loo_time_budget=loo_time_budget, free_columns=1).fit(
        R, np.column_stack([falls, rises]))
    assert law.kk[0] * law.t[0, -1] < 0  # the falling loss keeps its fall with size
    assert law.t[1, -1] == 0.0  # the rising one: no size term
    far = law.predict(np.column_stack([W, np.full(30, 3.0)]))
    here = law.predict(np.column_stack([W, np.zeros(30)]))
    assert np.all(far[:, 0] < here[:, 0])
    np.testing.assert_allclose(far[:, 1], here[:, 1])
    assert np.all(np.isfinite(law.loo))  # the left-out errors of the refitted output too
