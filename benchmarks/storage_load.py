"""Trials per second a storage sustains with many workers, and the sampler's share of a trial.

For each storage (a SQLite file, a scratch database on PostgreSQL and on MariaDB, dropped
after) and each worker count W, creates a five-domain surface study (trials take no time:
what is measured is Optuna, optuna-mix and the database), starts W worker processes that run
optuna-mix's own worker loop (``runner.optimize``: shared budget, heartbeats, retries) with
the study's sampler wrapped in a timer, and reports:

- trials/s: finished trials over the span from the first trial's start to the last one's end
  (the storage's clock, every worker's trials), and its ratio to W = 1 on the same storage;
- ms/trial: a worker's wall time over the trials it ran (median over workers);
- sampler: the share of a worker's time spent in the sampler's methods (median over workers);
- refused: trials that lost the race for the last slots (:mod:`optuna_mix.budget`).

Each is measured twice: with optuna-mix's loop, and with a plain Optuna loop on the same
storage as the baseline (RandomSampler, the budget by ``MaxTrialsCallback``, which may
overshoot, the same parameter and attr writes per trial).

    python benchmarks/storage_load.py                       # sobol, W = 1 and 8, all storages
    python benchmarks/storage_load.py --sampler gp --trials 64 --workers 1,4

On a machine with fewer cores than workers the workers compete for the CPU too, so the
figures are a floor of what the database itself sustains.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
import tomllib
from optuna.trial import TrialState

REPO = Path(__file__).resolve().parents[1]
SERVERS = {
    "postgresql": "postgresql+psycopg://root@127.0.0.1:5432/postgres",
    "mariadb": "mysql+pymysql://root@127.0.0.1:3306/test",
}
SAMPLER_METHODS = ("infer_relative_search_space", "sample_relative", "sample_independent",
                   "before_trial", "after_trial")


class TimedSampler(optuna.samplers.BaseSampler):
    """Delegates to ``inner`` and adds up the seconds spent in it."""

    def __init__(self, inner: optuna.samplers.BaseSampler) -> None:
        self.inner = inner
        self.seconds = 0.0

    def __getattr__(self, name: str) -> Any:  # anything else the inner sampler offers
        return getattr(self.inner, name)

    def _timed(self, name: str, *args: Any) -> Any:
        started = time.perf_counter()
        try:
            return getattr(self.inner, name)(*args)
        finally:
            self.seconds += time.perf_counter() - started

    def infer_relative_search_space(self, study, trial):
        return self._timed("infer_relative_search_space", study, trial)

    def sample_relative(self, study, trial, search_space):
        return self._timed("sample_relative", study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self._timed("sample_independent", study, trial, param_name, param_distribution)

    def before_trial(self, study, trial):
        return self._timed("before_trial", study, trial)

    def after_trial(self, study, trial, state, values):
        return self._timed("after_trial", study, trial, state, values)


def worker(url: str, study_name: str, out: str) -> None:
    """One worker process: optuna-mix's loop on the shared budget, its sampler timed."""
    from optuna_mix.runner import load_mix_study, optimize
    from optuna_mix.storage import open_storage

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    mix = load_mix_study(study_name, open_storage(url), worker_seed_offset=True)
    timed = TimedSampler(mix.study.sampler)
    mix.study.sampler = timed
    started = time.perf_counter()
    optimize(mix, show_progress=False, dashboard_every=0)
    wall = time.perf_counter() - started
    mine = [t for t in mix.study.get_trials(deepcopy=False)
            if t.user_attrs.get("worker", {}).get("pid") == os.getpid()]
    Path(out).write_text(json.dumps({"wall": wall, "sampler": timed.seconds,
                                     "trials": len(mine)}))


def plain_worker(url: str, study_name: str, out: str) -> None:
    """The baseline: a plain Optuna worker on the same study, budget by MaxTrialsCallback,
    writing what an optuna-mix trial writes (five weights, the losses and two more attrs)."""
    import numpy as np

    from optuna_mix.storage import open_storage

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.load_study(study_name=study_name, storage=open_storage(url),
                              sampler=optuna.samplers.RandomSampler(seed=os.getpid()))
    timed = TimedSampler(study.sampler)
    study.sampler = timed
    domains = ["books", "web", "code", "papers", "social"]
    budget = study.user_attrs["optuna_mix.config"]["study"]["n_trials"]

    def objective(trial: optuna.Trial) -> float:
        raw = np.array([trial.suggest_float(f"raw.{d}", 1e-6, 1.0) for d in domains])
        weights = raw / raw.sum()
        trial.set_user_attr("worker", {"pid": os.getpid()})
        trial.set_user_attr("mix", dict(zip(domains, weights.tolist())))
        trial.set_user_attr("losses", dict(zip(domains, (1 - weights).tolist())))
        return float(np.mean(1 - weights))

    started = time.perf_counter()
    study.optimize(objective, n_trials=budget, callbacks=[optuna.study.MaxTrialsCallback(
        budget, states=(TrialState.COMPLETE,))])
    wall = time.perf_counter() - started
    mine = [t for t in study.get_trials(deepcopy=False)
            if t.user_attrs.get("worker", {}).get("pid") == os.getpid()]
    Path(out).write_text(json.dumps({"wall": wall, "sampler": timed.seconds,
                                     "trials": len(mine)}))


