"""The start-up design the samplers share: one Sobol sequence per mixture, seeded alike everywhere."""

from __future__ import annotations

import numpy as np
import optuna
import pytest

from optuna_mix import suggest_mixture
from optuna_mix.samplers import MixingLawSampler, SimplexGPSampler, SobolMixtureSampler
from optuna_mix.samplers._simplex import Mixture
from optuna_mix.samplers._startup import (
    sequence_seed,
    sobol_simplex_points,
    stable_seed,
    startup_point,
)


def test_stable_seeds_depend_on_the_seed_and_the_name_only():
    assert stable_seed(3, "mix") == stable_seed(3, "mix")
    assert len({stable_seed(3, "mix"), stable_seed(4, "mix"), stable_seed(3, "other")}) == 3
    assert stable_seed(None, "mix") is None


def test_a_sequence_seed_is_the_seed_or_a_fresh_one():
    assert sequence_seed(7) == 7
    assert sequence_seed(None) != sequence_seed(None)


def test_the_startup_point_of_trial_n_is_point_n_of_the_mixtures_sequence():
    mixture = Mixture("mix", ("a", "b", "c", "d"))
    points = sobol_simplex_points(4, 5, seed=stable_seed(2, "mix"))
    for n in range(5):
        np.testing.assert_array_equal(startup_point(mixture, n, 2), points[n])


@pytest.mark.parametrize(
    "make",
    [
        lambda seed: SimplexGPSampler(seed=seed, n_startup_trials=3),
        lambda seed: MixingLawSampler("dml", seed=seed, n_startup_trials=3),
    ],
    ids=["gp", "mixing law"],
)
def test_the_loss_modelling_samplers_start_with_the_sobol_samplers_design(make, domains):
    def objective(trial):
        return float(suggest_mixture(trial, domains)["web"])

    designs = []
    for sampler in (SobolMixtureSampler(seed=5), make(5)):
        study = optuna.create_study(sampler=sampler)
        study.optimize(objective, n_trials=3)
        designs.append([list(t.user_attrs["mix"].values()) for t in study.trials])
    np.testing.assert_array_equal(designs[0], designs[1])
