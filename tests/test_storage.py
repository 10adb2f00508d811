"""Storage URLs, driver extras, and the record a stale trial leaves (``optuna_mix.storage``)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import optuna
import pytest
from optuna.trial import TrialState

from helpers import DOMAINS, STUDIES
from optuna_mix.attrs import FAIL_REASON_ATTR, RETRY_OF_ATTR, WORKER_ATTR
from optuna_mix.storage import RetryStaleTrial, StorageError, open_storage, resolve_url


@pytest.mark.parametrize(
    "url, resolved",
    [
        ("sqlite:///x.db", "sqlite:///x.db"),
        ("mysql://root@127.0.0.1:3306/test", "mysql+pymysql://root@127.0.0.1:3306/test"),
        ("mariadb://root@h/test", "mariadb+pymysql://root@h/test"),
        ("mysql+pymysql://root@h/test", "mysql+pymysql://root@h/test"),
        ("postgresql+psycopg://u:secret@h/db", "postgresql+psycopg://u:***@h/db"),
    ],
)
def test_urls_resolve_to_an_installed_driver(url, resolved):
    assert resolve_url(url).render_as_string(hide_password=True) == resolved


@pytest.mark.parametrize(
    "url, message",
    [
        ("optuna-mix.db", "is not a URL"),
        ("foo://x/y", "unknown database 'foo'"),
        ("mysql+nosuch://h/t", "pip install 'optuna-mix[mysql]'"),
        ("postgresql+asyncpg://h/t", "pip install 'optuna-mix[postgres]'"),
        ("mysql+mysqldb://h/t", "use mysql+pymysql://"),
    ],
)
def test_bad_urls_and_missing_drivers_are_one_line_errors(url, message):
    with pytest.raises(StorageError) as raised:
        resolve_url(url)
    text = str(raised.value)
    assert message in text and "\n" not in text


@pytest.mark.parametrize("url, extra", [("mysql://root@h/t", "mysql"),
                                        ("mariadb://root@h/t", "mysql"),
                                        ("postgresql+psycopg://h/t", "postgres")])
def test_a_missing_driver_names_the_extra_that_installs_it(url, extra, monkeypatch):
    for module in ("pymysql", "psycopg", "MySQLdb", "psycopg2"):
        monkeypatch.setitem(sys.modules, module, None)  # import fails: not installed
    with pytest.raises(StorageError, match=rf"pip install 'optuna-mix\[{extra}\]'"):
        resolve_url(url)


def test_the_password_never_reaches_an_error_message():
    with pytest.raises(StorageError) as raised:
        open_storage("postgresql+psycopg://user:hunter2@127.0.0.1:1/nowhere")
    assert "hunter2" not in str(raised.value) and "***" in str(raised.value)


def test_a_retry_keeps_the_mixture_and_drops_the_failed_runs_record():
    study = optuna.create_study()
    distributions = {"x": optuna.distributions.FloatDistribution(0, 1)}
    failed = optuna.create_trial(
        state=TrialState.FAIL, params={"x": 0.3}, distributions=distributions,
        user_attrs={FAIL_REASON_ATTR: "no heartbeat", WORKER_ATTR: {"host": "a", "pid": 1},
                    "mix": {"a": 1.0}},
    )
    study.add_trial(failed)
    retry = RetryStaleTrial(max_retry=1)
    retry(study, study.trials[0])
    waiting = study.get_trials(states=(TrialState.WAITING,))
    assert len(waiting) == 1 and waiting[0].params == {"x": 0.3}
    assert waiting[0].user_attrs == {"mix": {"a": 1.0}, RETRY_OF_ATTR: 0}
    assert optuna.storages.RetryFailedTrialCallback.retried_trial_number(waiting[0]) == 0
    # a retry that goes stale in turn is not retried again (max_retry=1)
    study.add_trial(optuna.create_trial(
        state=TrialState.FAIL, params={"x": 0.3}, distributions=distributions,
        system_attrs=waiting[0].system_attrs))
    retry(study, study.trials[-1])
    assert len(study.get_trials(states=(TrialState.WAITING,))) == 1


KILLED_WORKER = """
import pathlib, sys, time
import optuna
from optuna_mix.objective import MixtureObjective
from optuna_mix.runner import load_mix_study
from optuna_mix.storage import open_storage
mix = load_mix_study(sys.argv[2], open_storage(sys.argv[1], heartbeat_interval=1, grace_period=2))
objective = MixtureObjective(mix.config)
def slow(trial):
    value = objective(trial)  # writes the worker attr and the mixture
    pathlib.Path(sys.argv[3]).write_text(str(trial.number))
    time.sleep(120)
    return value
mix.study.optimize(slow, n_trials=1)
"""


def test_a_sigkilled_workers_trial_is_failed_with_its_reason_and_rerun(tmp_path):
    """Item 1 of the distributed-workers issue, on SQLite: any storage with heartbeats."""
    from optuna_mix.config import load_config
    from optuna_mix.runner import create_mix_study, load_mix_study, optimize

    url = f"sqlite:///{tmp_path / 'kill.db'}"
    config = load_config(STUDIES / "surface-powerlaw5.toml")
    create_mix_study(config, open_storage(url), study_name="kill")
    started = tmp_path / "started"
    worker = subprocess.Popen([sys.executable, "-c", KILLED_WORKER, url, "kill", str(started)])
    deadline = time.time() + 120
    while not started.exists() and time.time() < deadline:
        time.sleep(0.2)
    assert started.exists(), "the worker never started its trial"
    time.sleep(1.5)  # at least one heartbeat
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=30)
    time.sleep(2.5)  # past the grace period

    mix = load_mix_study("kill", open_storage(url, heartbeat_interval=1, grace_period=2))
    optimize(mix, show_progress=False)
    trials = mix.study.get_trials()
    killed = trials[int(started.read_text())]
    assert killed.state == TrialState.FAIL
    assert killed.user_attrs[FAIL_REASON_ATTR].startswith("no heartbeat for 2 s: its worker (")
    assert f"pid {worker.pid}" in killed.user_attrs[FAIL_REASON_ATTR]
    (retried,) = [t for t in trials if t.user_attrs.get(RETRY_OF_ATTR) == killed.number]
    assert retried.state == TrialState.COMPLETE and retried.params == killed.params
    assert FAIL_REASON_ATTR not in retried.user_attrs
    assert retried.user_attrs[WORKER_ATTR]["pid"] != worker.pid
    # the rerun completed the budget exactly, the killed trial not counted
    assert len(mix.study.get_trials(states=(TrialState.COMPLETE,))) == config.n_trials
    assert not mix.study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))
    assert all(set(t.user_attrs["losses"]) == set(DOMAINS)
               for t in mix.study.get_trials(states=(TrialState.COMPLETE,)))


@pytest.mark.parametrize("state", [None, TrialState.COMPLETE, TrialState.FAIL,
                                   (TrialState.COMPLETE, TrialState.PRUNED),
                                   (TrialState.RUNNING,)])
def test_trials_are_counted_in_sql_as_optuna_counts_them(state, tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path / 'count.db'}")
    study = optuna.create_study(storage=storage)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    study.optimize(lambda t: 1 / 0, n_trials=2, catch=(ZeroDivisionError,))
    study.ask()
    counted = storage.get_n_trials(study._study_id, state)
    assert counted == optuna.storages.BaseStorage.get_n_trials(storage, study._study_id, state)
    assert counted == {None: 6, TrialState.COMPLETE: 3, TrialState.FAIL: 2}.get(
        state, 3 if state == (TrialState.COMPLETE, TrialState.PRUNED) else 1)
