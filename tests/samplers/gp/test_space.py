"""The GP's encoded space of a relative search space."""

from __future__ import annotations

import numpy as np
import pytest
from optuna.distributions import FloatDistribution, IntDistribution

from optuna_mix.samplers._simplex import WEIGHT_DISTRIBUTION, Mixture
from optuna_mix.samplers.gp.space import encoded_space


def test_the_encoded_space_has_the_searched_mixtures_then_the_other_parameters():
    declared = [Mixture("mix", ("a", "b", "c")), Mixture("other", ("p", "q"))]
    search_space = {
        "lr": FloatDistribution(1e-4, 1e-1, log=True),
        **{f"mix.{d}": WEIGHT_DISTRIBUTION for d in "abc"},
        "fixed": IntDistribution(3, 3),  # a single value: no input
    }
    space = encoded_space(search_space, declared)
    assert [b.mixture for b in space.mixture_blocks] == [declared[0]]
    assert space.param_names == ["mix.a", "mix.b", "mix.c", "lr"]
    assert space.dim == 4 and space.mixture_blocks[0].columns == [0, 1, 2]
    first = encoded_space(search_space, declared, "first")
    assert first.coordinates == "first" and first.dim == 3


def _scale_space(target=400e3):
    from optuna.distributions import CategoricalDistribution

    from optuna_mix.samplers._scale import Scale

    search_space = {**{f"mix.{d}": WEIGHT_DISTRIBUTION for d in "ab"},
                    "scale": CategoricalDistribution([25e3, 50e3, 100e3])}
    return encoded_space(search_space, [Mixture("mix", ("a", "b"))],
                         scales=[Scale("scale", (25e3, 50e3, 100e3))], target_size=target)


SIZE_UNITS = {
    "smallest": (25e3, 0.0),
    "one doubling": (50e3, 0.25),
    "largest trained": (100e3, 0.5),
    "the target": (400e3, 1.0),
    "beyond the target": (800e3, 1.25),
}


@pytest.mark.parametrize("size,unit", SIZE_UNITS.values(), ids=SIZE_UNITS)
def test_a_scale_is_one_log_size_column_up_to_the_target(size, unit):
    space = _scale_space()
    (block,) = space.scale_blocks
    assert space.dim == 3 and block.columns == [2]
    assert space.unit_of_size(block, size) == pytest.approx(unit)


def test_a_scale_decodes_to_the_nearest_size_a_trial_may_train_at():
    space = _scale_space()
    x = space.encode({"mix.a": 0.3, "mix.b": 0.7, "scale": 50e3})
    assert space.decode(x)["scale"] == 50e3
    x[2] = 1.0  # the target: no trial trains there
    assert space.decode(x)["scale"] == 100e3
    assert space.snap(x)[2] == pytest.approx(0.5)
    assert set(space.snap_many(np.array([[0.5, 0.5, 0.1], [0.5, 0.5, 0.9]]))[:, 2]) == {0.0, 0.5}


def test_one_trained_size_is_no_column_even_with_a_target_beyond_it():
    from optuna.distributions import CategoricalDistribution

    from optuna_mix.samplers._scale import Scale

    search_space = {**{f"mix.{d}": WEIGHT_DISTRIBUTION for d in "ab"},
                    "scale": CategoricalDistribution([25e3])}
    declared, scales = [Mixture("mix", ("a", "b"))], [Scale("scale", (25e3,))]
    # one size cannot fit a size law: the study is told so where it asks at a size
    assert not encoded_space(search_space, declared, scales=scales).scale_blocks
    assert not encoded_space(search_space, declared, scales=scales, target_size=1e5).scale_blocks
