"""The GP's training data, its fit and the typed cache with the refit schedule."""

from __future__ import annotations

import numpy as np
import optuna
import pytest

from gp_helpers import FAST, surface_objective
from optuna_mix import suggest_mixture
from optuna_mix.samplers import SimplexGPSampler, SobolMixtureSampler
from optuna_mix.samplers.gp import model as model_module
from optuna_mix.samplers.gp.model import (
    REFIT_ALWAYS_UP_TO,
    REFIT_GROWTH,
    FitCache,
    GPFitter,
    fit_key,
    refit_due,
    training_data,
)
from optuna_mix.samplers.gp.space import encoded_space
from optuna_mix.surfaces import make_surface


def _space(sampler, study):
    return encoded_space(sampler.infer_relative_search_space(study, None), sampler.mixtures(study))


@pytest.mark.parametrize("criterion", ["mean", "max", "median"])
def test_per_domain_losses_give_a_composite_model_of_the_criterion(criterion):
    surface = make_surface("powerlaw", 4, seed=1, noise=0.0)
    gp = SimplexGPSampler(seed=0, **FAST)
    study = optuna.create_study(sampler=gp)
    study.optimize(surface_objective(surface, keep_losses=True, criterion=criterion), n_trials=8)
    X, Y, _, composite = training_data(study, _space(gp, study), "losses")
    assert composite is not None and composite.criterion.name == criterion and composite.sign == -1.0
    assert Y.shape == (8, 4)
    rec = gp.recommend(study)
    # the predicted criterion at the recommended mixture is close to its true value
    true = float(surface.value(np.array(list(rec.weights.values())), criterion))
    assert abs(rec.value - true) < 0.05, (rec.value, true)
    assert rec.std >= 0


def test_values_that_no_criterion_gives_keep_the_scalar_model():
    surface = make_surface("powerlaw", 3, seed=1)

    def objective(trial):
        w = np.array(list(suggest_mixture(trial, list(surface.domains)).values()))
        losses = surface.losses(w)
        trial.set_user_attr("losses", dict(zip(surface.domains, map(float, losses))))
        return float(losses @ np.array([0.5, 0.3, 0.2]))  # a weighted mean: not a criterion

    for losses_attr, objective_ in (
        ("losses", objective),
        (None, surface_objective(surface, keep_losses=True)),
    ):
        gp = SimplexGPSampler(seed=0, losses_attr=losses_attr, **FAST)
        study = optuna.create_study(sampler=gp)
        study.optimize(objective_, n_trials=6)
        X, y, _, composite = training_data(study, _space(gp, study), losses_attr)
        assert composite is None and y.shape == (6,)
        assert np.allclose(-y, [t.value for t in study.trials])


def test_the_law_prior_follows_the_mixture_not_the_order_of_the_losses():
    surface = make_surface("dml", 3, seed=3)
    domains = list(surface.domains)

    def objective(trial):
        w = np.array(list(suggest_mixture(trial, domains).values()))
        losses = dict(zip(domains, map(float, surface.losses(w))))
        trial.set_user_attr("losses", dict(reversed(list(losses.items()))))
        return float(np.mean(list(losses.values())))

    gp = SimplexGPSampler(seed=0, **FAST)
    study = optuna.create_study(sampler=gp)
    study.optimize(objective, n_trials=10)
    X, Y, trials, _ = training_data(study, _space(gp, study), "losses")
    expected = [[t.user_attrs["losses"][d] for d in domains] for t in trials]
    assert np.allclose(Y, expected)
    rec = gp.recommend(study, among="all")
    assert surface.regret(np.array(list(rec.weights.values()))) < 0.01


def test_the_refit_schedule():
    cache = FitCache(b"old", {}, n_fitted=40, law=None)
    assert refit_due(None, b"new", 1)
    assert not refit_due(cache, b"old", 40)  # the data it was refitted on: nothing to refit
    # the same data, only conditioned on under a slower schedule: refitted on the usual one
    assert refit_due(cache, b"old", 100) and not refit_due(cache, b"old", 59, growth=0.5)
    assert refit_due(cache, b"new", REFIT_ALWAYS_UP_TO)
    grown = int(np.ceil(40 * (1 + REFIT_GROWTH)))
    assert not refit_due(cache, b"new", grown - 1) and refit_due(cache, b"new", grown)


def test_beyond_32_trials_hyperparameters_and_law_are_refitted_at_10_percent_growth(
    monkeypatch,
):
    surface = make_surface("powerlaw", 4, seed=0, noise=0.01)
    objective = surface_objective(surface, np.random.default_rng(0), keep_losses=True)
    study = optuna.create_study(sampler=SobolMixtureSampler(seed=0))
    study.optimize(objective, n_trials=REFIT_ALWAYS_UP_TO + 4)  # 36
    space = _space(SimplexGPSampler(seed=0), study)
    fitter = GPFitter()
    fits, laws = [], []
    real_fit, real_law = model_module.fit_gp, model_module.fit_law
    monkeypatch.setattr(
        model_module, "fit_gp", lambda *a, **kw: fits.append(kw["refit"]) or real_fit(*a, **kw)
    )
    monkeypatch.setattr(model_module, "fit_law", lambda *a: laws.append(1) or real_law(*a))

    def fit_on_the_study():
        X, Y, _, _ = training_data(study, space, "losses")
        key = fit_key(study._study_id, space, Y, law_prior=True)
        fitter.fit(key, space, X, Y, seed=0, warp=0.05)
        cache = fitter.last(key)
        assert isinstance(cache, FitCache) and cache.data_key == X.tobytes() + Y.tobytes()
        return cache

    first = fit_on_the_study()  # a first fit: always
    assert fits == [True] and len(laws) == 1 and first.law is not None
    assert first.n_fitted == 36 and "likelihood.noise_covar.raw_noise" in first.hyperparameters
    study.optimize(objective, n_trials=3)  # 39 < 36 * 1.1: conditioned on, not refitted
    cache = fit_on_the_study()
    assert cache.law is first.law and cache.n_fitted == 36
    assert fits == [True, False] and len(laws) == 1
    study.optimize(objective, n_trials=1)  # 40 >= 39.6: refitted, law included
    cache = fit_on_the_study()
    assert cache.law is not first.law and cache.n_fitted == 40
    assert fits == [True, False, True] and len(laws) == 2
    assert len(fitter) == 1


def test_a_constant_mean_model_has_no_law_and_its_own_cache():
    surface = make_surface("dml", 4, seed=2)
    study = optuna.create_study(sampler=SobolMixtureSampler(seed=0))
    study.optimize(surface_objective(surface, keep_losses=True), n_trials=12)
    space = _space(SimplexGPSampler(seed=0), study)
    X, Y, _, _ = training_data(study, space, "losses")
    fitter = GPFitter()
    keys = [fit_key(study._study_id, space, Y, law_prior=p) for p in (True, False)]
    for key in keys:
        fitter.fit(key, space, X, Y, seed=0, warp=0.05)
    assert fitter.last(keys[0]).law is not None and fitter.last(keys[1]).law is None
    assert len(fitter) == 2
