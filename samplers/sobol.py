"""Quasi-random search on the simplex: scrambled Sobol points mapped measure-preservingly."""

from __future__ import annotations

import hashlib
import warnings

import numpy as np
from optuna.samplers import BaseSampler
from optuna.study import Study
from optuna.trial import FrozenTrial

from optuna_mix.samplers._base import MixtureSampler
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


def _stable_seed(seed: int | None, name: str) -> int | None:
    """A per-mixture seed that is the same in every worker process (hash() is salted)."""
    if seed is None:
        return None
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


class SobolMixtureSampler(MixtureSampler):
    """Scrambled Sobol sequence on the simplex, indexed by trial number.

    Every worker computes point ``trial.number`` of the same seeded sequence, so many workers
    on one study share one low-discrepancy design without talking to each other. With
    ``seed=None`` a random seed is drawn once, when the sampler is built (each worker then has
    its own sequence: pass a seed for multi-worker studies).
    """

    def __init__(
        self, *, seed: int | None = None, independent_sampler: BaseSampler | None = None
    ) -> None:
        super().__init__(seed=seed, independent_sampler=independent_sampler)
        self._sequence_seed = (
            seed if seed is not None else int(np.random.SeedSequence().generate_state(1)[0])
        )

    def propose_mixture(self, study: Study, trial: FrozenTrial, mixture: Mixture) -> np.ndarray:
        seed = _stable_seed(self._sequence_seed, mixture.name)
        return sobol_simplex_points(mixture.k, 1, seed=seed, skip=trial.number)[0]

    def reseed_rng(self) -> None:
        # the sequence seed stays: reseeding would break the shared design across workers
        self._independent_sampler.reseed_rng()
