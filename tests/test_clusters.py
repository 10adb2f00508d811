"""optuna_mix.clusters: the log-ratio map, Aitchison distance and the clusters of good mixtures."""

from __future__ import annotations

import numpy as np
import optuna
import pytest

from optuna_mix import suggest_mixture
from optuna_mix.clusters import (
    MIN_CLUSTER_SIZE,
    PSEUDO_COUNT,
    ClusterResult,
    aitchison_distance,
    clr,
    clr_inverse,
    cluster_mixtures,
    good_trials,
    silhouette,
)

W5 = np.array([0.4, 0.3, 0.2, 0.1, 0.0])
POINTS = {
    "interior": np.array([0.1, 0.2, 0.3, 0.4]),
    "one zero": np.array([0.4, 0.35, 0.25, 0.0]),
    "two zeros": np.array([0.7, 0.3, 0.0, 0.0]),
    "vertex": np.array([1.0, 0.0, 0.0, 0.0]),
    "uniform": np.full(4, 0.25),
}


def tv(a: np.ndarray, b: np.ndarray) -> float:
    return float(0.5 * np.abs(np.asarray(a) - np.asarray(b)).sum())


def check_partition(result: ClusterResult, values: np.ndarray) -> None:
    """Headline members and ``other`` cover every input once; each cluster is self-consistent."""
    seen = [i for c in result.clusters for i in c.members] + result.other
    assert sorted(seen) == list(range(len(values)))
    for c in result.clusters:
        assert c.size == len(c.members) >= MIN_CLUSTER_SIZE
        assert c.best_index == c.members[0] and c.best == values[c.best_index] == min(
            values[c.members]
        )
        assert c.mean == pytest.approx(values[c.members].mean())
        assert np.all(c.centre >= 0) and c.centre.sum() == pytest.approx(1.0, abs=1e-12)
        assert c.spread >= 0 and 0 <= c.spread_tv <= 1
    bests = [c.best for c in result.clusters]
    assert bests == sorted(bests)


# --- the log-ratio map and the distance ---------------------------------------------------------


@pytest.mark.parametrize("name", POINTS)
def test_clr_centred_finite_and_inverted(name):
    w = POINTS[name] / POINTS[name].sum()
    z = clr(w)
    assert np.all(np.isfinite(z)) and z.sum() == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(clr_inverse(z), w, atol=1e-12)


@pytest.mark.parametrize("scale", [1e-6, 0.5, 3.0, 1e6])
@pytest.mark.parametrize("name", POINTS)
def test_clr_is_scale_invariant(name, scale):
    np.testing.assert_allclose(clr(scale * POINTS[name]), clr(POINTS[name]), atol=1e-12)


@pytest.mark.parametrize("perm", [[1, 0, 2, 3, 4], [4, 3, 2, 1, 0], [2, 4, 0, 1, 3]])
def test_clr_permutes_with_the_domains(perm):
    np.testing.assert_allclose(clr(W5[perm]), clr(W5)[perm], atol=1e-12)


def test_clr_is_continuous_at_zero_weights():
    """Additive replacement: an exact 0 and a tiny weight are the same mixture."""
    tiny = np.array([0.4, 0.3, 0.2, 0.1 - 1e-9, 1e-9])
    assert aitchison_distance(W5, tiny) < 1e-6


def test_clr_vectorises_over_rows():
    rows = np.vstack(list(POINTS.values()))
    np.testing.assert_allclose(clr(rows), np.vstack([clr(p) for p in POINTS.values()]), atol=1e-12)


A = np.array([0.5, 0.3, 0.2, 0.0])
B = np.array([0.1, 0.1, 0.4, 0.4])
PERM = [3, 1, 0, 2]


@pytest.mark.parametrize(
    "case, left, right",
    [
        ("identity", (A, A), 0.0),
        ("symmetry", (A, B), (B, A)),
        ("scale of one side", (7.0 * A, B), (A, B)),
        ("scale of both", (0.01 * A, 100 * B), (A, B)),
        ("permutation", (A[PERM], B[PERM]), (A, B)),
        (
            "vertex to vertex is finite",
            (np.eye(4)[0], np.eye(4)[1]),
            np.sqrt(2) * np.log(1.01 / 0.01),
        ),
    ],
)
def test_aitchison_distance_properties(case, left, right):
    expected = right if isinstance(right, float) else aitchison_distance(*right)
    assert aitchison_distance(*left) == pytest.approx(expected, abs=1e-12)


