"""suggest_scale: a model size as a categorical parameter, declared for every worker."""

from __future__ import annotations

import optuna
import pytest

from optuna_mix import suggest_scale
from optuna_mix.samplers._scale import check_sizes, declare_scale, declared_scales

SIZES = [25_000, 100_000, 50_000]


def test_the_size_is_one_of_the_scales_and_the_scale_is_declared_in_the_storage():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda t: suggest_scale(t, SIZES), n_trials=8)
    assert {t.params["scale"] for t in study.trials} <= {25e3, 50e3, 100e3}
    assert all(isinstance(t.params["scale"], float) for t in study.trials)
    (scale,) = declared_scales(study)
    assert scale.name == "scale" and scale.sizes == (25e3, 50e3, 100e3)  # ascending


def test_an_enqueued_size_pins_the_trial_an_unknown_one_is_refused():
    study = optuna.create_study()
    study.enqueue_trial({"size": 100_000})  # an int: the same size as the float choice
    study.optimize(lambda t: suggest_scale(t, SIZES, name="size"), n_trials=1)
    assert study.trials[0].params["size"] == 100e3
    study.enqueue_trial({"size": 75_000})
    with pytest.raises(ValueError, match="pins size=75000, which is not one of the scales"):
        study.optimize(lambda t: suggest_scale(t, SIZES, name="size"), n_trials=1,
                       catch=())


BAD_SIZES = {
    "empty": ([], "at least one"),
    "zero": ([0, 10], "not a positive model size"),
    "negative": ([-5.0], "not a positive model size"),
    "infinite": ([float("inf")], "not a positive model size"),
    "a word": (["small"], "not a number"),
    "a string": ("25000", "a list of model sizes"),
    "repeated": ([10, 10.0], "repeat a size"),
}


@pytest.mark.parametrize("sizes,message", BAD_SIZES.values(), ids=BAD_SIZES)
def test_bad_sizes_are_refused_with_the_reason(sizes, message):
    with pytest.raises(ValueError, match=message):
        check_sizes(sizes)


def test_a_scale_declared_over_other_sizes_is_refused():
    study = optuna.create_study()
    declare_scale(study, "scale", SIZES)
    declare_scale(study, "scale", [100_000, 25_000, 50_000])  # the same sizes: idempotent
    with pytest.raises(ValueError, match="declared in this study over"):
        declare_scale(study, "scale", [25_000, 50_000])
