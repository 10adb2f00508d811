"""The common machinery of every optuna-mix sampler.

A subclass only says how to propose one mixture (:meth:`MixtureSampler.propose_mixture`);
this base finds the declared mixtures, proposes whole simplex points for them and hands every
other parameter of the study to an independent sampler, so that the sampler works alone in
any Optuna study.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from optuna_mix.samplers._simplex import (
    PROPOSAL_PREFIX,
    WEIGHT_DISTRIBUTION,
    Mixture,
    declared_mixtures,
    mixture_search_space,
    mixtures_in,
    project_to_simplex,
)


class SamplerFallbackWarning(UserWarning):
    """A sampler cannot use what the study's trials hold and does something simpler instead."""


class MixtureSampler(BaseSampler):
    """Base class: proposes simplex points for declared mixtures, delegates everything else.

    Args:
        seed: seed of the sampler's own randomness and of the independent sampler.
        independent_sampler: sampler for parameters outside any mixture (default: Random).
    """

    def __init__(
        self, *, seed: int | None = None, independent_sampler: BaseSampler | None = None
    ) -> None:
        self._seed = seed
        self._rng = np.random.default_rng(seed)
        self._independent_sampler = independent_sampler or RandomSampler(seed=seed)
        self._known: dict[int, list[Mixture]] = {}
        self._warned: set[str] = set()

    def warn_once(self, reason: str, *, key: str | None = None) -> None:
        """Say (once per sampler and reason) that the sampler falls back, and why.

        ``key``: what counts as the same reason where its text changes from trial to trial
        (counts of trials): said once per key, with the first text.
        """
        warned = self.__dict__.setdefault("_warned", set())  # also after unpickling
        if (key or reason) not in warned:
            warned.add(key or reason)
            warnings.warn(f"{type(self).__name__}: {reason}", SamplerFallbackWarning,
                          stacklevel=2)

    # -- what subclasses implement -------------------------------------------------------
    def propose_mixture(self, study: Study, trial: FrozenTrial, mixture: Mixture) -> np.ndarray:
        """Return k non-negative weights summing to 1 for ``mixture`` in ``trial``."""
        raise NotImplementedError

    # -- Optuna's sampler interface ------------------------------------------------------
    def reseed_rng(self) -> None:
        self._rng = np.random.default_rng()
        self._independent_sampler.reseed_rng()

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return mixture_search_space(self.mixtures(study))

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if not search_space:
            return {}
        params: dict[str, Any] = {}
        for mixture in mixtures_in(search_space, self.mixtures(study)):
            params.update(self._mixture_params(study, trial, mixture))
        for name, distribution in search_space.items():
            if name not in params:
                params[name] = self._independent_sampler.sample_independent(
                    study, trial, name, distribution
                )
        return params

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        mixture = self._mixture_of(study, param_name, param_distribution)
        if mixture is None:
            return self._independent_sampler.sample_independent(
                study, trial, param_name, param_distribution
            )
        return self._mixture_params(study, trial, mixture)[param_name]

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._independent_sampler.before_trial(study, trial)

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self._independent_sampler.after_trial(study, trial, state, values)

    # -- helpers -------------------------------------------------------------------------
    def mixtures(self, study: Study, *, refresh: bool = False) -> list[Mixture]:
        """The mixtures declared in ``study`` (cached once found: declarations never change)."""
        key = study._study_id
        if refresh or not self._known.get(key):
            self._known[key] = declared_mixtures(study)
        return self._known[key]

    def _mixture_of(
        self, study: Study, param_name: str, distribution: BaseDistribution
    ) -> Mixture | None:
        if distribution != WEIGHT_DISTRIBUTION:
            return None
        for refresh in (False, True):  # a declaration may have landed since we last looked
            for mixture in self.mixtures(study, refresh=refresh):
                if param_name in mixture.param_names:
                    return mixture
        return None

    def _mixture_params(
        self, study: Study, trial: FrozenTrial, mixture: Mixture
    ) -> dict[str, float]:
        """The trial's proposal for ``mixture``: made once, kept in the trial's system attrs.

        Independent sampling asks for one weight at a time; the whole point is proposed on the
        first request and the other weights are read back, so they always form one point.
        """
        key = PROPOSAL_PREFIX + mixture.name
        stored = study._storage.get_trial_system_attrs(trial._trial_id).get(key)
        if stored is None:
            weights = project_to_simplex(self.propose_mixture(study, trial, mixture))
            stored = [float(x) for x in weights]
            study._storage.set_trial_system_attr(trial._trial_id, key, stored)
        return dict(zip(mixture.param_names, stored))

    @staticmethod
    def completed_trials(study: Study) -> list[FrozenTrial]:
        return study._get_trials(deepcopy=False, states=(TrialState.COMPLETE,), use_cache=True)


def running_trials(study: Study, exclude: FrozenTrial | None = None) -> list[FrozenTrial]:
    """The study's running trials (but ``exclude``), read from the storage now.

    Not Optuna's per-``ask`` snapshot (``Study._get_trials(use_cache=True)``): that was taken
    when this proposal began, before the points that other workers have stored since.
    """
    trials = study._storage.get_all_trials(
        study._study_id, deepcopy=False, states=(TrialState.RUNNING,))
    return [t for t in trials if exclude is None or t.number != exclude.number]

