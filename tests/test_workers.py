"""``optimize --jobs N --devices ...`` (``optuna_mix.workers``): one command, many workers."""

from __future__ import annotations

import itertools
import signal
import subprocess
import sys
import time

import numpy as np
import optuna
import pytest
import tomllib
from optuna.trial import TrialState

from helpers import DOMAINS, STUDIES
from optuna_mix.attrs import FAIL_REASON_ATTR, LOSSES_ATTR, WORKER_ATTR
from optuna_mix.workers import Job, assign_devices, job_command, parse_devices


@pytest.mark.parametrize(
    "jobs, devices, expected",
    [
        (1, [], [None]),
        (3, [], [None, None, None]),
        (2, ["cuda:0", "cuda:1"], ["cuda:0", "cuda:1"]),
        (4, ["cuda:0", "cuda:1"], ["cuda:0", "cuda:1", "cuda:0", "cuda:1"]),
        (3, ["cpu"], ["cpu", "cpu", "cpu"]),
    ],
)
def test_devices_go_round_robin_over_the_jobs(jobs, devices, expected):
    assert [job.device for job in assign_devices(jobs, devices)] == expected


def test_more_devices_than_jobs_is_refused():
    with pytest.raises(ValueError, match="--devices lists 2 devices for --jobs 1"):
        assign_devices(1, ["cuda:0", "cuda:1"])


@pytest.mark.parametrize("text, devices", [(None, []), ("cuda:0", ["cuda:0"]),
                                           ("cuda:0, cuda:1", ["cuda:0", "cuda:1"])])
def test_parse_devices(text, devices):
    assert parse_devices(text) == devices


def test_an_empty_device_is_refused():
    with pytest.raises(ValueError, match="empty item"):
        parse_devices("cuda:0,,cuda:1")


def test_a_job_is_the_one_worker_command_with_its_device():
    command = job_command(Job(1, "cuda:1"), ["--study-name", "s"])
    assert command[1:] == ["-m", "optuna_mix.cli", "study", "optimize", "--study-name", "s",
                           "--jobs", "1", "--no-progress", "--devices", "cuda:1",
                           "--dashboard-every", "0"]
    assert "--dashboard-every" not in job_command(Job(0, None), [])  # job 0 keeps the refresh


def write_slow_config(path, *, seconds: float, n_trials: int, sampler: str = "sobol") -> str:
    text = (STUDIES / "surface-powerlaw5.toml").read_text()
    text = text.replace("noise = 0.01", f"noise = 0.01\nseconds = {seconds}")
    text = text.replace("n_trials = 20", f"n_trials = {n_trials}")
    text = text.replace('name = "sobol"', f'name = "{sampler}"')
    tomllib.loads(text)  # still valid TOML
    path.write_text(text)
    return str(path)


def cli(*args: str, cwd, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "optuna_mix.cli", *args], cwd=cwd,
                          capture_output=True, text=True, **kw)


def test_jobs_share_the_budget_exactly(tmp_path):
    config = write_slow_config(tmp_path / "slow.toml", seconds=0.3, n_trials=12)
    assert cli("study", "create", "--config", config, cwd=tmp_path).returncode == 0
    run = cli("study", "optimize", "--study-name", "surface-powerlaw5", "--jobs", "3",
              "--no-progress", cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "trials finished in this run by 3 jobs; the study now has 12." in run.stdout
    study = optuna.load_study(study_name="surface-powerlaw5",
                              storage=f"sqlite:///{tmp_path / 'optuna-mix.db'}")
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) == 12
    # anything else is a trial refused in a race for the last slot, untrained, saying so
    for t in study.get_trials(states=(TrialState.FAIL,)):
        assert t.user_attrs[FAIL_REASON_ATTR].startswith("not run: the study's budget")
    assert not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))
    assert len({t.user_attrs[WORKER_ATTR]["pid"] for t in complete}) == 3  # three workers
    assert all(set(t.user_attrs[LOSSES_ATTR]) == set(DOMAINS) for t in complete)


