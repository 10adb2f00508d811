"""SimplexGPSampler: Bayesian optimisation of mixtures with a GPyTorch GP on the simplex.

The surrogate is an exact GP (GPyTorch, built through BoTorch's ``SingleTaskGP``): Matern-5/2
ARD kernel with BoTorch's dimension-scaled lengthscale prior, standardised outputs, a learned
Gaussian noise level under a LogNormal prior, hyperparameters fitted by MAP. Its input is
every declared mixture as a block of raw simplex weights, plus the study's other float/int
parameters (log scale where the distribution is log) and one-hot categoricals.

The acquisition is BoTorch's qLogNoisyExpectedImprovement (noise-aware: it integrates over
the noisy incumbent instead of trusting the best observed value), with the running trials of
other workers as ``X_pending`` so that parallel workers propose different mixtures. It is
maximised on the simplex with the equality constraint held exactly: raw candidates cover the
interior (Sobol), faces, edges and vertices, then two rounds of shrinking local moves around
the best (half of them onto a nearby face), every point snapped back onto the simplex;
``n_restarts > 0`` adds an SLSQP refinement under ``sum(w) = 1, 0 <= w <= 1`` (off by
default: no measurable gain in regret for most of a suggestion's time). Weights under 1e-4
are snapped to exactly zero. The search asks for thousands of small joint posteriors, so the
fitted GP is first conditioned once (:class:`ConditionedGP`).

Start-up: the first ``n_startup_trials`` trials take Sobol-on-simplex points indexed by trial
number (one shared design across workers, as :class:`SobolMixtureSampler`).

Composite model: where every completed trial keeps its per-domain losses in a user attr
(``losses``, as optuna-mix's objectives do) and its value is their mean, max or median, each
loss gets its own GP and the acquisition works on the criterion of their joint posterior.
Each GP's prior mean is then a Data Mixing Law (Ye et al. 2024) fitted to the losses, once
there are enough trials for it: the law carries the global shape, the GP what it misses.
"""

from __future__ import annotations

import contextlib
import json
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

from optuna_mix.samplers._base import MixtureSampler, running_trials
from optuna_mix.samplers.gp.model import (
    Composite,
    LawMean,
    LawPrior,
    fit_gp,
    maximise_mean,
    posterior_mean_std,
    propose,
)
from optuna_mix.samplers.gp.posterior import ConditionedGP
from optuna_mix.samplers.gp.space import COORDINATES, EncodedSpace
from optuna_mix.samplers._laws import DataMixingLaw, LawFitError
from optuna_mix.samplers._losses import per_domain_losses
from optuna_mix.samplers.attrs import LOSSES_ATTR, MIXTURE_ATTR
from optuna_mix.samplers._simplex import (
    PROPOSAL_PREFIX,
    Mixture,
    mixture_search_space,
    mixtures_in,
)
from optuna_mix.samplers._startup import sequence_seed, startup_point

RELATIVE_PREFIX = "optuna_mix:gp:relative:"
PRIOR_MEANS = ("law", "constant")
# the law has k + 1 parameters a domain: fitted from k + 4 trials on (starting at k + 2 or
# k + 6 gave higher regret at 12-16 trials; docs/gp.md)
LAW_EXTRA_TRIALS = 4
# hyperparameters: refitted on every trial up to this many, then when the data grew by 10%
REFIT_ALWAYS_UP_TO = 32
REFIT_GROWTH = 0.1
# a proposal this close (every column) to an evaluated point repeats it
REPEAT_TOL = 0.01
_CHUNK = 2000  # RDB storages keep system attr values in 2048-character columns