def config(sampler: str, n_trials: int) -> dict:
    raw = tomllib.loads((REPO / "studies" / "surface-powerlaw5.toml").read_text())
    raw["study"]["n_trials"] = n_trials
    raw["sampler"] = {"name": sampler}
    return raw


def scratch_database(server: str) -> tuple[str, Callable[[], None]]:
    admin = sqlalchemy.engine.make_url(SERVERS[server])
    engine = sqlalchemy.create_engine(admin, isolation_level="AUTOCOMMIT")
    name = f"omx_load_{uuid.uuid4().hex[:10]}"
    with engine.connect() as c:
        c.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))

    def drop() -> None:
        force = " WITH (FORCE)" if server == "postgresql" else ""
        with engine.connect() as c:
            c.execute(sqlalchemy.text(f"DROP DATABASE {name}{force}"))
        engine.dispose()

    return admin.set(database=name).render_as_string(hide_password=False), drop


def measure(url: str, sampler: str, workers: int, n_trials: int, tmp: Path,
            plain: bool = False) -> dict:
    from optuna_mix.config import parse_config
    from optuna_mix.runner import create_mix_study
    from optuna_mix.storage import close_storage, open_storage

    name = f"load-{workers}-{uuid.uuid4().hex[:6]}"
    storage = open_storage(url)
    create_mix_study(parse_config(config(sampler, n_trials)), storage, study_name=name)
    outs = [tmp / f"{name}-{i}.json" for i in range(workers)]
    started = time.perf_counter()
    mode = "--plain-worker" if plain else "--worker"
    procs = [subprocess.Popen([sys.executable, __file__, mode, url, name, str(out)])
             for out in outs]
    codes = [p.wait() for p in procs]
    wall = time.perf_counter() - started
    if any(codes):
        raise SystemExit(f"a worker failed: exit codes {codes}")
    study = optuna.load_study(study_name=name, storage=storage)
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    refused = len(study.get_trials(deepcopy=False, states=(TrialState.FAIL,)))
    span = (max(t.datetime_complete for t in complete)
            - min(t.datetime_start for t in complete)).total_seconds()
    close_storage(storage)
    runs = [json.loads(out.read_text()) for out in outs]
    return {
        "trials": len(complete), "refused": refused, "span": span, "wall": wall,
        "per_s": len(complete) / span,
        "ms_per_trial": statistics.median(1000 * r["wall"] / max(r["trials"], 1) for r in runs),
        "sampler_share": statistics.median(r["sampler"] / r["wall"] for r in runs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storages", default="sqlite,postgresql,mariadb")
    parser.add_argument("--workers", default="1,8", help="comma-separated W")
    parser.add_argument("--sampler", default="sobol")
    parser.add_argument("--trials", type=int, default=200, help="the study's budget")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--worker", nargs=3, metavar=("URL", "STUDY", "OUT"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--plain-worker", nargs=3, metavar=("URL", "STUDY", "OUT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker)
        return
    if args.plain_worker:
        plain_worker(*args.plain_worker)
        return
    counts = [int(w) for w in args.workers.split(",")]
    print(f"{os.cpu_count()} CPUs; sampler {args.sampler}; {args.trials} surface trials per "
          f"run; optuna {optuna.__version__}, SQLAlchemy {sqlalchemy.__version__}")
    print(f"{'storage':<11}{'loop':<11}{'W':>3}{'trials':>7}{'refused':>8}{'span s':>8}{'trials/s':>9}"
          f"{'x W=1':>7}{'ms/trial':>9}{'sampler':>8}")
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        for backend in args.storages.split(","):
            for plain in (True, False):
                base = None
                for w in counts:
                    for _ in range(args.repeats):
                        if backend == "sqlite":
                            url, drop = f"sqlite:///{tmp / f'l-{uuid.uuid4().hex[:6]}.db'}", None
                        else:
                            url, drop = scratch_database(backend)
                        try:
                            r = measure(url, args.sampler, w, args.trials, tmp, plain=plain)
                        finally:
                            if drop is not None:
                                drop()
                        base = r["per_s"] if base is None else base
                        loop = "optuna" if plain else "optuna-mix"
                        print(f"{backend:<11}{loop:<11}{w:>3}{r['trials']:>7}{r['refused']:>8}"
                              f"{r['span']:>8.1f}{r['per_s']:>9.1f}{r['per_s'] / base:>7.2f}"
                              f"{r['ms_per_trial']:>9.0f}{r['sampler_share']:>8.0%}", flush=True)


if __name__ == "__main__":
    main()
