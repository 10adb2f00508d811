"""study report: clusters near the optimum, references, the GP's pick and utility, one set of
numbers in text, Markdown and JSON, figures titled with what they show, the refresh callback."""

from __future__ import annotations

import json
import numpy as np
import optuna
import pytest
from click.testing import CliRunner

from helpers import DOMAINS
from optuna_mix import cli
from optuna_mix.config import parse_config
from optuna_mix.report import DashboardRefresh, build_report, figures, markdown, publish, to_json
from optuna_mix.report.data import n_good
from optuna_mix.runner import create_mix_study, optimize
from optuna_mix.storage import open_storage
from optuna_mix.surfaces import make_surface


def _config(name: str, sampler: str, n_trials: int, **sampler_options) -> dict:
    return {
        "study": {"name": name, "n_trials": n_trials, "seed": 0},
        "sampler": {"name": sampler, **sampler_options},
        "objective": {"kind": "surface", "family": "powerlaw", "noise": 0.01, "seed": 0},
        "domains": {d: {} for d in DOMAINS},
    }


@pytest.fixture(scope="module")
def gp_study(tmp_path_factory):
    """A 40-trial gp study on a power-law surface with a known optimum, and its storage."""
    url = f"sqlite:///{tmp_path_factory.mktemp('report') / 'r.db'}"
    storage = open_storage(url)
    mix = create_mix_study(parse_config(_config("pl", "gp", 40)), storage)
    optimize(mix, show_progress=False)
    return mix, storage, url


@pytest.mark.parametrize("n, top, good", [
    (40, 0.25, 10), (20, 0.25, 8), (5, 0.25, 5), (40, 1, 1), (40, 1.0, 40), (40, 12, 12),
    (3, 12, 3),
])
def test_n_good(n, top, good):
    assert n_good(n, top) == good


@pytest.mark.parametrize("top", [0.0, 1.5, float("nan"), 0])
def test_n_good_refuses_what_is_neither_a_fraction_nor_a_count(top):
    with pytest.raises(ValueError, match="--top"):
        n_good(10, top)


def test_the_best_cluster_is_near_the_true_optimum_and_there_are_few(gp_study):
    mix, storage, _ = gp_study
    report = build_report(mix.study, DOMAINS, storage=storage, sampler="gp")
    optimum, _ = make_surface("powerlaw", DOMAINS, seed=0).optimum("mean")
    assert report.clusters is not None and 1 <= len(report.clusters.clusters) <= 5
    centre = report.clusters.clusters[0].centre
    assert 0.5 * np.abs(centre - optimum).sum() < 0.1
    assert all(c.size >= 2 for c in report.clusters.clusters)


def test_the_gp_pick_and_domain_utility_are_in_the_report(gp_study):
    mix, storage, _ = gp_study
    report = build_report(mix.study, DOMAINS, storage=storage, sampler="gp")
    assert report.pick is not None and report.pick.std > 0
    assert [u.domain for u in report.utility] == DOMAINS
    text = markdown(report)
    assert "is predicted to" in text and "domain utility" in text


def test_text_markdown_and_json_carry_the_same_numbers(gp_study):
    mix, storage, _ = gp_study
    report = build_report(mix.study, DOMAINS, storage=storage, sampler="gp")
    data = json.loads(to_json(report))
    assert data["best"]["number"] == report.best.number
    assert len(data["clusters"]["headline"]) == len(report.clusters.clusters)
    text = markdown(report)
    assert f"{data['best']['value']:.4f}" in text
    for cluster in data["clusters"]["headline"]:
        assert f"{cluster['best']:.4f}" in text and f"{cluster['mean']:.4f}" in text
    assert f"{data['recommendation']['value']:.4f} +- {data['recommendation']['std']:.4f}" in text


