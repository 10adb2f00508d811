"""The start-up design every optuna-mix sampler shares: scrambled Sobol points on the simplex.

Trial ``n`` of a study takes point ``n`` of one seeded sequence per mixture, so that many
workers on one study share one low-discrepancy design without talking to each other. The
sequence's seed is derived from the sampler's seed and the mixture's name alike in every
worker process (:func:`stable_seed`); a sampler built without a seed draws one for its own
sequence (:func:`sequence_seed`).
"""

from __future__ import annotations

import hashlib
import warnings

import numpy as np

from optuna_mix.samplers._simplex import Mixture, cube_to_simplex


def sobol_simplex_points(k: int, n: int, *, seed: int | None, skip: int = 0) -> np.ndarray:
    """Points ``skip .. skip+n-1`` of a scrambled Sobol sequence in [0,1]^(k-1), on the simplex.

    Scrambling (Owen's, seeded) keeps the low discrepancy and avoids SciPy's unscrambled first
    point at the origin, which would be a degenerate (one-hot) mixture.
    """
    from scipy.stats import qmc  # scipy.stats takes ~1 s to import: only when needed

    if k < 2:
        raise ValueError(f"a mixture needs at least 2 domains, got {k}")
    engine = qmc.Sobol(d=k - 1, scramble=True, seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # balance warnings for n != 2^m
        if skip:
            engine.fast_forward(skip)
        u = engine.random(n)
    return cube_to_simplex(u)


def stable_seed(seed: int | None, name: str) -> int | None:
    """A per-mixture seed that is the same in every worker process (hash() is salted)."""
    if seed is None:
        return None
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def sequence_seed(seed: int | None) -> int:
    """``seed``, or where it is None a fresh random seed (this worker's own sequence)."""
    return seed if seed is not None else int(np.random.SeedSequence().generate_state(1)[0])


def startup_point(mixture: Mixture, trial_number: int, seed: int | None) -> np.ndarray:
    """Point ``trial_number`` of ``mixture``'s start-up sequence under the sampler seed ``seed``."""
    return sobol_simplex_points(
        mixture.k, 1, seed=stable_seed(seed, mixture.name), skip=trial_number
    )[0]
