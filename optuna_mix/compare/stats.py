"""The comparison's statistics: best values per approach and seed, noise, trials to best."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from optuna_mix.attrs import MIXTURE_ATTR, REGRET_ATTR
from optuna_mix.compare.plan import budget_of, is_fixed, study_name
from optuna_mix.config import StudyConfig

NOISE_FACTOR = 2.0  # "beyond the noise" = more than 2 sigma


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

    @property
    def mean(self) -> float:
        return float(np.mean(self.best_values))

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

    def get(self, approach: str) -> ApproachResult | None:
        return next((a for a in self.approaches if a.approach == approach), None)

    @property
    def overall_best(self) -> float:
        return min(a.mean for a in self.approaches)

    def delta_to_sobol(self, a: ApproachResult) -> float | None:
        sobol = self.get("sobol")
        return None if sobol is None else a.mean - sobol.mean

    def beyond_noise(self, a: ApproachResult) -> bool | None:
        delta = self.delta_to_sobol(a)
        if delta is None or self.noise is None:
            return None
        return abs(delta) > NOISE_FACTOR * self.noise

    def trials_to_best(self, a: ApproachResult) -> tuple[float | None, int]:
        """Mean trials to come within 2 sigma of the overall best, and how many seeds did."""
        if self.noise is None:
            return None, 0
        target = self.overall_best + NOISE_FACTOR * self.noise
        hits = [int(np.argmax(c <= target)) + 1 for c in a.curves if len(c) and c.min() <= target]
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
    n_evaluations = 0
    for approach in approaches:
        curves, bests, regrets, counts, fixed_values = [], [], [], [], []
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
    return CompareResult(config, results, noise, how, n_trials, list(seeds), fixed_trials)


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
