"""The law prior (a fitted Data Mixing Law as the GPs' prior mean) and the hand-over rule."""

from __future__ import annotations

import re

import numpy as np
import optuna
import pytest
import torch

from gp_helpers import FAST, surface_objective
from optuna_mix import suggest_mixture
from optuna_mix.samplers import SimplexGPSampler
from optuna_mix.samplers.gp.law import (
    REPEAT_TOL,
    LawMean,
    fit_law,
    hands_over,
    loo_residuals,
    matched_law_errors,
    repeats_a_trial,
    stacking_weight,
    with_output_scale,
    without_output_scale,
)
from optuna_mix.samplers.gp import model as model_module
from optuna_mix.samplers.gp.model import FIT_MAXITER, GPFitter, fit_gp, fit_key, training_data
from optuna_mix.samplers.gp.posterior import posterior_mean_std
from optuna_mix.samplers.gp.sampler import ACQUISITION_ATTR as ACQUISITION
from optuna_mix.samplers.gp.space import encoded_space
from optuna_mix.surfaces import make_surface


def test_a_fitted_mixing_law_is_the_prior_mean_once_there_are_enough_trials():
    # on a Data Mixing Law surface without noise the law is the truth: the model then
    # predicts unseen mixtures almost exactly
    surface = make_surface("dml", 4, seed=2)
    gp = SimplexGPSampler(seed=0, **FAST)
    study = optuna.create_study(sampler=gp)
    objective = surface_objective(surface, keep_losses=True)
    study.optimize(objective, n_trials=7)  # k + 3: too few for the law
    space = encoded_space(gp.infer_relative_search_space(study, None), gp.mixtures(study))
    X, Y, _, _ = training_data(study, space, "losses")
    assert fit_law(space, X, Y) is None
    study.optimize(objective, n_trials=5)
    X, Y, _, composite = training_data(study, space, "losses")
    law = fit_law(space, X, Y)
    assert law is not None and law.t.shape == (4, 4)
    assert fit_law(space, X, Y.mean(axis=1)) is None  # one output: no law
    model = GPFitter().fit(fit_key(study._study_id, space, Y, law_prior=True), space, X, Y,
                           seed=0, warp=0.05)
    assert isinstance(model.mean_module, LawMean)
    unseen = np.random.default_rng(0).dirichlet(np.ones(4), 32)
    predicted, _ = posterior_mean_std(model, unseen, composite)
    assert np.max(np.abs(-predicted - surface.value(unseen))) < 0.02


def test_the_law_prior_models_validation_sets_that_are_not_the_domains():
    # three held-out sets over four domains: m = 3 outputs, each a law over the 4 weights
    surface = make_surface("heldout", 4, seed=1, outputs=["web_heldout", "task", "math"])
    gp = SimplexGPSampler(seed=0, n_startup_trials=12, **FAST)  # 12 Sobol points
    study = optuna.create_study(sampler=gp)
    objective = surface_objective(surface, keep_losses=True)
    study.optimize(objective, n_trials=12)
    space = encoded_space(gp.infer_relative_search_space(study, None), gp.mixtures(study))
    X, Y, _, composite = training_data(study, space, "losses")
    assert Y.shape == (12, 3) and composite is not None and composite.n_outputs == 3
    law = fit_law(space, X, Y)
    assert law is not None and law.t.shape == (3, 4)
    model = GPFitter().fit(fit_key(study._study_id, space, Y, law_prior=True), space, X, Y,
                           seed=0, warp=0.05)
    assert isinstance(model.mean_module, LawMean)
    unseen = np.random.default_rng(0).dirichlet(np.ones(4), 32)
    predicted, _ = posterior_mean_std(model, unseen, composite)
    spread = float(np.std(surface.value(unseen)))
    assert np.sqrt(np.mean((-predicted - surface.value(unseen)) ** 2)) < 0.25 * spread


def test_repeats_are_points_within_the_tolerance_of_a_trial_in_every_column():
    X = np.array([[0.2, 0.3, 0.5], [0.6, 0.4, 0.0]])
    assert repeats_a_trial(X[1] + REPEAT_TOL / 2, X)
    assert not repeats_a_trial(X[1] + [0.0, 2 * REPEAT_TOL, -2 * REPEAT_TOL], X)
    assert not repeats_a_trial(X[0], np.zeros((0, 3)))


