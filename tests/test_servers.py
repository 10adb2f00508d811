"""Many workers on one study in the real PostgreSQL and MariaDB servers, under faults.

Each test gets a database of its own on the server, dropped after it. Workers are real
``optuna-mix study optimize`` processes on a surface whose trials take a second, as if
training; one is killed with SIGKILL mid-trial, one stopped with SIGTERM mid-trial.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from helpers import DOMAINS, STUDIES, scratch_database
from optuna_mix.attrs import FAIL_REASON_ATTR, LOSSES_ATTR, RETRY_OF_ATTR, WORKER_ATTR

SERVERS = {
    "postgresql": os.environ.get("OPTUNA_MIX_TEST_POSTGRES",
                                 "postgresql+psycopg://root@127.0.0.1:5432/postgres"),
    "mariadb": os.environ.get("OPTUNA_MIX_TEST_MARIADB",
                              "mysql+pymysql://root@127.0.0.1:3306/test"),
}


@pytest.fixture(params=list(SERVERS))
def database(request) -> Iterator[str]:
    """The URL of a fresh database on the server, dropped after the test."""
    with scratch_database(SERVERS[request.param], request.param) as url:
        yield url


def slow_config(tmp_path, *, seconds: float, n_trials: int) -> str:
    text = (STUDIES / "surface-powerlaw5.toml").read_text()
    text = text.replace("noise = 0.01", f"noise = 0.01\nseconds = {seconds}")
    text = text.replace("n_trials = 20", f"n_trials = {n_trials}")
    path = tmp_path / "slow.toml"
    path.write_text(text)
    return str(path)


def cli(*args: str, cwd) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "optuna_mix.cli", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def create(url: str, tmp_path, *, seconds: float, n_trials: int) -> str:
    name = "workers"
    made = cli("study", "create", "--config", slow_config(tmp_path, seconds=seconds,
               n_trials=n_trials), "--storage", url, "--study-name", name, cwd=tmp_path)
    assert made.wait(timeout=120) == 0, made.stderr.read()
    return name


def assert_complete_trials_intact(trials: list[optuna.trial.FrozenTrial]) -> None:
    for t in trials:
        losses = t.user_attrs[LOSSES_ATTR]
        assert set(losses) == set(DOMAINS)
        assert t.value == pytest.approx(np.mean(list(losses.values())), abs=1e-12)
        assert sum(t.params[f"mix.{d}"] for d in DOMAINS) == pytest.approx(1.0, abs=1e-9)


def test_two_workers_share_one_study_and_exactly_its_budget(database, tmp_path):
    name = create(database, tmp_path, seconds=0.0, n_trials=20)
    workers = [cli("study", "optimize", "--study-name", name, "--storage", database,
                   "--no-progress", cwd=tmp_path) for _ in range(2)]
    for w in workers:
        assert w.wait(timeout=600) == 0, w.stderr.read()
    study = optuna.load_study(study_name=name, storage=database)
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) == 20
    assert not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))
    for t in study.get_trials(states=(TrialState.FAIL,)):  # only a race for the last slot
        assert t.user_attrs[FAIL_REASON_ATTR].startswith("not run: the study's budget")
    assert_complete_trials_intact(complete)
    points = {tuple(round(t.params[f"mix.{d}"], 12) for d in DOMAINS) for t in complete}
    assert len(points) == len(complete)  # one shared Sobol sequence: no mixture twice


def training_trial_of(study: optuna.Study, pid: int) -> optuna.trial.FrozenTrial | None:
    """The trial worker ``pid`` trains now: RUNNING, its mixture written."""
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if t.user_attrs.get(WORKER_ATTR, {}).get("pid") == pid and len(t.params) == len(DOMAINS):
            return t
    return None


def wait_for_training(study: optuna.Study, pid: int, timeout: float = 120):
    """The trial worker ``pid`` starts training next, caught within a poll of its start.

    A trial it trains already when the wait begins is skipped: it may be nearly done, and a
    signal sent "mid-trial" would then land after it (CI once saw it COMPLETE)."""
    already = training_trial_of(study, pid)
    deadline = time.time() + timeout
    while time.time() < deadline:
        trial = training_trial_of(study, pid)
        if trial is not None and (already is None or trial.number != already.number):
            return trial
        time.sleep(0.05)
    pytest.fail(f"worker {pid} never started training")


def test_four_workers_one_killed_one_terminated_lose_no_trial(database, tmp_path):
    name = create(database, tmp_path, seconds=1.0, n_trials=16)
    beat = ["--heartbeat-interval", "1", "--grace-period", "3", "--no-progress"]
    common = ["study", "optimize", "--study-name", name, "--storage", database, *beat]
    killed, terminated = cli(*common, cwd=tmp_path), cli(*common, cwd=tmp_path)
    pair = cli(*common, "--jobs", "2", cwd=tmp_path)  # two more workers from one command
    study = optuna.load_study(study_name=name, storage=database)

    killed_trial = wait_for_training(study, killed.pid)
    time.sleep(0.3)  # mid-trial, a heartbeat sent
    killed.send_signal(signal.SIGKILL)
    terminated_trial = wait_for_training(study, terminated.pid)
    time.sleep(0.3)
    terminated.send_signal(signal.SIGTERM)

    assert killed.wait(timeout=60) == -signal.SIGKILL
    assert terminated.wait(timeout=60) == 143, terminated.stderr.read()
    assert "interrupted by SIGTERM" in terminated.stderr.read()
    assert pair.wait(timeout=300) == 0, pair.stderr.read()

    study = optuna.load_study(study_name=name, storage=database)
    trials = study.get_trials()
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) == 16  # the budget exactly, the killed trial rerun by the others
    assert not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))
    assert_complete_trials_intact(complete)

    lost = trials[killed_trial.number]
    assert lost.state == TrialState.FAIL
    assert lost.user_attrs[FAIL_REASON_ATTR].startswith("no heartbeat for 3 s: its worker (")
    assert f"pid {killed.pid})" in lost.user_attrs[FAIL_REASON_ATTR]
    (rerun,) = [t for t in trials if t.user_attrs.get(RETRY_OF_ATTR) == lost.number]
    assert rerun.state == TrialState.COMPLETE and rerun.params == lost.params

    stopped = trials[terminated_trial.number]
    assert stopped.state == TrialState.FAIL
    assert stopped.user_attrs[FAIL_REASON_ATTR] == "interrupted by SIGTERM while training"

    others = [t for t in study.get_trials(states=(TrialState.FAIL,))
              if t.number not in (lost.number, stopped.number)]
    for t in others:  # anything else failed is a refused race for the last slot, untrained
        assert t.user_attrs[FAIL_REASON_ATTR].startswith("not run: the study's budget")


def test_workers_that_create_one_study_at_once_on_a_new_database_all_succeed(database,
                                                                              tmp_path):
    """Each SLURM task may run `study create --load-if-exists`: the first opens race to make
    Optuna's tables, and the losers try again instead of failing."""
    config = slow_config(tmp_path, seconds=0.0, n_trials=4)
    creates = [cli("study", "create", "--config", config, "--storage", database,
                   "--study-name", "together", "--load-if-exists", cwd=tmp_path)
               for _ in range(4)]
    for c in creates:
        assert c.wait(timeout=120) == 0, c.stderr.read()
    assert optuna.get_all_study_names(database) == ["together"]
