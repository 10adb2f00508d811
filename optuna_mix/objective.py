"""The study objective: a mixture in, the criterion of its per-domain losses out.

The evaluator behind it is either an analytic surface (seconds) or the GPT proxy (minutes);
both return per-domain losses, which every trial keeps in its user attr ``losses``. A
``criterion = "pareto"`` study takes the losses themselves as its values, one per validation
set in the config's order (the study's metric names).
"""

from __future__ import annotations

import importlib
import math
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import optuna

from optuna_mix.config import StudyConfig
from optuna_mix.attrs import (
    FAIL_REASON_ATTR,
    LOSSES_ATTR,
    MIXTURE_ATTR,
    REGRET_ATTR,
    TRUE_LOSSES_ATTR,
    TRUE_VALUE_ATTR,
    WORKER_ATTR,
)
from optuna_mix.criteria import PARAMETRISED, Criterion, apply_criterion
from optuna_mix.excess import (
    REFERENCE_ATTR,
    ReferenceFailed,
    missing_reference,
    record_reference,
    wait_for_reference,
)
from optuna_mix.mixture import suggest_mixture
from optuna_mix.scale import TARGET_REGRET_ATTR
from optuna_mix.schema import OBJECTIVES
from optuna_mix.scaled_surfaces import ScaledSurface, make_scaled_surface
from optuna_mix.surfaces import Surface, make_surface

Evaluator = Callable[[optuna.Trial, dict[str, float]], dict[str, float]]


class NonFiniteLossError(ValueError):
    """A per-domain loss came out NaN or infinite: the trial fails, the study goes on."""


class SurfaceEvaluator:
    """Per-domain losses from an analytic surface, with reproducible per-trial noise.

    The surface is fixed by the objective's own seed; the noise by (that seed, the study's
    seed, the trial number), so studies of one surface with other seeds see other noise.

    Also records the noise-free value and its regret against the surface's true optimum, so
    that benchmarks can score samplers on truth rather than on noisy observations.
    """

    def __init__(self, config: StudyConfig, cache_dir: Path | None = None) -> None:
        options = config.objective_options
        self.criterion: str | Criterion = config.criterion
        self.study_seed = config.seed
        self.seconds = float(options["seconds"])
        seed = options["seed"] if options["seed"] is not None else config.seed
        self.scales = config.scales
        self.surface: Surface | ScaledSurface
        if self.scales is not None:  # family scaled: losses over mixture x model size
            self.surface = make_scaled_surface(config.domain_names, seed=seed,
                                               noise=options["noise"])
        else:
            self.surface = make_surface(
                options["family"], config.domain_names, seed=seed, noise=options["noise"],
                outputs=config.validation_sets,
            )
        spec = config.criterion_spec
        self.pareto = spec.multi_objective  # no criterion: the noise-free losses are the truth
        if spec.name in PARAMETRISED:  # the truth: the criterion bound as the trials' is
            if spec.name == "excess":  # (against the reference mixture's noise-free losses;
                # the config refuses excess with scales, so this is a one-size surface)
                ref = np.array([dict(spec.reference_mixture)[d] for d in self.surface.domains])
                clean = self.surface.losses(ref)  # type: ignore[call-arg]
                spec = spec.with_reference(dict(zip(self.surface.outputs, map(float, clean))))
            self.criterion = spec.bind(list(self.surface.outputs))

    def __call__(self, trial: optuna.Trial, weights: dict[str, float]) -> dict[str, float]:
        size = None if self.scales is None else self.scales.size_of(self.scales.suggest(trial))
        if self.seconds:
            time.sleep(self.seconds)  # a signal interrupts it, as it would interrupt training
        w = np.array([weights[d] for d in self.surface.domains])
        # the noise of a trial depends on the study's seed too: repeats over seeds differ
        rng = np.random.default_rng([self.surface.seed, self.study_seed, trial.number])
        if size is None:
            surface: Surface = self.surface  # type: ignore[assignment]
            losses = surface.noisy_losses(w, rng)
            if self.pareto:
                trial.set_user_attr(TRUE_LOSSES_ATTR, dict(zip(
                    surface.outputs, map(float, surface.losses(w)))))
                return {name: float(x) for name, x in zip(surface.outputs, losses)}
            true_value = float(surface.value(w, self.criterion))
            regret = true_value - surface.optimum(self.criterion)[1]
        else:
            scaled: ScaledSurface = self.surface  # type: ignore[assignment]
            losses = scaled.noisy_losses(w, size, rng)
            true_value = float(scaled.value(w, size, self.criterion))
            regret = true_value - scaled.optimum(size, self.criterion)[1]
            trial.set_user_attr(TARGET_REGRET_ATTR, scaled.regret(
                w, self.scales.target_size, self.criterion))  # type: ignore[union-attr]
        trial.set_user_attr(TRUE_VALUE_ATTR, true_value)
        trial.set_user_attr(REGRET_ATTR, regret)
        return {name: float(x) for name, x in zip(self.surface.outputs, losses)}


