"""A scale-aware SimplexGPSampler: mixtures chosen for a target size, trained where it pays."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import optuna
import pytest
import torch

from gp_helpers import FAST, is_simplex
from optuna_mix import suggest_mixture, suggest_scale
from optuna_mix.samplers import SimplexGPSampler
from optuna_mix.samplers.gp import sampler as sampler_module
from optuna_mix.samplers.gp.acquisition import size_per_cost
from optuna_mix.scaled_surfaces import make_scaled_surface

SIZES = [25e3, 50e3, 100e3]
TARGET = 400e3


def _objective(surface, rng):
    def objective(trial):
        w = np.array(list(suggest_mixture(trial, list(surface.domains)).values()))
        size = suggest_scale(trial, SIZES)
        losses = surface.noisy_losses(w, size, rng)
        trial.set_user_attr("losses", dict(zip(surface.domains, map(float, losses))))
        return float(losses.mean())

    return objective


@pytest.fixture(scope="module")
def scale_study():
    surface = make_scaled_surface(3, seed=0, noise=0.005)
    gp = SimplexGPSampler(seed=0, target_scale=TARGET, **FAST)
    study = optuna.create_study(sampler=gp)
    study.optimize(_objective(surface, np.random.default_rng(0)), n_trials=14)
    return surface, gp, study


def test_start_up_trains_small_and_proposals_say_the_target_and_the_size(scale_study):
    _, _, study = scale_study
    how = [t.system_attrs.get(sampler_module.ACQUISITION_ATTR) for t in study.trials]
    # trial 0 too, whose scale is declared only as it asks (the independent path)
    assert all(t.params["scale"] == SIZES[0] for t in study.trials[:4])
    proposed = [(t, h) for t, h in zip(study.trials, how) if h]
    assert len(proposed) >= 8
    for t, h in proposed:
        # aimed at the smallest size while every trial before trained there (the GP cannot
        # extrapolate in size from one), at the target only once the law has two sizes and
        # its size effect predicts the larger trials (size_law_evidenced)
        one_size = len({p.params["scale"] for p in study.trials[: t.number]}) == 1
        aims = [SIZES[0]] if one_size else [SIZES[0], TARGET]
        assert any(f"for size {aim:g}, trained at {t.params['scale']:g}" in h for aim in aims)
        assert t.params["scale"] in SIZES
        assert is_simplex([t.params[f"mix.{d}"] for d in ("d0", "d1", "d2")])
    # the law (k + 5 = 8 trials for k = 3) needs a second size: the trial it becomes
    # possible at trains at the cheapest other size, as do the next while the compute cap
    # allows, until MIN_LARGER_TRIALS are there
    assert [t.params["scale"] for t in study.trials[:8]] == [SIZES[0]] * 7 + [SIZES[1]]
    larger = [t.number for t in study.trials if t.params["scale"] > SIZES[0]]
    assert len(larger) >= 2
    assert any(f"for size {TARGET:g}" in h for _, h in proposed)  # evidenced on this surface


def test_a_pinned_size_is_trained_at_and_said(scale_study):
    surface, gp, study = scale_study
    study.enqueue_trial({"scale": SIZES[-1]})
    study.optimize(_objective(surface, np.random.default_rng(1)), n_trials=1)
    trial = study.trials[-1]
    assert trial.params["scale"] == SIZES[-1]
    assert trial.system_attrs[sampler_module.ACQUISITION_ATTR].endswith(
        f"trained at {SIZES[-1]:g}")


def test_the_slsqp_polish_holds_the_target_size(scale_study):
    from botorch.acquisition.analytic import PosteriorMean

    from optuna_mix.samplers.gp.acquisition import refine
    from optuna_mix.samplers.gp.model import training_data
    from optuna_mix.samplers.gp.posterior import ConditionedGP

    _, gp, study = scale_study
    space = gp._space(study, gp.infer_relative_search_space(study, None))
    X, y, _, composite = training_data(study, space, "losses")
    model = ConditionedGP(gp._fit(study, space, X, y))
    (block,) = space.scale_blocks
    acqf = PosteriorMean(model, posterior_transform=composite.posterior_transform())
    starts = X[:2].copy()
    starts[:, block.start] = 1.0
    polished = refine(acqf, space, starts, maxiter=20, fixed={block.start: 1.0})
    assert polished and all(x[block.start] == pytest.approx(1.0) for x in polished)


def test_recommend_and_predict_answer_at_the_size_asked(scale_study):
    surface, gp, study = scale_study
    at_target = gp.recommend(study)  # target_scale by default
    assert at_target.params["scale"] == TARGET
    assert at_target == gp.recommend(study, scale=TARGET)
    small = gp.recommend(study, scale=SIZES[0])
    assert small.params["scale"] == SIZES[0]
    # the losses fall with size, and the model extrapolates that fall to the target
    assert at_target.value < small.value
    w = at_target.weights
    (mean, std), = gp.predict(study, [w], scale=TARGET)
    assert mean == pytest.approx(at_target.value) and std == pytest.approx(at_target.std)
    (mean_small, _), = gp.predict(study, [w], scale=SIZES[0])
    true_small = float(surface.value(np.array(list(w.values())), SIZES[0]))
    assert abs(mean_small - true_small) < 0.05  # where it has trials, the model is right
    with pytest.raises(ValueError, match="positive model size"):
        gp.recommend(study, scale=-1)


def test_scale_is_refused_with_the_reason_where_the_study_has_no_second_size():
    domains = ["a", "b", "c"]
    gp = SimplexGPSampler(seed=0, **FAST)
    plain = optuna.create_study(sampler=gp)
    plain.optimize(lambda t: suggest_mixture(t, domains)["a"], n_trials=3)
    with pytest.raises(ValueError, match="has no scale parameter"):
        gp.predict(plain, [{"a": 1.0}], scale=TARGET)
    one_size = optuna.create_study(sampler=gp)
    one_size.optimize(lambda t: suggest_mixture(t, domains)["a"] + suggest_scale(t, [25e3]),
                      n_trials=3)
    with pytest.raises(ValueError, match="train at one size only"):
        gp.recommend(one_size, scale=TARGET)
    with pytest.raises(ValueError, match="target_scale"):
        SimplexGPSampler(target_scale=0)


class _PairModel:
    """A posterior with given covariances: (Var f_T, Cov(f_T, f_s), Var f_s) per size."""

    def __init__(self, pairs, noise):
        self.cov = torch.tensor([[[vt, c], [c, vs]] for vt, c, vs in pairs], dtype=torch.float64)
        self.noise = noise

    def posterior(self, X, posterior_transform=None):
        assert X.shape[:2] == (len(self.cov), 2)
        return SimpleNamespace(distribution=SimpleNamespace(covariance_matrix=self.cov))

    def noise_variance(self):
        return torch.tensor([self.noise], dtype=torch.float64)


SIZE_CASES = {
    # (Var f_T, Cov, Var f_s) at three sizes, their costs: the size it trains at
    "same cost: the most correlated": ([(1, 0.2, 1), (1, 0.5, 1), (1, 0.9, 1)], [1, 1, 1], 2),
    "cost 16x: the cheap one nearly as good": ([(1, 0.7, 1), (1, 0.8, 1), (1, 0.9, 1)],
                                               [1, 4, 16], 0),
    "a known point teaches nothing": ([(1, 0.0, 1e-6), (1, 0.5, 1), (1, 0.9, 1)],
                                      [1, 4, 16], 1),
    "noise makes small variances worth less": ([(1, 0.1, 0.01), (1, 0.6, 1), (1, 0.6, 1)],
                                               [1, 1, 2], 1),
}


@pytest.mark.parametrize("pairs,costs,expected", SIZE_CASES.values(), ids=SIZE_CASES)
def test_the_size_to_train_at_is_the_most_information_per_unit_of_compute(pairs, costs,
                                                                          expected):
    model = _PairModel(pairs, noise=0.05)
    x = np.zeros(4)
    assert size_per_cost(model, x, np.zeros((len(pairs), 4)), costs) == expected


def test_a_running_trials_pinned_size_counts_against_the_compute_cap(monkeypatch):
    # 4 start-up trials at 25k (4 units); a trial pinned at 100k is running (16 more,
    # nothing set yet): a 50k trial now would make (16 + 4) / 24 > LARGE_SHARE, so 25k
    surface = make_scaled_surface(3, seed=0, noise=0.005)
    gp = SimplexGPSampler(seed=0, target_scale=TARGET, **FAST)
    study = optuna.create_study(sampler=gp)
    study.optimize(_objective(surface, np.random.default_rng(0)), n_trials=4)
    monkeypatch.setattr(sampler_module, "wait_for_earlier_proposals", lambda *a: 0.0)
    study.enqueue_trial({"scale": SIZES[-1]})
    study.ask()  # the pinned trial: running, its size known only from the enqueue
    asked = study.ask()
    suggest_mixture(asked, list(surface.domains))
    assert suggest_scale(asked, SIZES) == SIZES[0]


def test_without_evidence_for_the_size_law_the_target_gets_the_best_mixture_where_most_trained():
    # every trial pinned at the smallest size but one: the law's size effect cannot be
    # judged, so the recommendation for the target is the mixture ranked best at 25k (the
    # study's own way), predicted at the target, and it says where it was ranked
    surface = make_scaled_surface(3, seed=1, noise=0.005)
    gp = SimplexGPSampler(seed=0, target_scale=TARGET, **FAST)
    study = optuna.create_study(sampler=gp)
    for i in range(12):
        study.enqueue_trial({"scale": SIZES[1] if i == 9 else SIZES[0]})
    study.optimize(_objective(surface, np.random.default_rng(2)), n_trials=12)
    at_target = gp.recommend(study)
    at_small = gp.recommend(study, scale=SIZES[0])
    assert at_target.ranked_at == SIZES[0] and at_small.ranked_at == SIZES[0]
    assert at_target.trial_number == at_small.trial_number
    assert at_target.params["scale"] == TARGET and at_target.value < at_small.value
    how = [t.system_attrs.get(sampler_module.ACQUISITION_ATTR) or "" for t in study.trials]
    assert not any(f"for size {TARGET:g}" in h for h in how)