def test_aitchison_distance_weighs_ratios_not_differences():
    """0 against 0.03 of a domain is far, 0.40 against 0.43 near: both move 3% of the tokens."""
    absent, some = np.array([0.50, 0.50, 0.00]), np.array([0.485, 0.485, 0.03])
    big, bigger = np.array([0.40, 0.30, 0.30]), np.array([0.43, 0.285, 0.285])
    assert tv(absent, some) == pytest.approx(tv(big, bigger))
    assert aitchison_distance(absent, some) > 5 * aitchison_distance(big, bigger)


def test_aitchison_distance_broadcasts_and_equals_the_ilr_distance():
    rng = np.random.default_rng(0)
    rows = rng.dirichlet(np.ones(4), 6)
    d = aitchison_distance(rows, A)
    assert d.shape == (6,)
    # ilr with a Helmert basis is an isometry of the clr plane: the same distances
    helmert = np.array([[1, -1, 0, 0], [1, 1, -2, 0], [1, 1, 1, -3]], dtype=float)
    helmert /= np.linalg.norm(helmert, axis=1, keepdims=True)
    ilr = clr(rows) @ helmert.T
    np.testing.assert_allclose(d, np.linalg.norm(ilr - clr(A) @ helmert.T, axis=1), atol=1e-12)


@pytest.mark.parametrize(
    "bad", [np.array([0.5, -0.1, 0.6]), np.zeros(3), np.array([np.nan, 0.5, 0.5])]
)
def test_clr_refuses_what_is_not_a_mixture(bad):
    with pytest.raises(ValueError):
        clr(bad)


# --- good_trials --------------------------------------------------------------------------------

VALUES = np.array([3.0, 1.0, np.nan, 2.0, 5.0, 4.0, np.inf, 0.5, 6.0])  # 7 finite


@pytest.mark.parametrize(
    "top, minimise, expected",
    [
        (0.25, True, [7, 1]),  # ceil(0.25 * 7) = 2
        (0.01, True, [7]),  # at least one
        (0.5, False, [8, 4, 5, 0]),
        (3, True, [7, 1, 3]),
        (np.int64(1), False, [8]),
        (100, True, [7, 1, 3, 0, 5, 4, 8]),  # all the finite ones
    ],
)
def test_good_trials(top, minimise, expected):
    assert good_trials(VALUES, top, minimise=minimise).tolist() == expected


@pytest.mark.parametrize(
    "top, error",
    [
        (0, ValueError),
        (1.0, ValueError),
        (-2, ValueError),
        (1.5, ValueError),
        (True, TypeError),
        ("10", TypeError),
    ],
)
def test_good_trials_refuses_a_bad_top(top, error):
    with pytest.raises(error):
        good_trials(VALUES, top)


# --- silhouette ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "points, labels, expected",
    [
        (
            [0.0, 0.1, 10.0, 10.1],
            [1, 1, 2, 2],
            1 - 0.1 / 9.95,
        ),  # each row: 1 - a/b, a = 0.1
        (
            [0.0, 0.1, 10.0],
            [1, 1, 2],
            2 / 3 * (1 - 0.1 / 9.95),
        ),  # the singleton scores 0
        ([0.0, 1.0, 2.0], [1, 1, 1], 0.0),  # one group
    ],
)
def test_silhouette(points, labels, expected):
    x = np.asarray(points)
    distances = np.abs(x[:, None] - x[None, :])
    assert silhouette(distances, np.asarray(labels)) == pytest.approx(expected, rel=1e-3)


# --- clusters -----------------------------------------------------------------------------------

BLOB_CENTRES = np.array(
    [
        [0.70, 0.10, 0.10, 0.05, 0.05],  # books-heavy
        [0.05, 0.05, 0.10, 0.10, 0.70],  # social-heavy
        [0.20, 0.20, 0.20, 0.20, 0.20],  # even
    ]
)


