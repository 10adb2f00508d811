"""Sobol, Uniform and Fixed mixture samplers: Optuna's conformance suite plus their promises."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from optuna.testing.pytest_samplers import (
    BasicSamplerTestCase,
    MultiObjectiveSamplerTestCase,
    RelativeSamplerTestCase,
)
from scipy.stats import qmc

from optuna_mix import suggest_mixture
from optuna_mix.samplers import (
    FixedMixtureSampler,
    SobolMixtureSampler,
    UniformMixtureSampler,
    sobol_simplex_points,
)
from optuna_mix.samplers._simplex import simplex_to_cube

FIVE = {"books": 0.1, "web": 0.5, "code": 0.2, "papers": 0.1, "social": 0.1}


class TestSobolConformance(
    BasicSamplerTestCase, RelativeSamplerTestCase, MultiObjectiveSamplerTestCase
):
    @pytest.fixture
    def sampler(self):
        return lambda: SobolMixtureSampler(seed=0)


class TestUniformConformance(
    BasicSamplerTestCase, RelativeSamplerTestCase, MultiObjectiveSamplerTestCase
):
    @pytest.fixture
    def sampler(self):
        return lambda: UniformMixtureSampler(seed=0)


class TestFixedConformance(
    BasicSamplerTestCase, RelativeSamplerTestCase, MultiObjectiveSamplerTestCase
):
    @pytest.fixture
    def sampler(self):
        return lambda: FixedMixtureSampler(FIVE, seed=0)


def _mean_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.linalg.norm(a[:, None, :] - b[None, :, :], axis=-1)))


def test_sobol_on_simplex_is_closer_to_uniform_than_random_dirichlet():
    """k=5, n=64: energy distance to a large uniform-on-simplex sample, averaged over seeds."""
    k, n = 5, 64
    reference = np.random.default_rng(123).dirichlet(np.ones(k), size=2000)
    within_reference = _mean_distance(reference, reference)

    def energy_distance(points: np.ndarray) -> float:
        return (
            2 * _mean_distance(points, reference)
            - _mean_distance(points, points)
            - within_reference
        )

    sobol = [energy_distance(sobol_simplex_points(k, n, seed=seed)) for seed in range(8)]
    dirichlet = [
        energy_distance(np.random.default_rng(1000 + seed).dirichlet(np.ones(k), size=n))
        for seed in range(8)
    ]
    assert np.mean(sobol) < 0.7 * np.mean(dirichlet)


def test_sobol_points_have_low_discrepancy_in_the_cube_they_come_from():
    k, n = 5, 64
    back = simplex_to_cube(sobol_simplex_points(k, n, seed=0))
    random_cube = simplex_to_cube(np.random.default_rng(0).dirichlet(np.ones(k), size=n))
    assert qmc.discrepancy(np.clip(back, 0, 1)) < qmc.discrepancy(np.clip(random_cube, 0, 1))


@pytest.mark.parametrize("seed", range(10))
def test_sobol_first_point_is_never_degenerate(seed, domains):
    study = optuna.create_study(sampler=SobolMixtureSampler(seed=seed))
    trial = study.ask()
    w = np.array(list(suggest_mixture(trial, domains).values()))
    assert w.min() > 1e-4 and w.max() < 0.99


def test_sobol_workers_share_one_sequence_by_trial_number(domains, sqlite_url):
    optuna.create_study(storage=sqlite_url, study_name="s")
    workers = [
        optuna.load_study(study_name="s", storage=sqlite_url, sampler=SobolMixtureSampler(seed=7))
        for _ in range(2)
    ]
    for i in range(6):
        trial = workers[i % 2].ask()
        suggest_mixture(trial, domains)
        workers[i % 2].tell(trial, 0.0)
    got = np.array([[t.params[f"mix.{d}"] for d in domains] for t in workers[0].trials])
    np.testing.assert_allclose(got, sobol_simplex_points(5, 6, seed=_stable(7)), atol=1e-12)


def _stable(seed):
    from optuna_mix.samplers._startup import stable_seed

    return stable_seed(seed, "mix")


def test_uniform_gives_one_over_k(domains):
    study = optuna.create_study(sampler=UniformMixtureSampler())
    study.optimize(lambda t: suggest_mixture(t, domains)["web"], n_trials=3)
    for t in study.trials:
        assert list(t.user_attrs["mix"].values()) == pytest.approx([0.2] * 5, abs=1e-15)


def test_fixed_gives_its_weights_and_zero_for_omitted_domains(domains):
    weights = {"books": 0.25, "web": 0.75}
    study = optuna.create_study(sampler=FixedMixtureSampler(weights))
    study.optimize(lambda t: suggest_mixture(t, domains)["web"], n_trials=2)
    assert study.trials[1].user_attrs["mix"] == {
        "books": 0.25, "web": 0.75, "code": 0.0, "papers": 0.0, "social": 0.0
    }


@pytest.mark.parametrize(
    "weights, message",
    [
        ({"a": -0.1, "b": 1.1}, "negative"),
        ({"a": 0.5, "b": 0.6}, "sum to 1.1"),
        ({"a": "x", "b": 1.0}, "not a number"),
        ({}, "non-empty"),
    ],
)
def test_fixed_refuses_bad_weights(weights, message):
    with pytest.raises(ValueError, match=message):
        FixedMixtureSampler(weights)


def test_fixed_names_unknown_domains_when_sampling(domains):
    study = optuna.create_study(sampler=FixedMixtureSampler({"books": 0.5, "wiki": 0.5}))
    with pytest.raises(ValueError, match=r"unknown domain\(s\) \['wiki'\]"):
        suggest_mixture(study.ask(), domains)


def test_other_parameters_go_to_the_independent_sampler(domains):
    study = optuna.create_study(
        sampler=UniformMixtureSampler(independent_sampler=optuna.samplers.RandomSampler(seed=1))
    )

    def objective(trial):
        suggest_mixture(trial, domains)
        return trial.suggest_float("lr", 1e-4, 1e-2, log=True) + trial.suggest_categorical(
            "act", [0, 1]
        )

    study.optimize(objective, n_trials=8)
    lrs = {t.params["lr"] for t in study.trials}
    assert len(lrs) == 8 and all(1e-4 <= v <= 1e-2 for v in lrs)
