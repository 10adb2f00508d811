"""The comparison's statistics: best values per approach and seed, noise, trials to best.

Every approach at one seed shares that seed's initialisation and batch order (the proxy) or
noise draws (a surface), so approaches are compared paired by seed: the difference to Sobol
at each seed, its mean, standard error and t interval over the seeds
(:func:`paired_difference`). The noise of re-evaluating one mixture within a study is
measured apart from the spread between seeds, which pairing removes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats as scipy_stats

from optuna_mix.attrs import LOSSES_ATTR, MIXTURE_ATTR, REGRET_ATTR
from optuna_mix.compare.plan import budget_of, is_fixed, study_name
from optuna_mix.config import StudyConfig

NOISE_FACTOR = 2.0  # "trials to best": within 2 sigma of re-evaluating one mixture
LEVEL = 0.95  # of the paired t interval ("beyond noise": it excludes 0)
MAX_SEEDS = 10_000  # "seeds for it" beyond this: said as more


@dataclass(frozen=True)
class Paired:
    """Differences paired by seed: mean, standard error, t interval, seeds a difference of
    this size needs for its interval to exclude 0 (None: no difference, or too many)."""

    n: int
    mean: float
    se: float
    low: float
    high: float
    seeds_needed: int | None

    @property
    def beyond_noise(self) -> bool:
        return self.low > 0 or self.high < 0


def paired_difference(d: Sequence[float], level: float = LEVEL) -> Paired | None:
    """The paired statistics of per-seed differences ``d``; None with fewer than 2 seeds."""
    d = np.asarray(d, dtype=float)
    n = len(d)
    if n < 2:
        return None
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    se = sd / math.sqrt(n)
    t = float(scipy_stats.t.ppf(0.5 + level / 2, n - 1))
    needed = None
    if mean != 0:
        needed = next((m for m in range(2, MAX_SEEDS + 1)
                       if float(scipy_stats.t.ppf(0.5 + level / 2, m - 1)) * sd / math.sqrt(m)
                       < abs(mean)), None)
    return Paired(n, mean, se, mean - t * se, mean + t * se, needed)


@dataclass
class ApproachResult:
    approach: str
    seeds: list[int]
    curves: list[np.ndarray]  # best-so-far after each complete trial, one per seed
    best_values: np.ndarray  # per seed
    regrets: np.ndarray | None  # true regret of each seed's best trial (surfaces)
    best_mixture: dict[str, float]
    n_trials: list[int]
    fixed_values: list[float] = field(default_factory=list)
    best_by_seed: dict[int, float] = field(default_factory=dict)
    # the per-domain losses of each seed's best trial, of a fixed mixture the mean of its
    # repeats (for the criteria table; {} without)
    best_losses_by_seed: dict[int, dict[str, float]] = field(default_factory=dict)

    @property
    def mean(self) -> float:
        return float(np.mean(self.best_values))

    @property
    def seeds_done(self) -> list[int]:
        """The seeds with a complete trial, in the order of ``curves``."""
        return list(self.best_by_seed) if self.best_by_seed else list(self.seeds)

    @property
    def std(self) -> float:
        return float(np.std(self.best_values, ddof=1)) if len(self.best_values) > 1 else 0.0


@dataclass
class CompareResult:
    config: StudyConfig
    approaches: list[ApproachResult]
    noise: float | None
    noise_how: str
    n_trials: int
    seeds: list[int]
    fixed_trials: int | None = None
    # std of re-evaluating one fixed mixture within a study (None: not measured); `noise`
    # adds the spread of its study means between seeds
    reeval_noise: float | None = None

    def get(self, approach: str) -> ApproachResult | None:
        return next((a for a in self.approaches if a.approach == approach), None)

    @property
    def overall_best(self) -> float:
        return min(a.mean for a in self.approaches)

    def delta_to_sobol(self, a: ApproachResult) -> float | None:
        sobol = self.get("sobol")
        return None if sobol is None else a.mean - sobol.mean

    def paired_to_sobol(self, a: ApproachResult) -> Paired | None:
        """``a``'s best minus Sobol's, paired by seed (the seeds both finished)."""
        sobol = self.get("sobol")
        if sobol is None or a is sobol:
            return None
        seeds = [s for s in a.best_by_seed if s in sobol.best_by_seed]
        return paired_difference([a.best_by_seed[s] - sobol.best_by_seed[s] for s in seeds])

    def beyond_noise(self, a: ApproachResult) -> bool | None:
        """Whether ``a`` differs from Sobol: the paired interval excludes 0 (two seeds or
        more); with one seed, the difference exceeds 2 sigma of one evaluation."""
        if (paired := self.paired_to_sobol(a)) is not None:
            return paired.beyond_noise
        delta = self.delta_to_sobol(a)
        if delta is None or self.noise is None:
            return None
        return abs(delta) > NOISE_FACTOR * self.noise

    def trials_to_best(self, a: ApproachResult) -> tuple[float | None, int]:
        """Mean trials to come within 2 sigma of re-evaluating one mixture of the best value
        any approach reached at the same seed, and how many seeds did (paired: the spread
        between seeds does not widen the target)."""
        sigma = self.reeval_noise if self.reeval_noise is not None else self.noise
        if sigma is None:
            return None, 0
        hits = []
        for seed, curve in zip(a.seeds_done, a.curves):
            bests = [b.best_by_seed[seed] for b in self.approaches if seed in b.best_by_seed]
            target = min(bests) + NOISE_FACTOR * sigma
            if len(curve) and curve.min() <= target:
                hits.append(int(np.argmax(curve <= target)) + 1)
        return (float(np.mean(hits)) if hits else None), len(hits)


def collect(
    config: StudyConfig,
    storage,
    approaches: Sequence[str],
    seeds: Sequence[int],
    n_trials: int,
    fixed_trials: int | None = None,
) -> CompareResult:
    """Read the comparison's studies back from the storage."""
    import optuna
    from optuna.trial import TrialState


    results = []
    variances: list[float] = []  # per fixed-mixture approach: the variance of one evaluation
    within: list[float] = []  # ... and of re-evaluating it within one study
    n_evaluations = 0
    for approach in approaches:
        curves, bests, regrets, counts, fixed_values = [], [], [], [], []
        by_seed: dict[int, float] = {}
        losses_by_seed: dict[int, dict[str, float]] = {}
        per_seed: list[np.ndarray] = []
        best_trial = None
        for seed in seeds:
            study = optuna.load_study(study_name=study_name(config, approach, seed), storage=storage)
            trials = [
                t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if t.value is not None and math.isfinite(t.value)
            ]
            trials.sort(key=lambda t: t.number)
            trials = trials[: budget_of(approach, n_trials, fixed_trials)]
            counts.append(len(trials))
            if not trials:
                continue
            values = np.array([t.value for t in trials])
            curves.append(np.minimum.accumulate(values))
            best = trials[int(np.argmin(values))]
            bests.append(best.value)
            by_seed[seed] = float(best.value)
            # a fixed mixture's losses: the mean of its repeats, not the luckiest one
            kept = [t.user_attrs[LOSSES_ATTR] for t in (trials if is_fixed(approach) else [best])
                    if isinstance(t.user_attrs.get(LOSSES_ATTR), dict)]
            if kept:
                losses_by_seed[seed] = {k: float(np.mean([x[k] for x in kept])) for k in kept[0]}
            if REGRET_ATTR in best.user_attrs:
                regrets.append(float(best.user_attrs[REGRET_ATTR]))
            if best_trial is None or best.value < best_trial.value:
                best_trial = best
            if is_fixed(approach):
                fixed_values.extend(values.tolist())
                per_seed.append(values)
        if not bests:
            raise LookupError(f"approach {approach!r} has no complete trial in any seed")
        variance = evaluation_variance(per_seed) if is_fixed(approach) else None
        if variance is not None:
            variances.append(variance)
            n_evaluations += len(fixed_values)
            if (w := within_study_variance(per_seed)) is not None:
                within.append(w)
        mixture = best_trial.user_attrs.get(MIXTURE_ATTR, {})
        results.append(
            ApproachResult(
                approach=approach,
                seeds=list(seeds),
                curves=curves,
                best_values=np.array(bests),
                regrets=np.array(regrets) if len(regrets) == len(bests) else None,
                best_mixture={d: float(mixture.get(d, float("nan"))) for d in config.domain_names},
                n_trials=counts,
                fixed_values=fixed_values,
                best_by_seed=by_seed,
                best_losses_by_seed=losses_by_seed,
            )
        )
    fixed_run = [a for a in approaches if is_fixed(a)]
    if variances:
        noise = math.sqrt(float(np.mean(variances)))
        how = (
            f"std of one evaluation of a fixed mixture, from {n_evaluations} repeated "
            f"evaluations ({', '.join(fixed_run)}; within-study and between-seed variance, "
            "averaged over those approaches)"
        )
        if noise == 0.0:
            how += (
                "; every repeated evaluation gave the same value: for an objective that is "
                "deterministic given its seed, run --seeds 2 or more"
            )
    else:
        noise, how = None, "not measured (run a fixed-mixture approach: uniform, llama or dolma)"
    reeval = math.sqrt(float(np.mean(within))) if within else None
    return CompareResult(config, results, noise, how, n_trials, list(seeds), fixed_trials,
                         reeval_noise=reeval)


