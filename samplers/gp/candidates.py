"""Candidate generation: the raw points the acquisition search scores, on the exact simplex.

Global coverage of every mixture block (scrambled Sobol points on the simplex, a share of
them moved onto random faces, every vertex and edge midpoint) and local moves around given
centres, snapped back onto the space (exact simplex points, grid values, one-hots). How the
search uses them: docs/gp.md, "How it works, and why".
"""

from __future__ import annotations

import itertools

import numpy as np

from optuna_mix.samplers._startup import sobol_simplex_points
from optuna_mix.samplers.gp.space import EncodedSpace

# one Sobol candidate in FACE_EVERY is moved onto a random face (1..k-1 domains zeroed): good
# mixtures often put zero weight on some domains, and interior points never do
FACE_EVERY = 3
# edge midpoints are candidates up to this many domains (k(k-1)/2 of them: 45 at k = 10)
EDGE_MIDPOINTS_UP_TO = 10
# standard deviations of the local moves around each centre: from near it to across a face
LOCAL_SCALES = (0.02, 0.08, 0.2)
# local moves per centre and scale
N_LOCAL = 16
# the share of local moves that also zero one random domain of each mixture (nearby faces)
LOCAL_FACE_SHARE = 0.5


def mixture_candidates(k: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """Points (n', k) on the k-simplex that cover its interior, faces, edges and vertices:
    ``n`` Sobol points (some moved onto faces), then the k vertices and the edge midpoints."""
    seed = int(rng.integers(2**31))
    pts = sobol_simplex_points(k, n, seed=seed)
    # one in FACE_EVERY moved onto a random face: zero a random number of domains
    rows = rng.choice(n, n // FACE_EVERY, replace=False)
    n_zero = rng.integers(1, k, len(rows))  # 1 .. k-1 domains zeroed, one always kept
    ranks = np.argsort(rng.random((len(rows), k)), axis=1)
    face = pts[rows] * (ranks >= n_zero[:, None])
    pts[rows] = face / face.sum(axis=1, keepdims=True)
    extra = [np.eye(k)]
    if k <= EDGE_MIDPOINTS_UP_TO:
        extra.append(np.array([(np.eye(k)[i] + np.eye(k)[j]) / 2 for i, j in
                               itertools.combinations(range(k), 2)]))
    return np.vstack([pts, *extra])


def candidate_points(
    space: EncodedSpace,
    n: int,
    rng: np.random.Generator,
    centres: np.ndarray,
    *,
    scales: tuple[float, ...] = LOCAL_SCALES,
    n_local: int = N_LOCAL,
) -> np.ndarray:
    """Raw candidates (rows of d columns) for the acquisition search: ``n`` or more points of
    global coverage, local moves near the ``centres`` (c, d), then the centres themselves.

    Local moves perturb a centre and snap it back (exact simplex, faces via the zero snap);
    half of them also zero one random domain of each mixture, to reach the faces nearby.
    """
    if n == 0:
        X = np.zeros((0, space.dim))
    else:
        X = global_points(space, n, rng)
    local = []
    for c in centres:
        for scale in scales:
            Y = np.repeat(c[None, :], n_local, axis=0)
            Y = Y + rng.normal(0.0, scale, Y.shape)
            for b in space.mixture_blocks:
                half = rng.random(n_local) < LOCAL_FACE_SHARE
                cols = b.start + rng.integers(0, b.width, n_local)
                Y[np.flatnonzero(half), cols[half]] = 0.0
            local.append(Y)
    if local:
        X = np.vstack([X, space.snap_many(np.vstack(local))])
    return np.vstack([X, centres]) if len(centres) else X


def global_points(space: EncodedSpace, n: int, rng: np.random.Generator) -> np.ndarray:
    """At least ``n`` points over the whole space (X (n', d)): :func:`mixture_candidates` in
    every mixture block, uniform numerics, random one-hots."""
    mixture_points = {
        b.mixture.name: mixture_candidates(b.mixture.k, n, rng)  # type: ignore[union-attr]
        for b in space.mixture_blocks
    }
    n_global = max([n] + [len(p) for p in mixture_points.values()])
    for name, p in mixture_points.items():  # same count in every block: pad by resampling
        if len(p) < n_global:
            mixture_points[name] = np.vstack([p, p[rng.integers(0, len(p), n_global - len(p))]])
    return space.random_points(n_global, rng, mixture_points)
