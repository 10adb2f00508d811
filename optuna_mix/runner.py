"""Create, load and run mixture studies: the config lives in the study, so any worker can join."""

from __future__ import annotations

import logging
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.trial import TrialState
from tqdm.auto import tqdm

from optuna_mix.budget import FINISHED, SharedBudget
from optuna_mix.config import StudyConfig, parse_config
from optuna_mix.attrs import CONFIG_ATTR, FAIL_REASON_ATTR, MIXTURE_ATTR
from optuna_mix.objective import MixtureObjective
from optuna_mix.signals import Interrupted, interruptible, stop_on_signals
from optuna_mix.catalogue import get_approach
from optuna_mix.excess import RetryReference, SpareReference, ensure_reference
from optuna_mix.samplers import declare_mixture

_log = logging.getLogger("optuna_mix")


class StudyNotFound(LookupError):
    pass


@dataclass
class MixStudy:
    """An Optuna study together with the config it was created from."""

    study: optuna.Study
    config: StudyConfig
    storage: optuna.storages.BaseStorage

    @property
    def finished(self) -> int:
        """Finished trials, every worker's: a COUNT in the database (MixRDBStorage)."""
        study_id = self.storage.get_study_id_from_name(self.study.study_name)
        return self.storage.get_n_trials(study_id, FINISHED)


def create_mix_study(
    config: StudyConfig,
    storage: optuna.storages.BaseStorage,
    *,
    study_name: str | None = None,
    load_if_exists: bool = False,
) -> MixStudy:
    """Create the study, store its config and declare its mixture before any trial runs."""
    name = study_name or config.name
    # a pareto study minimises each validation set's loss: one direction each, named by it
    objectives = config.validation_sets if config.criterion_spec.multi_objective else None
    study = optuna.create_study(
        storage=storage, study_name=name, load_if_exists=load_if_exists,
        directions=["minimize"] * len(objectives) if objectives else ["minimize"],
    )
    if len(study.directions) != len(objectives or [None]):  # loaded: made by another config
        have = (f"{len(study.directions)} objectives" if len(study.directions) > 1
                else "one objective")
        raise ValueError(f"study {name!r} already exists with {have}; pick another "
                         "--study-name")
    if objectives and study.metric_names is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # since 3.2
            study.set_metric_names(objectives)
    stored = study.user_attrs.get(CONFIG_ATTR)
    if stored is not None and stored != config.raw:
        if parse_config(stored).domain_names != config.domain_names:
            raise ValueError(
                f"study {name!r} already exists with other domains; pick another --study-name"
            )
    if stored is None:
        study.set_user_attr(CONFIG_ATTR, config.raw)
    declare_mixture(study, MIXTURE_ATTR, config.domain_names)
    # the criterion with its parameters, for every worker's samplers; an excess criterion's
    # reference mixture is the first trial (optuna_mix.excess)
    ensure_reference(study, config.criterion_spec)
    return load_mix_study(name, storage)


def study_names(storage: optuna.storages.BaseStorage) -> list[str]:
    return optuna.get_all_study_names(storage)  # summaries would read every trial


def load_mix_study(
    name: str, storage: optuna.storages.BaseStorage, *, worker_seed_offset: bool = False
) -> MixStudy:
    """Load a study created by optuna-mix, with the sampler its config names."""
    names = study_names(storage)
    if name not in names:
        known = ", ".join(names) if names else "none"
        raise StudyNotFound(f"no study named {name!r} in this storage (studies: {known})")
    study = optuna.load_study(study_name=name, storage=storage)
    raw = study.user_attrs.get(CONFIG_ATTR)
    if raw is None:
        raise StudyNotFound(f"study {name!r} was not created by optuna-mix (no stored config)")
    config = parse_config(raw, source=f"study {name!r}")
    approach = get_approach(config.sampler)
    seed = config.seed
    if worker_seed_offset and not approach.resumes_by_trial_number:
        # Random/TPE would replay their first proposals on a resumed run with the same seed
        seed += len(study.get_trials(deepcopy=False))
    study.sampler = approach.create(config.sampler_arguments(config.sampler), seed=seed)
    study.pruner = create_pruner(config.pruner)
    if config.criterion_spec.name == "excess":  # its reference trains whole, whatever prunes
        study.pruner = SpareReference(study.pruner)
    return MixStudy(study, config, storage)


def create_pruner(name: str) -> optuna.pruners.BasePruner:
    """No pruning by default: with a few dozen trials, a mixture that learns a hard domain
    slowly looks bad early, and every pruned trial is a point the sampler never learns from."""
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=1)
    if name == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner()
    return optuna.pruners.NopPruner()


class ProgressBar:
    """A tqdm bar over a study's budget that shows the best value so far."""

    def __init__(self, total: int, initial: int, best: dict[str, str] | None) -> None:
        self.bar = tqdm(total=total, initial=initial, desc="trials", unit="trial", file=sys.stderr)
        if best:
            self.bar.set_postfix(best)

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        postfix = {**_best_so_far(study), "last": trial.state.name.lower()}
        self.bar.set_postfix(postfix, refresh=False)  # drawn once, by update or refresh below
        if trial.state in FINISHED:
            self.bar.update(1)
        else:
            self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


