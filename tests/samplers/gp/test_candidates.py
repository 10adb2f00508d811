"""The raw candidates of the acquisition search: the whole simplex, its faces, and near centres."""

from __future__ import annotations

import itertools

import numpy as np
from optuna.distributions import CategoricalDistribution, FloatDistribution

from optuna_mix.samplers._simplex import Mixture
from optuna_mix.samplers.gp.candidates import (
    FACE_EVERY,
    candidate_points,
    global_points,
    mixture_candidates,
)
from optuna_mix.samplers.gp.space import EncodedSpace


def _space() -> EncodedSpace:
    mixtures = [Mixture("a", ("x", "y", "z", "w")), Mixture("b", ("p", "q"))]
    others = {"lr": FloatDistribution(1e-4, 1e-1, log=True),
              "act": CategoricalDistribution(["relu", "gelu", "tanh"])}
    return EncodedSpace(mixtures, others)


def test_mixture_candidates_cover_interior_faces_vertices_and_edge_midpoints():
    k, n = 4, 60
    pts = mixture_candidates(k, n, np.random.default_rng(0))
    assert pts.shape == (n + k + k * (k - 1) // 2, k)
    np.testing.assert_allclose(pts.sum(axis=1), 1.0)
    assert (pts >= 0).all()
    on_faces = int(((pts[:n] == 0).any(axis=1)).sum())
    assert on_faces == n // FACE_EVERY
    np.testing.assert_array_equal(pts[n : n + k], np.eye(k))
    midpoints = [(np.eye(k)[i] + np.eye(k)[j]) / 2 for i, j in itertools.combinations(range(k), 2)]
    np.testing.assert_array_equal(pts[n + k :], midpoints)


def test_no_edge_midpoints_beyond_ten_domains():
    assert len(mixture_candidates(11, 20, np.random.default_rng(0))) == 20 + 11


def test_global_points_give_every_block_the_same_number_of_rows():
    space = _space()
    X = global_points(space, 8, np.random.default_rng(0))
    assert X.shape == (8 + 4 + 6, space.dim)  # the larger mixture's vertices and midpoints
    for b in space.mixture_blocks:
        np.testing.assert_allclose(X[:, b.columns].sum(axis=1), 1.0)
    (act,) = space.categorical_blocks
    np.testing.assert_array_equal(X[:, act.columns].sum(axis=1), 1.0)


def test_candidates_are_snapped_onto_the_space_and_end_with_the_centres():
    space = _space()
    rng = np.random.default_rng(1)
    centres = global_points(space, 2, rng)[:2]
    X = candidate_points(space, 16, rng, centres, scales=(0.1,), n_local=5)
    assert len(X) == len(global_points(space, 16, np.random.default_rng(0))) + 2 * 5 + 2
    np.testing.assert_array_equal(X[-2:], centres)
    np.testing.assert_allclose(X, space.snap_many(X), atol=1e-12)
