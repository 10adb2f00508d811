"""docs/distributed.md and its files: the SLURM script and the Kubernetes Job run, on loopback.

The script is run as SLURM would run one array task, the Job's container command as
Kubernetes would start it (its env, the Secret given here, ``$(VAR)`` expanded), both on
surface studies in a SQLite file; four array tasks started at once on a fresh PostgreSQL
database (where the server is reachable) all create the study, racing to make Optuna's tables,
and share one budget.
The files shown on the page must be the files.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from helpers import DOMAINS, REPO, scratch_database
from optuna_mix.attrs import FAIL_REASON_ATTR, RETRY_OF_ATTR
from optuna_mix.storage import open_storage

PAGE = REPO / "docs" / "distributed.md"
SLURM = REPO / "docs" / "distributed" / "slurm-workers.sh"
K8S = REPO / "docs" / "distributed" / "k8s-workers.yaml"
PG_ADMIN = os.environ.get("OPTUNA_MIX_TEST_POSTGRES",
                          "postgresql+psycopg://root@127.0.0.1:5432/postgres")
BIN = str(Path(sys.executable).parent)  # where this environment's `optuna-mix` is


def surface_config(path: Path, *, n_trials: int, seconds: float = 0.0) -> Path:
    domains = "\n".join(f"[domains.{d}]" for d in DOMAINS)
    path.write_text(f"""
[study]
name = "rehearsal"
n_trials = {n_trials}

[sampler]
name = "sobol"

[objective]
kind = "surface"
seconds = {seconds}

[storage]
heartbeat_interval = 1
grace_period = 5

{domains}
""")
    return path


def environment(**variables: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPTUNA_MIX_", "SLURM_"))}
    env["PATH"] = BIN + os.pathsep + env.get("PATH", "")
    assert shutil.which("optuna-mix", path=env["PATH"]), f"no optuna-mix console script in {BIN}"
    return {**env, **variables}


def finished(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(states=(TrialState.COMPLETE,))


# -- the SLURM array script ---------------------------------------------------------------------

def test_slurm_script_is_valid_bash():
    result = subprocess.run(["bash", "-n", str(SLURM)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_slurm_script_asks_for_an_array_of_gpu_tasks_warned_before_the_kill():
    options = re.findall(r"^#SBATCH\s+(\S+)", SLURM.read_text(), flags=re.M)
    assert "--array=0-7" in options
    assert "--gres=gpu:1" in options
    signal = next(o for o in options if o.startswith("--signal="))
    # B: the batch shell, which the script's exec makes the worker
    assert re.fullmatch(r"--signal=B:TERM@\d+", signal)


def run_task(task: int, env: dict[str, str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(["bash", str(SLURM)], cwd=cwd,
                            env={**env, "SLURM_ARRAY_TASK_ID": str(task)},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_slurm_task_runs_the_study_to_its_budget(tmp_path):
    config = surface_config(tmp_path / "surface.toml", n_trials=4)
    url = f"sqlite:///{tmp_path / 'study.db'}"
    task = run_task(0, environment(OPTUNA_MIX_STORAGE=url, OPTUNA_MIX_CONFIG=str(config)),
                    tmp_path)
    out, _ = task.communicate(timeout=120)
    assert task.returncode == 0, out
    study = optuna.load_study(study_name="dolma5-25m", storage=url)  # the script's default name
    assert len(finished(study)) == 4
    assert not study.get_trials(states=(TrialState.RUNNING, TrialState.FAIL))


def test_slurm_script_names_what_is_missing(tmp_path):
    result = subprocess.run(["bash", str(SLURM)], cwd=tmp_path, env=environment(),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "OPTUNA_MIX_STORAGE" in result.stderr


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A fresh database on the PostgreSQL server (as tests/test_servers.py), dropped after."""
    with scratch_database(PG_ADMIN, "PostgreSQL") as url:
        yield url


def test_four_slurm_tasks_on_a_new_database_create_and_share_the_budget_exactly_in_postgres(
        pg_database, tmp_path):
    config = surface_config(tmp_path / "surface.toml", n_trials=8, seconds=0.2)
    env = environment(OPTUNA_MIX_STORAGE=pg_database, OPTUNA_MIX_CONFIG=str(config),
                      OPTUNA_MIX_STUDY="slurm")
    assert "by hand" not in SLURM.read_text()  # nothing is run before the array
    # an array starting at once on a database without Optuna's tables: each task's create
    # races the others' to make them, then every task optimizes
    tasks = [run_task(i, env, tmp_path) for i in range(4)]
    for task in tasks:
        out, _ = task.communicate(timeout=240)
        assert task.returncode == 0, out
    assert optuna.get_all_study_names(open_storage(pg_database)) == ["slurm"]
    study = optuna.load_study(study_name="slurm", storage=open_storage(pg_database))
    assert len(finished(study)) == 8  # exactly the budget, not one more
    assert not study.get_trials(states=(TrialState.RUNNING,))
    for t in study.get_trials(states=(TrialState.FAIL,)):  # only a lost race for a slot
        assert t.user_attrs[FAIL_REASON_ATTR].startswith("not run:")


