"""SimplexGPSampler: Optuna's conformance suite plus the promises of issue 4."""

from __future__ import annotations

import pickle

import numpy as np
import optuna
import pytest
from optuna.testing.pytest_samplers import BasicSamplerTestCase, RelativeSamplerTestCase
from optuna.trial import TrialState

from optuna_mix import suggest_mixture
from optuna_mix.samplers.criteria import criterion_fn
from optuna_mix.samplers import SimplexGPSampler, SobolMixtureSampler
from optuna_mix.samplers.gp.model import posterior_mean_std
from optuna_mix.surfaces import make_surface

# cheap acquisition search for the conformance suite (hundreds of suggestions)
FAST = {"n_raw_samples": 32, "n_restarts": 0, "mc_samples": 16}


class TestGPConformance(BasicSamplerTestCase, RelativeSamplerTestCase):
    @pytest.fixture
    def sampler(self):
        return lambda: SimplexGPSampler(seed=0, n_startup_trials=0, **FAST)


def _is_simplex(w) -> bool:
    w = np.asarray(w, dtype=float)
    return bool(np.all(w >= 0) and np.all(w <= 1) and abs(w.sum() - 1.0) <= 1e-9)


def _surface_objective(surface, rng=None, *, keep_losses=False, criterion="mean"):
    """The surface's criterion; with ``keep_losses`` the per-domain losses in the user attrs,
    as optuna-mix's objectives keep them (the GP then models each one)."""
    domains = list(surface.domains)

    def objective(trial):
        w = np.array(list(suggest_mixture(trial, domains).values()))
        losses = surface.losses(w) if rng is None else surface.noisy_losses(w, rng)
        if keep_losses:
            trial.set_user_attr("losses", dict(zip(domains, map(float, losses))))
        return float(criterion_fn(criterion)(losses))

    return objective


def _weights(trial, name="mix"):
    return np.array([v for k, v in trial.params.items() if k.startswith(name + ".")])


@pytest.mark.parametrize("n_restarts", [0, 1], ids=["local rounds", "SLSQP refinement"])
def test_proposals_are_exact_simplex_points(n_restarts):
    surface = make_surface("powerlaw", 4, seed=1)
    sampler = SimplexGPSampler(seed=0, n_startup_trials=2, n_restarts=n_restarts)
    study = optuna.create_study(sampler=sampler)
    study.optimize(_surface_objective(surface), n_trials=7)
    for t in study.trials:
        w = _weights(t)
        assert len(w) == 4 and _is_simplex(w)
        assert np.allclose(w, list(t.user_attrs["mix"].values()), atol=0, rtol=0)


def test_answers_from_the_first_completed_trial():
    sampler = SimplexGPSampler(seed=0, n_startup_trials=0, **FAST)
    study = optuna.create_study(sampler=sampler)
    study.optimize(_surface_objective(make_surface("dml", 3, seed=0)), n_trials=1)
    trial = study.ask()
    space = sampler.infer_relative_search_space(study, trial._cached_frozen_trial)
    params = sampler.sample_relative(study, trial._cached_frozen_trial, space)
    assert _is_simplex([params[f"mix.d{i}"] for i in range(3)])
    assert sampler._fits, "the GP was not used"


def test_faces_are_reachable():
    # the optimum puts zero weight on c and d: the sampler must propose exact zeros
    def objective(trial):
        w = suggest_mixture(trial, ["a", "b", "c", "d"])
        return (w["a"] - 0.6) ** 2 + (w["b"] - 0.6) ** 2 + w["c"] + w["d"]

    study = optuna.create_study(sampler=SimplexGPSampler(seed=0, n_startup_trials=3))
    study.optimize(objective, n_trials=10)
    zeros = [t for t in study.trials[3:] if (_weights(t) == 0.0).any()]
    assert zeros, [list(_weights(t).round(3)) for t in study.trials]
    assert study.best_value < 0.06