def test_only_a_law_model_hands_over():
    rng = np.random.default_rng(0)
    X, Y = rng.dirichlet(np.ones(3), 12), rng.random((12, 3))
    constant, _ = fit_gp(X, Y, refit=False)
    assert not hands_over(constant, X[0], X)


def test_the_first_hand_over_starts_from_the_law_models_lengthscales_and_noise():
    rng = np.random.default_rng(0)
    X, Y = rng.dirichlet(np.ones(3), 12), rng.random((12, 3))
    _, law_hyper = fit_gp(X, Y, refit=False, law=None)
    constant, _ = fit_gp(X, Y, refit=False)
    names = {n for n, _ in constant.named_parameters()}
    mapped = without_output_scale(
        {"covar_module.base_kernel.raw_lengthscale": law_hyper["covar_module.raw_lengthscale"],
         "covar_module.raw_outputscale": 0.0,
         "likelihood.noise_covar.raw_noise": law_hyper["likelihood.noise_covar.raw_noise"]}
    )
    assert {"covar_module.raw_lengthscale", "likelihood.noise_covar.raw_noise"} <= set(mapped)
    assert set(mapped) - names == {"covar_module.raw_outputscale"}  # no such parameter: skipped


def test_leave_one_out_residuals_match_refits_at_the_same_hyperparameters():
    rng = np.random.default_rng(0)
    X = rng.dirichlet(np.ones(4), 14)
    y = np.sin(3 * X[:, 0]) + X[:, 1] ** 2 + 0.01 * rng.normal(size=14)
    model, hyper = fit_gp(X, y, warp_columns=[0, 1, 2, 3], warp=0.05)
    closed = loo_residuals(model)
    refits = []
    for i in range(len(X)):
        keep = np.arange(len(X)) != i
        held, _ = fit_gp(X[keep], y[keep], warm_start=hyper, refit=False,
                         warp_columns=[0, 1, 2, 3], warp=0.05)
        with torch.no_grad():
            refits.append(y[i] - held.posterior(torch.tensor(X[i:i + 1])).mean.item())
    # equal but for the refit's own output standardisation
    assert np.corrcoef(closed, refits)[0, 1] > 0.98
    assert np.max(np.abs(closed - np.array(refits))) < 0.2 * np.ptp(y)


def _chosen_model(losses_of, k=4, n=14):
    """The model SimplexGPSampler fits to n Sobol trials of per-domain losses_of(w)."""
    gp = SimplexGPSampler(seed=0, n_startup_trials=n, **FAST)
    study = optuna.create_study(sampler=gp)
    study.optimize(_losses_objective(losses_of, k), n_trials=n)
    space = encoded_space(gp.infer_relative_search_space(study, None), gp.mixtures(study))
    X, Y, _, _ = training_data(study, space, "losses")
    return gp._fit(study, space, X, Y)


def _losses_objective(losses_of, k):
    domains = [f"d{i}" for i in range(k)]

    def objective(trial):
        w = np.array(list(suggest_mixture(trial, domains).values()))
        losses = losses_of(w)
        trial.set_user_attr("losses", dict(zip(domains, map(float, losses))))
        return float(np.mean(losses))

    return objective


def test_the_law_leads_where_it_predicts_left_out_trials_and_not_where_it_misses_them():
    surface = make_surface("dml", 4, seed=2)  # the law's own form: it predicts them
    assert isinstance(_chosen_model(surface.losses).mean_module, LawMean)
    # a bowl per output with its minimum inside the simplex: no exp(t.w) has that shape
    assert not isinstance(_chosen_model(_bowls()).mean_module, LawMean)


def _bowls(k=4, seed=1):
    """Per-domain losses with minima inside the simplex: no law of the form exp(t.w) fits."""
    centres = np.random.default_rng(seed).dirichlet(np.full(k, 3.0), size=k)
    return lambda w: 3.0 + 4.0 * np.sum((w[None, :] - centres) ** 2, axis=1)


