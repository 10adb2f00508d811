"""The optuna-mix CLI end to end on SQLite: create, optimize, report, list, errors, Ctrl-C."""

from __future__ import annotations

import subprocess
import sys

import optuna
import pytest
from optuna.trial import TrialState

from helpers import DOMAINS, STUDIES
from optuna_mix import cli
from optuna_mix.objective import SurfaceEvaluator

SURFACE = str(STUDIES / "surface-powerlaw5.toml")
HELDOUT = str(STUDIES / "surface-heldout5.toml")  # validation sets that are no domain


def run(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "optuna_mix.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize("sampler", ["sobol", "uniform", "fixed"])
def test_create_then_optimize_gives_complete_trials_on_the_simplex(sampler, tmp_path):
    name = f"pl-{sampler}"
    created = run("study", "create", "--config", SURFACE, "--sampler", sampler,
                  "--study-name", name, cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    done = run("study", "optimize", "--study-name", name, "--n-trials", "20", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "best trial" in done.stdout
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{tmp_path / 'optuna-mix.db'}")
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(trials) == 20 == len(study.trials)
    for t in trials:
        assert abs(sum(t.user_attrs["mix"].values()) - 1) <= 1e-9
        assert set(t.user_attrs["losses"]) == set(DOMAINS)
        assert t.value == pytest.approx(sum(t.user_attrs["losses"].values()) / 5)
    if sampler == "fixed":
        assert trials[0].user_attrs["mix"]["web"] == pytest.approx(0.7403, abs=1e-4)


def test_optimize_without_n_trials_fills_the_budget_and_a_rerun_carries_on(tmp_path):
    assert run("study", "create", "--config", SURFACE, cwd=tmp_path).returncode == 0
    first = run("study", "optimize", "--study-name", "surface-powerlaw5", cwd=tmp_path)
    assert first.returncode == 0 and "20 trials finished in this run" in first.stdout
    again = run("study", "optimize", "--study-name", "surface-powerlaw5", cwd=tmp_path)
    assert again.returncode == 0 and "0 trials finished in this run" in again.stdout


def test_report_and_list(tmp_path):
    run("study", "create", "--config", SURFACE, cwd=tmp_path)
    run("study", "optimize", "--study-name", "surface-powerlaw5", "--n-trials", "12", cwd=tmp_path)
    report = run("study", "report", "--study-name", "surface-powerlaw5", "--top", "5", cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    assert "top mixtures" in report.stdout and "per-domain validation loss" in report.stdout
    assert "among the best mixtures (5 trials)" in report.stdout  # --top 5
    assert "the GP's recommendation" in report.stdout  # a GP fitted for the report: any sampler
    listed = run("study", "list", cwd=tmp_path)
    assert "surface-powerlaw5\t12 trials" in listed.stdout


def test_report_of_a_gp_study_gives_the_model_recommendation(tmp_path):
    run("study", "create", "--config", SURFACE, "--sampler", "gp", cwd=tmp_path)
    run("study", "optimize", "--study-name", "surface-powerlaw5", "--n-trials", "8", cwd=tmp_path)
    report = run("study", "report", "--study-name", "surface-powerlaw5", "--no-dashboard",
                 cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    line = next(x for x in report.stdout.splitlines() if "the GP's recommendation" in x)
    assert "trial #" in line and "predicted" in line
    weights = [float(part.split()[-1]) for part in line.split(": ")[-1].split(", ")]
    assert len(weights) == len(DOMAINS) and abs(sum(weights) - 1.0) < 2e-3


@pytest.mark.parametrize(
    "args, message",
    [
        (("study", "optimize", "--study-name", "nope"), "no study named 'nope'"),
        (("study", "create", "--config", "missing.toml"), "cannot read config"),
        (("study", "create"), "Missing option '--config'"),
        (("study", "create", "--config", SURFACE, "--sampler", "magic"), "unknown sampler"),
        (("study", "list", "--storage", "not-a-url"), "is not a URL"),
        (("study", "optimize", "--study-name", "x", "--n-trials", "0"), "--n-trials"),
        (("study", "list", "--storage", "postgresql://root@127.0.0.1:5432/no_such_db"),
         "cannot open storage"),
        (("study", "list", "--storage", "mysql+mysqldb://root@127.0.0.1/test"),
         "pip install 'optuna-mix[mysql]'"),
        (("study", "list", "--storage", "oracle+nosuch://h/db"), "SQLAlchemy knows no driver"),
        (("study", "list", "--storage", "couch://h/db"), "unknown database 'couch'"),
        (("study", "optimize", "--study-name", "x", "--jobs", "0"), "--jobs"),
        (("study", "create", "--config", HELDOUT, "--sampler", "bimix"),
         "validation sets (heldout_web, downstream, math) are not the domains"),
    ],
)
def test_user_errors_exit_2_with_one_line(args, message, tmp_path):
    result = run(*args, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_creating_twice_needs_load_if_exists(tmp_path):
    assert run("study", "create", "--config", SURFACE, cwd=tmp_path).returncode == 0
    again = run("study", "create", "--config", SURFACE, cwd=tmp_path)
    assert again.returncode == 2 and "already exists" in again.stderr
    joined = run("study", "create", "--config", SURFACE, "--load-if-exists", cwd=tmp_path)
    assert joined.returncode == 0


def test_ctrl_c_fails_only_the_running_trial_and_a_rerun_carries_on(in_tmp, monkeypatch):
    original = SurfaceEvaluator.__call__

    def interrupt_at_trial_3(self, trial, weights):
        if trial.number == 3:
            raise KeyboardInterrupt
        return original(self, trial, weights)

    monkeypatch.setattr(SurfaceEvaluator, "__call__", interrupt_at_trial_3)
    monkeypatch.setattr(sys, "argv", ["optuna-mix", "study", "create", "--config", SURFACE])
    with pytest.raises(SystemExit) as created:
        cli.main()
    assert created.value.code in (0, None)
    monkeypatch.setattr(
        sys, "argv", ["optuna-mix", "study", "optimize", "--study-name", "surface-powerlaw5"]
    )
    with pytest.raises(SystemExit) as interrupted:
        cli.main()
    assert interrupted.value.code == 130
    study = optuna.load_study(study_name="surface-powerlaw5", storage="sqlite:///optuna-mix.db")
    states = [t.state for t in study.trials]
    assert states == [TrialState.COMPLETE] * 3 + [TrialState.FAIL]
    assert study.trials[3].user_attrs["fail_reason"] == "interrupted by Ctrl-C while training"

    monkeypatch.setattr(SurfaceEvaluator, "__call__", original)
    with pytest.raises(SystemExit) as resumed:
        cli.main()
    assert resumed.value.code in (0, None)
    study = optuna.load_study(study_name="surface-powerlaw5", storage="sqlite:///optuna-mix.db")
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 20


def test_a_reference_that_fails_twice_ends_optimize_with_one_line_and_exit_2(
        in_tmp, monkeypatch, capsys):
    def crash(self, trial, weights):
        raise RuntimeError("the proxy crashed")

    monkeypatch.setattr(SurfaceEvaluator, "__call__", crash)
    monkeypatch.setattr(sys, "argv", ["optuna-mix", "study", "create", "--config", SURFACE,
                                      "--criterion", "excess"])
    with pytest.raises(SystemExit) as created:
        cli.main()
    assert created.value.code in (0, None)
    capsys.readouterr()
    monkeypatch.setattr(sys, "argv", ["optuna-mix", "study", "optimize", "--study-name",
                                      "surface-powerlaw5", "--no-progress"])
    with pytest.raises(SystemExit) as stopped:
        cli.main()
    assert stopped.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == ("optuna-mix: error: the excess criterion's reference mixture is not "
                       "trained (trial #1 failed: RuntimeError: the proxy crashed): rerun "
                       "`optuna-mix study optimize`, which trains it first")
    study = optuna.load_study(study_name="surface-powerlaw5", storage="sqlite:///optuna-mix.db")
    assert [t.state for t in study.trials] == [TrialState.FAIL] * 2  # no trial trained after


def test_heartbeat_settings_come_from_the_flags_over_the_config(tmp_path, monkeypatch):
    from click.testing import CliRunner

    import importlib

    study_commands = importlib.import_module("optuna_mix.cli.study")  # the module, not the group

    url = f"sqlite:///{tmp_path / 'hb.db'}"
    config = tmp_path / "hb.toml"
    config.write_text(open(SURFACE).read() + "\n[storage]\nheartbeat_interval = 7\ngrace_period = 70\n")
    runner = CliRunner()
    assert runner.invoke(cli.cli, ["study", "create", "--config", str(config), "--storage", url]).exit_code == 0
    opened = []
    real = study_commands.open_storage
    monkeypatch.setattr(study_commands, "open_storage",
                        lambda *a, **kw: opened.append(kw) or real(*a, **kw))
    base = ["study", "optimize", "--study-name", "surface-powerlaw5", "--storage", url,
            "--n-trials", "1", "--no-progress", "--dashboard-every", "0"]
    assert runner.invoke(cli.cli, base).exit_code == 0
    assert opened[-1] == {"heartbeat_interval": 7, "grace_period": 70}
    assert runner.invoke(cli.cli, base + ["--grace-period", "30"]).exit_code == 0
    assert opened[-1] == {"heartbeat_interval": 7, "grace_period": 30}
    bad = runner.invoke(cli.cli, base + ["--heartbeat-interval", "80"])
    assert bad.exit_code == 2 and "must be longer than heartbeat_interval (80)" in bad.output


@pytest.mark.parametrize("signame, code", [("SIGTERM", 143), ("SIGINT", 130)])
def test_a_signal_fails_the_running_trial_with_its_reason_and_exits_128_plus(
    signame, code, in_tmp, monkeypatch
):
    import os
    import signal

    original = SurfaceEvaluator.__call__

    def signal_at_trial_2(self, trial, weights):
        if trial.number == 2:
            os.kill(os.getpid(), getattr(signal, signame))  # as a scheduler or Ctrl-C would
        return original(self, trial, weights)

    monkeypatch.setattr(SurfaceEvaluator, "__call__", signal_at_trial_2)
    monkeypatch.setattr(sys, "argv", ["optuna-mix", "study", "create", "--config", SURFACE])
    with pytest.raises(SystemExit):
        cli.main()
    monkeypatch.setattr(sys, "argv", ["optuna-mix", "study", "optimize", "--study-name",
                                      "surface-powerlaw5", "--no-progress"])
    with pytest.raises(SystemExit) as stopped:
        cli.main()
    assert stopped.value.code == code
    study = optuna.load_study(study_name="surface-powerlaw5", storage="sqlite:///optuna-mix.db")
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2 + [TrialState.FAIL]
    assert study.trials[2].user_attrs["fail_reason"] == f"interrupted by {signame} while training"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler was put back
