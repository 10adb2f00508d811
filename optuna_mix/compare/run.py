"""Running a comparison: create or resume every study, run each up to its budget."""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from optuna_mix.attrs import CONFIG_ATTR
from optuna_mix.compare.plan import Plan
from optuna_mix.signals import Interrupted, forwarding_signals
from optuna_mix.storage import open_storage


def _run_study(storage_url: str, name: str, n_trials: int, cache_dir: str) -> int:
    """Run ``n_trials`` more trials of one study (in this process or a worker process)."""
    import optuna

    from optuna_mix.runner import load_mix_study, optimize

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    mix = load_mix_study(name, open_storage(storage_url), worker_seed_offset=True)
    return optimize(mix, n_trials=n_trials, cache_dir=cache_dir, show_progress=False)


def _result(future, received: list[str]) -> int:
    """A study's trials; 0 where the study was stopped by a signal (the parent then raises)."""
    from concurrent.futures import CancelledError
    from concurrent.futures.process import BrokenProcessPool

    try:
        return future.result()
    except (KeyboardInterrupt, CancelledError, BrokenProcessPool):
        if not received:
            raise
        return 0


class _Progress:
    """One bar over every study's budget, refreshed from the storage twice a second."""

    def __init__(self, storage, study_ids: list[int], total: int, enabled: bool) -> None:
        from optuna.trial import TrialState
        from tqdm.auto import tqdm

        self.storage, self.study_ids = storage, study_ids
        self.states = (TrialState.COMPLETE, TrialState.PRUNED)
        initial = self.count()
        self.bar = tqdm(
            total=total, initial=initial, desc="compare", unit="trial",
            file=sys.stderr, disable=not enabled or initial >= total,  # nothing left: no bar
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def count(self) -> int:
        return sum(self.storage.get_n_trials(i, state=self.states) for i in self.study_ids)

    def refresh(self) -> None:
        try:
            done = self.count()
        except Exception:  # a busy SQLite file: try again on the next tick
            return
        self.bar.update(done - self.bar.n)

    def _loop(self) -> None:
        while not self._stop.wait(0.5):
            self.refresh()

    def __enter__(self) -> _Progress:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.refresh()
        self.bar.close()


def run_studies(
    plans: Sequence[Plan],
    storage_url: str,
    *,
    jobs: int = 1,
    cache_dir: str | Path = ".optuna-mix-cache",
    progress: bool = True,
) -> int:
    """Create (or resume) every study and run each up to its budget of finished trials.

    Returns how many trials finished in this call. Studies run one after another, or ``jobs``
    at a time in worker processes.
    """
    from optuna.trial import TrialState

    from optuna_mix.runner import create_mix_study

    storage = open_storage(storage_url)
    finished_states = (TrialState.COMPLETE, TrialState.PRUNED)
    todo: list[tuple[str, int]] = []
    study_ids = []
    for plan in plans:
        try:
            study_id = storage.get_study_id_from_name(plan.name)
        except KeyError:
            study_id = None
        if study_id is not None:
            # a finished study is only checked, not loaded (loading builds its sampler)
            stored = storage.get_study_user_attrs(study_id).get(CONFIG_ATTR) or {}
            if list(stored.get("domains", {})) != plan.config.domain_names:
                raise ValueError(
                    f"study {plan.name!r} already exists with other domains; use another "
                    "storage or another [study] name"
                )
            finished = storage.get_n_trials(study_id, state=finished_states)
            if finished >= plan.budget:
                study_ids.append(study_id)
                continue
        mix = create_mix_study(plan.config, storage, study_name=plan.name, load_if_exists=True)
        study_ids.append(storage.get_study_id_from_name(plan.name))
        if mix.finished < plan.budget:
            todo.append((plan.name, plan.budget - mix.finished))
    total = sum(plan.budget for plan in plans)
    ran = 0
    with _Progress(storage, study_ids, total, progress) as bar:
        if jobs <= 1 or len(todo) <= 1:
            for name, remaining in todo:
                bar.bar.set_postfix_str(name, refresh=False)
                ran += _run_study(storage_url, name, remaining, str(cache_dir))
        else:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            context = multiprocessing.get_context("spawn")  # torch and threads: no fork
            with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
                futures: list = []

                def stop_pool() -> list[int]:
                    """On SIGTERM/SIGINT: no study starts any more; the running ones' workers
                    get the signal, fail their running trial and raise Interrupted."""
                    for f in futures:
                        f.cancel()
                    return [p.pid for p in multiprocessing.active_children()]

                with forwarding_signals(stop_pool) as received:
                    futures += [
                        pool.submit(_run_study, storage_url, name, remaining, str(cache_dir))
                        for name, remaining in todo
                    ]
                    done = [_result(f, received) for f in futures]
                if received:
                    raise Interrupted(received[0])
                ran = sum(done)
    return ran
