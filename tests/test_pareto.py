"""``criterion = "pareto"``: one objective per validation set, end to end.

The trial values are the losses in the config's order, the study is multi-objective with the
validation sets as metric names, samplers that cannot run it are refused at create, and the
report prints the front (every row non-dominated), the mixture closest to the ideal point and
its references; on an analytic surface and on the embedded corpus.
"""

from __future__ import annotations

import json
import tomllib

import numpy as np
import optuna
import pytest
from click.testing import CliRunner
from optuna.trial import TrialState

from helpers import DOMAINS, STUDIES, run_study
from optuna_mix.cli import cli
from optuna_mix.config import ConfigError, parse_config
from optuna_mix.report import build_report
from optuna_mix.report.data import pareto_front
from optuna_mix.report.figures import figures
from optuna_mix.runner import create_mix_study, load_mix_study, optimize
from optuna_mix.storage import open_storage

SURFACE = STUDIES / "surface-pareto5.toml"


def _raw(**changes) -> dict:
    raw = tomllib.loads(SURFACE.read_text())
    for table, values in changes.items():
        raw[table] = {**raw.get(table, {}), **values}
    return raw


_run = run_study


@pytest.mark.parametrize(
    "losses, front, distance",
    [
        ([[1.0, 2.0]], [0], [0.0]),
        ([[1.0, 2.0], [2.0, 1.0], [2.0, 2.0]], [0, 1], [1.0, 1.0]),  # (2, 2) is dominated
        ([[1.0, 1.0], [1.0, 1.0], [2.0, 0.5]], [0, 1, 2], [1.0, 1.0, 1.0]),  # ties both kept
        ([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]], [0], [0.0]),  # better on one, equal elsewhere
        ([[0.0, 4.0], [1.0, 1.0], [4.0, 0.0]], [0, 1, 2], [1.0, np.hypot(0.25, 0.25), 1.0]),
    ],
)
def test_pareto_front_keeps_the_non_dominated_rows_with_their_distance_to_the_ideal(
        losses, front, distance):
    got, d = pareto_front(np.array(losses))
    assert got.tolist() == front
    assert d == pytest.approx(distance)


@pytest.mark.parametrize("sampler", ["sobol", "gp"])
def test_a_pareto_trial_has_its_losses_as_values_in_the_config_order(sqlite_url, sampler):
    study = _run(sqlite_url, _raw(study={"n_trials": 7},
                                  sampler={"name": sampler, **({"pareto_startup_trials": 4}
                                                               if sampler == "gp" else {})}))
    assert study.metric_names == DOMAINS
    assert study.directions == [optuna.study.StudyDirection.MINIMIZE] * len(DOMAINS)
    done = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(done) == 7
    for t in done:
        assert t.values == [t.user_attrs["losses"][d] for d in DOMAINS]
        truth = t.user_attrs["true_losses"]
        assert set(truth) == set(DOMAINS)  # the benchmark scores the noise-free losses
        assert sum(t.user_attrs["mix"].values()) == pytest.approx(1.0)
    if sampler == "gp":
        how = [t.system_attrs.get("optuna_mix:gp:acquisition", "") for t in done[4:]]
        assert all(h.startswith("qlognei of a hypervolume scalarisation (weights ")
                   for h in how), how


def test_the_gp_proposes_apart_from_a_running_trial_in_a_plain_optuna_study():
    """Reused in a plain multi-objective Optuna study (no metric names, no losses attr):
    the GP models the values, and a second ask while the first trial runs differs."""
    from optuna_mix import suggest_mixture
    from optuna_mix.samplers import SimplexGPSampler
    from optuna_mix.surfaces import make_surface

    surface = make_surface("dml", 4, seed=1)
    study = optuna.create_study(directions=["minimize"] * 4,
                                sampler=SimplexGPSampler(seed=0, pareto_startup_trials=4))

    def objective(trial):
        w = np.array(list(suggest_mixture(trial, [f"d{i}" for i in range(4)]).values()))
        return list(map(float, surface.losses(w)))

    study.optimize(objective, n_trials=6)
    first, second = study.ask(), study.ask()
    w1 = [first.params.get(f"d{i}") for i in range(4)]
    suggest_mixture(first, [f"d{i}" for i in range(4)])
    suggest_mixture(second, [f"d{i}" for i in range(4)])
    a = np.array(list(first.user_attrs["mix"].values()))
    b = np.array(list(second.user_attrs["mix"].values()))
    assert not np.allclose(a, b, atol=1e-3), (w1, a, b)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"sampler": {"name": "dml"}}, "sampler 'dml' cannot run criterion = \"pareto\""),
        ({"sampler": {"name": "bimix"}}, "sampler 'bimix' cannot run criterion = \"pareto\""),
        ({"study": {"pruner": "median"}}, "pruner 'median' with criterion pareto"),
    ],
)
def test_a_pareto_config_a_sampler_or_pruner_cannot_run_is_refused(changes, message):
    with pytest.raises(ConfigError) as refused:
        parse_config(_raw(**changes))
    assert message in str(refused.value)


