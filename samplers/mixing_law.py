"""Mixing-law samplers: fit a law of per-domain loss vs. mixture, propose its minimiser.

The seed's BiMix and Data Mixing Laws baselines, and RegMix: Sobol-on-simplex start-up, then
at every trial the law is fitted to all completed trials' per-domain losses (the trial user attr
``losses``, domain -> loss, that optuna-mix objectives record) and the mixture that minimises
the criterion under the fitted law is proposed. What the law saw and why it proposed what it did
is kept on the trial as the user attr ``f"mixing_law.{mixture name}"`` (``mixing_law.mix`` in
studies built from a config): fitted parameters, R^2 per domain on the fitted trials, leave-one-out
errors, the predicted value, and whether the proposal is the minimiser or, because that mixture
had already been evaluated, the best not-yet-evaluated candidate. A law that cannot be fitted
falls back to Sobol for that trial and says why in the same attr; it never fails the study.

The losses need not be the training domains': any named validation sets the trials share (a
held-out web set, a downstream task; more or fewer than the domains) are the law's outputs for
``dml`` and ``regmix``, which model any output over the weights. ``bimix`` ties each loss to its
own domain's weight and needs one per domain. Where the trials hold nothing the law can use
(no losses, other validation sets for ``bimix``, a value that is no criterion of the losses),
the sampler proposes Sobol points and says why, once, as a :class:`SamplerFallbackWarning`
and in every trial's attr (status ``"unusable"``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import optuna
from optuna.samplers import BaseSampler
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

from optuna_mix.samplers.criteria import (
    CRITERIA,
    Criterion,
    detect_criterion,
    reproduces,
    study_criterion,
)
from optuna_mix.samplers._base import MixtureSampler, running_trials
from optuna_mix.samplers.attrs import LOSSES_ATTR
from optuna_mix.samplers._laws import LAWS, Law, LawFitError, make_law
from optuna_mix.samplers._losses import trial_losses
from optuna_mix.samplers._optimize import minimize_on_simplex
from optuna_mix.samplers._simplex import (
    PROPOSAL_PREFIX,
    Mixture,
    normalise_weights,
    project_to_simplex,
)
from optuna_mix.samplers._startup import (
    sequence_seed,
    sobol_simplex_points,
    stable_seed,
    startup_point,
)

ATTR_PREFIX = "mixing_law."
_logger = optuna.logging.get_logger(__name__)


class UnusableTrials(LawFitError):
    """The trials hold nothing this law can be fitted to, and more trials will not change it."""


def _tv_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Total variation distance (half the L1 distance) between mixtures, broadcasting."""
    return 0.5 * np.abs(np.asarray(a) - np.asarray(b)).sum(axis=-1)


def _round(x: Any) -> Any:
    if isinstance(x, dict):
        return {key: _round(v) for key, v in x.items()}
    if isinstance(x, float):
        return float(f"{x:.6g}") if np.isfinite(x) else None
    return x