def three_blobs(per_blob: int = 8, seed: int = 0):
    """Shuffled Dirichlet draws around BLOB_CENTRES; blob b's values lie in [b, b + 0.5)."""
    rng = np.random.default_rng(seed)
    blob = np.repeat(np.arange(3), per_blob)
    rng.shuffle(blob)
    weights = np.vstack([rng.dirichlet(300 * BLOB_CENTRES[b]) for b in blob])
    values = blob + rng.uniform(0, 0.5, len(blob))
    return weights, values, blob


@pytest.mark.parametrize("per_blob, seed", [(8, 0), (4, 1), (20, 2)])
def test_three_separated_blobs_are_three_clusters(per_blob, seed):
    weights, values, blob = three_blobs(per_blob, seed)
    result = cluster_mixtures(weights, values)
    check_partition(result, values)
    assert len(result.clusters) == 3 and result.other == []
    for b, cluster in enumerate(result.clusters):  # ordered by best value: blob 0 first
        assert sorted(cluster.members) == np.flatnonzero(blob == b).tolist()
        assert tv(cluster.centre, BLOB_CENTRES[b]) < 0.05
        assert cluster.spread_tv < 0.1
    assert result.silhouette > result.threshold


def test_ordering_follows_the_direction():
    weights, values, blob = three_blobs()
    result = cluster_mixtures(weights, -values, minimise=False)  # the same order, maximised
    assert [int(blob[c.best_index]) for c in result.clusters] == [0, 1, 2]
    result = cluster_mixtures(weights, values, minimise=False)  # the best is now blob 2
    assert [int(blob[c.best_index]) for c in result.clusters] == [2, 1, 0]
    assert all(
        c.members[0] == int(np.argmax(np.where(blob == blob[c.best_index], values, -np.inf)))
        for c in result.clusters
    )


def test_max_clusters_one_keeps_one_cluster():
    weights, values, _ = three_blobs()
    result = cluster_mixtures(weights, values, max_clusters=1)
    assert [c.size for c in result.clusters] == [len(values)] and result.silhouette is None


@pytest.mark.parametrize(
    "n, k, seed",
    [(8, 3, 0), (10, 5, 1), (20, 5, 2), (40, 5, 3), (40, 8, 4), (60, 3, 5)],
)
def test_uniform_mixtures_give_few_clusters_and_no_singletons(n, k, seed):
    weights = np.random.default_rng(seed).dirichlet(np.ones(k), n)
    values = np.random.default_rng(seed + 100).normal(size=n)
    result = cluster_mixtures(weights, values)
    check_partition(result, values)
    assert 1 <= len(result.clusters) <= 5


def test_uniform_mixtures_rarely_split():
    """The split rule is calibrated: structureless mixtures split in about 5% of draws."""
    splits = 0
    for seed in range(20):
        weights = np.random.default_rng(seed).dirichlet(np.ones(5), 20)
        splits += len(cluster_mixtures(weights, np.arange(20.0)).clusters) > 1
    assert splits <= 3


@pytest.mark.parametrize("n", [0, 1, 2])
def test_fewer_than_three_mixtures(n):
    weights, values = (
        np.full((n, 4), 0.25) + np.arange(n)[:, None] * [0.1, -0.1, 0, 0],
        np.arange(n, dtype=float),
    )
    result = cluster_mixtures(weights, values)
    check_partition(result, values)
    assert result.silhouette is None
    assert [c.size for c in result.clusters] == ([2] if n == 2 else [])
    assert result.other == ([0] if n == 1 else [])


def test_identical_mixtures_are_one_cluster_with_no_spread():
    weights = np.tile([0.3, 0.0, 0.7], (6, 1))
    result = cluster_mixtures(weights, np.linspace(1, 2, 6))
    (cluster,) = result.clusters
    assert cluster.members == list(range(6)) and cluster.spread == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_allclose(cluster.centre, [0.3, 0.0, 0.7], atol=1e-12)