def test_the_cli_refuses_a_pareto_study_with_a_mixing_law_sampler_in_one_line(in_tmp):
    run = CliRunner().invoke(cli, ["study", "create", "--config", str(SURFACE),
                                   "--sampler", "regmix"])
    assert run.exit_code == 2
    assert run.output.strip().count("\n") == 0 and "cannot run criterion" in run.output
    assert not (in_tmp / "optuna-mix.db").exists() or not optuna.get_all_study_names(
        "sqlite:///optuna-mix.db")


def test_joining_a_pareto_study_with_a_single_objective_config_is_refused(sqlite_url):
    create_mix_study(parse_config(_raw()), open_storage(sqlite_url))
    with pytest.raises(ValueError, match="already exists with 5 objectives"):
        create_mix_study(parse_config(_raw(study={"criterion": "mean"})),
                         open_storage(sqlite_url), load_if_exists=True)


def test_the_cli_runs_a_pareto_surface_study_and_reports_its_front(in_tmp):
    config = in_tmp / "pareto.toml"
    config.write_text(SURFACE.read_text().replace("n_trials = 32", "n_trials = 10")
                      .replace('name = "gp"', 'name = "gp"\npareto_startup_trials = 5'))
    runner = CliRunner()
    assert runner.invoke(cli, ["study", "create", "--config", str(config)]).exit_code == 0
    run = runner.invoke(cli, ["study", "optimize", "--study-name", "surface-pareto5",
                              "--no-progress"])
    assert run.exit_code == 0, run.output
    assert "pareto front:" in run.output and "closest to the ideal point: trial #" in run.output
    text = runner.invoke(cli, ["study", "report", "--study-name", "surface-pareto5"])
    assert text.exit_code == 0, text.output
    assert "pareto front:" in text.output and "closest to it: trial #" in text.output
    data = json.loads(runner.invoke(cli, ["study", "report", "--study-name", "surface-pareto5",
                                          "--format", "json"]).output)
    front = np.array([[row["losses"][d] for d in DOMAINS] for row in data["front"]])
    study = optuna.load_study(study_name="surface-pareto5", storage="sqlite:///optuna-mix.db")
    every = np.array([t.values for t in study.get_trials(states=(TrialState.COMPLETE,))])
    for row in front:  # no trial is better on every set and strictly better on one
        assert not np.any(np.all(every <= row, axis=1) & np.any(every < row, axis=1))
    on_front = {t.number for t in study.best_trials}
    assert {row["number"] for row in data["front"]} == on_front
    distances = [row["value"] for row in data["front"]]
    assert distances == sorted(distances) and data["best"]["number"] == data["front"][0]["number"]
    assert data["ideal"] == pytest.approx({d: float(front[:, i].min())
                                           for i, d in enumerate(DOMAINS)})


def test_the_report_of_a_pareto_study_compares_the_closest_mixture_with_uniform(sqlite_url):
    from optuna_mix.samplers import UniformMixtureSampler

    _run(sqlite_url, _raw(study={"n_trials": 6}, sampler={"name": "sobol"}))
    mix = load_mix_study("surface-pareto5", open_storage(sqlite_url))
    mix.study.sampler = UniformMixtureSampler()  # one uniform trial among the searched ones
    optimize(mix, n_trials=1, show_progress=False)
    report = build_report(mix.study, DOMAINS, storage=open_storage(sqlite_url))
    assert report.pareto and [r.label for r in report.references] == ["uniform"]
    assert set(report.improvement_over(report.references[0])) == set(DOMAINS)
    assert {"pareto-front", "per-domain-losses"} <= set(figures(report))


