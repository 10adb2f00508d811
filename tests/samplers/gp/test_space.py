"""The GP's encoded space of a relative search space."""

from __future__ import annotations

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
