"""The law prior: a fitted Data Mixing Law as each GP's prior mean, and when it hands over.

For a composite model of one mixture whose outputs are losses on m validation sets (its
domains, m = k, or any others: a held-out set, a downstream task), from k +
``LAW_EXTRA_TRIALS`` trials on, a Data Mixing Law (Ye et al. 2024),
``L_i = c_i + k_i exp(sum_j t_ij w_j)``, is least-squares fitted to each output's losses
(:func:`fit_law`, the fit of the ``dml`` baseline) and is each output's prior mean
(:class:`LawMean`): the law carries the global shape, the GP what it misses.

The law is not trusted on its say-so. It is fitted with its leave-one-out error on the
trial values (``loo_rmse``; first order, from the Jacobian's hat matrix: cheap and
reproducible, where timed exact refits were neither), :func:`loo_residuals` gives the
constant-mean GP's in closed form, and the sampler uses the law-prior model only where the
law alone predicts left-out trials better than the constant-mean GP does (evidence, judged
on every fit: the law's error from its last refit, the GP's on the current trials; a law
that stops fitting loses the lead at its next refit, every trial up to 32). Against the
GP's own residual-GP errors instead, the law always won: it is fitted to the very trials
left out, and its residual GP's output scale collapses. The same error is the least output
scale of that residual GP (:meth:`LawPrior.residual_floor`), so its std stays calibrated.

The hand-over rule: where the law-prior model's proposal only repeats an evaluated trial
(:func:`repeats_a_trial`), the constant-mean GP of the same data chooses instead
(:func:`hands_over`). Each model's first fit starts from the other's lengthscales and noise
where that one has been fitted (:func:`without_output_scale`, :func:`with_output_scale`):
the constant-mean GP, the law's judge, is fitted first. Why, and the benchmark: docs/benchmarks/gp-variants.md, "When the law-prior
model only repeats a trial".
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from gpytorch.means import Mean

from optuna_mix.samplers._laws import EXP_CLIP, DataMixingLaw, LawFitError
from optuna_mix.samplers.gp.space import EncodedSpace

# the law has k + 1 parameters a domain: fitted from k + 4 trials on (starting at k + 2 or
# k + 6 gave higher regret at 12-16 trials; docs/benchmarks/gp-variants.md)
LAW_EXTRA_TRIALS = 4
# a proposal this close (every column) to an evaluated point repeats it; the hand-over was
# benchmarked at this tolerance (lower regret at 32 and 64 trials; docs/benchmarks/gp-variants.md)
REPEAT_TOL = 0.01
# Bayesian-bootstrap draws of the hedge's weight (stacking_weight): its Monte-Carlo error at
# 0.5 is about 0.01
HEDGE_DRAWS = 1000


@dataclass(frozen=True)
class LawPrior:
    """A fitted Data Mixing Law, L_i = c_i + k_i exp(t_i . w), as the GPs' prior mean.

    ``columns`` are the input columns of the mixture's k weights, in the law's domain order;
    output i of the model is validation set i's loss. ``free_columns``: inputs of their own
    after the weights (a scale-aware study's log-size column u): the law is then
    ``L_i = c_i + k_i exp(t_i . w + s_i u)``, ``s_i`` the last entries of ``t_i``.
    """

    c: np.ndarray  # (m,)
    k: np.ndarray  # (m,)
    t: np.ndarray  # (m, k + len(free_columns))
    columns: tuple[int, ...]
    loo_rmse: float = float("inf")  # of the mean of its outputs, left-out trials refitted
    output_loo_rmse: np.ndarray | None = None  # (m,): of each output
    free_columns: tuple[int, ...] = ()
    loo: np.ndarray | None = field(default=None, repr=False)  # (n, m): left-out predictions
    # the (X, Y) it was fitted to, whose rows ``loo`` follows (between refits the model has
    # more trials than the law was fitted on)
    data: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    def residual_floor(self) -> np.ndarray:
        """The least prior std (m,) of the GP of what the law leaves: its left-out error."""
        return np.zeros(len(self.c)) if self.output_loo_rmse is None else self.output_loo_rmse

    def losses(self, W: torch.Tensor) -> torch.Tensor:
        """Losses (..., m) of raw weights W (..., k), the free columns' values after them."""
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
        self.register_buffer("free", torch.tensor(law.free_columns, dtype=torch.long))
        self.register_buffer("means", means.reshape(-1))
        self.register_buffer("stdvs", stdvs.reshape(-1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # a batched multi-output GP sees the same points in every output's batch (or a
        # broadcast batch of one): the law is evaluated once, domain b going to output b
        if x.dim() >= 3:
            x = x[..., 0, :, :]
        u = x[..., self.columns]
        w = u if not self.warp else self.warp * torch.expm1(u * np.log1p(1.0 / self.warp))
        if len(self.free):  # not warped: the warp is the weights'
            w = torch.cat([w, x[..., self.free]], dim=-1)
        L = (self.law.losses(w) - self.means) / self.stdvs  # (..., n, m)
        return L.transpose(-1, -2)  # (..., m, n)


def law_possible(space: EncodedSpace, n: int) -> bool:
    """Whether :func:`fit_law` may give a law for ``n`` trials on ``space``."""
    blocks = space.mixture_blocks
    return (len(blocks) == 1 and space.coordinates == "weights"
            and n >= blocks[0].width + len(space.scale_blocks) + LAW_EXTRA_TRIALS)


def fit_law(space: EncodedSpace, X: np.ndarray, Y: np.ndarray) -> LawPrior | None:
    """A Data Mixing Law fitted to the per-domain losses, as the GPs' prior mean.

    Only for a composite model (``Y`` (n, m), any m validation sets) of one mixture (in raw
    weight coordinates), with enough trials for the law (k + ``LAW_EXTRA_TRIALS``);
    None otherwise or if the fit fails: the GPs then have a constant prior mean. (Its
    predictions far from the trials are not checked: true losses at the simplex's vertices
    do lie far outside the observed range, and a guard on them rejected most good fits.)
    """
    if Y.ndim != 2 or not law_possible(space, len(Y)):
        return None
    columns = tuple(space.mixture_blocks[0].columns)
    free = tuple(b.start for b in space.scale_blocks)  # log size: the nested law's input
    # first-order LOO: cheap and reproducible
    law = DataMixingLaw(loo_time_budget=0.0, free_columns=len(free))
    try:
        law.fit(X[:, list(columns + free)], Y, loo=True)
    except LawFitError:
        return None
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # rows or outputs with no defined error
        errors = np.nanmean(law.loo - Y, axis=1)  # of the outputs' mean, the criterion's shape
        per_output = np.sqrt(np.nanmean((law.loo - Y) ** 2, axis=0))
    errors = errors[np.isfinite(errors)]
    loo_rmse = float(np.sqrt(np.mean(errors**2))) if len(errors) else float("inf")
    return LawPrior(c=law.c, k=law.kk, t=law.t, columns=columns, loo_rmse=loo_rmse,
                    output_loo_rmse=np.nan_to_num(per_output, nan=0.0), free_columns=free,
                    loo=law.loo, data=(np.array(X), np.array(Y)))


def size_law_evidenced(law: LawPrior, size_column: int) -> bool:
    """Whether the nested law's size effect, which differs by mixture, predicts the trials
    above the smallest trained size better than one shift of the same law for all mixtures,
    on the trials it was fitted to (``law.data``, the rows of its left-out predictions).

    Only that mixture-dependent part moves the best mixture with size, and only the law
    extrapolates it to a size no trial has; where it does not predict the larger trials
    already trained (left-out, the errors of the outputs' mean) better than the law at the
    smallest size shifted by the other larger trials' mean difference, its move is not
    evidenced. Needs two larger trials at one size or more: False before.
    """
    if law.loo is None or law.data is None or size_column not in law.free_columns:
        return False
    X, Y = law.data
    u = X[:, size_column]
    upper = np.flatnonzero(u > u.min() + 1e-12)
    W = X[:, list(law.columns)]
    R_small = np.column_stack([W, np.full((len(X), len(law.free_columns)), u.min())])
    base = law.c + law.k * np.exp(np.clip(R_small @ law.t.T, -EXP_CLIP, EXP_CLIP))  # (n, m)
    law_errors, shift_errors = [], []
    for j in upper:
        others = upper[(upper != j) & np.isclose(u[upper], u[j])]
        if not len(others) or not np.all(np.isfinite(law.loo[j])):
            continue
        shift = (Y[others] - base[others]).mean(axis=0)
        law_errors.append(float(np.mean(law.loo[j] - Y[j])))
        shift_errors.append(float(np.mean(base[j] + shift - Y[j])))
    if len(law_errors) < 2:
        return False
    return float(np.mean(np.square(law_errors))) < float(np.mean(np.square(shift_errors)))


def matched_law_errors(law: LawPrior, X: np.ndarray, judge_errors: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray]:
    """The law's left-out errors of the outputs' mean and the judge's (``judge_errors`` (n,),
    rows of X (n, d)) on the trials both have: the law's rows (it may be from a refit on fewer
    trials) found in X, where its error is defined. Two (r,) arrays, r possibly 0."""
    if law.loo is None or law.data is None:
        return np.zeros(0), np.zeros(0)
    X_law, Y_law = law.data
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        law_errors = np.nanmean(law.loo - Y_law, axis=1)
    where = {row.tobytes(): i for i, row in enumerate(np.asarray(X, dtype=float))}
    pairs = [(e, judge_errors[where[row.tobytes()]])
             for row, e in zip(np.asarray(X_law, dtype=float), law_errors)
             if np.isfinite(e) and row.tobytes() in where]
    if not pairs:
        return np.zeros(0), np.zeros(0)
    a, b = np.array(pairs).T
    return a, b


def stacking_weight(errors_a: np.ndarray, errors_b: np.ndarray, rng: np.random.Generator,
                    draws: int = HEDGE_DRAWS) -> float:
    """Model a's pseudo-BMA+ weight against model b (Yao et al. 2018) from their left-out
    errors on the same trials (r,): each model's left-out predictive a Gaussian of its own
    mean squared error, the pointwise log densities summed under Bayesian-bootstrap weights
    of the trials, the two models' softmax averaged over the draws. Close to 0.5 while the
    difference is within what r noisy trials can tell apart, near 0 or 1 once it is not.
    0.5 where r < 2 (nothing to judge on)."""
    a, b = np.asarray(errors_a, float), np.asarray(errors_b, float)
    r = len(a)
    if r < 2:
        return 0.5
    tiny = 1e-12
    s_a, s_b = max(float(np.mean(a**2)), tiny), max(float(np.mean(b**2)), tiny)
    elpd_a = -0.5 * np.log(2 * np.pi * s_a) - a**2 / (2 * s_a)
    elpd_b = -0.5 * np.log(2 * np.pi * s_b) - b**2 / (2 * s_b)
    alpha = rng.dirichlet(np.ones(r), size=draws)  # (draws, r)
    z = r * alpha @ (elpd_a - elpd_b)  # log(p_a / p_b) per draw
    return float(np.mean(1.0 / (1.0 + np.exp(-np.clip(z, -700, 700)))))


def repeats_a_trial(x: np.ndarray, X: np.ndarray) -> bool:
    """Whether x (d,) is within REPEAT_TOL of an evaluated point (a row of X) in every column."""
    return bool(len(X)) and float(np.min(np.max(np.abs(X - x), axis=1))) < REPEAT_TOL


def hands_over(model: Any, x: np.ndarray, X: np.ndarray) -> bool:
    """Whether the constant-mean GP chooses instead of ``model``: a law-prior model (a
    fitted ``SingleTaskGP``) whose proposal ``x`` repeats a trial of ``X``."""
    return isinstance(model.mean_module, LawMean) and repeats_a_trial(x, X)


_PLAIN, _SCALED = "covar_module.", "covar_module.base_kernel."


def without_output_scale(hyper: dict) -> dict:
    """A law model's hyperparameters named as the constant-mean model's (no ScaleKernel)."""
    return {(_PLAIN + n[len(_SCALED):] if n.startswith(_SCALED) else n): v
            for n, v in hyper.items()}


def with_output_scale(hyper: dict) -> dict:
    """A constant-mean model's hyperparameters named as a law model's (inside its ScaleKernel)."""
    return {(_SCALED + n[len(_PLAIN):] if n.startswith(_PLAIN) and not n.startswith(_SCALED)
             else n): v for n, v in hyper.items()}


def loo_residuals(model: Any) -> np.ndarray:
    """Leave-one-out errors (n,) of a fitted GP's posterior mean, in the outputs' own units.

    Closed form at the fitted hyperparameters (Rasmussen & Williams 2006, eq. 5.12):
    ``r_i = [K^-1 (y - m)]_i / [K^-1]_ii`` with K the noisy training covariance and m the
    prior mean; several outputs (a batch) are averaged into the error of their mean, the
    criterion's shape. The law inside m is not refitted without the point: it favours the
    law a little, which the comparison with the constant mean then has to overcome.
    """
    with torch.no_grad():
        model.train()
        try:
            prior = model.likelihood(model(*model.train_inputs))
        finally:
            model.eval()
        K = prior.covariance_matrix
        y = model.train_targets
        L = torch.linalg.cholesky(K + 1e-9 * torch.eye(K.shape[-1], dtype=K.dtype))
        Kinv = torch.cholesky_inverse(L)
        a = (Kinv @ (y - prior.mean).unsqueeze(-1)).squeeze(-1)
        r = a / torch.diagonal(Kinv, dim1=-2, dim2=-1)  # standardised units, (n,) or (m, n)
        stdvs = model.outcome_transform.stdvs.reshape(-1)  # Standardize's, one per output
        r = r * (stdvs[:, None] if r.dim() == 2 else stdvs[0])
        return (r.mean(dim=0) if r.dim() == 2 else r).numpy()
