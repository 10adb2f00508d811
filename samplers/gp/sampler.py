"""SimplexGPSampler: the sampler, joining the GP's model, acquisition and storage.

Start-up: the first ``n_startup_trials`` trials take Sobol-on-simplex points indexed by trial
number (one shared design across workers, as :class:`SobolMixtureSampler`). Then each
suggestion reads the completed trials (:func:`.model.training_data`), fits the model
(:class:`.model.GPFitter`), conditions it once (:class:`.posterior.ConditionedGP`) and
maximises the acquisition on the space (:func:`.acquisition.propose`) given the running
trials' stored points (:mod:`.pending`); where the law-prior model only repeats a trial, the
constant-mean GP chooses instead (:func:`.law.hands_over`).
"""

from __future__ import annotations

import contextlib
import functools
import math
import threading
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
from botorch.models import SingleTaskGP
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.samplers import BaseSampler
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

from optuna_mix.samplers._base import MixtureSampler, running_trials
from optuna_mix.samplers._losses import losses_problem
from optuna_mix.samplers._scale import declared_scales, positive_size
from optuna_mix.samplers._simplex import Mixture, mixture_search_space
from optuna_mix.samplers._startup import sequence_seed, startup_point
from optuna_mix.samplers.attrs import LOSSES_ATTR, MIXTURE_ATTR
from optuna_mix.samplers.criteria import study_criterion
from optuna_mix.samplers.fixed import SUM_TOLERANCE  # a mixture given by a user: sum 1 within 1e-6
from optuna_mix.samplers.gp.acquisition import (
    MC_SAMPLES,
    N_RAW_SAMPLES,
    N_RESTARTS,
    PARETO_SCALARISATIONS,
    hold,
    maximise_mean,
    propose,
    propose_pareto,
    size_per_cost,
    thompson,
)
from optuna_mix.samplers.gp.law import (
    LawMean,
    hands_over,
    law_possible,
    loo_residuals,
    matched_law_errors,
    size_law_evidenced,
    stacking_weight,
)
from optuna_mix.samplers.gp.model import (
    JUDGE_REFIT_GROWTH,
    Composite,
    GPFitter,
    fit_key,
    pareto_data,
    training_data,
)
from optuna_mix.samplers.gp.pending import (
    pending_points,
    store_proposal,
    stored_params,
    wait_for_earlier_proposals,
)
from optuna_mix.samplers.gp.posterior import (
    ConditionedGP,
    posterior_change_mean_std,
    posterior_mean_std,
)
from optuna_mix.samplers.gp.space import COORDINATES, Block, EncodedSpace, encoded_space

PRIOR_MEANS = ("law", "hedge", "constant")
# the law-prior and constant-mean GPs both propose, weighted by the evidence of their
# left-out errors: lower mean regret than the law's lead on a hard comparison at 12-32
# trials on the k = 5 families at sigma 0.01 and 0.02, the worst run at 32 trials 0.013
# against 0.063 and 0.049 against 0.071, each paired difference within its spread
# (docs/benchmarks/gp-variants.md, "Hedging between the two models")
PRIOR_MEAN = "hedge"
# Sobol start-up trials before the GP: lower regret at 8 and 16 trials than 2 or 8
# (docs/benchmarks/gp-variants.md, "Start-up trials")
N_STARTUP_TRIALS = 4
# c of the input warp w -> log(1 + w/c) / log(1 + 1/c): 0.02 was level, 0.2 and no warp
# worse (docs/benchmarks/gp-variants.md, "Coordinates and the warp")
WARP = 0.05
# a multi-objective study's Sobol start-up, the front's extent first: at 32 trials 16 left a
# hypervolume gap 0.011 +- 0.010 below 4's (50 problems, better on 27), at 16 trials 4 was
# ahead (it had had 12 proposals); provisional (docs/benchmarks/pareto.md)
N_STARTUP_TRIALS_PARETO = 16
# off: a Thompson draw after 3 or 6 trials without a better value changed the k = 5 grid's
# regret by less than its spread, the worst runs included (docs/benchmarks/gp-variants.md,
# "A Thompson draw when stalled")
STALL_TRIALS: int | None = None
# a trial's compute grows as size^2: parameters x tokens, with tokens proportional to
# parameters (a Chinchilla-like budget at every size)
COST_EXPONENT = 2.0
# the most of a scale-aware study's compute that trials above the smallest size may take:
# the GP's kernel does not see the law's uncertainty in its size exponents, so by information
# per cost alone it bought large trials for most of the budget, and fewer trials made worse
# mixtures; a quarter left too few trials above the smallest size to fit the size law
# (docs/benchmarks/scale-transfer.md; provisional: one family, 10 seeds)
LARGE_SHARE = 0.5
# trials at the cheapest size above the smallest, once the law can be fitted: the fewest on
# which its size effect is judged against one shift for all mixtures (size_law_evidenced
# leaves each out and needs two more at its size); with one, the judge never ran and the
# sampler stayed at the smallest size (docs/benchmarks/scale-transfer.md)
MIN_LARGER_TRIALS = 3
# prior_mean="hedge": below this stacking weight a model is neither fitted nor scored, and
# the other proposes alone (saves its fit and half the acquisition's cost; not benchmarked)
HEDGE_MIN_WEIGHT = 0.01
# prior_mean="hedge": the two models propose together up to this many completed trials, then
# the one of larger weight alone: the hedge was measured to 32 trials, and beyond them its
# second acquisition and fit took 1.5x (k = 5, 64 trials) and 1.7x (k = 20, 200 trials) the
# seconds of a suggestion (docs/benchmarks/gp-variants.md, "Hedging between the two models")
HEDGE_UP_TO = 32
# the trial system attr that says which acquisition proposed the trial's point
ACQUISITION_ATTR = "optuna_mix:gp:acquisition"