def test_pending_trials_get_distinct_proposals():
    surface = make_surface("powerlaw", 3, seed=0)
    sampler = SimplexGPSampler(seed=0, n_startup_trials=3)
    study = optuna.create_study(sampler=sampler)
    study.optimize(_surface_objective(surface), n_trials=4)
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
        objective = _surface_objective(surface, np.random.default_rng(0), keep_losses=keep_losses)
        study.optimize(objective, n_trials=8)  # from trial 7 on: the law prior too
        return [list(_weights(t)) for t in study.trials]

    assert run(0, False) == run(1, False)
    assert run(0, True) == run(1, True)


def test_pickles_and_keeps_working():
    sampler = SimplexGPSampler(seed=0, n_startup_trials=1, **FAST)
    study = optuna.create_study(sampler=sampler)
    objective = _surface_objective(make_surface("dml", 3, seed=0))
    study.optimize(objective, n_trials=3)
    clone = pickle.loads(pickle.dumps(sampler))
    assert isinstance(clone, SimplexGPSampler)
    study.sampler = clone
    study.optimize(objective, n_trials=2)
    assert all(_is_simplex(_weights(t)) for t in study.trials)


def test_failed_and_pruned_trials_are_excluded():
    sampler = SimplexGPSampler(seed=0, n_startup_trials=1, **FAST)
    study = optuna.create_study(sampler=sampler)
    objective = _surface_objective(make_surface("dml", 3, seed=0))
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
    study.optimize(_surface_objective(surface, np.random.default_rng(0)), n_trials=8)
    for among in ("evaluated", "all"):
        rec = sampler.recommend(study, among=among)
        assert _is_simplex(list(rec.weights.values()))
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
        objective = _surface_objective(surface, np.random.default_rng(seed), keep_losses=True)
        study.optimize(objective, n_trials=budget)
        gp_regrets.append(_regret_of_recommendation(surface, gp, study))
        s = optuna.create_study(sampler=SobolMixtureSampler(seed=seed))
        s.optimize(_surface_objective(surface, np.random.default_rng(seed)), n_trials=budget)
        sobol_regrets.append(
            surface.regret(np.array(list(s.best_trial.user_attrs["mix"].values())))
        )
    assert np.median(gp_regrets) < 0.5 * np.median(sobol_regrets), (gp_regrets, sobol_regrets)


@pytest.mark.parametrize("criterion", ["mean", "max", "median"])
def test_per_domain_losses_give_a_composite_model_of_the_criterion(criterion):
    surface = make_surface("powerlaw", 4, seed=1, noise=0.0)
    gp = SimplexGPSampler(seed=0, **FAST)
    study = optuna.create_study(sampler=gp)
    study.optimize(_surface_objective(surface, keep_losses=True, criterion=criterion), n_trials=8)
    space = gp._space(study, gp.infer_relative_search_space(study, None))
    X, Y, _, composite = gp._data(study, space)
    assert composite is not None and composite.criterion == criterion and composite.sign == -1.0
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
        (None, _surface_objective(surface, keep_losses=True)),
    ):
        gp = SimplexGPSampler(seed=0, losses_attr=losses_attr, **FAST)
        study = optuna.create_study(sampler=gp)
        study.optimize(objective_, n_trials=6)
        space = gp._space(study, gp.infer_relative_search_space(study, None))
        X, y, _, composite = gp._data(study, space)
        assert composite is None and y.shape == (6,)
        assert np.allclose(-y, [t.value for t in study.trials])


