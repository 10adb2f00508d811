"""Analytic surfaces: seeded, a true optimum no candidate beats, noise of the stated size."""

from __future__ import annotations

import numpy as np
import pytest

from optuna_mix.criteria import apply_criterion
from optuna_mix.schema import SURFACE_FAMILIES
from optuna_mix.surfaces import FAMILIES, make_surface


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("k", [2, 5, 10, 20])
def test_optimum_beats_dense_random_candidates(family, k):
    surface = make_surface(family, k, seed=3)
    w_star, v_star = surface.optimum()
    assert abs(w_star.sum() - 1) < 1e-12 and w_star.min() >= 0
    candidates = np.random.default_rng(0).dirichlet(np.ones(k), size=20000)
    assert v_star <= surface.value(candidates).min() + 1e-9
    if k >= 5:  # the uniform mixture is not optimal
        assert surface.regret(np.full(k, 1 / k)) > 0.005


def test_dml_form_matches_its_formula():
    s = make_surface("dml", 3, seed=0)
    w = np.array([0.2, 0.3, 0.5])
    expected = s.params["c"] + s.params["k"] * np.exp(s.params["t"] @ w)
    np.testing.assert_allclose(s.losses(w), expected)


def test_powerlaw_form_matches_its_formula():
    s = make_surface("powerlaw", 3, seed=0)
    w = np.array([0.2, 0.3, 0.5])
    p = s.params
    expected = p["a"] + p["b"] * (0.02 + p["T"] @ w) ** (-p["alpha"])
    np.testing.assert_allclose(s.losses(w), expected)


def test_same_seed_same_surface_other_seed_other_surface():
    a, b, c = (make_surface("powerlaw", 5, seed=s) for s in (1, 1, 2))
    w = np.full(5, 0.2)
    assert np.array_equal(a.losses(w), b.losses(w))
    assert not np.array_equal(a.losses(w), c.losses(w))


def test_noise_is_the_std_of_the_mean_criterion():
    s = make_surface("dml", 5, seed=0, noise=0.02)
    rng = np.random.default_rng(0)
    w = np.full(5, 0.2)
    values = [apply_criterion("mean", s.noisy_losses(w, rng)) for _ in range(4000)]
    assert np.std(values) == pytest.approx(0.02, rel=0.08)
    assert np.mean(values) == pytest.approx(float(s.value(w)), abs=0.002)


def test_max_criterion_has_its_own_optimum():
    s = make_surface("powerlaw", 4, seed=0)
    w_max, v_max = s.optimum("max")
    w_mean, _ = s.optimum("mean")
    assert v_max <= float(s.value(w_mean, "max")) + 1e-9


def test_unknown_family_is_refused():
    with pytest.raises(ValueError, match="unknown surface family"):
        make_surface("cubic", 3)


def test_detect_criterion_names_the_one_that_gives_every_value():
    from optuna_mix.criteria import CRITERIA, detect_criterion

    losses = np.random.default_rng(0).uniform(2.0, 4.0, (6, 5))
    for name, fn in CRITERIA.items():
        assert detect_criterion(losses, fn(losses)) == name
    assert detect_criterion(losses, losses @ np.array([0.4, 0.3, 0.1, 0.1, 0.1])) is None
    assert detect_criterion(losses, np.mean(losses, axis=1)[:-1]) is None  # lengths differ


def test_the_config_offers_every_family():
    # and "scaled", the family over mixture x model size (optuna_mix.scaled_surfaces)
    assert SURFACE_FAMILIES == (*FAMILIES, "scaled")


def test_relu_form_is_piecewise_linear_with_saturating_own_data():
    s = make_surface("relu", 3, seed=0)
    p = s.params
    w = np.array([0.2, 0.3, 0.5])
    hidden = np.maximum(0, p["U"] @ w - p["c"])
    expected = p["a"] + p["b"] * np.maximum(0, 1 - w / p["tau"]) + p["V"] @ hidden
    np.testing.assert_allclose(s.losses(w), expected)
    # piecewise linear: along a segment inside one piece the second difference is zero
    d = np.array([1.0, -1.0, 0.0]) * 1e-4
    second = s.losses(w + d) - 2 * s.losses(w) + s.losses(w - d)
    assert np.max(np.abs(second)) < 1e-12


def test_interaction_form_adds_pairwise_terms_to_the_power_law():
    s = make_surface("interaction", 4, seed=0)
    base = make_surface("powerlaw", 4, seed=0)
    assert np.count_nonzero(s.params["Q"]) > 0
    w = np.array([0.1, 0.2, 0.3, 0.4])
    iu, ju = np.triu_indices(4, 1)
    pairs = w[iu] * w[ju]
    p = s.params
    power = p["a"] + p["b"] * (0.02 + p["T"] @ w) ** (-p["alpha"])
    np.testing.assert_allclose(s.losses(w), power + p["Q"] @ pairs)
    assert base.params["a"].shape == (4,)


@pytest.mark.parametrize("outputs, m", [(None, 3), (["web_heldout", "task"], 2),
                                        ([f"v{i}" for i in range(7)], 7)])
def test_heldout_validation_sets_need_not_be_the_domains(outputs, m):
    s = make_surface("heldout", 5, seed=0, outputs=outputs)
    assert s.m == m and s.outputs != s.domains
    assert s.losses(np.full(5, 0.2)).shape == (m,)
    assert s.losses(np.full((4, 5), 0.2)).shape == (4, m)
    rng = np.random.default_rng(0)
    values = [apply_criterion("mean", s.noisy_losses(np.full(5, 0.2), rng)) for _ in range(2000)]
    assert np.std(values) == pytest.approx(0.0, abs=1e-12)  # noise 0
    noisy = make_surface("heldout", 5, seed=0, outputs=outputs, noise=0.02)
    values = [apply_criterion("mean", noisy.noisy_losses(np.full(5, 0.2), rng)) for _ in range(4000)]
    assert np.std(values) == pytest.approx(0.02, rel=0.08)


@pytest.mark.parametrize("family, outputs, message", [
    ("powerlaw", ["a", "b"], "only heldout takes other outputs"),
    ("heldout", ["a", "a"], "must be distinct"),
])
def test_bad_validation_sets_are_refused(family, outputs, message):
    with pytest.raises(ValueError, match=message):
        make_surface(family, 3, outputs=outputs)


@pytest.mark.parametrize("family", ["transfer", "capacity"])
def test_the_scaled_surfaces_best_mixture_moves_with_the_model_size(family):
    from optuna_mix.scaled_surfaces import make_scaled_surface

    moved = []
    for seed in range(4):
        surface = make_scaled_surface(5, seed=seed, family=family)
        small, _ = surface.optimum(25e3)
        large, large_value = surface.optimum(400e3)
        assert surface.value(large, 400e3) == pytest.approx(large_value)
        assert surface.regret(small, 400e3) >= -1e-9  # the small optimum is no better there
        moved.append(0.5 * np.abs(small - large).sum())
        # losses fall as the model grows, at every mixture
        w = np.random.default_rng(seed).dirichlet(np.ones(5))
        assert np.all(surface.losses(w, 400e3) < surface.losses(w, 25e3))
    assert min(moved) > 0.05  # total variation between the two optima
    assert make_scaled_surface(5, seed=0, family=family).cost(50e3) == 4.0


def test_an_unknown_scaled_family_is_refused_with_the_choices():
    from optuna_mix.scaled_surfaces import make_scaled_surface

    with pytest.raises(ValueError, match="transfer, capacity"):
        make_scaled_surface(3, family="cubic")
