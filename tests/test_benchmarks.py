"""The benchmark scripts' own logic: the seed's BO recipe, the regret report's ratios and the
scale-transfer benchmark's compute accounting."""

from __future__ import annotations

import sys
import warnings

import numpy as np
import optuna
import pytest

from helpers import REPO
from optuna_mix.surfaces import make_surface

sys.path.insert(0, str(REPO / "benchmarks"))
import regret  # noqa: E402
import scale_transfer  # noqa: E402
from seed_recipe import SeedRecipeSampler, suggest_first_weights  # noqa: E402


def test_the_seed_recipe_starts_with_sobol_then_proposes_inside_the_simplex():
    surface = make_surface("powerlaw", 3, seed=0)

    def objective(trial):
        w = suggest_first_weights(trial, 3)
        assert np.all(w >= 0) and abs(w.sum() - 1) < 1e-9
        return float(surface.value(w))

    sampler = SeedRecipeSampler(3, seed=0, n_startup_trials=4, num_restarts=2, raw_samples=32)
    study = optuna.create_study(sampler=sampler)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study.optimize(objective, n_trials=6)
    first = [[t.params["x0"], t.params["x1"]] for t in study.trials[:4]]
    np.testing.assert_allclose(first, sampler._startup[:4, :2])  # the Sobol design
    for t in study.trials[4:]:  # BO steps under sum(x) <= 1
        assert t.params["x0"] + t.params["x1"] <= 1 + 1e-6


def _run(sampler, family, seed, regrets, mode="any"):
    return {"sampler": sampler, "mode": mode, "family": family, "k": 5, "noise": 0.01,
            "seed": seed, "regret": dict(regrets)}


@pytest.mark.parametrize("gp, peers, expected", [
    # one peer: the ratio of means over the problems both ran
    ([1.0, 3.0], {"a": [2.0, 2.0]}, (1.0, "a")),
    # the strongest peer is the one that gives the largest ratio
    ([1.0, 1.0], {"a": [4.0, 4.0], "b": [2.0, 2.0]}, (0.5, "b")),
    # a peer that skipped a problem is compared on the problems it ran only
    ([1.0, 9.0], {"a": [2.0, None]}, (0.5, "a")),
])
def test_the_ratio_to_the_strongest_peer_is_over_the_problems_both_ran(gp, peers, expected):
    families = ["relu", "heldout"]
    ours = [_run("gp", f, 0, {16: v}, "losses") for f, v in zip(families, gp)]
    theirs = {name: [_run(name, f, 0, {16: v}) for f, v in zip(families, values)
                     if v is not None] for name, values in peers.items()}
    ratio, name = regret._ratio_to_strongest(ours, theirs, 16)
    assert (round(ratio, 12), name) == expected


@pytest.mark.parametrize("sampler, mode, family, runs", [
    ("bimix", "losses", "relu", True), ("bimix", "losses", "heldout", False),
    ("dml", "values", "relu", False), ("dml", "losses", "heldout", True),
    ("gp", "values", "heldout", True), ("sobol", "losses", "relu", True),
])
def test_which_sampler_runs_in_which_mode(sampler, mode, family, runs):
    assert regret.runs_in(sampler, mode, family) is runs


def test_the_ratio_interval_holds_the_ratio_and_shrinks_with_more_problems():
    rng = np.random.default_rng(0)
    few = np.column_stack([rng.uniform(0, 1, 10), rng.uniform(1, 2, 10)])
    many = np.column_stack([rng.uniform(0, 1, 400), rng.uniform(1, 2, 400)])
    for pairs in (few, many):
        lo, hi = regret.ratio_interval(pairs)
        assert lo < pairs[:, 0].mean() / pairs[:, 1].mean() < hi
    assert np.subtract(*regret.ratio_interval(many)[::-1]) < np.subtract(
        *regret.ratio_interval(few)[::-1])


def test_the_strongest_peer_interval_chooses_the_peer_again_in_every_draw():
    rng = np.random.default_rng(0)
    families = [f"f{i}" for i in range(30)]
    gp = [_run("gp", f, 0, {16: v}, "losses") for f, v in zip(families, rng.uniform(1, 2, 30))]
    # two peers about equally strong: which one is strongest changes from draw to draw
    peers = {name: [_run(name, f, 0, {16: v}) for f, v in zip(families, rng.uniform(2, 4, 30))]
             for name in ("a", "b")}
    ratio, name = regret._ratio_to_strongest(gp, peers, 16)
    lo, hi = regret.strongest_ratio_interval(gp, peers, 16)
    one_lo, one_hi = regret.ratio_interval(regret._paired(gp, peers[name], 16))
    assert lo < ratio < hi
    assert lo >= one_lo - 1e-12  # the max over peers is never below the chosen one's
    # a peer alone gives the single-peer interval (the same draws)
    alone = regret.strongest_ratio_interval(gp, {name: peers[name]}, 16)
    assert np.allclose(alone, (one_lo, one_hi))


def test_a_problem_run_twice_by_one_sampler_is_refused():
    gp = [_run("gp", "relu", 0, {16: 1.0}, "losses")] * 2
    with pytest.raises(ValueError, match="ran .* twice"):
        regret._paired(gp, [_run("sobol", "relu", 0, {16: 2.0})], 16)


@pytest.mark.parametrize("way", scale_transfer.WAYS)
def test_every_way_of_the_scale_benchmark_spends_at_most_the_budget(way):
    sizes = [25e3, 50e3]
    r = scale_transfer.run_one(way, 3, 0, 0.01, sizes, 200e3, 9.0)
    assert r["compute"] <= 9.0 and r["regret"] >= -1e-9
    if way == "small":
        assert r["trials"] == 9 and set(r["sizes"]) == {25e3}
    if way == "largest":
        assert r["trials"] == 2 and set(r["sizes"]) == {50e3}
    if way == "aware":
        assert set(r["sizes"]) <= set(sizes) and r["trials"] >= 5
        # the last trials take the sizes that still fit: nothing of the budget is left over
        # that would buy a trial at the smallest size
        assert 9.0 - r["compute"] < 1.0