_logger = optuna.logging.get_logger(__name__)


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
        prior_mean: ``"law"``: for a composite model of one mixture, from k + 4 completed
            trials on, a Data Mixing Law fitted to the losses is each GP's prior mean and the
            GP models what the law leaves; ``"constant"``: a constant prior mean.
        independent_sampler: sampler for parameters outside the relative search space
            (default: Random with ``seed``).
    """

    def __init__(
        self,
        *,
        seed: int | None = None,
        n_startup_trials: int = 4,
        coordinates: str = "weights",
        n_raw_samples: int = 512,
        n_restarts: int = 0,
        mc_samples: int = 128,
        warp: float | None = 0.05,
        losses_attr: str | None = LOSSES_ATTR,
        prior_mean: str = "law",
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
        self._losses_attr = losses_attr
        self._prior_mean = prior_mean
        self._intersection = optuna.search_space.IntersectionSearchSpace()
        self._init_runtime()

    def _init_runtime(self) -> None:
        self._lock = threading.RLock()
        # data, hyperparameters, n fitted, law prior
        self._fits: dict[Any, tuple[bytes, dict, int, LawPrior | None]] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_lock"], state["_fits"]
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
        if study._is_multi_objective():
            return super().sample_relative(study, trial, search_space)
        space = self._space(study, search_space)
        X, y, _, composite = self._data(study, space)
        if len(y) == 0 or len(y) < self._n_startup_trials:
            return super().sample_relative(study, trial, search_space)

        rng = np.random.default_rng([self._base_seed, trial.number])
        X_pending = self._pending(study, trial, space)
        search = dict(n_raw=self._n_raw, n_restarts=self._n_restarts,
                      mc_samples=self._mc_samples, composite=composite)
        with _one_thread(), _torch_seeded(rng):
            gp = self._fit(study, space, X, y)
            x = propose(ConditionedGP(gp), space, X, X_pending, rng, **search)
            if isinstance(gp.mean_module, LawMean) and _repeats_a_trial(x, X):
                # the law-prior model sees nothing better than a mixture it has run: where
                # the law is wrong its small residual GP keeps it there (docs/gp.md), so the
                # constant-mean GP, which trusts only the data, chooses instead
                gp = self._fit(study, space, X, y, with_law=False)
                x = propose(ConditionedGP(gp), space, X, X_pending, rng, **search)
        params = space.decode(x)
        self._store(study, trial, space, params)
        # a proposal stored before (e.g. by an earlier call for this trial) wins: one point
        for block in space.mixture_blocks:
            assert block.mixture is not None
            params.update(self._mixture_params(study, trial, block.mixture))
        return {n: params[n] for n in search_space if n in params}

    # -- recommendation ---------------------------------------------------------------------
    def recommend(self, study: Study, *, among: str = "evaluated") -> Recommendation:
        """The parameters the model believes best, with the predicted value and its std.

        ``among="evaluated"``: the completed trial with the best posterior mean (robust: the
        best observed value is biased by noise, this is not). ``among="all"``: the maximiser
        of the posterior mean over the whole space (may leave the evaluated mixtures).
        """
        if among not in ("evaluated", "all"):
            raise ValueError(f"among must be 'evaluated' or 'all', not {among!r}")
        if study._is_multi_objective():
            raise ValueError("recommend() needs a single-objective study")
        search_space = self.infer_relative_search_space(study, None)  # type: ignore[arg-type]
        space = self._space(study, search_space)
        X, y, trials, composite = self._data(study, space)
        if len(y) == 0:
            raise ValueError("recommend() needs at least one completed trial")
        sign = 1.0 if study.direction == StudyDirection.MAXIMIZE else -1.0
        with _one_thread(), _torch_seeded(np.random.default_rng([self._base_seed, len(y)])):
            model = ConditionedGP(self._fit(study, space, X, y))
            if among == "evaluated":
                mean, _ = posterior_mean_std(model, X, composite)
                i = int(np.argmax(mean))
                x, number = X[i], trials[i].number
                params = dict(trials[i].params)
            else:
                rng = np.random.default_rng([self._base_seed, 0])
                x = maximise_mean(model, space, X, rng, composite)
                number = None
                params = space.decode(x)
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
        )

    # -- internals ----------------------------------------------------------------------------
    def _space(self, study: Study, search_space: dict[str, BaseDistribution]) -> EncodedSpace:
        mixtures = mixtures_in(search_space, self.mixtures(study))
        in_mixture = {p for m in mixtures for p in m.param_names}
        others = {
            n: d for n, d in search_space.items() if n not in in_mixture and not d.single()
        }
        return EncodedSpace(mixtures, others, self._coordinates)

    def _data(
        self, study: Study, space: EncodedSpace
    ) -> tuple[np.ndarray, np.ndarray, list[FrozenTrial], Composite | None]:
        """Completed trials with every modelled parameter (failed/pruned ones never count).

        The targets: the per-domain losses (n x k) with the composite that makes them the
        maximised objective, where the trials allow; else the signed values (n,) and None.
        """
        trials = [
            t
            for t in study._get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if t.value is not None and space.has_all(t.params)
        ]
        if not trials:
            return np.zeros((0, space.dim)), np.zeros(0), [], None
        X = np.array([space.encode(t.params) for t in trials])
        sign = 1.0 if study.direction == StudyDirection.MAXIMIZE else -1.0
        values = np.array([float(t.value) for t in trials])
        found = per_domain_losses(trials, values, self._losses_attr)
        if found is not None:
            losses, criterion, keys = found
            blocks = space.mixture_blocks
            if len(blocks) == 1 and set(keys) == set(blocks[0].mixture.domains):  # type: ignore[union-attr]
                order = [keys.index(d) for d in blocks[0].mixture.domains]  # type: ignore[union-attr]
                losses = losses[:, order]  # output i: the mixture's domain i (for the law)
            return X, losses, trials, Composite(criterion, sign, losses.shape[1])
        return X, sign * values, trials, None

    def _fit(
        self, study: Study, space: EncodedSpace, X: np.ndarray, y: np.ndarray,
        *, with_law: bool = True,
    ):
        """The GP on (X, y), its hyperparameters warm-started from this study's last fit.

        ``with_law=False``: a constant prior mean even where a law is available (its own
        cache of hyperparameters).

        Up to ``REFIT_ALWAYS_UP_TO`` trials they are refitted on every new trial; beyond, only
        once the data have grown by ``REFIT_GROWTH`` since the last fit (in between, the
        model conditions on the new points with the previous hyperparameters and law prior):
        with hundreds of trials one more point barely moves them, and the fit is most of the
        cost.
        """
        # with_law=True: one key before the law is available and after, so that the law
        # model's first fit warm-starts from the last constant-mean one (the shared
        # hyperparameters; the benchmarked behaviour, docs/gp.md); the hand-over's
        # constant-mean fits (with_law=False) keep their own
        key = (study._study_id, tuple(space.param_names), space.coordinates, y.shape[1:],
               with_law)
        data_key = X.tobytes() + y.tobytes()
        with self._lock:
            cached = self._fits.get(key)
            warm = cached[1] if cached is not None else None
            if warm is None and not with_law:  # the first hand-over: start from the law model's
                law_fit = self._fits.get(key[:-1] + (True,))
                warm = _without_output_scale(law_fit[1]) if law_fit is not None else None
        n = len(y)
        if cached is None:
            refit = True
        else:
            last_data, _, n_fitted, _ = cached
            refit = last_data != data_key and (
                n <= REFIT_ALWAYS_UP_TO or n >= n_fitted * (1.0 + REFIT_GROWTH)
            )
        # the law is part of the prior: refitted with the hyperparameters, kept in between
        if not with_law:
            law = None
        else:
            law = self._law(space, X, y) if refit else cached[3]  # type: ignore[index]
        model, hyper = fit_gp(
            X,
            y,
            warm_start=warm,
            refit=refit,
            maxiter=30 if warm is not None else 100,  # warm starts converge in a few steps
            seed=self._base_seed,
            warp_columns=[c for b in space.mixture_blocks for c in range(b.start, b.start + b.width)],
            warp=self._warp,
            law=law,
        )
        with self._lock:
            self._fits[key] = (data_key, hyper, n if refit else cached[2], law)  # type: ignore[index]
        return model

    def _law(self, space: EncodedSpace, X: np.ndarray, Y: np.ndarray) -> LawPrior | None:
        """A Data Mixing Law fitted to the per-domain losses, as the GPs' prior mean.

        Only for a composite model of one mixture whose domains are the losses' (in raw
        weight coordinates), with enough trials for the law (k + 4); None otherwise or if
        the fit fails: the GPs then have a constant prior mean. (Its predictions far from
        the trials are not checked: true losses at the simplex's vertices do lie far outside
        the observed range, and a guard on them rejected most good fits.)
        """
        blocks = space.mixture_blocks
        if self._prior_mean != "law" or Y.ndim != 2 or len(blocks) != 1:
            return None
        block = blocks[0]
        if space.coordinates != "weights" or block.width != Y.shape[1]:
            return None
        law = DataMixingLaw()
        if len(Y) < block.width + LAW_EXTRA_TRIALS:
            return None
        columns = tuple(range(block.start, block.start + block.width))
        try:
            law.fit(X[:, list(columns)], Y, loo=False)
        except LawFitError:
            return None
        return LawPrior(c=law.c, k=law.kk, t=law.t, columns=columns)

    def _pending(self, study: Study, trial: FrozenTrial, space: EncodedSpace) -> np.ndarray:
        rows = []
        for t in running_trials(study, exclude=trial):
            params = _stored_params(t, space)
            if space.has_all(params):
                rows.append(space.encode(params))
        return np.array(rows) if rows else np.zeros((0, space.dim))

    def _store(
        self, study: Study, trial: FrozenTrial, space: EncodedSpace, params: dict[str, Any]
    ) -> None:
        """Keep the proposal in the trial's system attrs: other workers read it as pending."""
        storage, tid = study._storage, trial._trial_id
        stored = storage.get_trial_system_attrs(tid)
        for block in space.mixture_blocks:
            assert block.mixture is not None
            key = PROPOSAL_PREFIX + block.mixture.name
            if key not in stored:
                storage.set_trial_system_attr(tid, key, [float(params[n]) for n in block.names])
        others = {n: v for n, v in params.items() if n not in _mixture_names(space)}
        if others:
            text = json.dumps(others)
            for i in range(0, len(text), _CHUNK):
                storage.set_trial_system_attr(tid, f"{RELATIVE_PREFIX}{i // _CHUNK}",
                                              text[i : i + _CHUNK])


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


