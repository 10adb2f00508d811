"""The model and its fit: a GPyTorch exact GP (through BoTorch) of the trials, and its cache.

Everything here maximises. A single-output model is fitted to the signed trial values
(``-value`` for a minimised objective). A *composite* model (Astudillo & Frazier 2019) is
fitted to the per-domain losses, one independent GP each, and the maximised objective is
``Composite.sign * criterion(losses)`` of their joint posterior: each loss is a simpler
function of the mixture than their mean (mostly its own domain's weight), and every trial
observes all k of them. :func:`training_data` reads either from a study.

:func:`fit_gp` fits one model; :class:`GPFitter` keeps each model's last fit
(:class:`FitCache`) to warm-start the next from, and refits its hyperparameters (and law
prior) on the schedule of ``REFIT_ALWAYS_UP_TO`` and ``REFIT_GROWTH``.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from botorch.acquisition.objective import (
    GenericMCObjective,
    MCAcquisitionObjective,
    PosteriorTransform,
    ScalarizedPosteriorTransform,
)
from botorch.fit import fit_gpytorch_mll
from botorch.models import SingleTaskGP
from botorch.models.transforms.input import InputTransform
from botorch.models.transforms.outcome import Standardize
from botorch.models.utils.gpytorch_modules import get_covar_module_with_dim_scaled_prior
from gpytorch.kernels import Kernel, ScaleKernel
from gpytorch.mlls import ExactMarginalLogLikelihood
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

from optuna_mix.samplers._losses import per_domain_losses
from optuna_mix.samplers.criteria import CRITERIA, Criterion, study_criterion
from optuna_mix.samplers.gp.law import (
    LawMean,
    LawPrior,
    fit_law,
    with_output_scale,
    without_output_scale,
)
from optuna_mix.samplers.gp.space import EncodedSpace

DTYPE = torch.float64
# L-BFGS-B iterations of a hyperparameter fit: from the priors' modes, and warm-started from
# the last fit, which converges in a few steps
FIT_MAXITER = 100
# a warm start's refit: half the cost of 30; held-out error as with 30 or 100 on powerlaw
# (k = 5, 20), interaction and heldout, 7% higher on relu, regret within spread on all five
# families (docs/benchmarks/gp-timing.md, "Cheaper refits")
FIT_MAXITER_WARM = 15
# hyperparameters (and the law prior) are refitted on every trial up to this many, then only
# once the data have grown by REFIT_GROWTH: one more point barely moves them, and the fit is
# most of the cost (docs/benchmarks/gp-timing.md)
REFIT_ALWAYS_UP_TO = 32
REFIT_GROWTH = 0.1
# the constant-mean GP while it only judges the law (the law GP leads): its leave-one-out
# error with hyperparameters of up to 50% fewer trials barely differs, and its refit was
# half the cost of a suggestion at k = 20 (docs/benchmarks/gp-timing.md, "Cheaper refits")
JUDGE_REFIT_GROWTH = 0.5


@dataclass(frozen=True)
class Composite:
    """The maximised objective of a per-domain-loss model: ``sign * criterion(losses)``."""

    criterion: Criterion  # bound to the outputs' order (optuna_mix.samplers.criteria)
    sign: float  # +1 to maximise the criterion, -1 to minimise it
    n_outputs: int
    outputs: tuple[str, ...] = ()  # the validation sets, in the model's output order

    def __post_init__(self) -> None:
        if isinstance(self.criterion, str):  # a registered criterion by name
            object.__setattr__(self, "criterion", CRITERIA.lookup(self.criterion))

    @classmethod
    def mean(cls, sign: float, n_outputs: int) -> Composite:
        return cls(CRITERIA["mean"], sign, n_outputs)

    @property
    def linear(self) -> bool:
        """Whether the criterion is a weighted sum of the outputs (the mean, weighted)."""
        return self.criterion.name == "mean" or self.criterion.linear is not None

    def mc_objective(self) -> MCAcquisitionObjective:
        fn, sign = self.criterion.torch, self.sign
        return GenericMCObjective(lambda samples, X=None: sign * fn(samples))

    def posterior_transform(self) -> PosteriorTransform | None:
        """The exact (linear) transform where there is one: the mean and weighted criteria."""
        if self.criterion.name == "mean":
            weights = torch.full((self.n_outputs,), 1.0 / self.n_outputs, dtype=DTYPE)
        elif self.criterion.linear is not None:
            weights = torch.tensor(self.criterion.linear, dtype=DTYPE)
        else:
            return None
        return ScalarizedPosteriorTransform(self.sign * weights)


def clean_targets(y: np.ndarray) -> np.ndarray:
    """Finite targets: +-inf become the worst/best finite value (or 0 if none is finite).

    Column by column for a matrix of several outputs.
    """
    y = np.asarray(y, dtype=float).copy()
    if y.ndim == 2:
        return np.column_stack([clean_targets(col) for col in y.T]) if y.size else y
    finite = np.isfinite(y)
    if not finite.all():
        lo, hi = (y[finite].min(), y[finite].max()) if finite.any() else (0.0, 0.0)
        y[np.isposinf(y)] = hi
        y[np.isneginf(y)] = lo
        y[np.isnan(y)] = lo
    return y


class WeightWarp(InputTransform):
    """Fixed concave warp of mixture weights: w -> log(1 + w/c) / log(1 + 1/c).

    Losses change fastest as a domain's weight goes to zero (a power law in the effective
    data, (eps + w)^-alpha); the warp stretches small weights so that a stationary kernel
    fits such surfaces, while keeping 0 at 0 and 1 at 1 and a finite slope (1/(c log(1+1/c)))
    at the faces, so the acquisition search still reaches them by gradient steps.
    """

    transform_on_train = True
    transform_on_eval = True
    transform_on_fantasize = True

    def __init__(self, columns: list[int], c: float) -> None:
        super().__init__()
        self.register_buffer("columns", torch.tensor(columns, dtype=torch.long))
        self.c = float(c)

    def transform(self, X: torch.Tensor) -> torch.Tensor:
        if self.columns.numel() == 0:
            return X
        Xw = X.clone()
        cols = X[..., self.columns].clamp_min(0.0)
        Xw[..., self.columns] = torch.log1p(cols / self.c) / np.log1p(1.0 / self.c)
        return Xw


def _covar(d: int, m: int, *, scaled: bool) -> Kernel:
    """Matern-5/2 ARD with BoTorch's dimension-scaled lengthscale prior, one per output.

    ``scaled`` adds a learned output scale (maximum likelihood, no prior): for the residuals
    of a law, which may be far smaller than the outputs' own spread. Without it, the unit
    variance of the standardised outputs is the kernel's.
    """
    batch = torch.Size([m]) if m > 1 else torch.Size()
    base = get_covar_module_with_dim_scaled_prior(
        ard_num_dims=d, batch_shape=batch, use_rbf_kernel=False
    )
    return ScaleKernel(base, batch_shape=batch) if scaled else base


def _hyperparameters(model: SingleTaskGP) -> dict[str, torch.Tensor]:
    return {
        n: p.detach().clone()
        for n, p in model.named_parameters()
        if not n.startswith("outcome_transform")
    }


def fit_gp(
    X: np.ndarray,
    y: np.ndarray,
    *,
    warm_start: Mapping[str, torch.Tensor] | None = None,
    refit: bool = True,
    maxiter: int = FIT_MAXITER,
    seed: int = 0,
    warp_columns: list[int] | None = None,
    warp: float | None = None,
    law: LawPrior | None = None,
) -> tuple[SingleTaskGP, dict[str, torch.Tensor]]:
    """A Matern-5/2 ARD GP on ``X`` (n x d in [0,1]) fitted by MAP to ``y`` (n,) or (n, m).

    Several outputs (m columns) are m independent GPs in one batch, each with its own
    lengthscales and noise level.

    Priors: BoTorch's dimension-scaled LogNormal lengthscale prior (Hvarfner et al. 2024) and
    a LogNormal(-4, 1) prior on the noise variance of the standardised outputs, so the noise
    level is learned (sigma up to 0.02 on these objectives) instead of assumed zero.
    ``warm_start`` carries hyperparameters over from the previous fit (faster, stabler);
    ``refit=False`` reuses them as they are (same data as before).

    ``law``: a fitted mixing law (one per output) as the prior mean; the GPs model what it
    leaves, their output scale at least the law's leave-one-out error (fitted freely, it
    collapsed to ~0: the law is fitted to the same trials, and the std was then ~1e-5 where
    the errors were 0.01-0.03). The outputs stay standardised by their own mean and std, not the residuals':
    on the residuals' scale the unit kernel variance fitted the noise (learned noise 10x too
    low, lengthscales 0.03), and the posterior mean merely ranked the noisy observations.
    """
    train_X = torch.as_tensor(X, dtype=DTYPE)
    train_Y = torch.as_tensor(clean_targets(y), dtype=DTYPE).reshape(len(train_X), -1)
    m = train_Y.shape[-1]
    mean_module = None
    if law is not None:  # in the standardised units SingleTaskGP's Standardize will use
        scale = Standardize(m=m)
        scale(train_Y)
        mean_module = LawMean(law, warp, scale.means, scale.stdvs)
    model = SingleTaskGP(
        train_X,
        train_Y,
        covar_module=_covar(train_X.shape[-1], m, scaled=law is not None),
        mean_module=mean_module,
        outcome_transform=Standardize(m=m),
        input_transform=WeightWarp(warp_columns or [], warp) if warp else None,
    )
    if warm_start:
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name in warm_start and warm_start[name].shape == p.shape:
                    p.copy_(warm_start[name])
    if refit and len(train_Y) > 1:  # one point says nothing about lengthscales or noise
        mll = ExactMarginalLogLikelihood(model.likelihood, model)
        with warnings.catch_warnings(), torch.random.fork_rng():
            warnings.simplefilter("ignore")
            torch.manual_seed(seed)
            try:
                fit_gpytorch_mll(mll, optimizer_kwargs={"options": {"maxiter": maxiter}})
            except Exception:  # keep the prior's modes: a usable, if vague, model
                pass
    if law is not None:  # what the law misses out of sample, the residual GP must allow
        floor = torch.as_tensor(law.residual_floor(), dtype=DTYPE) / scale.stdvs.reshape(-1)
        with torch.no_grad():
            scale_now = model.covar_module.outputscale
            model.covar_module.outputscale = torch.maximum(
                scale_now, (floor**2).reshape(scale_now.shape))
    model.eval()
    return model, _hyperparameters(model)


def training_data(
    study: Study, space: EncodedSpace, losses_attr: str | None
) -> tuple[np.ndarray, np.ndarray, list[FrozenTrial], Composite | None]:
    """Completed trials with every modelled parameter (failed/pruned ones never count).

    X (n, d): their encoded parameters. The targets: the per-domain losses Y (n, m) with the
    composite that makes them the maximised objective, where the trials allow (every one
    keeps the same losses under ``losses_attr`` and one criterion gives every value; for one
    mixture whose domains they are, output i is its domain i, for the law); else the signed
    values y (n,) and None.
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
    spec = study_criterion(study)
    found = per_domain_losses(trials, values, losses_attr, spec)
    if found is not None:
        losses, criterion, keys = found
        blocks = space.mixture_blocks
        mixture = blocks[0].mixture if len(blocks) == 1 else None
        if mixture is not None and set(keys) == set(mixture.domains):
            order = [keys.index(d) for d in mixture.domains]
            losses = losses[:, order]  # output i: the mixture's domain i (for the law)
            keys = list(mixture.domains)
            if spec is not None:  # a bound criterion follows its outputs
                criterion = spec.bind(keys)
        return X, losses, trials, Composite(criterion, sign, losses.shape[1], tuple(keys))
    return X, sign * values, trials, None


