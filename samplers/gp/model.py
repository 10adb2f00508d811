"""The surrogate (a GPyTorch exact GP through BoTorch) and the acquisition search on the simplex.

Everything here maximises. A single-output model is fitted to the signed trial values
(``-value`` for a minimised objective). A *composite* model (Astudillo & Frazier 2019) is
fitted to the per-domain losses, one independent GP each, and the maximised objective is
``Composite.sign * criterion(losses)`` of their joint posterior: each loss is a simpler
function of the mixture than their mean (mostly its own domain's weight), and every trial
observes all k of them.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from botorch.acquisition.analytic import PosteriorMean
from botorch.acquisition.logei import qLogNoisyExpectedImprovement
from botorch.acquisition.monte_carlo import qSimpleRegret
from botorch.acquisition.objective import (
    GenericMCObjective,
    MCAcquisitionObjective,
    PosteriorTransform,
    ScalarizedPosteriorTransform,
)
from botorch.fit import fit_gpytorch_mll
from botorch.models import SingleTaskGP
from botorch.models.model import Model
from botorch.models.transforms.input import InputTransform
from botorch.models.transforms.outcome import Standardize
from botorch.models.utils.gpytorch_modules import get_covar_module_with_dim_scaled_prior
from botorch.optim import optimize_acqf
from botorch.sampling.normal import SobolQMCNormalSampler
from gpytorch.kernels import Kernel, ScaleKernel
from gpytorch.means import Mean
from gpytorch.mlls import ExactMarginalLogLikelihood

from optuna_mix.samplers.gp.space import EncodedSpace
from optuna_mix.samplers._laws import EXP_CLIP
from optuna_mix.samplers.criteria import TORCH_CRITERIA
from optuna_mix.samplers._startup import sobol_simplex_points

DTYPE = torch.float64


_MC_SAMPLES_FOR_MOMENTS = 512


@dataclass(frozen=True)
class Composite:
    """The maximised objective of a per-domain-loss model: ``sign * criterion(losses)``."""

    criterion: str  # a key of optuna_mix.samplers.criteria.CRITERIA
    sign: float  # +1 to maximise the criterion, -1 to minimise it
    n_outputs: int

    def mc_objective(self) -> MCAcquisitionObjective:
        fn, sign = TORCH_CRITERIA[self.criterion], self.sign
        return GenericMCObjective(lambda samples, X=None: sign * fn(samples))

    def posterior_transform(self) -> PosteriorTransform | None:
        """The exact (linear) transform where there is one: the mean criterion."""
        if self.criterion != "mean":
            return None
        weights = torch.full((self.n_outputs,), self.sign / self.n_outputs, dtype=DTYPE)
        return ScalarizedPosteriorTransform(weights)


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


@dataclass(frozen=True)
class LawPrior:
    """A fitted Data Mixing Law, L_i = c_i + k_i exp(t_i . w), as the GPs' prior mean.

    ``columns`` are the input columns of the mixture's weights, in the law's domain order;
    output i of the model is domain i's loss.
    """

    c: np.ndarray  # (m,)
    k: np.ndarray  # (m,)
    t: np.ndarray  # (m, m)
    columns: tuple[int, ...]

    def losses(self, W: torch.Tensor) -> torch.Tensor:
        """Per-domain losses (..., m) of raw weights W (..., m)."""
        t = torch.as_tensor(self.t, dtype=W.dtype)
        exponent = (W @ t.T).clamp(-EXP_CLIP, EXP_CLIP)  # as the numpy fit's predict
        return torch.as_tensor(self.c, dtype=W.dtype) + torch.as_tensor(
            self.k, dtype=W.dtype
        ) * torch.exp(exponent)


class LawMean(Mean):
    """The GP prior mean of a batch of m outputs: a fitted law, in standardised units.

    The inputs it sees are warped (the model's input transform runs first): the warp is
    inverted to give the law the raw weights. Output b of the batch is the law's domain b.
    """

    def __init__(self, law: LawPrior, warp: float | None, means: torch.Tensor,
                 stdvs: torch.Tensor) -> None:
        super().__init__()
        self.law, self.warp = law, warp
        self.register_buffer("columns", torch.tensor(law.columns, dtype=torch.long))
        self.register_buffer("means", means.reshape(-1))
        self.register_buffer("stdvs", stdvs.reshape(-1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # a batched multi-output GP sees the same points in every output's batch (or a
        # broadcast batch of one): the law is evaluated once, domain b going to output b
        if x.dim() >= 3:
            x = x[..., 0, :, :]
        u = x[..., self.columns]
        w = u if not self.warp else self.warp * torch.expm1(u * np.log1p(1.0 / self.warp))
        L = (self.law.losses(w) - self.means) / self.stdvs  # (..., n, m)
        return L.transpose(-1, -2)  # (..., m, n)


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
    maxiter: int = 100,
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
    leaves. The outputs stay standardised by their own mean and std, not the residuals':
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
    model.eval()
    return model, _hyperparameters(model)


def _mixture_candidates(k: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """Points on the k-simplex that cover its interior, faces, edges and vertices."""
    seed = int(rng.integers(2**31))
    pts = sobol_simplex_points(k, n, seed=seed)
    # a third of them moved onto a random face: zero a random number of domains
    rows = rng.choice(n, n // 3, replace=False)
    n_zero = rng.integers(1, k, len(rows))  # 1 .. k-1 domains zeroed, one always kept
    ranks = np.argsort(rng.random((len(rows), k)), axis=1)
    face = pts[rows] * (ranks >= n_zero[:, None])
    pts[rows] = face / face.sum(axis=1, keepdims=True)
    extra = [np.eye(k)]
    if k <= 10:
        extra.append(np.array([(np.eye(k)[i] + np.eye(k)[j]) / 2 for i, j in
                               itertools.combinations(range(k), 2)]))
    return np.vstack([pts, *extra])


def candidate_points(
    space: EncodedSpace,
    n: int,
    rng: np.random.Generator,
    centres: np.ndarray,
    *,
    scales: tuple[float, ...] = (0.02, 0.08, 0.2),
    n_local: int = 16,
) -> np.ndarray:
    """Raw candidates for the acquisition search: global coverage + local moves near centres.

    Local moves perturb a centre and snap it back (exact simplex, faces via the zero snap);
    half of them also zero one random domain of each mixture, to reach the faces nearby.
    """
    if n == 0:
        X = np.zeros((0, space.dim))
    else:
        X = _global_points(space, n, rng)
    local = []
    for c in centres:
        for scale in scales:
            Y = np.repeat(c[None, :], n_local, axis=0)
            Y = Y + rng.normal(0.0, scale, Y.shape)
            for b in space.mixture_blocks:
                half = rng.random(n_local) < 0.5
                cols = b.start + rng.integers(0, b.width, n_local)
                Y[np.flatnonzero(half), cols[half]] = 0.0
            local.append(Y)
    if local:
        X = np.vstack([X, space.snap_many(np.vstack(local))])
    return np.vstack([X, centres]) if len(centres) else X


def _global_points(space: EncodedSpace, n: int, rng: np.random.Generator) -> np.ndarray:
    mixture_points = {
        b.mixture.name: _mixture_candidates(b.mixture.k, n, rng)  # type: ignore[union-attr]
        for b in space.mixture_blocks
    }
    n_global = max([n] + [len(p) for p in mixture_points.values()])
    for name, p in mixture_points.items():  # same count in every block: pad by resampling
        if len(p) < n_global:
            mixture_points[name] = np.vstack([p, p[rng.integers(0, len(p), n_global - len(p))]])
    return space.random_points(n_global, rng, mixture_points)


def _constraints(space: EncodedSpace) -> dict[str, Any]:
    eq, ineq = space.linear_constraints()

    def to_t(cons: list) -> list | None:
        if not cons:
            return None
        return [
            (torch.tensor(i, dtype=torch.long), torch.tensor(c, dtype=DTYPE), float(r))
            for i, c, r in cons
        ]

    return {"equality_constraints": to_t(eq), "inequality_constraints": to_t(ineq)}


def refine(
    acqf: Any, space: EncodedSpace, starts: np.ndarray, *, maxiter: int
) -> list[np.ndarray]:
    """SLSQP from each start on the constrained space, snapped onto exact simplex points.

    ``sum(w) = 1`` per mixture and [0, 1] bounds are BoTorch's linear constraints; one-hot
    categorical columns stay fixed at the start's values. A start whose optimisation fails
    gives nothing (the caller keeps its raw candidates).
    """
    bounds = torch.stack([torch.zeros(space.dim), torch.ones(space.dim)]).to(DTYPE)
    cat_cols = [c for b in space.categorical_blocks for c in range(b.start, b.start + b.width)]
    if len(cat_cols) == space.dim:  # nothing continuous to refine
        return []
    refined = []
    for start in starts:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cand, _ = optimize_acqf(
                    acqf,
                    bounds=bounds,
                    q=1,
                    num_restarts=1,
                    batch_initial_conditions=torch.as_tensor(start, dtype=DTYPE)[None, None, :],
                    fixed_features={c: float(start[c]) for c in cat_cols} or None,
                    options={"maxiter": maxiter},
                    retry_on_optimization_warning=False,
                    **_constraints(space),
                )
        except Exception:
            continue
        refined.append(space.snap(cand.reshape(-1).numpy()))
    return refined


def propose(
    model: Model,
    space: EncodedSpace,
    X_train: np.ndarray,
    X_pending: np.ndarray | None,
    rng: np.random.Generator,
    *,
    n_raw: int = 512,
    n_restarts: int = 0,
    mc_samples: int = 128,
    maxiter: int = 20,
    composite: Composite | None = None,
) -> np.ndarray:
    """The point (columns) that maximises qLogNEI given the running trials' points."""
    seed = int(rng.integers(2**31))
    # a linear criterion (the mean) is scalarised in the posterior: exact, and one output
    # to sample instead of m; the others go through the MC objective
    transform = composite.posterior_transform() if composite else None
    acqf = qLogNoisyExpectedImprovement(
        model=model,
        objective=composite.mc_objective() if composite and transform is None else None,
        posterior_transform=transform,
        X_baseline=torch.as_tensor(X_train, dtype=DTYPE),
        sampler=SobolQMCNormalSampler(sample_shape=torch.Size([mc_samples]), seed=seed),
        X_pending=(
            torch.as_tensor(X_pending, dtype=DTYPE)
            if X_pending is not None and len(X_pending)
            else None
        ),
        prune_baseline=True,
        cache_root=False,  # ConditionedGP conditions once per suggestion itself
    )
    mean, _ = posterior_mean_std(model, X_train, composite)
    centres = X_train[np.argsort(-mean)[:3]]

    def score(X: np.ndarray) -> np.ndarray:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            v = torch.cat(
                [acqf(torch.as_tensor(c, dtype=DTYPE)[:, None, :])
                 for c in np.array_split(X, max(1, len(X) // 512))]
            ).numpy()
        return np.where(np.isfinite(v), v, -np.inf)

    raw = candidate_points(space, n_raw, rng, centres)
    values = score(raw)
    # local rounds around the best candidates so far, shrinking (each one batched evaluation)
    for scales in ((0.05, 0.02), (0.01, 0.003)):
        top = raw[np.argsort(-values)[:4]]
        local = candidate_points(space, 0, rng, top, scales=scales, n_local=max(8, n_raw // 16))
        raw, values = np.vstack([raw, local]), np.concatenate([values, score(local)])
    order = np.argsort(-values)
    starts = raw[order[:n_restarts]]
    best_x, best_v = raw[order[0]], float(values[order[0]])

    for x in refine(acqf, space, starts, maxiter=maxiter):
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            v = float(acqf(torch.as_tensor(x, dtype=DTYPE)[None, None, :]))
        if np.isfinite(v) and v > best_v:
            best_x, best_v = x, v
    return space.snap(best_x)


def posterior_mean_std(
    model: Model, X: np.ndarray, composite: Composite | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and std of the latent (noise-free) maximised objective at ``X``.

    Exact for one output and for the mean criterion; by quasi-MC over the outputs' joint
    posterior at each point for the others (max, median).
    """
    Xt = torch.as_tensor(X, dtype=DTYPE)
    transform = composite.posterior_transform() if composite else None
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # linear_operator's jitter notices
        if composite is None or transform is not None:
            post = model.posterior(Xt, posterior_transform=transform)
            return (
                post.mean.squeeze(-1).numpy(),
                post.variance.clamp_min(0).sqrt().squeeze(-1).numpy(),
            )
        post = model.posterior(Xt[:, None, :])  # each point alone: marginals per point
        sampler = SobolQMCNormalSampler(torch.Size([_MC_SAMPLES_FOR_MOMENTS]), seed=0)
        values = composite.mc_objective()(sampler(post)).squeeze(-1)  # (samples, n)
        return values.mean(dim=0).numpy(), values.std(dim=0).numpy()


def maximise_mean(
    model: Model,
    space: EncodedSpace,
    X_train: np.ndarray,
    rng: np.random.Generator,
    composite: Composite | None = None,
) -> np.ndarray:
    """The point of the whole space with the highest posterior mean (multi-start, exact)."""
    if composite is None or composite.posterior_transform() is not None:
        acqf = PosteriorMean(
            model, posterior_transform=composite.posterior_transform() if composite else None
        )
    else:
        acqf = qSimpleRegret(
            model,
            sampler=SobolQMCNormalSampler(torch.Size([_MC_SAMPLES_FOR_MOMENTS]), seed=0),
            objective=composite.mc_objective(),
        )
    mean, _ = posterior_mean_std(model, X_train, composite)
    centres = X_train[np.argsort(-mean)[:3]]
    raw = candidate_points(space, 512, rng, centres)
    mean_raw, _ = posterior_mean_std(model, raw, composite)
    order = np.argsort(-mean_raw)
    best_x, best_v = raw[order[0]], float(mean_raw[order[0]])
    starts = raw[order[:4]]
    for x in refine(acqf, space, starts, maxiter=200):
        v = float(posterior_mean_std(model, x[None, :], composite)[0][0])
        if v > best_v:
            best_x, best_v = x, v
    return space.snap(best_x)