def optimize(
    mix: MixStudy,
    *,
    n_trials: int | None = None,
    timeout: float | None = None,
    cache_dir: Path | str = ".optuna-mix-cache",
    show_progress: bool = True,
    dashboard_every: int = 0,
    device: str | None = None,
) -> int:
    """Run trials; returns how many finished in this call.

    With ``n_trials`` this worker runs that many trials. Without it, workers share the config's
    budget exactly (:mod:`optuna_mix.budget`): together they finish ``n_trials`` trials, and
    rerunning after an interruption carries on where the study stopped. ``device`` overrides
    the objective's ``device`` for this worker. ``dashboard_every > 0`` refreshes the report's
    figures and note in optuna-dashboard every that many complete trials.
    """
    study = mix.study
    before = mix.finished
    callbacks: list = []
    if n_trials is None and mix.config.n_trials <= before:
        return 0  # the study's budget is spent: build no objective
    ensure_reference(study, mix.config.criterion_spec)  # retrained if it failed before
    if mix.config.criterion_spec.name == "excess":  # and once more if it fails in this run
        callbacks.append(RetryReference())
    objective: Callable[[optuna.Trial], float] = MixtureObjective(
        mix.config.with_device(device), cache_dir=cache_dir)
    if n_trials is None:
        budget = mix.config.n_trials
        remaining = budget - before
        study_id = mix.storage.get_study_id_from_name(study.study_name)
        shared = SharedBudget(budget, mix.storage, study_id, timeout=timeout)
        callbacks.append(shared)
        objective = _admitted(objective, shared)
        bar_total, bar_initial = budget, before
    else:
        remaining = n_trials
        bar_total, bar_initial = n_trials, 0
    tracked = _Tracked(_interruptible(objective))
    refresh = None
    if dashboard_every > 0:
        from optuna_mix.report import DashboardRefresh

        refresh = DashboardRefresh(
            mix.config.domain_names, mix.storage, sampler=mix.config.sampler,
            criterion=mix.config.criterion, every=dashboard_every, scales=mix.config.scales,
        )
        callbacks.append(refresh)
    bar = None
    if show_progress:
        bar = ProgressBar(bar_total, bar_initial, _best_so_far(study) if before else None)
        callbacks.append(bar)
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        with stop_on_signals(study):
            while tracked.tries < remaining:
                try:
                    study.optimize(
                        tracked,
                        n_trials=remaining - tracked.tries,  # failed tries count too
                        timeout=None if deadline is None else max(0.0, deadline - time.monotonic()),
                        callbacks=callbacks,
                        catch=(ValueError, RuntimeError),
                    )
                    break
                except Exception:
                    if (reason := _failed_elsewhere(mix, tracked.number)) is None:
                        raise
                    _log.warning("trial %d was failed by another worker while this one was "
                                 "stalled (%s); its result is dropped, carrying on",
                                 tracked.number, reason)
    finally:
        if bar is not None:
            bar.close()
    if refresh is not None and mix.finished > before:
        refresh.refresh_if_due(study)  # where this worker left the study, if cheap enough
    return mix.finished - before


class _Tracked:
    """The objective, counting this worker's tries and remembering its latest trial."""

    def __init__(self, objective: Callable[[optuna.Trial], float]) -> None:
        self.objective = objective
        self.tries = 0
        self.number: int | None = None

    def __call__(self, trial: optuna.Trial) -> float:
        self.tries += 1
        self.number = trial.number
        return self.objective(trial)


def _failed_elsewhere(mix: MixStudy, number: int | None) -> str | None:
    """Why trial ``number`` was failed by another worker (its heartbeat went stale while
    this process was paused: SIGSTOP, a swapped-out or frozen VM), or None."""
    if number is None:
        return None
    storage = mix.storage
    study_id = storage.get_study_id_from_name(mix.study.study_name)
    trial = storage.get_trial(storage.get_trial_id_from_study_id_trial_number(study_id, number))
    reason = trial.user_attrs.get(FAIL_REASON_ATTR, "")
    return reason if trial.state == TrialState.FAIL and reason.startswith("no heartbeat") else None


def _interruptible(objective: Callable[[optuna.Trial], float]) -> Callable[[optuna.Trial], float]:
    """``objective``, where SIGINT/SIGTERM may raise (:mod:`optuna_mix.signals`)."""

    def run(trial: optuna.Trial) -> float:
        try:
            with interruptible():
                return objective(trial)
        except Interrupted as e:
            if FAIL_REASON_ATTR not in trial.user_attrs:  # not yet training
                trial.set_user_attr(FAIL_REASON_ATTR, f"interrupted by {e.signal_name} before "
                                    "training")
            raise

    return run


def _admitted(
    objective: Callable[[optuna.Trial], float], shared: SharedBudget
) -> Callable[[optuna.Trial], float]:
    """``objective``, run only on trials that hold a slot of the shared budget."""

    def run(trial: optuna.Trial) -> float:
        shared.admit(trial)  # raises BudgetTaken: the trial FAILs untrained, then the budget
        # callback stops this worker or has it wait on the others' last trials
        return objective(trial)

    return run


def _best_so_far(study: optuna.Study) -> dict[str, str]:
    """The progress bar's word on the best: the value, or a pareto study's front size."""
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return {}
    if len(study.directions) > 1:
        return {"front": str(len(study.best_trials))}
    return {"best": f"{study.best_value:.4f}"}
