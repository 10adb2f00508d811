"""optuna_mix.utility: steps of one domain's weight, domain utility from the GP, its wording."""

from __future__ import annotations

import numpy as np
import optuna
import pytest

from gp_helpers import surface_objective
from optuna_mix.samplers import SimplexGPSampler, SobolMixtureSampler
from optuna_mix.surfaces import make_surface
from optuna_mix.utility import (
    DomainUtility,
    domain_utility,
    improved_over,
    step_mixtures,
    utility_sentence,
)


def _exact_simplex(w: dict[str, float]) -> bool:
    v = np.array(list(w.values()))
    return bool(np.all(v >= 0) and abs(v.sum() - 1.0) <= 1e-12)


@pytest.mark.parametrize(
    "weights, domain, step, up, down",
    [
        ({"a": 0.5, "b": 0.3, "c": 0.2}, "a", 0.1,
         {"a": 0.6, "b": 0.24, "c": 0.16}, {"a": 0.4, "b": 0.36, "c": 0.24}),
        ({"a": 0.0, "b": 0.5, "c": 0.5}, "a", 0.1, {"a": 0.1, "b": 0.45, "c": 0.45}, None),
        ({"a": 1.0, "b": 0.0, "c": 0.0}, "a", 0.1, None, {"a": 0.9, "b": 0.05, "c": 0.05}),
        ({"a": 0.95, "b": 0.05}, "a", 0.1, {"a": 1.0, "b": 0.0}, {"a": 0.85, "b": 0.15}),
        ({"a": 0.05, "b": 0.95}, "a", 0.1, {"a": 0.15, "b": 0.85}, {"a": 0.0, "b": 1.0}),
        ({"a": 0.5, "b": 0.5, "c": 0.0}, "a", 0.2,
         {"a": 0.7, "b": 0.3, "c": 0.0}, {"a": 0.3, "b": 0.7, "c": 0.0}),
        ({"a": 0.2, "b": 0.8}, "b", 1.0, {"a": 0.0, "b": 1.0}, {"a": 1.0, "b": 0.0}),
    ],
    ids=["interior", "weight 0: raise only", "weight 1, others 0: lower only, equally",
         "raise clipped at 1", "lower clipped at 0", "a zero domain stays zero", "step 1"],
)
def test_step_mixtures(weights, domain, step, up, down):
    got_up, got_down = step_mixtures(weights, domain, step)
    for got, want in ((got_up, up), (got_down, down)):
        if want is None:
            assert got is None
        else:
            assert list(got) == list(weights)  # the domains, in order
            assert got == pytest.approx(want, abs=1e-12)
            assert _exact_simplex(got)


@pytest.mark.parametrize("step", [0.01, 0.1, 0.5])
def test_step_mixtures_keep_the_others_proportions_on_random_mixtures(step):
    rng = np.random.default_rng(0)
    for _ in range(50):
        w = rng.dirichlet(np.ones(5)) * (rng.random(5) < 0.7)
        if w.sum() == 0:
            continue
        weights = dict(zip("abcde", w / w.sum()))
        for d in weights:
            for moved, sign in zip(step_mixtures(weights, d, step), (1, -1)):
                if moved is None:
                    continue
                assert _exact_simplex(moved)
                assert moved[d] == pytest.approx(min(1, max(0, weights[d] + sign * step)))
                others = [e for e in weights if e != d and weights[e] > 0]
                ratios = [moved[e] / weights[e] for e in others]
                assert not ratios or np.allclose(ratios, ratios[0])


@pytest.mark.parametrize(
    "weights, domain, step, message",
    [
        ({"a": 0.5, "b": 0.5}, "c", 0.1, "unknown domain 'c'"),
        ({"a": 0.5, "b": 0.5}, "a", 0.0, "step must be in"),
        ({"a": 0.5, "b": 0.5}, "a", 1.5, "step must be in"),
        ({"a": 0.5, "b": 0.4}, "a", 0.1, "sum to 1"),
        ({"a": 1.5, "b": -0.5}, "a", 0.1, ">= 0"),
        ({"a": 1.0}, "a", 0.1, "at least two domains"),
    ],
)
def test_step_mixtures_refuses_bad_input(weights, domain, step, message):
    with pytest.raises(ValueError, match=message):
        step_mixtures(weights, domain, step)


def _u(domain="code", weight=0.24, up=(0.34, -0.004, 0.002), down=(0.14, 0.006, 0.002)):
    return DomainUtility(domain, weight, *(up or (None,) * 3), *(down or (None,) * 3))