def test_other_parameters_and_several_mixtures_are_modelled_jointly():
    def objective(trial):
        a = suggest_mixture(trial, ["x", "y", "z"], name="a")
        b = suggest_mixture(trial, ["p", "q"], name="b")
        lr = trial.suggest_float("lr", 1e-5, 1e-1, log=True)
        layers = trial.suggest_int("layers", 1, 8)
        act = trial.suggest_categorical("act", ["relu", "gelu"])
        return (
            (a["x"] - 0.5) ** 2 + b["q"] + (np.log10(lr) + 3) ** 2 / 10 + abs(layers - 4) / 10
            + (0.1 if act == "relu" else 0.0)
        )

    # with the SLSQP refinement: the categorical one-hot stays fixed while it moves
    sampler = SimplexGPSampler(seed=0, n_startup_trials=3, **{**FAST, "n_restarts": 1})
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=7)
    trial = study.ask()
    space = sampler.infer_relative_search_space(study, trial._cached_frozen_trial)
    assert {"a.x", "b.p", "lr", "layers", "act"} <= set(space)
    for t in study.trials[:7]:
        assert _is_simplex(_weights(t, "a")) and _is_simplex(_weights(t, "b"))
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


def test_config_factory_builds_it():
    from optuna_mix.sampler_factory import create_sampler, validate_sampler_options

    sampler = create_sampler("gp", {"n_startup_trials": 3}, seed=0)
    assert isinstance(sampler, SimplexGPSampler)
    assert validate_sampler_options("gp", {"n_startup_trials": 3}, ["a", "b"]) == []
    assert validate_sampler_options("gp", {"coordinates": "ilr"}, ["a", "b"])


def test_a_fitted_mixing_law_is_the_prior_mean_once_there_are_enough_trials():
    # on a Data Mixing Law surface without noise the law is the truth: the model then
    # predicts unseen mixtures almost exactly
    surface = make_surface("dml", 4, seed=2)
    gp = SimplexGPSampler(seed=0, **FAST)
    study = optuna.create_study(sampler=gp)
    objective = _surface_objective(surface, keep_losses=True)
    study.optimize(objective, n_trials=7)  # k + 3: too few for the law
    space = gp._space(study, gp.infer_relative_search_space(study, None))
    X, Y, _, _ = gp._data(study, space)
    assert gp._law(space, X, Y) is None
    study.optimize(objective, n_trials=5)
    X, Y, _, composite = gp._data(study, space)
    law = gp._law(space, X, Y)
    assert law is not None and law.t.shape == (4, 4)
    model = gp._fit(study, space, X, Y)
    unseen = np.random.default_rng(0).dirichlet(np.ones(4), 32)
    predicted, _ = posterior_mean_std(model, unseen, composite)
    assert np.max(np.abs(-predicted - surface.value(unseen))) < 0.02
    constant = SimplexGPSampler(seed=0, prior_mean="constant", **FAST)
    assert constant._law(space, X, Y) is None


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
    space = gp._space(study, gp.infer_relative_search_space(study, None))
    X, Y, trials, _ = gp._data(study, space)
    expected = [[t.user_attrs["losses"][d] for d in domains] for t in trials]
    assert np.allclose(Y, expected)
    rec = gp.recommend(study, among="all")
    assert surface.regret(np.array(list(rec.weights.values()))) < 0.01


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
        study.optimize(_surface_objective(surface, keep_losses=True), n_trials=7)
        gp.recommend(study)
    assert len(study.trials) == 7


