"""The acquisition search's constraints (each mixture's weights sum to one, exactly) and the
Thompson draw of a stalled study."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from optuna_mix.samplers._simplex import Mixture
from optuna_mix.samplers.gp.acquisition import constraints, thompson
from optuna_mix.samplers.gp.model import Composite, fit_gp
from optuna_mix.samplers.gp.posterior import ConditionedGP, posterior_mean_std
from optuna_mix.samplers.gp.space import EncodedSpace
from optuna_mix.surfaces import make_surface
from gp_helpers import is_simplex


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


def _fitted(outputs: str, criterion: str = "mean"):
    """A GP of K = 4 weights fitted to 20 noisy power-law trials (one output or all)."""
    rng = np.random.default_rng(0)
    surface = make_surface("powerlaw", 4, seed=0, noise=0.01)
    X = rng.dirichlet(np.ones(4), 20)
    Y = np.array([surface.noisy_losses(w, rng) for w in X])
    y = -Y.mean(axis=1) if outputs == "one" else Y
    gp, _ = fit_gp(X, y, warp_columns=list(range(4)), warp=0.05, maxiter=10)
    composite = None if outputs == "one" else Composite(criterion, -1.0, 4)
    return ConditionedGP(gp), X, composite


@pytest.mark.parametrize("outputs,criterion", [("one", None), ("all", "mean"), ("all", "max")])
def test_a_thompson_draw_is_a_simplex_point_and_draws_differ_by_seed(outputs, criterion):
    model, X, composite = _fitted(outputs, criterion or "mean")
    space = EncodedSpace([Mixture("mix", ("a", "b", "c", "d"))], {})
    torch.manual_seed(0)
    draws = np.array([thompson(model, space, X, np.random.default_rng(s), composite)
                      for s in range(6)])
    assert all(is_simplex(x) for x in draws)
    assert len({tuple(np.round(x, 6)) for x in draws}) > 1  # a draw, not an argmax


def test_a_thompson_draw_keeps_to_where_the_model_is_sure_it_is_good():
    # few points of high posterior mean and a tiny std: the draw is near the best trials
    model, X, _ = _fitted("one")
    space = EncodedSpace([Mixture("mix", ("a", "b", "c", "d"))], {})
    mean, _ = posterior_mean_std(model, X)
    draws = np.array([thompson(model, space, X, np.random.default_rng(s)) for s in range(8)])
    drawn_mean, _ = posterior_mean_std(model, draws)
    # better than the typical trial the model has seen, on average
    assert np.mean(drawn_mean) > np.median(mean)