def test_figures_say_what_they_show(gp_study):
    mix, storage, _ = gp_study
    report = build_report(mix.study, DOMAINS, storage=storage, sampler="gp")
    titles = {k: f.layout.title.text for k, f in figures(report).items()}
    assert set(titles) == {"history-by-cluster", "top-mixtures-by-cluster",
                           "per-domain-losses", "domain-utility"}
    assert "by weight cluster" in titles["history-by-cluster"]
    assert "by weight cluster" in titles["top-mixtures-by-cluster"]
    assert "per-domain loss" in titles["per-domain-losses"]
    assert "domain utility" in titles["domain-utility"]


def test_references_come_from_compare_siblings_the_study_itself_and_against(tmp_path):
    url = f"sqlite:///{tmp_path / 'refs.db'}"
    storage = open_storage(url)
    studies = {}
    for approach, n in (("sobol", 6), ("uniform", 2), ("gp", 8)):
        raw = _config(f"cmp/{approach}/seed0", approach, n)
        studies[approach] = create_mix_study(parse_config(raw), storage)
        optimize(studies[approach], show_progress=False)
    gp = build_report(studies["gp"].study, DOMAINS, storage=storage, sampler="gp")
    assert [r.label for r in gp.references] == ["best sobol trial", "uniform (mean of 2 trials)"]
    sibling_uniform = gp.references[1]
    trials = studies["uniform"].study.trials
    assert sibling_uniform.value == pytest.approx(sum(t.value for t in trials) / len(trials))
    uniform = build_report(studies["uniform"].study, DOMAINS, storage=storage)
    assert uniform.references[0].label == "best sobol trial"  # not itself
    assert not any(r.source == "this study" for r in uniform.references)
    against = build_report(studies["sobol"].study, DOMAINS, storage=storage,
                           against=["cmp/gp/seed0"])
    assert against.references[-1].label == "study 'cmp/gp/seed0'"
    gain = gp.improvement_over(gp.references[0])
    assert set(gain) == set(DOMAINS)
    with pytest.raises(ValueError, match="no study named 'nope'"):
        build_report(studies["sobol"].study, DOMAINS, storage=storage, against=["nope"])


def test_report_command_options_formats_and_export(gp_study, tmp_path):
    _, _, url = gp_study
    runner = CliRunner()
    base = ["study", "report", "--study-name", "pl", "--storage", url, "--no-dashboard"]
    text = runner.invoke(cli.cli, base + ["--top", "12", "--clusters", "3"])
    assert text.exit_code == 0, text.output
    assert "among the best mixtures (12 trials)" in text.output
    data = json.loads(runner.invoke(cli.cli, base + ["--format", "json"]).output)
    assert data["study_name"] == "pl" and data["recommendation"] is not None
    md = runner.invoke(cli.cli, base + ["--format", "markdown"]).output
    assert md.startswith("# study pl")
    for bad_top in ("1.5", "nan", "0", "-3", "x"):
        bad = runner.invoke(cli.cli, base + ["--top", bad_top])
        assert bad.exit_code == 2 and "--top" in bad.output, bad_top
    rows = json.loads(runner.invoke(cli.cli, base + ["--top", "14", "--format", "json"]).output)
    assert len(rows["top"]) == 14  # a count shows every good trial
    (tmp_path / "a-file").write_text("")
    blocked = runner.invoke(cli.cli, base + ["--out", str(tmp_path / "a-file" / "sub")])
    assert blocked.exit_code == 2 and "--out" in blocked.output
    out = tmp_path / "out"
    exported = runner.invoke(cli.cli, base + ["--out", str(out)])
    assert exported.exit_code == 0, exported.output
    names = {p.name for p in out.iterdir()}
    assert {"report.md", "report.json", "history-by-cluster.html", "plotly.min.js"} <= names
    for graph_id in ("history-by-cluster", "top-mixtures-by-cluster", "per-domain-losses",
                     "domain-utility"):
        assert {f"{graph_id}.html", f"{graph_id}.png"} <= names, exported.output  # kaleido


def _dashboard_attrs(storage, name: str) -> dict:
    attrs = storage.get_study_system_attrs(storage.get_study_id_from_name(name))
    return {k: v for k, v in attrs.items() if k.startswith("dashboard:")}