def test_beyond_32_trials_hyperparameters_and_law_are_refitted_at_10_percent_growth(
    monkeypatch,
):
    from optuna_mix.samplers.gp import sampler as gp_module

    surface = make_surface("powerlaw", 4, seed=0, noise=0.01)
    objective = _surface_objective(surface, np.random.default_rng(0), keep_losses=True)
    study = optuna.create_study(sampler=SobolMixtureSampler(seed=0))
    study.optimize(objective, n_trials=gp_module.REFIT_ALWAYS_UP_TO + 4)  # 36
    gp = SimplexGPSampler(seed=0, **FAST)
    space = gp._space(study, gp.infer_relative_search_space(study, None))
    fits, laws = [], []
    real_fit, real_law = gp_module.fit_gp, gp._law
    monkeypatch.setattr(
        gp_module, "fit_gp", lambda *a, **kw: fits.append(kw["refit"]) or real_fit(*a, **kw)
    )
    monkeypatch.setattr(gp, "_law", lambda *a: laws.append(1) or real_law(*a))

    def fit_on_the_study():
        X, Y, _, _ = gp._data(study, space)
        gp._fit(study, space, X, Y)
        return next(iter(gp._fits.values()))[3]

    first_law = fit_on_the_study()  # a first fit: always
    assert fits == [True] and len(laws) == 1 and first_law is not None
    study.optimize(objective, n_trials=3)  # 39 < 36 * 1.1: conditioned on, not refitted
    assert fit_on_the_study() is first_law
    assert fits == [True, False] and len(laws) == 1
    study.optimize(objective, n_trials=1)  # 40 >= 39.6: refitted, law included
    assert fit_on_the_study() is not first_law
    assert fits == [True, False, True] and len(laws) == 2


def test_a_law_model_that_only_repeats_a_trial_hands_over_to_the_constant_mean_gp(
    monkeypatch,
):
    from optuna_mix.samplers.gp import sampler as gp_module

    surface = make_surface("powerlaw", 4, seed=0, noise=0.01)
    objective = _surface_objective(surface, np.random.default_rng(0), keep_losses=True)
    study = optuna.create_study(sampler=SobolMixtureSampler(seed=0))
    study.optimize(objective, n_trials=10)  # k + 4 + 2: the law prior is on
    gp = SimplexGPSampler(seed=0, **FAST)
    study.sampler = gp
    first = np.array([study.trials[3].params[f"mix.{d}"] for d in surface.domains])
    calls = []
    real_propose = gp_module.propose

    def propose(model, space, X, *args, **kwargs):
        law = isinstance(model._gp.mean_module, gp_module.LawMean)
        calls.append(law)
        # the law model "repeats" trial 3; the constant-mean one proposes what it finds
        return X[3] if law else real_propose(model, space, X, *args, **kwargs)

    monkeypatch.setattr(gp_module, "propose", propose)
    study.optimize(objective, n_trials=1)
    assert calls == [True, False]
    proposed = _weights(study.trials[-1])
    assert np.max(np.abs(proposed - first / first.sum())) > gp_module.REPEAT_TOL


def test_repeats_are_points_within_the_tolerance_of_a_trial_in_every_column():
    from optuna_mix.samplers.gp.sampler import REPEAT_TOL, _repeats_a_trial

    X = np.array([[0.2, 0.3, 0.5], [0.6, 0.4, 0.0]])
    assert _repeats_a_trial(X[1] + REPEAT_TOL / 2, X)
    assert not _repeats_a_trial(X[1] + [0.0, 2 * REPEAT_TOL, -2 * REPEAT_TOL], X)
    assert not _repeats_a_trial(X[0], np.zeros((0, 3)))


def test_the_first_hand_over_starts_from_the_law_models_lengthscales_and_noise():
    from optuna_mix.samplers.gp.model import fit_gp
    from optuna_mix.samplers.gp.sampler import _without_output_scale

    rng = np.random.default_rng(0)
    X, Y = rng.dirichlet(np.ones(3), 12), rng.random((12, 3))
    _, law_hyper = fit_gp(X, Y, refit=False, law=None)
    constant, _ = fit_gp(X, Y, refit=False)
    names = {n for n, _ in constant.named_parameters()}
    mapped = _without_output_scale(
        {"covar_module.base_kernel.raw_lengthscale": law_hyper["covar_module.raw_lengthscale"],
         "covar_module.raw_outputscale": 0.0,
         "likelihood.noise_covar.raw_noise": law_hyper["likelihood.noise_covar.raw_noise"]}
    )
    assert {"covar_module.raw_lengthscale", "likelihood.noise_covar.raw_noise"} <= set(mapped)
    assert set(mapped) - names == {"covar_module.raw_outputscale"}  # no such parameter: skipped