def test_while_the_law_leads_the_constant_mean_gp_judging_it_is_refitted_less_often():
    for losses_of, law_leads in ((make_surface("dml", 4, seed=2).losses, True),
                                 (_bowls(), False)):
        gp = SimplexGPSampler(seed=0, n_startup_trials=100, **FAST)  # Sobol trials only
        study = optuna.create_study(sampler=gp)
        objective = _losses_objective(losses_of, 4)
        space = None

        def fit_on_the_study():
            nonlocal space
            space = encoded_space(gp.infer_relative_search_space(study, None), gp.mixtures(study))
            X, Y, _, _ = training_data(study, space, "losses")
            return gp._fit(study, space, X, Y), fit_key(study._study_id, space, Y, law_prior=False)

        study.optimize(objective, n_trials=36)
        fit_on_the_study()
        study.optimize(objective, n_trials=4)  # 40 >= 36 * 1.1, < 36 * 1.5
        model, plain_key = fit_on_the_study()
        assert isinstance(model.mean_module, LawMean) is law_leads
        judge, law = gp._fitter.last(plain_key), gp._fitter.last(plain_key._replace(law_prior=True))
        # the model in use on the usual schedule (refitted at 40), the judge on its own (at 36)
        assert judge.n_fitted == (36 if law_leads else 40)
        assert law_leads is (law is not None and law.n_fitted == 40)


def test_the_law_models_first_fit_starts_from_its_judges_lengthscales_and_noise(monkeypatch):
    surface = make_surface("dml", 4, seed=2)
    study = optuna.create_study(sampler=SimplexGPSampler(seed=0, n_startup_trials=100))
    study.optimize(_losses_objective(surface.losses, 4), n_trials=12)
    space = encoded_space(SimplexGPSampler().infer_relative_search_space(study, None),
                          SimplexGPSampler().mixtures(study))
    X, Y, _, _ = training_data(study, space, "losses")
    fitter, calls = GPFitter(), []
    real = model_module.fit_gp
    monkeypatch.setattr(model_module, "fit_gp",
                        lambda *a, **kw: calls.append(kw) or real(*a, **kw))
    plain_key = fit_key(study._study_id, space, Y, law_prior=False)
    fitter.fit(plain_key, space, X, Y, seed=0, warp=0.05)
    law_key = plain_key._replace(law_prior=True)
    fitter.fit(law_key, space, X, Y, seed=0, warp=0.05, law=fitter.law(law_key, space, X, Y))
    judge = fitter.last(plain_key).hyperparameters
    warm = calls[-1]["warm_start"]
    assert torch.equal(warm["covar_module.base_kernel.raw_lengthscale"],
                       judge["covar_module.raw_lengthscale"])
    assert torch.equal(warm["likelihood.noise_covar.raw_noise"],
                       judge["likelihood.noise_covar.raw_noise"])
    assert calls[-1]["maxiter"] == FIT_MAXITER  # its output scale starts from the default
    law_model_names = {n for n, _ in real(X, Y, law=fitter.law(law_key, space, X, Y),
                                          refit=False)[0].named_parameters()}
    # every kernel and noise parameter carries over (the constant mean has no counterpart)
    carried = {n for n in with_output_scale(judge) if not n.startswith("mean_module.")}
    assert carried and carried <= law_model_names


def _nested_prior(R, Y):
    from optuna_mix.samplers._laws import DataMixingLaw
    from optuna_mix.samplers.gp.law import LawPrior

    k = R.shape[1] - 1
    law = DataMixingLaw(loo_time_budget=0.0, free_columns=1).fit(R, Y)
    return LawPrior(c=law.c, k=law.kk, t=law.t, columns=tuple(range(k)), free_columns=(k,),
                    loo=law.loo, data=(R, Y))


@pytest.mark.parametrize(
    "size_effect, n_upper, evidenced",
    [
        ("by mixture", 6, True),   # the nested law's own form: its move with size is real
        ("one shift", 6, False),   # every mixture shifted alike: nothing moves the optimum
        ("by mixture", 1, False),  # one larger trial: nothing to judge it on
    ],
)
def test_the_size_law_is_trusted_only_where_it_predicts_the_larger_trials(
        size_effect, n_upper, evidenced):
    from optuna_mix.samplers.gp.law import size_law_evidenced

    rng = np.random.default_rng(3)
    k, n_small = 3, 14
    t = np.array([[-2.0, 1.0, 1.0], [1.5, -3.0, 1.5], [0.5, 0.5, -1.0]])
    s = np.array([-1.5, -0.2, -0.9])  # domain 0 gains most from size
    W = rng.dirichlet(np.ones(k), n_small + n_upper)
    u = np.r_[np.zeros(n_small), np.full(n_upper, 0.4)]
    if size_effect == "by mixture":
        Y = 2.0 + 1.0 * np.exp(W @ t.T + np.outer(u, s))
    else:
        Y = 2.0 + 1.0 * np.exp(W @ t.T) - 0.3 * u[:, None]
    Y = Y + rng.normal(0.0, 0.002, Y.shape)
    R = np.column_stack([W, u])
    # judged on the law's own trials (law.data: the rows of its left-out predictions; between
    # refits the model holds more trials than the law was fitted on)
    assert size_law_evidenced(_nested_prior(R, Y), size_column=k) is evidenced


