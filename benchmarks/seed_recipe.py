"""The seed study's own BO recipe as an Optuna sampler, the peer it reported.

A standard BoTorch ``SingleTaskGP`` (Matern-5/2 ARD, outputs standardised, BoTorch's default
priors) on the *first k-1 weights* ``x`` (the last is ``1 - sum(x)``), ``qLogNoisyExpected
Improvement``, maximised by ``optimize_acqf`` under ``sum(x) <= 1``; the first
``n_startup_trials`` (32, as in the seed) are Sobol points on the simplex. The objective of a
study using it suggests ``x0 .. x{k-2}`` in [0, 1] (:func:`suggest_first_weights`).

Only for the benchmarks: it is a faithful peer, not a product (it needs a parametrisation of
its own, models values only and ignores every other parameter).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import optuna
import torch
from optuna.distributions import BaseDistribution, FloatDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

from optuna_mix.samplers import sobol_simplex_points

SEED_STARTUP_TRIALS = 32  # the seed's design: 32 Sobol start-up points, then 32 BO steps


def suggest_first_weights(trial: optuna.Trial, k: int) -> np.ndarray:
    """The mixture as the seed parametrised it: k-1 weights, the last one what is left."""
    x = np.array([trial.suggest_float(f"x{i}", 0.0, 1.0) for i in range(k - 1)])
    if x.sum() > 1.0:  # another sampler may go outside the simplex: scale back onto it
        x = x / x.sum()
    return np.append(x, max(0.0, 1.0 - x.sum()))


class SeedRecipeSampler(BaseSampler):
    """SingleTaskGP + qLogNEI on the first k-1 weights under sum <= 1 (see the module)."""

    def __init__(self, k: int, *, seed: int = 0, n_startup_trials: int = SEED_STARTUP_TRIALS,
                 num_restarts: int = 8, raw_samples: int = 512) -> None:
        self.k, self.seed = k, seed
        self.n_startup_trials = n_startup_trials
        self.num_restarts, self.raw_samples = num_restarts, raw_samples
        self._startup = sobol_simplex_points(k, max(n_startup_trials, 1), seed=seed)
        self._fallback = RandomSampler(seed=seed)

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial
                                    ) -> dict[str, BaseDistribution]:
        return {f"x{i}": FloatDistribution(0.0, 1.0) for i in range(self.k - 1)}

    def sample_relative(self, study: Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if len(done) < self.n_startup_trials:
            point = self._startup[trial.number % len(self._startup), : self.k - 1]
        else:
            point = self._propose(study, done, trial.number)
        return {f"x{i}": float(v) for i, v in enumerate(point)}

    def _propose(self, study: Study, done: list[FrozenTrial], number: int) -> np.ndarray:
        from botorch.acquisition.logei import qLogNoisyExpectedImprovement
        from botorch.fit import fit_gpytorch_mll
        from botorch.models import SingleTaskGP
        from botorch.models.transforms.outcome import Standardize
        from botorch.optim import optimize_acqf
        from gpytorch.mlls import ExactMarginalLogLikelihood

        sign = 1.0 if study.direction == StudyDirection.MAXIMIZE else -1.0
        X = torch.tensor([[t.params[f"x{i}"] for i in range(self.k - 1)] for t in done],
                         dtype=torch.float64)
        y = torch.tensor([[sign * float(t.value)] for t in done], dtype=torch.float64)
        torch.manual_seed(self.seed * 100003 + number)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gp = SingleTaskGP(X, y, outcome_transform=Standardize(m=1))
            fit_gpytorch_mll(ExactMarginalLogLikelihood(gp.likelihood, gp))
            acqf = qLogNoisyExpectedImprovement(gp, X_baseline=X, prune_baseline=True)
            d = self.k - 1
            bounds = torch.stack([torch.zeros(d), torch.ones(d)]).double()
            sum_at_most_one = (torch.arange(d), -torch.ones(d, dtype=torch.float64), -1.0)
            candidate, _ = optimize_acqf(acqf, bounds=bounds, q=1, num_restarts=self.num_restarts,
                                         raw_samples=self.raw_samples,
                                         inequality_constraints=[sum_at_most_one])
        x = candidate.detach().numpy()[0].clip(0.0, 1.0)
        return x / x.sum() if x.sum() > 1.0 else x

    def sample_independent(self, study: Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        return self._fallback.sample_independent(study, trial, param_name, param_distribution)