def test_the_refresh_callback_publishes_every_few_trials(tmp_path):
    from optuna_mix.objective import MixtureObjective

    url = f"sqlite:///{tmp_path / 'cb.db'}"
    storage = open_storage(url)
    mix = create_mix_study(parse_config(_config("cb", "sobol", 12)), storage)
    refresh = DashboardRefresh(DOMAINS, storage, sampler="sobol", every=5, max_share=1e9)
    mix.study.optimize(MixtureObjective(mix.config), n_trials=4, callbacks=[refresh])
    assert refresh.refreshes == 0 and not _dashboard_attrs(storage, "cb")
    mix.study.optimize(MixtureObjective(mix.config), n_trials=6, callbacks=[refresh])
    assert refresh.refreshes == 2 and refresh.seconds > 0
    attrs = _dashboard_attrs(storage, "cb")
    note = "".join(attrs[f"dashboard:note_str:{i}"] for i in range(len(attrs))
                   if f"dashboard:note_str:{i}" in attrs)
    assert "among the best mixtures" in note
    assert any(k.startswith("dashboard:plot_data:history-by-cluster:") for k in attrs)


def test_a_refresh_waits_while_it_would_take_more_than_its_share_of_the_time(tmp_path):
    from optuna_mix.objective import MixtureObjective

    storage = open_storage(f"sqlite:///{tmp_path / 'share.db'}")
    mix = create_mix_study(parse_config(_config("share", "sobol", 20)), storage)
    refresh = DashboardRefresh(DOMAINS, storage, every=5, max_share=1e-9)
    mix.study.optimize(MixtureObjective(mix.config), n_trials=20, callbacks=[refresh])
    assert (refresh.refreshes, refresh.put_off) == (0, 4)  # millisecond trials: it waits


def test_publish_saves_every_figure_and_the_note(gp_study):
    mix, storage, _ = gp_study
    report = build_report(mix.study, DOMAINS, storage=storage, sampler="gp")
    assert publish(mix.study, storage, report) == (list(figures(report)), True)
    attrs = _dashboard_attrs(storage, "pl")
    for graph_id in figures(report):
        assert any(k.startswith(f"dashboard:plot_data:{graph_id}:") for k in attrs)


def test_a_note_written_in_the_dashboard_is_kept(tmp_path):
    from optuna_dashboard import save_note

    from optuna_mix.report.dashboard import current_note

    storage = open_storage(f"sqlite:///{tmp_path / 'note.db'}")
    mix = create_mix_study(parse_config(_config("note", "sobol", 6)), storage)
    optimize(mix, show_progress=False)
    study_id = storage.get_study_id_from_name("note")
    assert publish(mix.study, storage, build_report(mix.study, DOMAINS))[1]  # empty: written
    assert publish(mix.study, storage, build_report(mix.study, DOMAINS))[1]  # ours: replaced
    save_note(mix.study, "MY OWN NOTES")
    _, noted = publish(mix.study, storage, build_report(mix.study, DOMAINS))
    assert not noted and current_note(storage, study_id) == "MY OWN NOTES"


@pytest.mark.parametrize("make, message", [
    (lambda s: optuna.create_study(study_name="multi", storage=s, directions=["minimize"] * 2),
     "--against: study 'multi' has several objectives"),
    (lambda s: optuna.create_study(study_name="maxed", storage=s, direction="maximize"),
     "--against: study 'maxed' has the other direction"),
])
def test_against_refuses_a_study_that_is_no_reference(tmp_path, make, message):
    storage = open_storage(f"sqlite:///{tmp_path / 'ag.db'}")
    mix = create_mix_study(parse_config(_config("base", "sobol", 3)), storage)
    optimize(mix, show_progress=False)
    other = make(storage)
    with pytest.raises(ValueError, match=message):
        build_report(mix.study, DOMAINS, storage=storage, against=[other.study_name])