@dataclass(frozen=True)
class Recommendation:
    """What the model believes best: the parameters, their mixtures, the predicted value.

    ``value`` and ``std`` are the posterior mean and standard deviation of the noise-free
    objective (in the study's units and direction); ``trial_number`` is the evaluated trial
    whose parameters these are, or None for a point the model chose among all mixtures.
    """

    params: dict[str, Any]
    mixtures: dict[str, dict[str, float]]
    value: float
    std: float
    trial_number: int | None = None
    n_trials: int = field(default=0)
    # a scale-aware study's evaluated mixtures were ranked at this size: the one asked, or
    # the size most trials trained at where the size law's move is not evidenced (None:
    # no scale, or among="all")
    ranked_at: float | None = None

    @property
    def weights(self) -> dict[str, float]:
        """The weights of the study's mixture (``mix``, or its only mixture)."""
        if MIXTURE_ATTR in self.mixtures:
            return self.mixtures[MIXTURE_ATTR]
        if len(self.mixtures) == 1:
            return next(iter(self.mixtures.values()))
        raise KeyError(f"several mixtures ({', '.join(self.mixtures)}): use .mixtures[name]")


class SimplexGPSampler(MixtureSampler):
    """GP Bayesian optimisation over mixtures (and the study's other parameters).

    Args:
        seed: seed of the start-up design, the acquisition search and the independent sampler.
        n_startup_trials: completed trials before the GP takes over (Sobol-on-simplex points
            until then). 0 means: from the first completed trial on.
        coordinates: the GP's coordinates of a mixture: ``"weights"`` (all k weights, the
            default) or ``"first"`` (the first k-1 weights, as in the seed's BO).
        n_raw_samples: raw candidates scored before the gradient refinement.
        n_restarts: best candidates refined by SLSQP after the local rounds (0: none; the
            refinement did not lower regret measurably and took most of a suggestion).
        mc_samples: quasi-MC samples of qLogNEI.
        warp: ``c`` of the fixed input warp of the weights, w -> log(1 + w/c)/log(1 + 1/c)
            (small weights matter most); None: no warp.
        losses_attr: the trial user attr with the per-domain losses (a dict). Where every
            completed trial has it and its value is their mean, max or median, the GP models
            each loss and the acquisition their criterion (a composite model); None: the GP
            models the trial values alone.
        prior_mean: ``"hedge"`` (the default): for a composite model of one mixture, from
            k + 4 completed trials on, a Data Mixing Law fitted to the losses may be each
            GP's prior mean (the GP models what the law leaves), and the proposal maximises
            the noisy expected improvement under both that model and the constant-mean GP,
            weighted by their stacking weights from left-out errors; ``"law"``: the law-prior
            model alone where the law predicts left-out trials better, else the constant-mean
            GP alone; ``"constant"``: a constant prior mean.
        stall_trials: after this many completed trials in a row without a better value than
            the best so far, one proposal (and one more after each further ``stall_trials``)
            is the maximiser of a Thompson draw from the posterior instead of qLogNEI's: it
            explores where the model is unsure, out of a basin qLogNEI keeps refining. None:
            never.
        target_scale: in a scale-aware study (``optuna_mix.suggest_scale``), the model size
            the mixture is for, trained or not (e.g. larger than every trial's): each proposal
            is the mixture of most expected improvement at this size, trained at the size
            that teaches most about it per unit of compute (where the trial's size is not
            pinned); :meth:`recommend` and :meth:`predict` answer for it by default. None: the
            largest size trials may train at.
        pareto_scalarisation: a multi-objective study's proposals maximise qLogNEI of one
            random scalarisation of the objectives each: ``"hypervolume"`` (Golovin & Zhang's:
            the draws spread to the ends of the front) or ``"chebyshev"`` (ParEGO's).
        pareto_startup_trials: a multi-objective study's start-up trials (Sobol-on-simplex
            points, as ``n_startup_trials`` for one objective).
        independent_sampler: sampler for parameters outside the relative search space
            (default: Random with ``seed``).
    """

    def __init__(
        self,
        *,
        seed: int | None = None,
        n_startup_trials: int = N_STARTUP_TRIALS,
        coordinates: str = "weights",
        n_raw_samples: int = N_RAW_SAMPLES,
        n_restarts: int = N_RESTARTS,
        mc_samples: int = MC_SAMPLES,
        warp: float | None = WARP,
        losses_attr: str | None = LOSSES_ATTR,
        prior_mean: str = PRIOR_MEAN,
        stall_trials: int | None = STALL_TRIALS,
        target_scale: float | None = None,
        pareto_scalarisation: str = "hypervolume",
        pareto_startup_trials: int = N_STARTUP_TRIALS_PARETO,
        independent_sampler: BaseSampler | None = None,
    ) -> None:
        if coordinates not in COORDINATES:
            raise ValueError(f"coordinates must be one of {COORDINATES}, not {coordinates!r}")
        if n_startup_trials < 0:
            raise ValueError(f"n_startup_trials must be >= 0, got {n_startup_trials}")
        super().__init__(seed=seed, independent_sampler=independent_sampler)
        self._base_seed = int(sequence_seed(seed))
        self._n_startup_trials = int(n_startup_trials)
        self._coordinates = coordinates
        self._n_raw = int(n_raw_samples)
        self._n_restarts = int(n_restarts)
        self._mc_samples = int(mc_samples)
        self._warp = None if warp is None else float(warp)
        if prior_mean not in PRIOR_MEANS:
            raise ValueError(f"prior_mean must be one of {PRIOR_MEANS}, not {prior_mean!r}")
        if stall_trials is not None and stall_trials < 1:
            raise ValueError(f"stall_trials must be >= 1 or None, got {stall_trials}")
        if pareto_scalarisation not in PARETO_SCALARISATIONS:
            raise ValueError(f"pareto_scalarisation must be one of {PARETO_SCALARISATIONS}, "
                             f"not {pareto_scalarisation!r}")
        self._pareto_scalarisation = pareto_scalarisation
        if pareto_startup_trials < 0:
            raise ValueError(f"pareto_startup_trials must be >= 0, got {pareto_startup_trials}")
        self._pareto_startup = int(pareto_startup_trials)
        self._losses_attr = losses_attr
        self._prior_mean = prior_mean
        self._stall_trials = stall_trials
        self._target_scale = (None if target_scale is None
                              else positive_size(target_scale, "target_scale"))
        self._intersection = optuna.search_space.IntersectionSearchSpace()
        self._init_runtime()

    def _init_runtime(self) -> None:
        self._lock = threading.RLock()
        self._fitter = GPFitter()  # each model's last fit, per study

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_lock"], state["_fitter"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_runtime()

    def reseed_rng(self) -> None:
        # the start-up design's seed stays (workers share one Sobol design); the search reseeds
        self._base_seed = sequence_seed(None)
        self._independent_sampler.reseed_rng()

    # -- start-up design ------------------------------------------------------------------
    def propose_mixture(self, study: Study, trial: FrozenTrial, mixture: Mixture) -> np.ndarray:
        seed = self._seed if self._seed is not None else self._base_seed
        return startup_point(mixture, trial.number, seed)

    # -- Optuna's interface -----------------------------------------------------------------
    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        space = mixture_search_space(self.mixtures(study))
        with self._lock:
            intersection = self._intersection.calculate(study)
        for name, dist in intersection.items():
            if name not in space and not dist.single():
                space[name] = dist
        return space

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if not search_space:
            return {}
        space = self._space(study, search_space)
        if study._is_multi_objective():
            return self._sample_pareto(study, trial, search_space, space)
        X, y, trials, composite = training_data(study, space, self._losses_attr)
        if len(y) == 0 or len(y) < self._n_startup_trials:
            params = super().sample_relative(study, trial, search_space)
            for b in space.scale_blocks:  # the start-up design trains at the cheapest size
                assert isinstance(b.distribution, CategoricalDistribution)
                params[b.names[0]] = min(float(c) for c in b.distribution.choices)
            return params
        if composite is None and (problem := losses_problem(
                trials, np.array([t.value for t in trials]), self._losses_attr,
                study_criterion(study))):
            self.warn_once(f"modelling the trial values only, not the losses of the "
                           f"validation sets: {problem}", key="values only")

        rng = np.random.default_rng([self._base_seed, trial.number])
        search = dict(n_raw=self._n_raw, n_restarts=self._n_restarts,
                      mc_samples=self._mc_samples, composite=composite)
        with _one_thread(), _torch_seeded(rng):
            gp, hedge = self._fit_hedged(study, space, X, y)
            # a scale-aware study's mixture is chosen for the size aimed at (the target, once
            # the size law can carry the model there): the acquisition sees every trial,
            # running one and candidate at that size (the log-size column held there)
            aim = self._aim_size(space, gp, X, y)
            at_target = self._at_size(space, aim)
            X_at = hold(X, at_target)
            wait_for_earlier_proposals(study, trial, space)  # fits in parallel, proposes in turn
            X_pending = hold(pending_points(study, trial, space), at_target)
            model = ConditionedGP(gp)
            if self._stalled(study, trial, trials):
                # qLogNEI has refined one basin for stall_trials trials without a better
                # value: a Thompson draw explores where the model is unsure instead
                x = thompson(model, space, X_at, rng, composite, fixed=at_target)
                how = (f"thompson ({trials_since_best(trials, study.direction)} trials "
                       f"without a better value)")
            else:
                x = propose(model, space, X_at, X_pending, rng, fixed=at_target, **search,
                            hedge=(ConditionedGP(hedge[0]), hedge[1]) if hedge else None)
                how = "qlognei" if hedge is None else (
                    f"qlognei (hedged: {'law' if _has_law(gp) else 'constant'} mean "
                    f"{1 - hedge[1]:.2f}, {'law' if _has_law(hedge[0]) else 'constant'} "
                    f"mean {hedge[1]:.2f})")
                if not at_target and hands_over(gp, x, X_at):
                    # the law-prior model sees nothing better than a mixture it has run: where
                    # the law is wrong its small residual GP keeps it there
                    # (docs/benchmarks/gp-variants.md), so the constant-mean GP, which trusts
                    # only the data, chooses instead (not in a scale-aware study, whose law
                    # leads throughout: that GP cannot extrapolate to the target, see _fit)
                    model = ConditionedGP(self._fit(study, space, X, y, with_law=False))
                    x = propose(model, space, X_at, X_pending, rng, **search)
                    how = "qlognei (constant mean: the law's proposal repeated a trial)"
            if at_target:
                x, size = self._size_to_train(study, trial, model, space, x, composite,
                                              n_completed=len(y))
                how += f"; for size {aim:g}, trained at {size:g}"
        return self._proposed(study, trial, search_space, space, x, how)

    def _proposed(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution],
        space: EncodedSpace, x: np.ndarray, how: str,
    ) -> dict[str, Any]:
        """The parameters of point ``x``, stored as the trial's proposal with ``how``."""
        study._storage.set_trial_system_attr(trial._trial_id, ACQUISITION_ATTR, how)
        params = space.decode(x)
        store_proposal(study, trial, space, params)
        # a proposal stored before (e.g. by an earlier call for this trial) wins: one point
        for block in space.mixture_blocks:
            assert block.mixture is not None
            params.update(self._mixture_params(study, trial, block.mixture))
        return {n: params[n] for n in search_space if n in params}

    def _sample_pareto(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution],
        space: EncodedSpace,
    ) -> dict[str, Any]:
        """A multi-objective study's proposal: one GP per objective (the trials' values,
        with the law prior where the objectives are the mixture's domains' losses), and
        qLogNEI of a scalarisation drawn for this trial (:func:`.acquisition.propose_pareto`)."""
        if space.scale_blocks:
            raise ValueError("SimplexGPSampler: a multi-objective study with a scale parameter "
                             "is not supported (the losses at other sizes are not comparable "
                             "on one front)")
        X, Y, objectives = pareto_data(study, space)
        if len(Y) == 0 or len(Y) < self._pareto_startup:
            return super().sample_relative(study, trial, search_space)
        signs = np.array([1.0 if d == StudyDirection.MAXIMIZE else -1.0
                          for d in study.directions])
        mixture_domains = [list(b.mixture.domains) for b in space.mixture_blocks
                           if b.mixture is not None]
        # the law reads output i as domain i's loss: only where the objectives say so
        with_law = (len(mixture_domains) == 1 and objectives == mixture_domains[0]
                    and bool(np.all(signs < 0)))
        rng = np.random.default_rng([self._base_seed, trial.number])
        with _one_thread(), _torch_seeded(rng):
            gp = self._fit(study, space, X, Y, with_law=with_law)
            wait_for_earlier_proposals(study, trial, space)
            X_pending = pending_points(study, trial, space)
            x, weights = propose_pareto(
                ConditionedGP(gp), space, X, X_pending, rng, signs,
                scalarisation=self._pareto_scalarisation, n_raw=self._n_raw,
                n_restarts=self._n_restarts, mc_samples=self._mc_samples)
        how = (f"qlognei of a {self._pareto_scalarisation} scalarisation (weights "
               + ", ".join(f"{w:.3f}" for w in weights) + ")")
        return self._proposed(study, trial, search_space, space, x, how)

    def sample_independent(
        self, study: Study, trial: FrozenTrial, param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        # a declared scale outside the relative space (the first trial, declared only as it
        # asks): the cheapest size, as every start-up trial
        if isinstance(param_distribution, CategoricalDistribution) and any(
                sc.name == param_name for sc in declared_scales(study)):
            return min(param_distribution.choices)
        return super().sample_independent(study, trial, param_name, param_distribution)

    # -- recommendation ---------------------------------------------------------------------
    def recommend(
        self, study: Study, *, scale: Any = None, among: str = "evaluated"
    ) -> Recommendation:
        """The parameters the model believes best, with the predicted value and its std.

        ``among="evaluated"``: the completed trial with the best posterior mean (robust: the
        best observed value is biased by noise, this is not). ``among="all"``: the maximiser
        of the posterior mean over the whole space (may leave the evaluated mixtures).
        ``scale``: in a scale-aware study, the model size to recommend for (default: the
        sampler's ``target_scale``, else the largest trained size); the value and std are
        predicted at that size, and ``params`` holds it under the scale parameter's name.
        Elsewhere any value but None is refused.
        """
        if among not in ("evaluated", "all"):
            raise ValueError(f"among must be 'evaluated' or 'all', not {among!r}")
        if study._is_multi_objective():
            raise ValueError("recommend() needs a single-objective study")
        search_space = self.infer_relative_search_space(study, None)  # type: ignore[arg-type]
        space = self._space(study, search_space)
        size = self._resolve_scale(study, space, "recommend()", scale)
        at = self._at_size(space, size)
        X, y, trials, composite = training_data(study, space, self._losses_attr)
        if len(y) == 0:
            raise ValueError("recommend() needs at least one completed trial")
        sign = 1.0 if study.direction == StudyDirection.MAXIMIZE else -1.0
        with _one_thread(), _torch_seeded(np.random.default_rng([self._base_seed, len(y)])):
            gp = self._fit(study, space, X, y)
            model = ConditionedGP(gp)
            if among == "evaluated":
                # ranked at the size asked where the model can extrapolate there, else at the
                # size the trials speak for (see _aim_size); predicted at the size asked
                aim = self._aim_size(space, gp, X, y)
                rank_at = at if aim in (None, self._target_size(space)) or any(
                    math.isclose(size, s) for s in _trained_sizes(space, X)
                ) else self._at_size(space, aim)
                i = _best_evaluated(model, hold(X, rank_at), composite)
                x, number = hold(X[i], at), trials[i].number
                params = dict(trials[i].params)
                ranked_at = None if size is None else (size if rank_at is at else aim)
            else:
                ranked_at = None
                rng = np.random.default_rng([self._base_seed, 0])
                x = maximise_mean(model, space, hold(X, at), rng, composite, fixed=at)
                number = None
                params = space.decode(x)
            for b in space.scale_blocks:
                params[b.names[0]] = size
            mean, std = posterior_mean_std(model, x[None, :], composite)
        mixtures = {
            b.mixture.name: dict(zip(b.mixture.domains, (float(v) for v in space.weights(x, b))))
            for b in space.mixture_blocks
            if b.mixture is not None
        }
        return Recommendation(
            params=params,
            mixtures=mixtures,
            value=float(sign * mean[0]),
            std=float(std[0]),
            trial_number=number,
            n_trials=len(y),
            ranked_at=ranked_at,
        )

    # -- prediction ----------------------------------------------------------------------------
    def predict(
        self, study: Study, weights: Sequence[Mapping[str, float]], *, scale: Any = None
    ) -> list[tuple[float, float]]:
        """The posterior mean and std of the noise-free objective at each mixture of ``weights``.

        ``weights``: domain -> weight dicts of the study's mixture (``mix``, or its only
        mixture); a domain missing from a dict has weight 0, and each dict must sum to 1
        (within 1e-6). The values are in the study's units and direction, as
        :meth:`recommend`'s ``value`` and ``std``: for a composite model the criterion
        (mean: exact; max, median: quasi-MC) of the per-domain losses' posterior. The study's
        other parameters (and other mixtures), if any, are held at the values of the evaluated
        trial the model believes best (the one ``recommend(study)`` returns). The model is the
        one :meth:`recommend` uses, from the same cache: no refit on the same trials.

        ``scale``: in a scale-aware study, the model size to predict at (default: as
        :meth:`recommend`'s); the other parameters' trial is the best at that size. Elsewhere
        any value but None is refused.
        """
        with self._predicting(study, "predict()", scale, weights) as (p, (X,)):
            if len(X) == 0:
                return []
            mean, std = posterior_mean_std(p.model, X, p.composite)
        return [(float(p.sign * m), float(s)) for m, s in zip(mean, std)]

    def predict_change(
        self, study: Study, base: Mapping[str, float], others: Sequence[Mapping[str, float]]
    ) -> list[tuple[float, float]]:
        """The posterior mean and std of objective(other) - objective(base) for each mixture of
        ``others`` (domain -> weight dicts, as :meth:`predict` reads them).

        From the joint posterior of (base, other), so that the std of a small step is small
        (the two points' covariance cancels), not sqrt(2) times :meth:`predict`'s marginal
        std. The change is in the study's units and direction: positive where the objective's
        value is higher at ``other``. Exact for one output and for the mean criterion;
        quasi-MC over the pair's joint posterior for max and median.
        """
        with self._predicting(study, "predict_change()", None, [base], others) as (p, (x, X)):
            if len(X) == 0:
                return []
            mean, std = posterior_change_mean_std(p.model, x[0], X, p.composite)
        return [(float(p.sign * m), float(s)) for m, s in zip(mean, std)]

    def predict_losses(
        self, study: Study, weights: Sequence[Mapping[str, float]]
    ) -> list[dict[str, tuple[float, float]]]:
        """Per mixture of ``weights`` (as :meth:`predict` reads them), each validation set's
        posterior mean and std of the noise-free loss: ``{set: (mean, std)}``.

        For a study whose trials keep their per-domain losses (the composite model); the model
        is :meth:`predict`'s. ValueError where the GP models the trial values only.
        """
        import torch

        with self._predicting(study, "predict_losses()", None, weights) as (p, (X,)):
            if p.composite is None or not p.composite.outputs:
                raise ValueError("predict_losses() needs trials that keep their per-domain "
                                 "losses (the GP here models the trial values only)")
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                post = p.model.posterior(torch.as_tensor(X, dtype=torch.float64))
                mean, std = post.mean.numpy(), post.variance.clamp_min(0).sqrt().numpy()
        return [{o: (float(m), float(s)) for o, m, s in zip(p.composite.outputs, mu, sd)}
                for mu, sd in zip(mean, std)]

    @contextlib.contextmanager
    def _predicting(
        self, study: Study, what: str, scale: Any, *weight_lists: Sequence[Mapping[str, float]]
    ) -> Iterator[tuple[_Prediction, list[np.ndarray]]]:
        """The fitted model of ``study`` (as :meth:`recommend` has it) and the rows of X of
        each list of mixtures; the caller's posterior reads run inside the same one-thread,
        seeded torch context."""
        if study._is_multi_objective():
            raise ValueError(f"{what} needs a single-objective study")
        search_space = self.infer_relative_search_space(study, None)  # type: ignore[arg-type]
        space = self._space(study, search_space)
        at_size = self._at_size(space, self._resolve_scale(study, space, what, scale))
        block = _study_mixture(space, what)
        W = [_weight_rows(block, ws, what) for ws in weight_lists]
        X, y, _, composite = training_data(study, space, self._losses_attr)
        if len(y) == 0:
            raise ValueError(f"{what} needs at least one completed trial")
        sign = 1.0 if study.direction == StudyDirection.MAXIMIZE else -1.0
        with _one_thread(), _torch_seeded(np.random.default_rng([self._base_seed, len(y)])):
            model = ConditionedGP(self._fit(study, space, X, y))
            X_at = hold(X, at_size)
            # the other parameters and mixtures: at the trial the model believes best
            at = X_at[_best_evaluated(model, X_at, composite)] if space.dim > block.width \
                else None
            rows = [hold(_rows(space, block, w, at), at_size) for w in W]
            yield _Prediction(model, composite, sign), rows

    # -- internals ----------------------------------------------------------------------------
    def _target_size(self, space: EncodedSpace) -> float | None:
        """The size the mixture is for: ``target_scale``, else the largest a trial may train
        at; None for a study without a scale parameter."""
        blocks = space.scale_blocks
        if not blocks:
            return None
        if len(blocks) > 1:
            raise ValueError(f"several scale parameters ({', '.join(b.names[0] for b in blocks)}"
                             f"): a study has one model size per trial")
        if self._target_scale is not None:
            return self._target_scale
        assert isinstance(blocks[0].distribution, CategoricalDistribution)
        return max(float(c) for c in blocks[0].distribution.choices)

    def _resolve_scale(self, study: Study, space: EncodedSpace, what: str, scale: Any
                       ) -> float | None:
        """The size ``what`` answers for: ``scale``, else the target; None where the study has
        no scale column (and then ``scale`` must be None)."""
        if not space.scale_blocks:
            if scale is not None and declared_scales(study):
                raise ValueError(f"{what}: the trials of this study train at one size only; a "
                                 f"scale-aware model needs trials at two sizes or more (its "
                                 f"size law cannot be fitted from one)")
            _refuse_scale(what, scale)
            return None
        return self._target_size(space) if scale is None else \
            positive_size(scale, f"{what}: scale")

    def _aim_size(self, space: EncodedSpace, gp: SingleTaskGP, X: np.ndarray,
                  y: np.ndarray) -> float | None:
        """The size proposals are chosen for: the target where the nested size law leads
        the model and its mixture-dependent size effect predicts the larger trials already
        trained (:func:`size_law_evidenced`: only the law extrapolates in size; elsewhere the
        GP at the target reverts to its prior, and its widest uncertainty there drew
        single-domain mixtures on the embedded corpus); else the trained size with the most
        trials (the smaller on a tie), as the study's own way would. None for a study
        without a scale."""
        target = self._target_size(space)
        if target is None:
            return None
        (block,) = space.scale_blocks
        trained, counts = np.unique(X[:, block.start], return_counts=True)
        if (len(trained) >= 2 and isinstance(gp.mean_module, LawMean) and y.ndim == 2
                and size_law_evidenced(gp.mean_module.law, block.start)):
            return target
        u = float(trained[np.argmax(counts)])  # np.unique sorts: the first maximum is smaller
        return space.nearest_size(block, u)

    @staticmethod
    def _at_size(space: EncodedSpace, size: float | None) -> dict[int, float]:
        """The log-size column held at ``size`` (none for a study without a scale)."""
        if size is None:
            return {}
        return {b.start: space.unit_of_size(b, size) for b in space.scale_blocks}

    def _size_to_train(
        self, study: Study, trial: FrozenTrial, model: ConditionedGP, space: EncodedSpace,
        x: np.ndarray, composite: Composite | None, *, n_completed: int,
    ) -> tuple[np.ndarray, float]:
        """The proposal ``x`` (chosen at the size aimed at) at the size its trial is to train
        at: the one that teaches most about the target per unit of compute (cost ~
        size^COST_EXPONENT: parameters x Chinchilla-like tokens), among the sizes that keep
        the compute of trials above the smallest size within LARGE_SHARE of the study's.
        Once the law has trials enough, the next trials train at the cheapest larger size
        until MIN_LARGER_TRIALS are there: the law's size effect is fitted and judged on
        them (:func:`size_law_evidenced`)."""
        (block,) = space.scale_blocks
        assert isinstance(block.distribution, CategoricalDistribution)
        sizes = sorted(float(c) for c in block.distribution.choices)

        def cost(size: float) -> float:
            return (float(size) / sizes[0]) ** COST_EXPONENT

        costs = [cost(s) for s in sizes]
        name = block.names[0]
        pinned = trial.system_attrs.get("fixed_params", {}).get(name)
        if pinned is not None:  # enqueued with its size: the proposal says that size
            x = x.copy()
            x[block.start] = space.unit_of_size(block, float(pinned))
            return x, float(pinned)
        # the compute so far and promised: every other trial with a size, set, stored as a
        # proposal or pinned by an enqueue (complete, failed, pruned, running and waiting
        # alike: each costs what it trains), so that workers asking at once share the cap
        others = [(t, s) for t in study._storage.get_all_trials(study._study_id, deepcopy=False)
                  if t.number != trial.number
                  and (s := stored_params(t, space).get(name)) is not None]
        spent = [cost(s) for _, s in others]
        total, large = sum(spent), sum(c for c in spent if c > 1.0)
        # the larger trials the size law is judged on: failed ones tell it nothing
        larger = sum(cost(s) > 1.0 for t, s in others if t.state != TrialState.FAIL)
        allowed = [i for i, c in enumerate(costs)
                   if i == 0 or (large + c) / (total + c) <= LARGE_SHARE]
        if larger < MIN_LARGER_TRIALS and law_possible(space, n_completed + 1) and len(allowed) > 1:
            # the law's size effect is judged on trials above the smallest size: buy them
            x = x.copy()
            x[block.start] = space.unit_of_size(block, sizes[allowed[1]])
            return x, sizes[allowed[1]]
        X_sizes = np.repeat(x[None, :], len(allowed), axis=0)
        X_sizes[:, block.start] = [space.unit_of_size(block, sizes[i]) for i in allowed]
        j = size_per_cost(model, x, X_sizes, [costs[i] for i in allowed], composite) \
            if len(allowed) > 1 else 0
        return X_sizes[j], sizes[allowed[j]]

    def _stalled(self, study: Study, trial: FrozenTrial, trials: list[FrozenTrial]) -> bool:
        """Whether this proposal is the stall's Thompson draw: ``stall_trials`` (or a multiple)
        completed trials without a better value, and no running trial is such a draw already
        (workers asking at once would otherwise all draw, blind to each other's points)."""
        if self._stall_trials is None:
            return False
        stalled = trials_since_best(trials, study.direction)
        if stalled < self._stall_trials or stalled % self._stall_trials:
            return False
        return not any(
            str(t.system_attrs.get(ACQUISITION_ATTR, "")).startswith("thompson")
            for t in running_trials(study, exclude=trial)
        )

    def _space(self, study: Study, search_space: dict[str, BaseDistribution]) -> EncodedSpace:
        return encoded_space(search_space, self.mixtures(study), self._coordinates,
                             declared_scales(study), self._target_scale)

    def _fit(
        self, study: Study, space: EncodedSpace, X: np.ndarray, y: np.ndarray,
        *, with_law: bool = True,
    ) -> SingleTaskGP:
        """The one GP that proposes and predicts (see :meth:`_fit_hedged`)."""
        return self._fit_hedged(study, space, X, y, with_law=with_law)[0]

    def _fit_hedged(
        self, study: Study, space: EncodedSpace, X: np.ndarray, y: np.ndarray,
        *, with_law: bool = True,
    ) -> tuple[SingleTaskGP, tuple[SingleTaskGP, float] | None]:
        """The GP on (X, y): the constant-mean GP, or the law-prior GP where a law can be
        fitted and predicts left-out trials better; each warm-started from its own last fit.

        ``with_law=False``: the constant-mean GP even where a law is available;
        ``prior_mean="constant"`` never has one. ``prior_mean="hedge"``: where both models
        can be fitted, the model of the larger stacking weight (:func:`.law.stacking_weight`
        on the left-out errors of both) and, as the second item, the other with its weight
        (None where one model only, the other's weight is below ``HEDGE_MIN_WEIGHT``, or
        past ``HEDGE_UP_TO`` trials).
        """
        plain_key = fit_key(study._study_id, space, y, law_prior=False)
        law_key = plain_key._replace(law_prior=True)
        law = None
        if with_law and self._prior_mean != "constant" and law_possible(space, len(y)):
            law = self._fitter.law(law_key, space, X, y)
        fit = functools.partial(self._fitter.fit, space=space, X=X, Y=y,
                                seed=self._base_seed, warp=self._warp)
        if law is None:
            return fit(plain_key), None
        # the law leads only on evidence: the law alone predicts left-out trials better than
        # the constant-mean GP (docs/gp.md, "A mixing law as the prior mean, on evidence");
        # that GP, only the judge while the law leads, is refitted on a slower schedule
        if space.scale_blocks:
            # a scale-aware study asks for a size no trial has: only the law extrapolates
            # there (a constant-mean GP reverts to its mean), and leave-one-out errors at the
            # trained sizes say nothing of it, so the law leads wherever it can be fitted
            return fit(law_key, law=law), None
        judge = fit(plain_key, refit_growth=JUDGE_REFIT_GROWTH)
        judge_errors = loo_residuals(judge)
        if self._prior_mean == "hedge":
            w_law = stacking_weight(*matched_law_errors(law, X, judge_errors),
                                    np.random.default_rng([self._base_seed, len(y)]))
            hedging = len(y) <= HEDGE_UP_TO
            if w_law >= 0.5:  # the judge, on its slower schedule (from 32 trials on), seconds
                lawful = fit(law_key, law=law)
                return lawful, ((judge, 1 - w_law) if hedging and 1 - w_law >= HEDGE_MIN_WEIGHT
                                else None)
            if not hedging or w_law < HEDGE_MIN_WEIGHT:  # no law model fitted: not counted
                return fit(plain_key), None
            return fit(plain_key), (fit(law_key, law=law), w_law)
        if law.loo_rmse >= float(np.sqrt(np.mean(judge_errors ** 2))):
            return fit(plain_key), None  # the one to use: on its own schedule
        return fit(law_key, law=law), None


@dataclass(frozen=True)
class _Prediction:
    """A fitted model to read predictions from, and the sign of the study's direction."""

    model: ConditionedGP
    composite: Composite | None
    sign: float  # +1 where the study maximises: the study's value is sign * the model's


def _has_law(gp: SingleTaskGP) -> bool:
    return isinstance(gp.mean_module, LawMean)


def trials_since_best(trials: Sequence[FrozenTrial], direction: StudyDirection) -> int:
    """Completed trials (in trial-number order) after the one with the best value so far."""
    ordered = sorted(trials, key=lambda t: t.number)
    sign = 1.0 if direction == StudyDirection.MAXIMIZE else -1.0
    values = np.array([sign * float(t.value) for t in ordered])
    return int(len(values) - 1 - np.argmax(values)) if len(values) else 0


def _trained_sizes(space: EncodedSpace, X: np.ndarray) -> list[float]:
    """The model sizes the rows of ``X`` trained at (a scale-aware space's one block)."""
    (block,) = space.scale_blocks
    return [space.nearest_size(block, float(u)) for u in np.unique(X[:, block.start])]


def _best_evaluated(model: ConditionedGP, X: np.ndarray, composite: Composite | None) -> int:
    """The row of ``X`` (the evaluated trials) with the best posterior mean."""
    mean, _ = posterior_mean_std(model, X, composite)
    return int(np.argmax(mean))


def _refuse_scale(what: str, scale: Any) -> None:
    if scale is not None:
        raise ValueError(f"{what}: this study has no scale parameter (scale= is for "
                         f"scale-aware studies); call it without scale")


def _study_mixture(space: EncodedSpace, what: str) -> Block:
    """The block of the study's mixture: ``mix``, or its only mixture."""
    blocks = {b.mixture.name: b for b in space.mixture_blocks if b.mixture is not None}
    if MIXTURE_ATTR in blocks:
        return blocks[MIXTURE_ATTR]
    if len(blocks) == 1:
        return next(iter(blocks.values()))
    if not blocks:
        raise ValueError(f"{what}: this study declares no mixture")
    raise ValueError(f"{what}: several mixtures ({', '.join(blocks)}) and none named "
                     f"{MIXTURE_ATTR!r}: which one is meant is unclear")


def _weight_rows(block: Block, weights: Sequence[Mapping[str, float]], what: str) -> np.ndarray:
    """The mixtures' weights in the block's domain order, (r, k); ValueError for a dict that
    names an unknown domain, has a negative or non-finite weight or does not sum to 1."""
    if isinstance(weights, Mapping) or not isinstance(weights, Sequence):
        raise ValueError(f"{what}: give a list of domain -> weight dicts, "
                         f"not {type(weights).__name__}")
    assert block.mixture is not None
    domains = block.mixture.domains
    rows = []
    for i, w in enumerate(weights):
        if not isinstance(w, Mapping):
            raise ValueError(f"{what}: mixture {i} is a {type(w).__name__}, "
                             f"not a domain -> weight dict")
        unknown = [d for d in w if d not in domains]
        if unknown:
            raise ValueError(f"{what}: mixture {i} names unknown domain(s) "
                             f"{', '.join(map(str, unknown))} (the mixture "
                             f"{block.mixture.name!r} has {', '.join(domains)})")
        row = np.array([float(w.get(d, 0.0)) for d in domains])
        if not np.all(np.isfinite(row)) or np.any(row < 0):
            raise ValueError(f"{what}: mixture {i} has a negative or non-finite weight")
        total = float(row.sum())
        if not math.isclose(total, 1.0, rel_tol=0.0, abs_tol=SUM_TOLERANCE):
            raise ValueError(f"{what}: the weights of mixture {i} sum to {total:.9g}, not 1")
        rows.append(row / total)
    return np.array(rows).reshape(len(rows), len(domains))


def _rows(space: EncodedSpace, block: Block, W: np.ndarray, at: np.ndarray | None) -> np.ndarray:
    """Rows of X with the mixture block at the weights W (r, k), the other columns at ``at``."""
    X = np.zeros((len(W), space.dim)) if at is None else np.tile(at, (len(W), 1))
    X[:, block.start : block.start + block.width] = W[:, : block.width]
    return X


_THREADS_LOCK = threading.Lock()
_THREADS_USERS = [0, 0]  # [active users, saved thread count]


@contextlib.contextmanager
def _one_thread():
    """Run torch on one thread: a GP on tens of points is 10x slower with two contending."""
    import torch

    with _THREADS_LOCK:
        if _THREADS_USERS[0] == 0:
            _THREADS_USERS[1] = torch.get_num_threads()
            torch.set_num_threads(1)
        _THREADS_USERS[0] += 1
    try:
        yield
    finally:
        with _THREADS_LOCK:
            _THREADS_USERS[0] -= 1
            if _THREADS_USERS[0] == 0:
                torch.set_num_threads(_THREADS_USERS[1])


@contextlib.contextmanager
def _torch_seeded(rng: np.random.Generator):
    """Torch's global generator seeded from ``rng`` and restored after: BoTorch draws from it
    (e.g. pruning the baseline of qLogNEI), and seeded runs must not depend on its state.

    linear_operator's jitter notices ("A not p.d., added jitter") are silenced here too: on
    nearly duplicate mixtures they come once per suggestion and flood a study's log.
    """
    import torch
    from linear_operator.utils.warnings import NumericalWarning

    with torch.random.fork_rng(), warnings.catch_warnings():
        warnings.simplefilter("ignore", NumericalWarning)
        torch.manual_seed(int(rng.integers(2**31)))
        yield