@pytest.mark.parametrize(
    "u, criterion, sentence",
    [
        (_u(), "mean",
         "raising code from 0.24 to 0.34 is predicted to lower the mean loss by 0.004 +- 0.002; "
         "lowering it to 0.14 to raise it by 0.006 +- 0.002"),
        (_u(up=(0.34, 0.001, 0.002), down=(0.14, -0.0015, 0.002)), "max",
         "raising code from 0.24 to 0.34 is predicted to change the worst-domain loss by "
         "+0.001 +- 0.002: not distinguishable from no change; lowering it to 0.14 to change "
         "it by -0.002 +- 0.002: not distinguishable from no change"),
        (_u(up=(0.34, 0.01, 0.002), down=(0.14, -0.02, 0.003)), "median",
         "raising code from 0.24 to 0.34 is predicted to raise the median loss by "
         "0.010 +- 0.002; lowering it to 0.14 to lower it by 0.020 +- 0.003"),
        (_u(weight=1.0, up=None, down=(0.9, 0.01, 0.002)), "max",
         "code is at 1.00 and cannot be raised; lowering it to 0.90 is predicted to raise the "
         "worst-domain loss by 0.010 +- 0.002"),
        (_u(weight=0.0, up=(0.1, -0.03, 0.01), down=None), "mean",
         "raising code from 0.00 to 0.10 is predicted to lower the mean loss by 0.030 +- 0.010; "
         "it cannot be lowered below 0"),
        (_u(weight=0.24, up=(0.245, -0.00004, 0.00001), down=(0.235, 0.00005, 0.00001)), "mean",
         "raising code from 0.240 to 0.245 is predicted to lower the mean loss by "
         "0.00004 +- 0.00001; lowering it to 0.235 to raise it by 0.00005 +- 0.00001"),
        (_u(), "p90",
         "raising code from 0.24 to 0.34 is predicted to lower the p90 criterion by "
         "0.004 +- 0.002; lowering it to 0.14 to raise it by 0.006 +- 0.002"),
    ],
    ids=["lower and raise", "no change", "raise and lower", "at 1", "at 0", "small step",
         "another criterion"],
)
def test_utility_sentence(u, criterion, sentence):
    assert utility_sentence(u, criterion) == sentence


def test_improved_over():
    best = {"books": 3.0, "web": 2.5, "code": 1.5}
    uniform = {"web": 2.4, "books": 3.1, "code": 1.5}
    got = improved_over(best, uniform)
    assert list(got) == ["books", "web", "code"]
    assert got == pytest.approx({"books": 0.1, "web": -0.1, "code": 0.0})
    with pytest.raises(ValueError, match="different domains \\(papers\\)"):
        improved_over(best, {**uniform, "papers": 2.0})


class _Recorder:
    """A stand-in sampler: the change of a move is its new weight of ``a`` minus the base's."""

    def __init__(self):
        self.calls = []

    def predict_change(self, study, base, others):
        self.calls.append((study, base, others))
        return [(o["a"] - base["a"], 0.01) for o in others]


def test_domain_utility_asks_one_prediction_for_every_possible_move():
    sampler = _Recorder()
    weights = {"a": 0.0, "b": 0.6, "c": 0.4}
    utilities = domain_utility(sampler, "study", weights, step=0.1)
    assert len(sampler.calls) == 1 and sampler.calls[0][1] == weights
    assert len(sampler.calls[0][2]) == 5  # a cannot be lowered
    assert [u.domain for u in utilities] == ["a", "b", "c"]
    a, b, _ = utilities
    assert (a.weight, a.up_weight, a.down_weight, a.down_change, a.down_std) == (
        0.0, pytest.approx(0.1), None, None, None)
    assert a.up_change == pytest.approx(0.1) and a.up_std == 0.01
    assert b.up_weight == pytest.approx(0.7) and b.up_change == pytest.approx(0.0)
    assert b.down_change == pytest.approx(0.0, abs=1e-12)  # a, at 0, gets none of b's 0.1


@pytest.mark.parametrize("prior_mean", ["law", "constant"])
def test_domain_utility_points_towards_the_optimum(prior_mean):
    # powerlaw seed 0: the optimum has no d1; at a mixture with 0.6 of it, lowering d1 (the
    # domain that moves most on the way to the optimum) lowers the mean loss
    surface = make_surface("powerlaw", 5, seed=0)
    optimum, _ = surface.optimum()
    start = np.full(5, 0.1)
    start[1] = 0.6
    weights = dict(zip(surface.domains, start))
    most = surface.domains[int(np.argmax(np.abs(optimum - start)))]
    assert most == "d1" and optimum[1] < start[1]
    study = optuna.create_study(sampler=SobolMixtureSampler(seed=0))
    study.optimize(surface_objective(surface, keep_losses=True), n_trials=24)
    sampler = SimplexGPSampler(seed=0, prior_mean=prior_mean)
    u = {u.domain: u for u in domain_utility(sampler, study, weights)}[most]
    _, down = step_mixtures(weights, most, 0.1)
    true_change = surface.value(list(down.values())) - surface.value(start)
    assert true_change < 0
    assert u.down_weight == pytest.approx(0.5) and u.down_change < -u.down_std
    assert "lowering it to 0.50 to lower it by" in utility_sentence(u, "mean")