# -- the Kubernetes Job -------------------------------------------------------------------------

def manifest() -> dict:
    return yaml.safe_load(K8S.read_text())


def test_k8s_job_runs_8_gpu_workers_with_time_to_fail_their_trials():
    job = manifest()
    assert (job["apiVersion"], job["kind"]) == ("batch/v1", "Job")
    spec = job["spec"]
    assert spec["parallelism"] == 8 and spec["completions"] == 8
    assert spec["completionMode"] == "Indexed"
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] in ("OnFailure", "Never") and spec["backoffLimit"] >= 1
    assert pod["terminationGracePeriodSeconds"] >= 30  # a worker fails its trial in about 1 s
    (container,) = pod["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    env = {e["name"]: e for e in container["env"]}
    assert env["OPTUNA_MIX_STORAGE"]["valueFrom"]["secretKeyRef"]["key"] == "url"
    assert "--storage" in container["command"] and "$(OPTUNA_MIX_STORAGE)" in container["command"]


def expand(arg: str, env: dict[str, str]) -> str:
    """Kubernetes' expansion of a command: ``$(VAR)`` from the container's env, ``$$`` is ``$``."""
    def one(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))

    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)", one, arg)


def test_k8s_container_command_runs_the_study_to_its_budget(tmp_path):
    from optuna_mix.config import load_config
    from optuna_mix.runner import create_mix_study

    pod = manifest()["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    url = f"sqlite:///{tmp_path / 'study.db'}"
    secrets = {("optuna-mix-storage", "url"): url}  # the Secret the page creates
    env = {}
    for e in container["env"]:
        if "value" in e:
            env[e["name"]] = e["value"]
        else:
            ref = e["valueFrom"]["secretKeyRef"]
            env[e["name"]] = secrets[(ref["name"], ref["key"])]
    mounts = {m["mountPath"]: tmp_path / m["name"] for m in container.get("volumeMounts", [])}
    command = [str(mounts.get(arg, arg)) for arg in (expand(a, env) for a in container["command"])]

    # the study the page creates before `kubectl apply`, as a surface under the Job's name
    config = load_config(surface_config(tmp_path / "surface.toml", n_trials=4))
    create_mix_study(config, open_storage(url), study_name=env["OPTUNA_MIX_STUDY"])
    result = subprocess.run(command, cwd=tmp_path, env=environment(**env), capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    study = optuna.load_study(study_name=env["OPTUNA_MIX_STUDY"], storage=url)
    assert len(finished(study)) == 4
    assert not study.get_trials(states=(TrialState.RUNNING, TrialState.FAIL))


# -- the page -----------------------------------------------------------------------------------

FENCE = re.compile(r"^\[[^\]]+\]\((?P<target>[^)\s]+)\):\n+```[\w-]*\n(?P<body>.*?)^```$",
                   flags=re.M | re.S)


def test_every_file_shown_on_the_page_is_that_file():
    shown = {(PAGE.parent / m["target"]).resolve(): m["body"]
             for m in FENCE.finditer(PAGE.read_text())}
    assert set(shown) == {SLURM.resolve(), K8S.resolve()}
    for path, body in shown.items():
        assert body == path.read_text(), f"docs/distributed.md shows another {path.name}"


def test_the_page_links_resolve():
    for target in re.findall(r"\]\(([^)\s#]+)(?:#[^)]*)?\)", PAGE.read_text()):
        if "://" not in target:
            assert (PAGE.parent / target).exists(), target
    assert "docs/distributed.md" in (REPO / "README.md").read_text()
    assert "pg-connections.md" in (REPO / "docs" / "benchmarks" / "README.md").read_text()


def test_the_pages_failed_trials_listing_runs(tmp_path):
    (snippet,) = re.findall(r"^```python\n(.*?)^```$", PAGE.read_text(), flags=re.M | re.S)
    url = f"sqlite:///{tmp_path / 'study.db'}"
    storage = open_storage(url)
    study = optuna.create_study(study_name="listed", storage=storage)
    dist = optuna.distributions.FloatDistribution(0, 1)
    study.add_trial(optuna.create_trial(state=TrialState.FAIL, params={"x": 0.5},
                                        distributions={"x": dist},
                                        user_attrs={FAIL_REASON_ATTR: "no heartbeat for 180 s"}))
    study.add_trial(optuna.create_trial(value=1.0, params={"x": 0.5}, distributions={"x": dist},
                                        user_attrs={RETRY_OF_ATTR: 0}))
    study.add_trial(optuna.create_trial(value=2.0, params={"x": 0.1}, distributions={"x": dist}))
    result = subprocess.run([sys.executable, "-c", snippet], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60,
                            env=environment(OPTUNA_MIX_STUDY="listed", OPTUNA_MIX_STORAGE=url))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["0 FAIL no heartbeat for 180 s ",
                                          "1 COMPLETE  (reruns trial 0)"]