def build_evaluator(config: StudyConfig, cache_dir: Path) -> Evaluator:
    """The evaluator of the config's objective kind (:data:`optuna_mix.schema.OBJECTIVES`)."""
    evaluator = OBJECTIVES[config.objective].evaluator
    if isinstance(evaluator, str):
        module, _, name = evaluator.partition(":")
        evaluator = getattr(importlib.import_module(module), name)
    return evaluator(config, cache_dir)


class MixtureObjective:
    """``trial -> criterion(per-domain losses)`` for a study config."""

    def __init__(self, config: StudyConfig, *, cache_dir: Path | str = ".optuna-mix-cache") -> None:
        self.config = config
        self.evaluate = build_evaluator(config, Path(cache_dir))

    def __call__(self, trial: optuna.Trial) -> float | list[float]:
        # who runs it, written first: a stale trial's fail_reason names the silent worker
        device = self.config.objective_options.get("device")
        trial.set_user_attr(WORKER_ATTR, {"host": socket.gethostname(), "pid": os.getpid(),
                                          "device": device})
        weights = suggest_mixture(trial, self.config.domain_names, name=MIXTURE_ATTR)
        if self.config.criterion_spec.name == "excess" and not trial.user_attrs.get(
                REFERENCE_ATTR) and (problem := missing_reference(trial.study)):
            trial.set_user_attr(FAIL_REASON_ATTR, problem)  # before any compute is spent
            raise ReferenceFailed(problem)
        try:
            losses = self.evaluate(trial, weights)
        except KeyboardInterrupt as e:  # Ctrl-C or a scheduler's SIGTERM: say so, then stop
            reason = f"interrupted by {str(e) or 'Ctrl-C'} while training"
            trial.set_user_attr(FAIL_REASON_ATTR, reason)
            raise
        except optuna.TrialPruned:
            raise
        except Exception as e:  # kept on the trial (Optuna only logs it): report, dashboard
            if FAIL_REASON_ATTR not in trial.user_attrs:
                trial.set_user_attr(FAIL_REASON_ATTR, f"{type(e).__name__}: {e}")
            raise
        bad = {d: v for d, v in losses.items() if not math.isfinite(v)}
        if bad:
            reason = f"non-finite validation loss for {', '.join(f'{d}={v}' for d, v in bad.items())}"
            trial.set_user_attr(FAIL_REASON_ATTR, reason)
            raise NonFiniteLossError(reason)
        trial.set_user_attr(LOSSES_ATTR, losses)
        if self.config.criterion_spec.multi_objective:  # one value per validation set
            return [losses[name] for name in self.config.validation_sets]
        return apply_criterion(self._criterion(trial, losses).bind(list(losses)), losses)

    def _criterion(self, trial: optuna.Trial, losses: dict[str, float]):
        """The config's criterion; the excess one with its reference's losses (this trial's
        own where it is the reference, else waiting for them: optuna_mix.excess)."""
        spec = self.config.criterion_spec
        if spec.name != "excess":
            return spec
        if trial.user_attrs.get(REFERENCE_ATTR):
            return record_reference(trial.study, losses)
        try:
            return wait_for_reference(trial.study)
        except RuntimeError as e:
            trial.set_user_attr(FAIL_REASON_ATTR, str(e))
            raise
