"""The acquisition search's constraints: each mixture's weights sum to one, exactly."""

from __future__ import annotations

import torch

from optuna_mix.samplers._simplex import Mixture
from optuna_mix.samplers.gp.acquisition import constraints
from optuna_mix.samplers.gp.space import EncodedSpace


def test_raw_weights_are_an_equality_and_first_weights_an_inequality():
    mixtures = [Mixture("a", ("x", "y", "z")), Mixture("b", ("p", "q"))]
    eq = constraints(EncodedSpace(mixtures, {}))
    assert eq["inequality_constraints"] is None
    (i, c, r), (j, e, s) = eq["equality_constraints"]
    assert i.tolist() == [0, 1, 2] and c.tolist() == [1.0] * 3 and r == 1.0
    assert j.tolist() == [3, 4] and e.dtype == torch.float64 and s == 1.0
    ineq = constraints(EncodedSpace(mixtures, {}, "first"))
    assert ineq["equality_constraints"] is None
    (i, c, r), (j, e, s) = ineq["inequality_constraints"]  # -sum >= -1
    assert i.tolist() == [0, 1] and c.tolist() == [-1.0, -1.0] and r == -1.0
    assert j.tolist() == [2]