def test_against_refuses_a_study_of_other_domains(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path / 'dom.db'}")
    mix = create_mix_study(parse_config(_config("base", "sobol", 3)), storage)
    optimize(mix, show_progress=False)
    raw = _config("other", "sobol", 3)
    raw["domains"] = {"x": {}, "y": {}}
    optimize(create_mix_study(parse_config(raw), storage), show_progress=False)
    with pytest.raises(ValueError, match="--against: study 'other' mixes x, y, not books"):
        build_report(mix.study, DOMAINS, storage=storage, against=["other"])


def test_a_fixed_mixture_study_gets_no_model_and_says_why(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path / 'fixed.db'}")
    mix = create_mix_study(parse_config(_config("u", "uniform", 6)), storage)
    optimize(mix, show_progress=False)
    report = build_report(mix.study, DOMAINS, storage=storage)
    assert report.pick is None and not report.utility
    assert "6 complete trials at 1 distinct mixtures" in " ".join(report.notes)


def test_a_study_of_several_sizes_ranks_one_size_and_recommends_for_the_target(tmp_path):
    from optuna_mix.scale import PRESET_ATTR

    raw = {"study": {"name": "scaled", "n_trials": 12, "seed": 0},
           "sampler": {"name": "gp", "n_startup_trials": 4},
           "objective": {"kind": "surface", "family": "scaled", "scales": ["xs", "s"],
                         "target": "l", "noise": 0.005},
           "domains": {"books": {}, "web": {}, "code": {}}}
    config = parse_config(raw)
    mix = create_mix_study(config, open_storage(f"sqlite:///{tmp_path / 's.db'}"))
    for _ in range(2):  # two trials pinned at s: the study trains both sizes
        mix.study.enqueue_trial({"scale": 55_584})
    optimize(mix, show_progress=False)
    report = build_report(mix.study, config.domain_names, scales=config.scales)
    at_xs = {t.number for t in mix.study.trials if t.user_attrs[PRESET_ATTR] == "xs"}
    assert report.ranked_at == "xs" and {r.number for r in report.good} <= at_xs
    spread = f"(xs {len(at_xs)}, s {12 - len(at_xs)})"
    assert any(f"trained at several sizes {spread}" in note for note in report.notes)
    assert report.pick is not None and report.pick.at == "l"
    assert "the GP's recommendation for l:" in markdown(report)
    unaware = build_report(mix.study, config.domain_names)  # no scales: every trial ranked
    assert unaware.ranked_at is None and unaware.pick.at is None


def test_a_study_without_a_uniform_trial_is_compared_with_uniform_as_the_gp_predicts_it(
        gp_study):
    """Better everywhere? answered for every study that keeps its losses: with the GP's
    prediction of uniform's per-domain losses, said to be one, where no trial trained it."""
    mix, storage, _ = gp_study
    report = build_report(mix.study, DOMAINS, storage=storage, sampler="gp")
    (predicted,) = [r for r in report.references if r.trial_number < 0]
    assert predicted.label == "uniform, predicted" and set(predicted.losses) == set(DOMAINS)
    assert predicted.weights == {d: pytest.approx(0.2) for d in DOMAINS}
    assert all(s > 0 for s in predicted.stds.values())
    truth = make_surface("powerlaw", DOMAINS, seed=0).losses(np.full(5, 0.2))
    error = np.array([predicted.losses[d] for d in DOMAINS]) - truth
    assert np.all(np.abs(error) < 4 * np.array([predicted.stds[d] for d in DOMAINS]) + 0.02)
    text = markdown(report)
    assert "better than uniform, predicted on" in text and "no trial trained it" in text
    assert "uniform, predicted (no uniform trial: the report's GP)" in text


def test_a_measured_uniform_trial_leaves_no_room_for_a_predicted_one(tmp_path):
    from optuna_mix.samplers import UniformMixtureSampler

    url = f"sqlite:///{tmp_path / 'u.db'}"
    storage = open_storage(url)
    mix = create_mix_study(parse_config(_config("u", "sobol", 8)), storage)
    optimize(mix, show_progress=False)
    mix.study.sampler = UniformMixtureSampler()
    optimize(mix, n_trials=1, show_progress=False)
    labels = [r.label for r in build_report(mix.study, DOMAINS, storage=storage).references]
    assert labels == ["uniform"]