def test_the_centre_is_the_closed_geometric_mean():
    weights = np.array([[0.5, 0.25, 0.25], [0.125, 0.5, 0.375]])
    (cluster,) = cluster_mixtures(weights, np.array([1.0, 2.0])).clusters
    shifted = (weights + PSEUDO_COUNT) / (1 + 3 * PSEUDO_COUNT)
    geometric = np.sqrt(shifted[0] * shifted[1])
    geometric /= geometric.sum()
    np.testing.assert_allclose(
        cluster.centre, geometric * (1 + 3 * PSEUDO_COUNT) - PSEUDO_COUNT, atol=1e-12
    )
    assert cluster.spread == pytest.approx(aitchison_distance(weights[0], weights[1]) / 2)


def test_clustering_is_deterministic():
    weights, values, _ = three_blobs(6, 3)
    first, again = cluster_mixtures(weights, values), cluster_mixtures(weights, values)
    assert (first.silhouette, first.threshold, first.other) == (
        again.silhouette,
        again.threshold,
        again.other,
    )
    assert [c.members for c in first.clusters] == [c.members for c in again.clusters]
    for a, b in zip(first.clusters, again.clusters):
        np.testing.assert_array_equal(a.centre, b.centre)


@pytest.mark.parametrize(
    "weights, values, kwargs",
    [
        (np.full((3, 2), 0.5), np.zeros(2), {}),
        (np.full((3, 2), 0.5), np.zeros(3), {"max_clusters": 0}),
        (np.array([[0.5, 0.5], [1.2, -0.2], [0.3, 0.7]]), np.zeros(3), {}),
        (np.full((3, 2), 0.5), np.array([1.0, np.nan, 2.0]), {}),
        (np.full(3, 0.5), np.zeros(3), {}),
    ],
)
def test_cluster_mixtures_refuses_bad_input(weights, values, kwargs):
    with pytest.raises(ValueError):
        cluster_mixtures(weights, values, **kwargs)


# --- on a surface with a known optimum, after a GP study ------------------------------------------

# Measured (40 trials, sampler and noise seeds 0..5): the best cluster's centre lies 0.010 to
# 0.071 TV from the optimum (0.050 for seed 0; 0.096 for seed 0's next-best cut, a 2/8 split
# whose score misses the threshold by 0.002), always nearer than the best single trial
# (0.024 to 0.122). 0.12 clears all of them; the mean Sobol point lies 0.46 away (5% within 0.21).
CENTRE_TV_MAX = 0.12


@pytest.fixture(scope="module")
def gp_study():
    from optuna_mix.samplers import SimplexGPSampler

    from optuna_mix.surfaces import make_surface

    surface = make_surface("powerlaw", 5, seed=0, noise=0.01)
    domains = list(surface.domains)
    rng = np.random.default_rng(0)

    def objective(trial: optuna.Trial) -> float:
        w = np.array(list(suggest_mixture(trial, domains).values()))
        losses = surface.noisy_losses(w, rng)
        trial.set_user_attr("losses", dict(zip(domains, map(float, losses))))
        return float(np.mean(losses))

    study = optuna.create_study(sampler=SimplexGPSampler(seed=0))
    study.optimize(objective, n_trials=40)
    weights = np.array([[t.user_attrs["mix"][d] for d in domains] for t in study.trials])
    values = np.array([t.value for t in study.trials])
    return surface, weights, values


@pytest.mark.slow
def test_best_cluster_of_a_gp_study_is_centred_near_the_optimum(gp_study):
    from optuna_mix.samplers import sobol_simplex_points

    surface, weights, values = gp_study
    optimum, _ = surface.optimum("mean")
    good = good_trials(values, 0.25)
    result = cluster_mixtures(weights[good], values[good])
    check_partition(result, values[good])
    assert 1 <= len(result.clusters) <= 5
    centre = result.clusters[0].centre
    sobol = sobol_simplex_points(5, 1024, seed=0)
    mean_sobol_tv = float(np.mean(0.5 * np.abs(sobol - optimum).sum(axis=1)))
    assert tv(centre, optimum) < CENTRE_TV_MAX < mean_sobol_tv
    # ("the centre beats the best trial" held for the earlier GP's trajectory only: with the
    # law prior on evidence, issue 13, the good trials sit closer, median TV 0.085, than
    # the centre of their cluster, 0.091, which stays well inside CENTRE_TV_MAX)
