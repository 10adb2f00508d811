"""Reading the trials' per-domain losses: only finite numbers, in the order asked for."""

from __future__ import annotations

import numpy as np
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import create_trial

from optuna_mix.samplers._losses import losses_problem, per_domain_losses, trial_losses


def _trial(losses, value=0.0):
    return create_trial(
        params={"x": 0.5}, distributions={"x": FloatDistribution(0, 1)}, value=value,
        user_attrs={"losses": losses} if losses is not None else {},
    )


def test_a_trials_losses_come_in_the_order_of_the_keys():
    t = _trial({"a": 1.0, "b": 2, "c": 3.5})
    np.testing.assert_array_equal(trial_losses(t, "losses", ["c", "a"]), [3.5, 1.0])
    assert trial_losses(t, "losses", ["c", "a"], exact_keys=True) is None
    np.testing.assert_array_equal(
        trial_losses(t, "losses", ["a", "b", "c"], exact_keys=True), [1.0, 2.0, 3.5]
    )


@pytest.mark.parametrize(
    "losses",
    [None, [1.0, 2.0], {"a": 1.0}, {"a": 1.0, "b": "x"}, {"a": 1.0, "b": None},
     {"a": 1.0, "b": float("inf")}, {"a": float("nan"), "b": 1.0}],
    ids=["missing", "a list", "a key missing", "text", "null", "inf", "nan"],
)
def test_missing_or_bad_losses_are_none(losses):
    assert trial_losses(_trial(losses), "losses", ["a", "b"]) is None


def test_per_domain_losses_detect_the_criterion_of_the_values():
    rows = [{"a": 1.0, "b": 3.0}, {"b": 5.0, "a": 2.0}]
    for criterion, values in (("mean", [2.0, 3.5]), ("max", [3.0, 5.0])):
        trials = [_trial(r, v) for r, v in zip(rows, values)]
        Y, found, keys = per_domain_losses(trials, np.array(values), "losses")
        assert found.name == criterion and keys == ["a", "b"]
        np.testing.assert_array_equal(Y, [[1.0, 3.0], [2.0, 5.0]])


def test_per_domain_losses_use_the_study_s_stored_criterion_over_detection():
    from optuna_mix.samplers.criteria import CriterionSpec

    rows = [{"a": 1.0, "b": 3.0}, {"b": 5.0, "a": 2.0}]
    weighted = CriterionSpec("weighted", weights=(("b", 3.0),))  # (a + 3 b) / 4
    values = [2.5, 4.25]
    trials = [_trial(r, v) for r, v in zip(rows, values)]
    assert per_domain_losses(trials, np.array(values), "losses") is None  # no registered one
    _, found, _ = per_domain_losses(trials, np.array(values), "losses", weighted)
    assert found.name == "weighted" and found.linear == pytest.approx((0.25, 0.75))
    # a stored criterion that does not give the values: no composite model, and why
    mean_values = np.array([2.0, 3.5])
    assert per_domain_losses(trials, mean_values, "losses", weighted) is None
    assert "not the study's weighted criterion" in losses_problem(
        [_trial(r, v) for r, v in zip(rows, mean_values)], mean_values, "losses", weighted)


@pytest.mark.parametrize(
    "rows, values",
    [
        ([{"a": 1.0, "b": 3.0}, {"a": 2.0, "b": 5.0}], [2.0, 9.0]),  # no criterion gives them
        ([{"a": 1.0}, {"a": 2.0}], [1.0, 2.0]),  # one loss: no composite
        ([{"a": 1.0, "b": 3.0}, {"a": 2.0, "b": 5.0, "c": 1.0}], [2.0, 3.5]),  # other keys
        ([{"a": 1.0, "b": 3.0}, {"a": 2.0, "b": float("inf")}], [2.0, 3.5]),  # not finite
    ],
    ids=["no criterion", "one loss", "other keys", "not finite"],
)
def test_per_domain_losses_are_none_unless_every_trial_has_them_exactly(rows, values):
    trials = [_trial(r, v) for r, v in zip(rows, values)]
    assert per_domain_losses(trials, np.array(values), "losses") is None
    assert per_domain_losses(trials, np.array(values), None) is None
