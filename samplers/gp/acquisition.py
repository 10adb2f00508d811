"""The acquisition search: the maximiser of qLogNEI, or of the posterior mean, on the space.

BoTorch's qLogNoisyExpectedImprovement (noise-aware: it integrates over the noisy
incumbent), with the running trials as ``X_pending``, is maximised with the equality
constraint held exactly: raw candidates (:mod:`.candidates`) around the trials with the best
posterior mean, two rounds of shrinking local moves around the best, every point snapped
back onto the space; ``n_restarts > 0`` adds an SLSQP refinement under
``sum(w) = 1, 0 <= w <= 1`` (:func:`refine`). :func:`maximise_mean` searches the same way for
the highest posterior mean (``recommend(among="all")``), :func:`propose_pareto` for a
multi-objective study (qLogNEI of one random scalarisation of the outputs per proposal).
Why these settings: docs/benchmarks/gp-variants.md,
"Acquisition" and "The acquisition search, by benchmark".
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from botorch.acquisition.acquisition import AcquisitionFunction
from botorch.acquisition.analytic import PosteriorMean
from botorch.acquisition.logei import qLogNoisyExpectedImprovement
from botorch.acquisition.monte_carlo import qSimpleRegret
from botorch.acquisition.objective import GenericMCObjective
from botorch.acquisition.multi_objective.objective import WeightedMCMultiOutputObjective
from botorch.acquisition.multi_objective.parego import qLogNParEGO
from botorch.models.model import Model
from botorch.optim import optimize_acqf
from botorch.sampling.normal import SobolQMCNormalSampler

from optuna_mix.samplers.gp.candidates import candidate_points
from optuna_mix.samplers.gp.model import DTYPE, Composite
from optuna_mix.samplers.gp.posterior import ConditionedGP, moments_sampler, posterior_mean_std
from optuna_mix.samplers.gp.space import EncodedSpace

# raw candidates scored per suggestion: 256 or 1024 gave higher regret at 12-16 trials
# (docs/benchmarks/gp-variants.md, "The acquisition search")
N_RAW_SAMPLES = 512
# candidates polished by SLSQP: one made no difference beyond the runs' spread and took most
# of a suggestion's time (docs/benchmarks/gp-variants.md, same section)
N_RESTARTS = 0
# quasi-MC samples of qLogNEI (not benchmarked)
MC_SAMPLES = 128
# SLSQP iterations of a polish of the acquisition (n_restarts > 0)
REFINE_MAXITER = 20
# the raw candidates' local moves are around this many trials, those of best posterior mean
N_CENTRES = 3
# the local rounds' scales, shrinking, one batched evaluation each: finer than the raw
# candidates' local moves (docs/gp.md, "How it works"; not benchmarked alone)
LOCAL_ROUNDS = ((0.05, 0.02), (0.01, 0.003))
# the best candidates so far that each local round moves around
N_ROUND_CENTRES = 4
# local moves per centre and scale in a round: one per ROUND_MOVES_PER raw candidates, at
# least ROUND_MOVES_MIN
ROUND_MOVES_PER = 16
ROUND_MOVES_MIN = 8
# the scalarisations of a multi-objective study's proposals (propose_pareto)
PARETO_SCALARISATIONS = ("hypervolume", "chebyshev")
# candidates per batched qLogNEI evaluation, about (bounds one call's memory)
SCORE_BATCH = 512
# the posterior-mean search: raw candidates, SLSQP starts and iterations (once per
# recommend, not per trial: a thorough search; not benchmarked)
MEAN_RAW_SAMPLES = 512
MEAN_STARTS = 4
MEAN_MAXITER = 200
# raw candidates of a Thompson draw (one joint posterior sample over all of them: its cost
# grows as their cube; 512 as the qLogNEI search, not benchmarked alone)
THOMPSON_RAW_SAMPLES = 512


def constraints(space: EncodedSpace) -> dict[str, Any]:
    """The space's linear constraints as ``optimize_acqf``'s keyword arguments."""
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
    acqf: Any, space: EncodedSpace, starts: np.ndarray, *, maxiter: int,
    fixed: Mapping[int, float] | None = None,
) -> list[np.ndarray]:
    """SLSQP from each start on the constrained space, snapped onto exact simplex points.

    ``sum(w) = 1`` per mixture and [0, 1] bounds are BoTorch's linear constraints; one-hot
    categorical columns stay fixed at the start's values. A start whose optimisation fails
    gives nothing (the caller keeps its raw candidates). ``fixed`` columns are held at their
    values too (a scale-aware study's log size at the target).
    """
    bounds = torch.stack([torch.zeros(space.dim), torch.ones(space.dim)]).to(DTYPE)
    cat_cols = [c for b in space.categorical_blocks for c in b.columns]
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
                    fixed_features={**{c: float(start[c]) for c in cat_cols},
                                    **dict(fixed or {})} or None,
                    options={"maxiter": maxiter},
                    retry_on_optimization_warning=False,
                    **constraints(space),
                )
        except Exception:
            continue
        refined.append(hold(space.snap(cand.reshape(-1).numpy()), fixed))
    return refined


def propose(
    model: Model,
    space: EncodedSpace,
    X_train: np.ndarray,
    X_pending: np.ndarray | None,
    rng: np.random.Generator,
    *,
    n_raw: int = N_RAW_SAMPLES,
    n_restarts: int = N_RESTARTS,
    mc_samples: int = MC_SAMPLES,
    maxiter: int = REFINE_MAXITER,
    composite: Composite | None = None,
    fixed: Mapping[int, float] | None = None,
    hedge: tuple[Model, float] | None = None,
) -> np.ndarray:
    """The point x (d,) that maximises qLogNEI given the trials' X_train (n, d) and the
    running trials' X_pending (p, d); ``fixed``: columns held at given values in every
    candidate (a scale-aware study's log size at the target: the mixture is chosen for it).
    ``hedge``: another model of the same data and its weight w: the NEI of the mixture of
    the two posteriors, ``model``'s weighted 1 - w (:class:`HedgedAcquisition`)."""
    seed = int(rng.integers(2**31))
    acqf = _noisy_ei(model, X_train, X_pending, seed, mc_samples, composite)
    centres = _best_trials(model, X_train, composite)
    if hedge is not None:
        other, w_other = hedge
        acqf = HedgedAcquisition(
            [acqf, _noisy_ei(other, X_train, X_pending, seed, mc_samples, composite)],
            [1.0 - w_other, w_other])
        if w_other > 0.5:
            centres = _best_trials(other, X_train, composite)
    return search(acqf, space, centres, rng, n_raw=n_raw, n_restarts=n_restarts,
                  maxiter=maxiter, fixed=fixed)


def _noisy_ei(model: Model, X_train: np.ndarray, X_pending: np.ndarray | None, seed: int,
              mc_samples: int, composite: Composite | None) -> qLogNoisyExpectedImprovement:
    """qLogNEI of ``model``'s maximised objective given the trials and the running ones."""
    # a linear criterion (the mean) is scalarised in the posterior: exact, and one output
    # to sample instead of m; the others go through the MC objective
    transform = composite.posterior_transform() if composite else None
    return qLogNoisyExpectedImprovement(
        model=model,
        objective=composite.mc_objective() if composite and transform is None else None,
        posterior_transform=transform,
        X_baseline=torch.as_tensor(X_train, dtype=DTYPE),
        sampler=SobolQMCNormalSampler(sample_shape=torch.Size([mc_samples]), seed=seed),
        X_pending=_pending(X_pending),
        prune_baseline=True,
        cache_root=False,  # ConditionedGP conditions once per suggestion itself
    )


class HedgedAcquisition(AcquisitionFunction):
    """The log noisy expected improvement under a mixture of models' posteriors:
    ``log sum_j p_j NEI_j(x)``, exact for the mixture (an expectation is linear in the
    distribution), from each component's qLogNEI. Components of weight 0 are skipped."""

    def __init__(self, acqfs: Sequence[AcquisitionFunction], weights: Sequence[float]) -> None:
        kept = [(a, float(w)) for a, w in zip(acqfs, weights) if w > 0]
        super().__init__(model=kept[0][0].model)
        self.parts = torch.nn.ModuleList([a for a, _ in kept])
        self.register_buffer("log_weights", torch.log(torch.tensor([w for _, w in kept],
                                                                    dtype=DTYPE)))

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        logs = torch.stack([a(X) for a in self.parts], dim=-1)
        return torch.logsumexp(logs + self.log_weights, dim=-1)


def propose_pareto(
    model: Model,
    space: EncodedSpace,
    X_train: np.ndarray,
    X_pending: np.ndarray | None,
    rng: np.random.Generator,
    signs: np.ndarray,
    *,
    scalarisation: str = "hypervolume",
    n_raw: int = N_RAW_SAMPLES,
    n_restarts: int = N_RESTARTS,
    mc_samples: int = MC_SAMPLES,
    maxiter: int = REFINE_MAXITER,
) -> tuple[np.ndarray, np.ndarray]:
    """The point x (d,) that maximises the noisy expected improvement (qLogNEI) of one random
    scalarisation of the m outputs, each signed by ``signs`` (m,) to be maximised, and the
    scalarisation's weights (m,), one draw per proposal.

    ``scalarisation="hypervolume"``: Golovin & Zhang's (2020) hypervolume scalarisation,
    min_i (z_i / lambda_i)^m of the outputs z above a reference point, lambda uniform on the
    positive unit sphere; its mean over lambda is the hypervolume, so the draws spread over
    the whole front, to its ends. ``"chebyshev"``: ParEGO's (BoTorch's qLogNParEGO), whose
    draws gather at compromise mixtures (docs/benchmarks/pareto.md). In both the outputs are
    scaled by the range of the trials' posterior means.

    Why a scalarisation and not a hypervolume improvement: the box decomposition behind the
    hypervolume grows exponentially with the objectives (five objectives, 32 points: 1,600
    exact boxes), and the noisy variant makes one per posterior sample of the front; qLogEHVI
    on approximate boxes took 14 s per proposal at five objectives, 20 times a scalarisation's.
    """
    if scalarisation not in PARETO_SCALARISATIONS:
        raise ValueError(f"scalarisation must be one of {PARETO_SCALARISATIONS}, not "
                         f"{scalarisation!r}")
    seed = int(rng.integers(2**31))
    sampler = SobolQMCNormalSampler(sample_shape=torch.Size([mc_samples]), seed=seed)
    signs_t = torch.as_tensor(signs, dtype=DTYPE)
    X_base = torch.as_tensor(X_train, dtype=DTYPE)
    if scalarisation == "chebyshev":
        weights = rng.dirichlet(np.ones(len(signs)))
        acqf = qLogNParEGO(
            model=model, X_baseline=X_base, objective=WeightedMCMultiOutputObjective(signs_t),
            scalarization_weights=torch.as_tensor(weights, dtype=DTYPE), sampler=sampler,
            X_pending=_pending(X_pending), prune_baseline=True, cache_root=False,
        )
        scalarise = acqf.objective  # the Chebyshev scalarisation of the signed outputs
    else:
        weights = np.abs(rng.standard_normal(len(signs)))
        weights /= np.linalg.norm(weights)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mean = model.posterior(X_base).mean * signs_t
        scalarise = hypervolume_scalarisation(torch.as_tensor(weights, dtype=DTYPE), mean,
                                              signs_t)
        acqf = qLogNoisyExpectedImprovement(
            model=model, objective=scalarise, X_baseline=X_base, sampler=sampler,
            X_pending=_pending(X_pending), prune_baseline=True, cache_root=False,
        )
    # the local moves start around the trials best by this proposal's scalarisation
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = scalarise(model.posterior(X_base).mean[None])[0].numpy()
    centres = X_train[np.argsort(-value)[:N_CENTRES]]
    x = search(acqf, space, centres, rng, n_raw=n_raw, n_restarts=n_restarts, maxiter=maxiter)
    return x, weights


def hypervolume_scalarisation(weights: torch.Tensor, Y: torch.Tensor, signs: torch.Tensor
                              ) -> GenericMCObjective:
    """s(y) = min_i (max(0, z_i) / lambda_i)^m, z = (sign * y - r) / span: the outputs above
    the reference point r (the lowest of ``Y``, the trials' signed posterior means (n, m),
    less a tenth of their range ``span``), in units of that range; ``weights`` lambda (m,)
    on the positive unit sphere."""
    lo, hi = Y.min(dim=0).values, Y.max(dim=0).values
    span = (hi - lo).clamp_min(1e-9)
    ref = lo - 0.1 * span
    m = Y.shape[-1]

    def scalarise(samples: torch.Tensor, X: torch.Tensor | None = None) -> torch.Tensor:
        z = ((samples * signs - ref) / span).clamp_min(0.0)
        return (z / weights).amin(dim=-1) ** m

    return GenericMCObjective(scalarise)


def _pending(X_pending: np.ndarray | None) -> torch.Tensor | None:
    if X_pending is None or not len(X_pending):
        return None
    return torch.as_tensor(X_pending, dtype=DTYPE)


def search(
    acqf: Any,
    space: EncodedSpace,
    centres: np.ndarray,
    rng: np.random.Generator,
    *,
    n_raw: int,
    n_restarts: int,
    maxiter: int,
    fixed: Mapping[int, float] | None = None,
) -> np.ndarray:
    """The maximiser of ``acqf`` on the space: raw candidates (global and around
    ``centres``), the shrinking local rounds, then ``n_restarts`` SLSQP polishes; exact
    simplex points, ``fixed`` columns held."""

    def score(X: np.ndarray) -> np.ndarray:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            v = torch.cat(
                [acqf(torch.as_tensor(c, dtype=DTYPE)[:, None, :])
                 for c in np.array_split(X, max(1, len(X) // SCORE_BATCH))]
            ).numpy()
        return np.where(np.isfinite(v), v, -np.inf)

    raw = hold(candidate_points(space, n_raw, rng, centres), fixed)
    values = score(raw)
    # local rounds around the best candidates so far, shrinking (each one batched evaluation)
    n_local = max(ROUND_MOVES_MIN, n_raw // ROUND_MOVES_PER)
    for scales in LOCAL_ROUNDS:
        top = raw[np.argsort(-values)[:N_ROUND_CENTRES]]
        local = hold(candidate_points(space, 0, rng, top, scales=scales, n_local=n_local), fixed)
        raw, values = np.vstack([raw, local]), np.concatenate([values, score(local)])
    order = np.argsort(-values)
    starts = raw[order[:n_restarts]]
    best_x, best_v = raw[order[0]], float(values[order[0]])

    for x in refine(acqf, space, starts, maxiter=maxiter, fixed=fixed):
        x = hold(x, fixed)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            v = float(acqf(torch.as_tensor(x, dtype=DTYPE)[None, None, :]))
        if np.isfinite(v) and v > best_v:
            best_x, best_v = x, v
    return hold(space.snap(best_x), fixed)


def hold(X: np.ndarray, fixed: Mapping[int, float] | None) -> np.ndarray:
    """X (d,) or (r, d) with the ``fixed`` columns set to their values (a copy; X itself if
    none)."""
    if not fixed:
        return X
    X = np.array(X, dtype=float)
    for col, value in fixed.items():
        X[..., col] = value
    return X


def maximise_mean(
    model: Model,
    space: EncodedSpace,
    X_train: np.ndarray,
    rng: np.random.Generator,
    composite: Composite | None = None,
    fixed: Mapping[int, float] | None = None,
) -> np.ndarray:
    """The point x (d,) of the whole space with the highest posterior mean (multi-start,
    exact simplex points); ``fixed`` columns held, as :func:`propose` holds them."""
    if composite is None or composite.posterior_transform() is not None:
        acqf = PosteriorMean(
            model, posterior_transform=composite.posterior_transform() if composite else None
        )
    else:
        acqf = qSimpleRegret(
            model, sampler=moments_sampler(), objective=composite.mc_objective()
        )
    centres = _best_trials(model, X_train, composite)
    raw = hold(candidate_points(space, MEAN_RAW_SAMPLES, rng, centres), fixed)
    mean_raw, _ = posterior_mean_std(model, raw, composite)
    order = np.argsort(-mean_raw)
    best_x, best_v = raw[order[0]], float(mean_raw[order[0]])
    starts = raw[order[:MEAN_STARTS]]
    for x in refine(acqf, space, starts, maxiter=MEAN_MAXITER, fixed=fixed):
        x = hold(x, fixed)
        v = float(posterior_mean_std(model, x[None, :], composite)[0][0])
        if v > best_v:
            best_x, best_v = x, v
    return hold(space.snap(best_x), fixed)


def thompson(
    model: Model,
    space: EncodedSpace,
    X_train: np.ndarray,
    rng: np.random.Generator,
    composite: Composite | None = None,
    fixed: Mapping[int, float] | None = None,
) -> np.ndarray:
    """The point x (d,) that maximises one joint posterior sample of the maximised objective
    over raw candidates (global coverage and local moves around the best trials).

    Thompson sampling explores in proportion to the model's doubt: a far region the model is
    unsure of wins the draw about as often as it may be the best, which qLogNEI, sure of the
    incumbent's basin, lets pass; measured: docs/benchmarks/gp-variants.md, "A Thompson draw
    when stalled" (no gain beyond the spread, so off by default).
    """
    centres = _best_trials(model, X_train, composite)
    X = hold(candidate_points(space, THOMPSON_RAW_SAMPLES, rng, centres), fixed)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # linear_operator's jitter notices
        transform = composite.posterior_transform() if composite else None
        post = model.posterior(torch.as_tensor(X, dtype=DTYPE)[None],
                               posterior_transform=transform)
        sample = post.rsample(torch.Size([1]))[0, 0]  # (N, outputs): torch's seeded generator
        if composite is not None and transform is None:
            value = composite.mc_objective()(sample[None])[0]  # (N,)
        else:
            value = sample[:, 0]
    return hold(space.snap(X[int(torch.argmax(value))]), fixed)


def size_per_cost(
    model: ConditionedGP,
    x_target: np.ndarray,
    X_sizes: np.ndarray,
    costs: Sequence[float],
    composite: Composite | None = None,
) -> int:
    """The row of ``X_sizes`` (one mixture at each size a trial may train at, (s, d)) whose
    observation teaches most about ``x_target`` (the mixture at the target size) per unit of
    compute: the reduction of the objective's posterior variance at the target,
    ``Cov(f_T, f_s)^2 / (Var f_s + noise)``, over ``costs[s]``.

    One step of variance reduction, the cheapest honest value of information: a small size
    wins while it is nearly as informative (strongly correlated with the target) and cheaper.
    For max and median the mean of the losses stands in for the criterion (its posterior is
    Gaussian, a pair of points needs no sampling).
    """
    pairs = np.stack([np.repeat(x_target[None, :], len(X_sizes), axis=0), X_sizes], axis=1)
    if composite is None:
        transform, noise = None, float(model.noise_variance()[0])
    else:
        mean = Composite.mean(composite.sign, composite.n_outputs)
        transform = mean.posterior_transform()
        noise = float((model.noise_variance() / composite.n_outputs**2).sum())
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cov = model.posterior(torch.as_tensor(pairs, dtype=DTYPE),
                              posterior_transform=transform).distribution.covariance_matrix
    cov = cov.numpy().reshape(len(X_sizes), 2, 2)
    gain = cov[:, 0, 1] ** 2 / (cov[:, 1, 1] + noise) / np.asarray(costs, dtype=float)
    return int(np.argmax(gain))


def _best_trials(model: Model, X_train: np.ndarray, composite: Composite | None) -> np.ndarray:
    """The N_CENTRES rows of X_train with the highest posterior mean, best first."""
    mean, _ = posterior_mean_std(model, X_train, composite)
    return X_train[np.argsort(-mean)[:N_CENTRES]]
