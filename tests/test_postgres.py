"""Many workers on one study in the real PostgreSQL at 127.0.0.1:5432, and a killed worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from helpers import DOMAINS, STUDIES, running_in_ci
from optuna_mix import suggest_mixture
from optuna_mix.storage import StorageError, open_storage

PG_URL = os.environ.get("OPTUNA_MIX_TEST_POSTGRES", "postgresql://root@127.0.0.1:5432/test")


@pytest.fixture(scope="module")
def pg_url() -> str:
    try:
        optuna.get_all_study_summaries(open_storage(PG_URL), include_best_trial=False)
    except StorageError as e:
        if running_in_ci():
            pytest.fail(f"PostgreSQL is part of CI and must be reachable: {e}")
        pytest.skip(f"PostgreSQL not reachable: {e}")
    return PG_URL


def cli(*args: str, cwd) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "optuna_mix.cli", *args],
        cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def test_two_workers_share_one_study_and_its_budget(pg_url, tmp_path):
    name = f"pg-{uuid.uuid4().hex[:10]}"
    config = str(STUDIES / "surface-powerlaw5.toml")
    create = cli("study", "create", "--config", config, "--storage", pg_url,
                 "--study-name", name, cwd=tmp_path)
    assert create.wait(timeout=120) == 0, create.stderr.read()
    workers = [
        cli("study", "optimize", "--study-name", name, "--storage", pg_url, "--no-progress",
            cwd=tmp_path)
        for _ in range(2)
    ]
    for w in workers:
        assert w.wait(timeout=600) == 0, w.stderr.read()

    study = optuna.load_study(study_name=name, storage=pg_url)
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    # budget 20; each worker checks it after its own trial, so one may overshoot by one
    assert 20 <= len(complete) <= 21
    assert not study.get_trials(states=(TrialState.RUNNING, TrialState.FAIL))
    points = np.array([[t.params[f"mix.{d}"] for d in DOMAINS] for t in complete])
    np.testing.assert_allclose(points.sum(axis=1), 1.0, atol=1e-9)
    # both workers walked one shared Sobol sequence: no mixture was proposed twice
    assert len({tuple(np.round(p, 12)) for p in points}) == len(points)
    assert {t.number for t in complete} == set(range(len(complete)))


def squared_weights(trial: optuna.Trial) -> float:
    return sum(w * w for w in suggest_mixture(trial, DOMAINS).values())


KILLED_WORKER = """
import pathlib, sys, time
import optuna
from optuna_mix import suggest_mixture
from optuna_mix.samplers import SobolMixtureSampler
from optuna_mix.storage import open_storage
storage = open_storage(sys.argv[1], heartbeat_interval=1, grace_period=2)
study = optuna.load_study(study_name=sys.argv[2], storage=storage, sampler=SobolMixtureSampler(seed=0))
def objective(trial):
    suggest_mixture(trial, {domains!r})
    pathlib.Path(sys.argv[3]).write_text(str(trial.number))
    time.sleep(120)
    return 0.0
study.optimize(objective, n_trials=1)
"""


def test_a_killed_worker_loses_no_trial_and_its_mixture_is_retried(pg_url, tmp_path):
    name = f"pg-kill-{uuid.uuid4().hex[:10]}"
    storage = open_storage(pg_url, heartbeat_interval=1, grace_period=2)
    study = optuna.create_study(study_name=name, storage=storage)
    study.optimize(squared_weights, n_trials=2)

    started = tmp_path / "started"
    worker = subprocess.Popen(
        [sys.executable, "-c", KILLED_WORKER.format(domains=DOMAINS), pg_url, name, str(started)]
    )
    deadline = time.time() + 120
    while not started.exists() and time.time() < deadline:
        time.sleep(0.2)
    assert started.exists(), "the worker never started its trial"
    time.sleep(1.5)  # let at least one heartbeat land
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=30)
    time.sleep(3)  # past the grace period

    study = optuna.load_study(study_name=name, storage=storage)
    study.optimize(squared_weights, n_trials=2)
    trials = study.get_trials()
    killed = trials[int(started.read_text())]
    assert killed.state == TrialState.FAIL
    assert [t.state for t in trials[:2]] == [TrialState.COMPLETE] * 2  # finished trials kept
    retried = [t for t in trials if t.number > killed.number and t.params == killed.params]
    assert retried and retried[0].state == TrialState.COMPLETE