def pareto_data(study: Study, space: EncodedSpace
                ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """A multi-objective study's completed trials with every modelled parameter: X (n, d),
    their values Y (n, m) as they are (each objective's own direction is the acquisition's
    business), and the objectives' names (the study's metric names, else "objective i")."""
    m = len(study.directions)
    objectives = list(study.metric_names or [f"objective {i}" for i in range(m)])
    trials = [t for t in study._get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
              if t.values is not None and space.has_all(t.params)]
    if not trials:
        return np.zeros((0, space.dim)), np.zeros((0, m)), objectives
    X = np.array([space.encode(t.params) for t in trials])
    return X, clean_targets(np.array([t.values for t in trials], float)), objectives


@dataclass(frozen=True)
class FitCache:
    """One model's last fit: what the next warm-starts from and the refit schedule reads."""

    data_key: bytes  # X.tobytes() + Y.tobytes(): the data it was fitted or conditioned on
    hyperparameters: dict[str, torch.Tensor]  # the GP's named parameters (no outcome transform)
    n_fitted: int  # trials at the last refit of the hyperparameters
    law: LawPrior | None  # the law prior fitted with them (None: a constant prior mean)


class FitKey(NamedTuple):
    """Which model a fit is of: one cache each."""

    study_id: int
    param_names: tuple[str, ...]
    coordinates: str
    output_shape: tuple[int, ...]  # () for one output, (m,) for m
    # True: the law prior's model (fitted only where a law leads); False: the constant prior
    # mean's (the law's judge, the hand-over's model, or prior_mean="constant"); each its own
    # cache, and a first fit of one warm-starts from the other's
    law_prior: bool


def fit_key(study_id: int, space: EncodedSpace, Y: np.ndarray, *, law_prior: bool) -> FitKey:
    """The key of the model of ``Y`` (n,) or (n, m) on ``space`` in study ``study_id``."""
    return FitKey(study_id, tuple(space.param_names), space.coordinates, Y.shape[1:], law_prior)


def refit_due(
    cached: FitCache | None, data_key: bytes, n: int, growth: float = REFIT_GROWTH
) -> bool:
    """Whether a fit on ``n`` trials refits the hyperparameters (and law) or keeps the cached
    ones: always the first time, never again on data they were refitted on, then on every
    new trial up to ``REFIT_ALWAYS_UP_TO`` trials and beyond once the data grew by ``growth``
    since the last refit (data only conditioned on, under a slower schedule, count as new)."""
    if cached is None:
        return True
    if cached.data_key == data_key and cached.n_fitted == n:
        return False
    return n <= REFIT_ALWAYS_UP_TO or n >= cached.n_fitted * (1.0 + growth)


class GPFitter:
    """Fits the models of a sampler, each warm-started from its last fit (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._caches: dict[FitKey, FitCache] = {}
        self._laws: dict[FitKey, FitCache] = {}  # each law model's law, on its own schedule

    def law(self, key: FitKey, space: EncodedSpace, X: np.ndarray, Y: np.ndarray
            ) -> LawPrior | None:
        """The law prior of model ``key`` on (X, Y): refitted on the schedule of
        :func:`refit_due`, the last one in between (so it can be judged before its GP is
        fitted, and a law that loses costs no GP fit)."""
        data_key = X.tobytes() + Y.tobytes()
        with self._lock:
            cached = self._laws.get(key)
        if cached is not None and not refit_due(cached, data_key, len(Y)):
            return cached.law
        law = fit_law(space, X, Y)
        with self._lock:
            self._laws[key] = FitCache(data_key, {}, len(Y), law)
        return law

    def last(self, key: FitKey) -> FitCache | None:
        """The last fit of model ``key``, if any."""
        with self._lock:
            return self._caches.get(key)

    def __len__(self) -> int:
        with self._lock:
            return len(self._caches)

    def fit(
        self,
        key: FitKey,
        space: EncodedSpace,
        X: np.ndarray,
        Y: np.ndarray,
        *,
        seed: int,
        warp: float | None,
        law: LawPrior | None = None,
        refit_growth: float = REFIT_GROWTH,
    ) -> SingleTaskGP:
        """The GP on (X, Y), its hyperparameters warm-started from model ``key``'s last fit.

        ``law``: the law prior to use (from :meth:`law`); by default a law model fits its own.
        ``refit_growth``: the schedule's growth (:func:`refit_due`).

        The hyperparameters and the law prior are refitted on the schedule of
        :func:`refit_due`; in between, the model conditions on the new points with the
        previous ones. A model with no fit yet starts from the other model's lengthscales and
        noise where that one has been fitted (the law model from its judge's, the
        constant-mean one, fitted first), with the iterations of a cold fit: its own output
        scale or the prior mean's change starts from the default.
        """
        data_key = X.tobytes() + Y.tobytes()
        with self._lock:
            cached = self._caches.get(key)
            warm = cached.hyperparameters if cached is not None else None
            other = self._caches.get(key._replace(law_prior=not key.law_prior))
            own_warm = warm is not None
            if warm is None and other is not None:  # a first fit: from the other model's
                warm = (with_output_scale(other.hyperparameters) if key.law_prior
                        else without_output_scale(other.hyperparameters))
        n = len(Y)
        refit = refit_due(cached, data_key, n, refit_growth)
        # the law is part of the prior: refitted with the hyperparameters, kept in between
        if not key.law_prior:
            law = None
        elif law is None:
            law = fit_law(space, X, Y) if refit else cached.law  # type: ignore[union-attr]
        model, hyper = fit_gp(
            X,
            Y,
            warm_start=warm,
            refit=refit,
            maxiter=FIT_MAXITER_WARM if own_warm else FIT_MAXITER,
            seed=seed,
            warp_columns=[c for b in space.mixture_blocks for c in b.columns],
            warp=warp,
            law=law,
        )
        n_fitted = n if refit else cached.n_fitted  # type: ignore[union-attr]
        if not refit:  # the last refit's own values: read back through the constraints they
            hyper = cached.hyperparameters  # drift in the last digits, call after call
        with self._lock:
            self._caches[key] = FitCache(data_key, hyper, n_fitted, law)
        return model