def test_the_front_figure_of_a_plain_optuna_study_reads_the_trial_values():
    # no metric names and no losses attr: the objectives are the values, by position
    from optuna_mix import suggest_mixture
    from optuna_mix.surfaces import make_surface

    surface = make_surface("powerlaw", 3, seed=0)
    study = optuna.create_study(directions=["minimize"] * 3,
                                sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda t: list(map(float, surface.losses(np.array(list(
        suggest_mixture(t, list(surface.domains)).values()))))), n_trials=8)
    report = build_report(study, list(surface.domains))
    (trace,) = figures(report)["pareto-front"].data
    columns = [list(d["values"]) for d in trace.dimensions]
    assert [d["label"] for d in trace.dimensions] == ["objective 0", "objective 1",
                                                      "objective 2"]
    on_front = {r.number for r in report.good}
    rows = sorted(study.trials, key=lambda t: t.number in on_front)  # as the figure draws
    assert columns == [[t.values[i] for t in rows] for i in range(3)]


@pytest.mark.parametrize("command", ["compare", "transfer"])
def test_compare_and_transfer_refuse_a_pareto_study_with_the_reason(in_tmp, command):
    runner = CliRunner()
    if command == "compare":
        run = runner.invoke(cli, ["study", "compare", "--config", str(SURFACE), "--seeds", "1"])
        assert run.exit_code == 2 and "pareto study has one per validation set" in run.output
        return
    assert runner.invoke(cli, ["study", "create", "--config", str(SURFACE)]).exit_code == 0
    run = runner.invoke(cli, ["study", "transfer", "--study-name", "surface-pareto5",
                              "--preset", "l"])
    assert run.exit_code == 2 and "is a pareto study" in run.output


def test_a_pareto_study_on_the_embedded_corpus_runs_from_the_cli(in_tmp):
    """``study create --criterion pareto`` on the demo config, shrunk to seconds."""
    text = (STUDIES / "demo.toml").read_text()
    for old, new in [("n_trials = 16", "n_trials = 3"), ('name = "gp"', 'name = "sobol"'),
                     ("n_startup_trials = 8", ""), ("tokens = 393_216", "tokens = 4_096"),
                     ("val_tokens = 16_384", "val_tokens = 1_024"),
                     ("eval_interval = 96", "eval_interval = 0")]:
        assert old in text, old
        text = text.replace(old, new)
    config = in_tmp / "demo.toml"
    config.write_text(text)
    runner = CliRunner()
    made = runner.invoke(cli, ["study", "create", "--config", str(config),
                               "--criterion", "pareto"])
    assert made.exit_code == 0, made.output
    run = runner.invoke(cli, ["study", "optimize", "--study-name", "demo", "--no-progress"])
    assert run.exit_code == 0, run.output
    study = optuna.load_study(study_name="demo", storage="sqlite:///optuna-mix.db")
    done = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(done) == 3 and study.metric_names == DOMAINS
    assert all(t.values == [t.user_attrs["losses"][d] for d in DOMAINS] for t in done)
    report = runner.invoke(cli, ["study", "report", "--study-name", "demo"])
    assert report.exit_code == 0 and "pareto front:" in report.output, report.output


def test_the_gp_starts_a_pareto_study_with_its_own_sobol_design():
    """16 start-up trials by default (the front's extent first), whatever n_startup_trials
    says for one objective; a negative count is refused."""
    from optuna_mix import suggest_mixture
    from optuna_mix.samplers import SimplexGPSampler, SobolMixtureSampler

    names = [f"d{i}" for i in range(3)]

    def run(sampler) -> list[list[float]]:
        study = optuna.create_study(directions=["minimize"] * 3, sampler=sampler)
        study.optimize(lambda t: list(suggest_mixture(t, names).values()), n_trials=6)
        assert not any("optuna_mix:gp:acquisition" in t.system_attrs for t in study.trials)
        return [list(t.user_attrs["mix"].values()) for t in study.trials]

    assert run(SimplexGPSampler(seed=2, n_startup_trials=1)) == run(SobolMixtureSampler(seed=2))
    with pytest.raises(ValueError, match="pareto_startup_trials must be >= 0"):
        SimplexGPSampler(pareto_startup_trials=-1)


def test_a_pareto_report_is_published_to_the_dashboard(sqlite_url):
    from optuna_mix.report import publish

    study = _run(sqlite_url, _raw(study={"n_trials": 6}, sampler={"name": "sobol"}))
    storage = open_storage(sqlite_url)
    saved, noted = publish(study, storage, build_report(study, DOMAINS, storage=storage))
    assert "pareto-front" in saved and noted
    attrs = storage.get_study_system_attrs(storage.get_study_id_from_name(study.study_name))
    assert any(k.startswith("dashboard:plot_data:pareto-front:") for k in attrs), list(attrs)
    note = "".join(attrs[f"dashboard:note_str:{i}"] for i in range(len(attrs))
                   if f"dashboard:note_str:{i}" in attrs)
    assert "pareto front:" in note and "closest to it: trial #" in note
