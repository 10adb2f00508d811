"""A proposal kept in storage is read back as a running trial's point, by any worker."""

from __future__ import annotations

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution

from optuna_mix.samplers._simplex import Mixture, declare_mixture
from optuna_mix.samplers.gp.pending import CHUNK, RELATIVE_PREFIX, pending_points, store_proposal
from optuna_mix.samplers.gp.space import EncodedSpace


def test_a_stored_proposal_is_a_pending_point_of_the_other_trials():
    study = optuna.create_study()
    mixture = declare_mixture(study, "mix", ["a", "b", "c"])
    long_choice = "x" * (CHUNK + 10)  # the other parameters' JSON spans two chunks
    space = EncodedSpace([mixture], {"act": CategoricalDistribution(["relu", long_choice])})
    proposer, asker = study.ask(), study.ask()
    params = {"mix.a": 0.2, "mix.b": 0.3, "mix.c": 0.5, "act": long_choice}
    store_proposal(study, proposer._cached_frozen_trial, space, params)
    attrs = study._storage.get_trial_system_attrs(proposer._trial_id)
    assert f"{RELATIVE_PREFIX}1" in attrs
    pending = pending_points(study, study._storage.get_trial(asker._trial_id), space)
    np.testing.assert_array_equal(pending, [space.encode(params)])
    # a trial is no pending point of its own
    assert pending_points(study, study._storage.get_trial(proposer._trial_id), space).shape == (
        0, space.dim)


def test_running_trials_without_every_parameter_are_no_pending_points():
    study = optuna.create_study()
    mixture = Mixture("mix", ("a", "b"))
    space = EncodedSpace([mixture], {})
    study.ask()
    asker = study.ask()
    assert pending_points(study, study._storage.get_trial(asker._trial_id), space).shape == (0, 2)