_NOISE = np.random.default_rng(7).normal(0.0, 1.0, 12)


@pytest.mark.parametrize(
    ("errors_a", "errors_b", "low", "high"),
    [
        # the same errors: nothing to choose
        (_NOISE * 0.01, _NOISE * 0.01, 0.5, 0.5),
        # the same errors on other trials: no model better on the whole
        (_NOISE * 0.01, _NOISE[::-1] * 0.01, 0.3, 0.7),
        # b a tenth of the noise worse on every trial: a leads, not decisively
        (_NOISE * 0.01, _NOISE * 0.01 + 0.001 * np.sign(_NOISE), 0.6, 0.95),
        # a's errors a quarter of b's on every trial: a, decisively
        (_NOISE * 0.0025, _NOISE * 0.01, 0.99, 1.0),
        # and the other way round
        (_NOISE * 0.02, _NOISE * 0.005, 0.0, 0.01),
        # fewer than two trials: nothing to judge on
        (np.array([0.01]), np.array([0.5]), 0.5, 0.5),
        (np.zeros(0), np.zeros(0), 0.5, 0.5),
    ],
)
def test_the_stacking_weight_follows_the_evidence_of_the_left_out_errors(
    errors_a, errors_b, low, high
):
    w = stacking_weight(errors_a, errors_b, np.random.default_rng(0))
    assert low - 1e-9 <= w <= high + 1e-9
    # the two models' weights add up to one
    assert w + stacking_weight(errors_b, errors_a, np.random.default_rng(0)) == pytest.approx(
        1.0, abs=0.03)


def test_the_law_is_judged_on_the_trials_it_was_fitted_to():
    surface = make_surface("dml", 4, seed=2)
    gp = SimplexGPSampler(seed=0, n_startup_trials=14, **FAST)
    study = optuna.create_study(sampler=gp)
    study.optimize(_losses_objective(surface.losses, 4), n_trials=10)
    space = encoded_space(gp.infer_relative_search_space(study, None), gp.mixtures(study))
    X, Y, _, _ = training_data(study, space, "losses")
    law = fit_law(space, X, Y)
    study.optimize(_losses_objective(surface.losses, 4), n_trials=3)  # 3 trials it never saw
    X_more, _, _, _ = training_data(study, space, "losses")
    judge = np.arange(len(X_more), dtype=float)  # the judge's error of trial i: i
    law_errors, judge_errors = matched_law_errors(law, X_more, judge)
    assert len(law_errors) == len(judge_errors) == 10
    assert judge_errors.tolist() == list(range(10))  # the law's rows, in X's order
    np.testing.assert_allclose(law_errors, np.nanmean(law.loo - Y, axis=1))


def test_a_hedged_sampler_proposes_by_both_models_where_the_evidence_is_split():
    surface = make_surface("interaction", 4, seed=0)
    gp = SimplexGPSampler(seed=0, prior_mean="hedge", **FAST)
    study = optuna.create_study(sampler=gp)
    study.optimize(_losses_objective(surface.losses, 4), n_trials=16)
    how = [t.system_attrs.get(ACQUISITION) for t in study.trials]
    hedged = [h for h in how if h and h.startswith("qlognei (hedged")]
    assert hedged, how
    for h in hedged:  # "qlognei (hedged: law mean 0.64, constant mean 0.36)"
        lead, other = map(float, re.findall(r"mean (\d\.\d+)", h))
        assert {"law mean", "constant mean"} == set(re.findall(r"\w+ mean", h))
        assert 0.5 <= lead < 1.0 and lead + other == pytest.approx(1.0, abs=0.011)
