"""suggest_mixture: exact simplex points, normalisation, and the declaration every worker sees."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from scipy import stats

from optuna_mix import suggest_mixture
from optuna_mix.samplers import SobolMixtureSampler, declared_mixtures, normalise_weights


def _objective(domains):
    def objective(trial: optuna.Trial) -> float:
        w = suggest_mixture(trial, domains)
        return sum((w[d] - 0.3) ** 2 for d in domains)

    return objective


@pytest.mark.parametrize(
    "sampler",
    [
        SobolMixtureSampler(seed=0),
        optuna.samplers.RandomSampler(seed=0),
        optuna.samplers.TPESampler(seed=0, n_startup_trials=3),
        optuna.samplers.GPSampler(seed=0, n_startup_trials=3),
    ],
    ids=["sobol", "random", "tpe", "gp"],
)
def test_weights_on_simplex_under_any_sampler(sampler, domains):
    study = optuna.create_study(sampler=sampler)
    study.optimize(_objective(domains), n_trials=6)
    for trial in study.trials:
        weights = trial.user_attrs["mix"]
        assert list(weights) == domains
        assert all(w >= 0 for w in weights.values())
        assert abs(sum(weights.values()) - 1.0) <= 1e-9
        assert set(trial.params) == {f"mix.{d}" for d in domains}
        assert all(0.0 <= v <= 1.0 for v in trial.params.values())


def test_simplex_aware_sampler_stores_exact_points(domains):
    study = optuna.create_study(sampler=SobolMixtureSampler(seed=1))
    study.optimize(_objective(domains), n_trials=4)
    for trial in study.trials:
        raw = [trial.params[f"mix.{d}"] for d in domains]
        assert abs(sum(raw) - 1.0) <= 1e-12
        assert raw == pytest.approx(list(trial.user_attrs["mix"].values()), abs=1e-15)


def test_uniform_sampler_values_become_flat_dirichlet():
    """Independent U(0,1) values map to Dirichlet(1,...,1): first weight ~ Beta(1, k-1)."""
    rng = np.random.default_rng(0)
    k = 5
    weights = np.array([normalise_weights(rng.random(k)) for _ in range(4000)])
    assert np.allclose(weights.sum(axis=1), 1.0, atol=1e-12)
    for i in range(k):
        p_value = stats.kstest(weights[:, i], stats.beta(1, k - 1).cdf).pvalue
        assert p_value > 1e-3


def test_all_ones_corner_gives_the_centre_not_nan():
    w = normalise_weights([1.0, 1.0, 1.0, 1.0])
    assert np.all(np.isfinite(w)) and np.allclose(w, 0.25)


def test_declaration_is_in_storage_for_other_workers(domains, sqlite_url):
    study = optuna.create_study(storage=sqlite_url, study_name="s")
    trial = study.ask()
    suggest_mixture(trial, domains, name="pretrain")
    other_worker = optuna.load_study(study_name="s", storage=sqlite_url)
    [mixture] = declared_mixtures(other_worker)
    assert mixture.name == "pretrain" and list(mixture.domains) == domains


def test_first_trial_of_a_fresh_study_is_a_simplex_point_for_a_new_worker(domains, sqlite_url):
    optuna.create_study(storage=sqlite_url, study_name="s")
    worker = optuna.load_study(study_name="s", storage=sqlite_url, sampler=SobolMixtureSampler(seed=3))
    worker.optimize(_objective(domains), n_trials=1)
    raw = [worker.trials[0].params[f"mix.{d}"] for d in domains]
    assert abs(sum(raw) - 1.0) <= 1e-12


def test_redeclaring_with_other_domains_is_refused(domains):
    study = optuna.create_study()
    suggest_mixture(study.ask(), domains)
    with pytest.raises(ValueError, match="declared in this study over"):
        suggest_mixture(study.ask(), domains[:3])


@pytest.mark.parametrize(
    "bad, message",
    [(["a"], "at least 2 domains"), (["a", "a"], "duplicate domain"), ("ab", "not one string")],
)
def test_bad_domains_are_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        suggest_mixture(optuna.create_study().ask(), bad)


def test_two_mixtures_and_other_params_in_one_study():
    def objective(trial):
        a = suggest_mixture(trial, ["x", "y", "z"], name="pre")
        b = suggest_mixture(trial, ["p", "q"], name="post")
        lr = trial.suggest_float("lr", 1e-5, 1e-1, log=True)
        layers = trial.suggest_int("layers", 1, 4)
        return a["x"] + b["p"] + lr + layers

    study = optuna.create_study(sampler=SobolMixtureSampler(seed=0))
    study.optimize(objective, n_trials=5)
    for t in study.trials:
        assert abs(sum(t.user_attrs["pre"].values()) - 1) <= 1e-9
        assert abs(sum(t.user_attrs["post"].values()) - 1) <= 1e-9
        assert 1e-5 <= t.params["lr"] <= 1e-1 and 1 <= t.params["layers"] <= 4