def test_sigterm_to_the_command_stops_every_job_and_a_rerun_completes(tmp_path):
    config = write_slow_config(tmp_path / "slow.toml", seconds=2.0, n_trials=8)
    assert cli("study", "create", "--config", config, cwd=tmp_path).returncode == 0
    args = [sys.executable, "-m", "optuna_mix.cli", "study", "optimize", "--study-name",
            "surface-powerlaw5", "--jobs", "2", "--no-progress"]
    parent = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    storage = f"sqlite:///{tmp_path / 'optuna-mix.db'}"
    deadline = time.time() + 120
    while time.time() < deadline:  # both jobs training
        time.sleep(0.2)
        study = optuna.load_study(study_name="surface-powerlaw5", storage=storage)
        if len(study.get_trials(states=(TrialState.RUNNING,))) == 2:
            break
    parent.send_signal(signal.SIGTERM)
    out, err = parent.communicate(timeout=60)
    assert parent.returncode == 143, err
    assert "interrupted by SIGTERM" in err
    study = optuna.load_study(study_name="surface-powerlaw5", storage=storage)
    assert not study.get_trials(states=(TrialState.RUNNING,))
    stopped = study.get_trials(states=(TrialState.FAIL,))
    assert len(stopped) == 2
    reasons = {t.user_attrs[FAIL_REASON_ATTR] for t in stopped}
    # a job asked to stop while its sampler proposed fails that trial before training it
    assert reasons <= {"interrupted by SIGTERM while training",
                       "interrupted by SIGTERM before training"}, reasons

    rerun = cli("study", "optimize", "--study-name", "surface-powerlaw5", "--jobs", "2",
                "--no-progress", cwd=tmp_path, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    study = optuna.load_study(study_name="surface-powerlaw5", storage=storage)
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 8


@pytest.mark.parametrize(
    "args, message",
    [
        (["--devices", "cuda:0"], "objective 'surface' trains no model"),
        (["--jobs", "1", "--devices", "cpu,cpu"], "--devices lists 2 devices for --jobs 1"),
        (["--jobs", "2", "--devices", "cpu,,cpu"], "empty item"),
    ],
)
def test_bad_jobs_and_devices_are_one_line_errors(args, message, tmp_path):
    config = write_slow_config(tmp_path / "slow.toml", seconds=0, n_trials=4)
    assert cli("study", "create", "--config", config, cwd=tmp_path).returncode == 0
    run = cli("study", "optimize", "--study-name", "surface-powerlaw5", *args, cwd=tmp_path)
    assert run.returncode == 2
    assert run.stderr.strip().count("\n") == 0 and message in run.stderr
    study = optuna.load_study(study_name="surface-powerlaw5",
                              storage=f"sqlite:///{tmp_path / 'optuna-mix.db'}")
    assert not study.trials  # refused before any worker started


def test_a_device_this_machine_lacks_is_refused_before_any_job_starts(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert cli("study", "create", "--config", str(STUDIES / "demo.toml"),
               cwd=tmp_path).returncode == 0
    run = cli("study", "optimize", "--study-name", "demo", "--jobs", "2", "--devices",
              "cuda:0,cuda:1", cwd=tmp_path)
    assert run.returncode == 2, run.stderr
    assert "CUDA is not available" in run.stderr and run.stderr.strip().count("\n") == 0


def test_four_gp_workers_never_train_the_same_mixture_at_once(tmp_path):
    """Parallel BO: each proposal sees the running trials' points (the GP's pending points,
    the start-up design shared by trial number), so concurrent mixtures stay apart. Blind to
    them, four GP workers asking at once propose within about 0.02 of one another (L1; see
    tests/samplers/gp/test_pending.py)."""
    config = write_slow_config(tmp_path / "gp.toml", seconds=2.0, n_trials=12, sampler="gp")
    text = open(config).read().replace('name = "gp"', 'name = "gp"\nn_startup_trials = 4')
    open(config, "w").write(text)
    assert cli("study", "create", "--config", config, cwd=tmp_path).returncode == 0
    run = cli("study", "optimize", "--study-name", "surface-powerlaw5", "--jobs", "4",
              "--no-progress", cwd=tmp_path, timeout=600)
    assert run.returncode == 0, run.stderr
    study = optuna.load_study(study_name="surface-powerlaw5",
                              storage=f"sqlite:///{tmp_path / 'optuna-mix.db'}")
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) == 12

    def overlap(a, b) -> bool:
        return a.datetime_start < b.datetime_complete and b.datetime_start < a.datetime_complete

    def mixture(t):
        return [t.params[f"mix.{d}"] for d in DOMAINS]

    concurrent = [(a, b) for a, b in itertools.combinations(complete, 2) if overlap(a, b)]
    assert len(concurrent) >= 12  # four workers really ran side by side
    smallest = min(float(np.abs(np.subtract(mixture(a), mixture(b))).sum())
                   for a, b in concurrent)
    assert smallest > 0.05, smallest


def test_a_stalled_worker_whose_trial_was_failed_meanwhile_carries_on(tmp_path):
    """SIGSTOP past the grace period (a frozen VM, a swapped-out node): another worker fails
    the silent trial and reruns its mixture; the stalled one, resumed, drops its result
    with a warning and goes on, and the budget still ends exact."""
    config = write_slow_config(tmp_path / "slow.toml", seconds=3.0, n_trials=4)
    assert cli("study", "create", "--config", config, cwd=tmp_path).returncode == 0
    storage = f"sqlite:///{tmp_path / 'optuna-mix.db'}"
    worker = ["study", "optimize", "--study-name", "surface-powerlaw5", "--no-progress",
              "--heartbeat-interval", "1", "--grace-period", "2"]
    stalled = subprocess.Popen([sys.executable, "-m", "optuna_mix.cli", *worker],
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    deadline = time.time() + 120
    while time.time() < deadline:
        study = optuna.load_study(study_name="surface-powerlaw5", storage=storage)
        if any(len(t.params) == len(DOMAINS) for t in
               study.get_trials(states=(TrialState.RUNNING,))):
            break
        time.sleep(0.1)
    stalled.send_signal(signal.SIGSTOP)
    time.sleep(3)  # past the grace period
    other = subprocess.Popen([sys.executable, "-m", "optuna_mix.cli", *worker], cwd=tmp_path,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while time.time() < deadline:  # the other worker has failed the silent trial
        study = optuna.load_study(study_name="surface-powerlaw5", storage=storage)
        if study.get_trials(states=(TrialState.FAIL,)):
            break
        time.sleep(0.1)
    stalled.send_signal(signal.SIGCONT)
    _, stalled_err = stalled.communicate(timeout=120)
    _, other_err = other.communicate(timeout=120)
    assert stalled.returncode == 0, stalled_err
    assert other.returncode == 0, other_err
    assert "was failed by another worker while this one was stalled" in stalled_err
    study = optuna.load_study(study_name="surface-powerlaw5", storage=storage)
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 4
    assert not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))
    (failed,) = [t for t in study.get_trials(states=(TrialState.FAIL,))
                 if not t.user_attrs[FAIL_REASON_ATTR].startswith("not run:")]
    assert failed.user_attrs[FAIL_REASON_ATTR].startswith("no heartbeat for 2 s")


def test_sigterm_to_a_parallel_compare_stops_its_workers_and_a_rerun_completes(tmp_path):
    config = write_slow_config(tmp_path / "slow.toml", seconds=1.5, n_trials=3)
    storage = f"sqlite:///{tmp_path / 'cmp.db'}"
    args = [sys.executable, "-m", "optuna_mix.cli", "study", "compare", "--config", config,
            "--approaches", "sobol,uniform,dml", "--seeds", "1", "--jobs", "2", "--storage",
            storage, "--no-progress", "--no-dashboard", "--output-dir", str(tmp_path)]
    parent = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)

    def running() -> int:
        try:
            return sum(len(optuna.load_study(study_name=s, storage=storage).get_trials(
                states=(TrialState.RUNNING,))) for s in optuna.get_all_study_names(storage))
        except Exception:  # the storage is being made
            return 0

    deadline = time.time() + 180
    while running() < 2 and time.time() < deadline:  # both workers training
        time.sleep(0.2)
    parent.send_signal(signal.SIGTERM)
    _, err = parent.communicate(timeout=120)
    assert parent.returncode == 143, err
    names = optuna.get_all_study_names(storage)
    studies = [optuna.load_study(study_name=s, storage=storage) for s in names]
    assert not any(s.get_trials(states=(TrialState.RUNNING,)) for s in studies)
    stopped = [t for s in studies for t in s.get_trials(states=(TrialState.FAIL,))]
    assert len(stopped) == 2  # one running trial per worker, failed with its reason
    assert all(t.user_attrs[FAIL_REASON_ATTR].startswith("interrupted by SIGTERM")
               for t in stopped)
    finished = sum(len(s.get_trials(states=(TrialState.COMPLETE,))) for s in studies)
    assert finished < 9  # the third study never started, or not all of it ran

    rerun = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    studies = [optuna.load_study(study_name=s, storage=storage)
               for s in optuna.get_all_study_names(storage)]
    assert [len(s.get_trials(states=(TrialState.COMPLETE,))) for s in studies] == [3, 3, 3]