class MixingLawSampler(MixtureSampler):
    """Fit a mixing law to the evaluated trials and propose the mixture it predicts is best.

    Args:
        law: ``"bimix"`` (L_i = B_i r_i^-b_i), ``"dml"`` (Data Mixing Laws,
            L_i = c_i + k_i exp(sum_j t_ij r_j)) or ``"regmix"`` (RegMix: a regression of the
            loss on the mixture, then the mean of the ``top_k`` best predicted of
            ``n_candidates`` random mixtures).
        n_startup_trials: trials with losses needed before the first fit; until
            then the sampler proposes a scrambled Sobol sequence on the simplex (point
            ``trial.number``, as :class:`SobolMixtureSampler` does).
        criterion: how the losses make the trial value (``"mean"``, ``"max"``,
            ``"median"``); ``None`` detects it from the completed trials.
        losses_attr: the trial user attr holding the losses (validation set -> loss: the
            domains, or any other sets, which bimix cannot use).
        min_distance: a proposal closer than this (total variation, i.e. half the L1 distance)
            to an evaluated or running trial's mixture counts as already evaluated; the best
            not-yet-evaluated candidate is proposed instead, so the budget is not wasted.
        n_candidates, top_k: RegMix's random candidates and how many of the best are averaged.
        seed: seed of the Sobol start-up, the candidates and the independent sampler.
        independent_sampler: sampler for parameters outside any mixture (default: Random).
    """

    def __init__(
        self,
        law: str = "bimix",
        *,
        n_startup_trials: int = 10,
        criterion: str | None = None,
        losses_attr: str = LOSSES_ATTR,
        min_distance: float = 0.02,
        n_candidates: int = 20000,
        top_k: int = 100,
        seed: int | None = None,
        independent_sampler: BaseSampler | None = None,
    ) -> None:
        if law not in LAWS:
            raise ValueError(f"unknown mixing law {law!r} (choose from {', '.join(LAWS)})")
        if isinstance(n_startup_trials, bool) or not isinstance(n_startup_trials, int):
            raise ValueError(f"n_startup_trials must be an integer, got {n_startup_trials!r}")
        if n_startup_trials < 0:
            raise ValueError(f"n_startup_trials must be >= 0, got {n_startup_trials}")
        if criterion is not None and criterion not in CRITERIA:
            raise ValueError(
                f"unknown criterion {criterion!r} (choose from {', '.join(CRITERIA)})"
            )
        if not 0.0 <= float(min_distance) < 1.0:
            raise ValueError(f"min_distance must be in [0, 1), got {min_distance}")
        if int(n_candidates) < 1 or not 1 <= int(top_k) <= int(n_candidates):
            raise ValueError("need n_candidates >= top_k >= 1")
        super().__init__(seed=seed, independent_sampler=independent_sampler)
        self.law = law
        self.n_startup_trials = n_startup_trials
        self.criterion = criterion
        self.losses_attr = losses_attr
        self.min_distance = float(min_distance)
        self.n_candidates = int(n_candidates)
        self.top_k = int(top_k)
        self._sequence_seed = sequence_seed(seed)

    # -- the proposal ----------------------------------------------------------------------
    def propose_mixture(self, study: Study, trial: FrozenTrial, mixture: Mixture) -> np.ndarray:
        started = time.perf_counter()
        attr_key = ATTR_PREFIX + mixture.name
        info: dict[str, Any] = {"law": self.law}
        try:
            if len(study.directions) != 1:  # before reading any trial's single value
                raise UnusableTrials("a multi-objective study has no single criterion to "
                                     "minimise")
            outputs = self._outputs(study, mixture)
            R, Y, values = self._training_data(study, mixture, outputs)
            n = info["n_trials_fitted"] = len(R)
            if outputs is not None and list(outputs) != list(mixture.domains):
                info["outputs"] = list(outputs)
            if n < max(self.n_startup_trials, 1):
                info.update(status="startup", reason=f"{n} of {self.n_startup_trials} start-up trials")
                w = self._sobol(trial, mixture)
            else:
                w = self._fit_and_propose(study, trial, mixture, R, Y, values, outputs, info)
                info["status"] = "fitted"
        except UnusableTrials as e:  # nothing to fit, now or later: say so once, loudly
            self.warn_once(f"{e}; proposing Sobol points instead")
            info = {"law": self.law, "n_trials_fitted": 0, "status": "unusable",
                    "reason": str(e), "proposal": "sobol"}
            w = self._sobol(trial, mixture)
        except Exception as e:  # a law that cannot be fitted never fails the study
            reason = str(e) if isinstance(e, LawFitError) else f"{type(e).__name__}: {e}"
            log = _logger.info if isinstance(e, LawFitError) else _logger.warning
            log(f"trial {trial.number}: {self.law} law not used ({reason}); Sobol instead")
            info = {"law": self.law, "n_trials_fitted": info.get("n_trials_fitted", 0),
                    "status": "fallback", "reason": reason, "proposal": "sobol"}
            w = self._sobol(trial, mixture)
        info["seconds"] = round(time.perf_counter() - started, 4)
        study._storage.set_trial_user_attr(trial._trial_id, attr_key, _round(info))
        return w

    def _sobol(self, trial: FrozenTrial, mixture: Mixture) -> np.ndarray:
        return startup_point(mixture, trial.number, self._sequence_seed)

    def _fit_and_propose(
        self,
        study: Study,
        trial: FrozenTrial,
        mixture: Mixture,
        R: np.ndarray,
        Y: np.ndarray,
        values: np.ndarray,
        outputs: list[str],
        info: dict[str, Any],
    ) -> np.ndarray:
        if n_missing := self._n_without_losses(study, mixture, outputs):
            info["trials_without_losses"] = n_missing
        crit = self._criterion(study, Y, values, outputs)
        criterion = crit.name
        sign = -1.0 if study.direction == StudyDirection.MAXIMIZE else 1.0
        law = make_law(self.law).fit(R, Y)
        domains = list(mixture.domains)

        def score(W: np.ndarray) -> np.ndarray:
            return sign * crit(law.predict(np.atleast_2d(W)))

        loo_value = crit(law.loo) if law.loo is not None else np.full(len(R), np.nan)
        ok = np.isfinite(loo_value)
        info.update(
            criterion=criterion,
            params=law.describe(domains, outputs),
            r2={d: float(v) for d, v in zip(outputs, law.r2)},
            loo_rmse={
                d: float(np.sqrt(np.nanmean((law.loo[:, i] - Y[:, i]) ** 2)))
                if np.any(np.isfinite(law.loo[:, i])) else None
                for i, d in enumerate(outputs)
            },
            loo_rmse_value=float(np.sqrt(np.mean((loo_value[ok] - values[ok]) ** 2)))
            if ok.any() else None,
            loo_method=law.loo_method,
        )
        if self.law == "regmix":
            proposal, candidates = self._regmix_proposal(trial, mixture, score)
        else:
            proposal, candidates = self._minimiser(mixture, R, values * sign, score, law)
        w, note = self._not_yet_evaluated(study, trial, mixture, proposal, candidates, score)
        info.update(
            proposal=note,
            predicted_value=float(sign * score(w)[0]),
            best_observed_value=float(np.min(values) if sign > 0 else np.max(values)),
        )
        return w

    def _minimiser(
        self,
        mixture: Mixture,
        R: np.ndarray,
        signed_values: np.ndarray,
        score: Callable[[np.ndarray], np.ndarray],
        law: Law,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Multi-start SLSQP of the law's criterion on the simplex (constraint held exactly)."""
        k = mixture.k
        pool = sobol_simplex_points(k, 1024, seed=stable_seed(self._sequence_seed, "pool"))
        pool_scores = score(pool)
        starts = [pool[i] for i in np.argsort(pool_scores)[:3]]
        starts += [R[i] for i in np.argsort(signed_values)[:1]]
        starts.append(np.full(k, 1.0 / k))
        optima = []
        for start in starts:
            w, value = minimize_on_simplex(lambda x: float(score(x)[0]), start[None, :])
            if np.isfinite(value):
                optima.append(w)
        if not optima:
            raise LawFitError("the fitted law has no finite minimum on the simplex")
        optima = np.vstack(optima)
        best = optima[np.argmin(score(optima))]
        # candidates near the minimiser at growing distances, then the rest of the simplex
        blends = np.vstack(
            [(1 - lam) * best + lam * pool[:256] for lam in (0.03, 0.06, 0.1, 0.2, 0.4)]
        )
        return best, np.vstack([optima, blends, pool])

    def _regmix_proposal(
        self, trial: FrozenTrial, mixture: Mixture, score: Callable[[np.ndarray], np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        """RegMix: the mean of the top-k predicted of many random (flat Dirichlet) mixtures."""
        rng = np.random.default_rng([stable_seed(self._sequence_seed, mixture.name), trial.number])
        candidates = rng.dirichlet(np.ones(mixture.k), size=self.n_candidates)
        scores = score(candidates)
        order = np.argsort(scores)
        proposal = project_to_simplex(candidates[order[: self.top_k]].mean(axis=0))
        return proposal, candidates[order[: 4 * self.top_k]]

    def _not_yet_evaluated(
        self,
        study: Study,
        trial: FrozenTrial,
        mixture: Mixture,
        proposal: np.ndarray,
        candidates: np.ndarray,
        score: Callable[[np.ndarray], np.ndarray],
    ) -> tuple[np.ndarray, str]:
        seen, numbers = self._evaluated_mixtures(study, trial, mixture)
        if len(seen) == 0 or self.min_distance <= 0:
            return project_to_simplex(proposal), "minimiser"
        distance = _tv_distance(proposal[None, :], seen)
        if distance.min() >= self.min_distance:
            return project_to_simplex(proposal), "minimiser"
        twin = numbers[int(np.argmin(distance))]
        candidates = np.vstack([project_to_simplex(c) for c in candidates])
        far = _tv_distance(candidates[:, None, :], seen[None, :, :]).min(axis=1) >= self.min_distance
        if not far.any():
            return project_to_simplex(proposal), f"minimiser (trial #{twin} is as close)"
        options = candidates[far]
        w = options[int(np.argmin(score(options)))]
        return w, f"best not-yet-evaluated candidate (the minimiser was evaluated in trial #{twin})"

    # -- data from the study ---------------------------------------------------------------
    def _weights_of(self, trial: FrozenTrial, mixture: Mixture) -> np.ndarray | None:
        stored = trial.user_attrs.get(mixture.name)
        if isinstance(stored, dict) and all(d in stored for d in mixture.domains):
            return np.array([float(stored[d]) for d in mixture.domains])
        if all(p in trial.params for p in mixture.param_names):
            return normalise_weights([trial.params[p] for p in mixture.param_names])
        proposal = trial.system_attrs.get(PROPOSAL_PREFIX + mixture.name)
        if proposal is not None:
            return np.asarray(proposal, dtype=float)
        return None

    def _outputs(self, study: Study, mixture: Mixture) -> list[str] | None:
        """The validation sets the law models: the losses' keys of the first completed trial
        of this mixture that has them (in its order; bimix: the domains, in theirs).

        None before any trial of the mixture completes; raises :class:`UnusableTrials` where
        completed trials have no losses at all, or bimix meets other validation sets.
        """
        done = [t for t in self.completed_trials(study)
                if t.value is not None and self._weights_of(t, mixture) is not None]
        if not done:
            return None
        first = next((t.user_attrs[self.losses_attr] for t in done
                      if isinstance(t.user_attrs.get(self.losses_attr), dict)
                      and t.user_attrs[self.losses_attr]), None)
        if first is None:
            raise UnusableTrials(
                f"{self.law} fits per-domain losses, but no completed trial has any in the user "
                f"attr {self.losses_attr!r} (a values-only study?)"
            )
        keys = [str(key) for key in first]
        if make_law(self.law).per_domain:
            if set(keys) != set(mixture.domains):
                raise UnusableTrials(
                    f"bimix ties each loss to its own domain's weight, but the trials' losses "
                    f"are for {', '.join(keys)} and the mixture's domains are "
                    f"{', '.join(mixture.domains)}; law='dml' or 'regmix' model any "
                    "validation set"
                )
            return list(mixture.domains)
        return keys

    def _losses_of(self, trial: FrozenTrial, outputs: list[str] | None) -> np.ndarray | None:
        return None if outputs is None else trial_losses(trial, self.losses_attr, outputs)

    def _training_data(
        self, study: Study, mixture: Mixture, outputs: list[str] | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows, losses, values = [], [], []
        for t in self.completed_trials(study):
            if t.value is None or not np.isfinite(t.value):
                continue
            w, y = self._weights_of(t, mixture), self._losses_of(t, outputs)
            if w is not None and y is not None:
                rows.append(w)
                losses.append(y)
                values.append(float(t.value))
        m = len(outputs) if outputs is not None else mixture.k
        return (
            np.array(rows).reshape(-1, mixture.k),
            np.array(losses).reshape(-1, m),
            np.array(values),
        )

    def _n_without_losses(self, study: Study, mixture: Mixture, outputs: list[str]) -> int:
        return sum(
            self._weights_of(t, mixture) is not None and self._losses_of(t, outputs) is None
            for t in self.completed_trials(study)
        )

    def _evaluated_mixtures(
        self, study: Study, trial: FrozenTrial, mixture: Mixture
    ) -> tuple[np.ndarray, list[int]]:
        """Mixtures of the complete, pruned and running trials (other than ``trial``)."""
        states = (TrialState.COMPLETE, TrialState.PRUNED)
        trials = study._get_trials(deepcopy=False, states=states, use_cache=True)
        trials = list(trials) + running_trials(study, exclude=trial)
        points, numbers = [], []
        for t in trials:
            if t.number == trial.number:
                continue
            w = self._weights_of(t, mixture)
            if w is not None:
                points.append(w)
                numbers.append(t.number)
        return np.array(points).reshape(-1, mixture.k), numbers

    def _criterion(self, study: Study, Y: np.ndarray, values: np.ndarray,
                   outputs: list[str]) -> Criterion:
        """The criterion of the values: the sampler's own, else the study's stored one, else
        the registered one that reproduces them."""
        if self.criterion is not None:
            return CRITERIA[self.criterion]
        if (spec := study_criterion(study)) is not None:
            try:
                crit = spec.bind(outputs)
            except ValueError as e:
                raise UnusableTrials(f"the study's {spec.name} criterion: {e}") from None
            if not reproduces(crit, Y, values):
                raise UnusableTrials(f"the trial values are not the study's {spec.name} "
                                     "criterion of the trials' losses")
            return crit
        if (name := detect_criterion(Y, values)) is not None:
            return CRITERIA[name]
        raise UnusableTrials(
            "the trial values are not the mean, max or median of the trials' losses; "
            "pass criterion= to the sampler, or store the study's with "
            "optuna_mix.set_criterion"
        )

    def reseed_rng(self) -> None:
        # the Sobol start-up design stays shared across workers (as in SobolMixtureSampler)
        self._independent_sampler.reseed_rng()