def evaluation_variance(per_seed: Sequence[np.ndarray]) -> float | None:
    """Variance of one evaluation of a fixed mixture, from its values in each seed's study.

    Within-study variance (a noisy objective: each trial draws new noise) plus the variance of
    the study means over seeds (an objective that is deterministic given the study's seed, like
    the GPT proxy, varies only between seeds). None with fewer than two evaluations.
    """
    per_seed = [np.asarray(v, float) for v in per_seed if len(v)]
    if sum(len(v) for v in per_seed) < 2:
        return None
    within = [float(np.var(v, ddof=1)) for v in per_seed if len(v) > 1]
    means = [float(np.mean(v)) for v in per_seed]
    between = float(np.var(means, ddof=1)) if len(means) > 1 else 0.0
    return (float(np.mean(within)) if within else 0.0) + between


def within_study_variance(per_seed: Sequence[np.ndarray]) -> float | None:
    """Variance of re-evaluating one fixed mixture within a study (its repeats at one seed),
    pooled over the seeds; None where no study repeated it."""
    within = [float(np.var(np.asarray(v, float), ddof=1)) for v in per_seed if len(v) > 1]
    return float(np.mean(within)) if within else None


@dataclass(frozen=True)
class CriterionRow:
    """One approach under one criterion: its best trials' losses, seen every way."""

    criterion: str
    approach: str
    value: float  # the criterion's own best value, mean over seeds
    mean_loss: float  # the mean of the best trial's per-domain losses, mean over seeds
    worst_loss: float  # the largest of them, mean over seeds
    improved: float | None  # domains where it beats uniform at the same seed, mean over seeds
    n_domains: int


def criterion_rows(criterion: str, result: CompareResult) -> list[CriterionRow]:
    """The criteria table's rows of one criterion's comparison (best value first)."""
    uniform = result.get("uniform")
    rows = []
    for a in sorted(result.approaches, key=lambda a: a.mean):
        per_seed = a.best_losses_by_seed
        if not per_seed:
            continue
        losses = [np.array(list(v.values())) for v in per_seed.values()]
        improved = None
        if uniform is not None and uniform.best_losses_by_seed and a is not uniform:
            counts = [sum(v[k] < uniform.best_losses_by_seed[s][k] for k in v)
                      for s, v in per_seed.items() if s in uniform.best_losses_by_seed]
            improved = float(np.mean(counts)) if counts else None
        rows.append(CriterionRow(criterion, a.approach, a.mean,
                                 float(np.mean([x.mean() for x in losses])),
                                 float(np.mean([x.max() for x in losses])),
                                 improved, len(losses[0])))
    return rows