def _without_output_scale(hyper: dict) -> dict:
    """A law model's hyperparameters named as the constant-mean model's (no ScaleKernel)."""
    prefix = "covar_module.base_kernel."
    return {
        ("covar_module." + name[len(prefix):] if name.startswith(prefix) else name): value
        for name, value in hyper.items()
    }


def _repeats_a_trial(x: np.ndarray, X: np.ndarray) -> bool:
    """Whether x is within REPEAT_TOL of an evaluated point in every column."""
    return bool(len(X)) and float(np.min(np.max(np.abs(X - x), axis=1))) < REPEAT_TOL


def _mixture_names(space: EncodedSpace) -> set[str]:
    return {n for b in space.mixture_blocks for n in b.names}


def _stored_params(trial: FrozenTrial, space: EncodedSpace) -> dict[str, Any]:
    """A running trial's parameters: the proposals kept for it, then those set so far."""
    attrs = trial.system_attrs
    params: dict[str, Any] = {}
    chunks, i = [], 0
    while (chunk := attrs.get(f"{RELATIVE_PREFIX}{i}")) is not None:
        chunks.append(chunk)
        i += 1
    if chunks:
        try:
            params.update(json.loads("".join(chunks)))
        except ValueError:
            pass
    for block in space.mixture_blocks:
        assert block.mixture is not None
        value = attrs.get(PROPOSAL_PREFIX + block.mixture.name)
        if isinstance(value, Sequence) and len(value) == len(block.names):
            params.update(zip(block.names, value))
    params.update(trial.params)
    return params
