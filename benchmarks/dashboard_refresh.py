"""The cost of refreshing the report in optuna-dashboard during ``study optimize``.

Runs the same seeded study twice per repeat, with and without :class:`DashboardRefresh`,
alternating, and prints the callback's own seconds per refresh and per trial, against the
trials' time. On an analytic surface a trial takes milliseconds, so this is the worst case;
a GPT trial takes seconds (the demo) to hours.

    python benchmarks/dashboard_refresh.py --sampler gp --trials 40 --every 5
    python benchmarks/dashboard_refresh.py --sampler sobol --trials 200 --every 5
    python benchmarks/dashboard_refresh.py --storage sqlite:///optuna-mix.db --study-name demo

The last form times refreshes of an existing study (e.g. the README's demo) against the
training seconds its trials recorded.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import optuna

from optuna_mix.config import parse_config
from optuna_mix.objective import MixtureObjective
from optuna_mix.report import DashboardRefresh
from optuna_mix.report.dashboard import REFRESH_EVERY
from optuna_mix.runner import create_mix_study
from optuna_mix.storage import open_storage

DOMAINS = ["books", "web", "code", "papers", "social"]


def run(sampler: str, trials: int, every: int, with_refresh: bool, seed: int) -> tuple[float, float, int]:
    """(seconds of the whole optimize, seconds inside the callback, refreshes)."""
    raw = {"study": {"name": "bench", "n_trials": trials, "seed": seed},
           "sampler": {"name": sampler},
           "objective": {"kind": "surface", "family": "powerlaw", "noise": 0.01, "seed": 0},
           "domains": {d: {} for d in DOMAINS}}
    with tempfile.TemporaryDirectory() as tmp:
        storage = open_storage(f"sqlite:///{tmp}/bench.db")
        mix = create_mix_study(parse_config(raw), storage)
        refresh = DashboardRefresh(DOMAINS, storage, sampler=sampler, every=every)
        started = time.perf_counter()
        mix.study.optimize(MixtureObjective(mix.config), n_trials=trials,
                           callbacks=[refresh] if with_refresh else [])
        return time.perf_counter() - started, refresh.seconds, refresh.refreshes


def time_existing(storage_url: str, name: str, repeats: int) -> None:
    """Refreshes of a study that ran, against its trials' recorded training seconds."""
    from optuna_mix.runner import load_mix_study

    storage = open_storage(storage_url)
    mix = load_mix_study(name, storage)
    refresh = DashboardRefresh(mix.config.domain_names, storage, sampler=mix.config.sampler,
                               criterion=mix.config.criterion)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        refresh.refresh(mix.study)
        times.append(time.perf_counter() - started)
    seconds = [t.user_attrs["seconds"] for t in mix.study.trials if "seconds" in t.user_attrs]
    steady = statistics.median(times[1:]) if len(times) > 1 else times[0]
    print(f"{name}: {len(mix.study.trials)} trials; refreshes {', '.join(f'{x:.3f}' for x in times)} s "
          "(the first pays the imports)")
    if seconds:
        trial = statistics.median(seconds)
        print(f"median trial training {trial:.2f} s; a refresh every {REFRESH_EVERY} trials costs "
              f"{steady / REFRESH_EVERY * 1e3:.1f} ms a trial, {steady / REFRESH_EVERY / trial:.2%} of it")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sampler", default="gp")
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--every", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--storage", default=None, help="time refreshes of an existing study")
    parser.add_argument("--study-name", default=None)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.storage:
        time_existing(args.storage, args.study_name, args.repeats)
        return
    plain, with_cb, inside, per_refresh = [], [], [], []
    for r in range(args.repeats):
        plain.append(run(args.sampler, args.trials, args.every, False, r)[0])
        total, cb, n = run(args.sampler, args.trials, args.every, True, r)
        with_cb.append(total)
        inside.append(cb)
        per_refresh.append(cb / max(n, 1))
    med = statistics.median
    print(f"{args.sampler}, {args.trials} trials, refresh every {args.every}, "
          f"{args.repeats} repeats (medians; runs alternate)")
    print(f"optimize without the callback: {med(plain):.2f} s ({med(plain) / args.trials * 1e3:.1f} ms a trial)")
    print(f"optimize with the callback:    {med(with_cb):.2f} s")
    print(f"inside the callback: {med(inside):.2f} s, {med(per_refresh):.3f} s a refresh, "
          f"{med(inside) / args.trials * 1e3:.1f} ms a trial")
    print(f"runs: without {', '.join(f'{x:.2f}' for x in plain)}; with {', '.join(f'{x:.2f}' for x in with_cb)}; "
          f"inside {', '.join(f'{x:.2f}' for x in inside)}")


if __name__ == "__main__":
    main()
