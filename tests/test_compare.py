"""``optuna-mix study compare``: every approach, one storage, the table, resuming, errors."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import optuna
import pytest
from click.testing import CliRunner

from helpers import DOMAINS
from optuna_mix import cli
from optuna_mix.catalogue import get_approach
from optuna_mix import compare as cmp
from optuna_mix.config import parse_config
from optuna_mix.samplers.fixed import DOLMA_WEIGHTS, LLAMA_WEIGHTS, validate_weights

LAWS_FIT_EARLY = """
[study]
name = "cmp"
n_trials = 8
seed = 0

[sampler]
name = "sobol"

[sampler.bimix]
n_startup_trials = 4

[sampler.dml]
n_startup_trials = 7

[sampler.regmix]
n_startup_trials = 4

[objective]
kind = "surface"
family = "powerlaw"
noise = 0.01
seed = 0

[domains.books]
[domains.web]
[domains.code]
[domains.papers]
[domains.social]
"""


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "cmp.toml"
    path.write_text(LAWS_FIT_EARLY)
    return path


def invoke(*args: str):
    return CliRunner().invoke(cli.cli, ["study", "compare", *args])


def n_trials_in(url: str) -> int:
    return sum(s.n_trials for s in optuna.get_all_study_summaries(url, include_best_trial=False))


def test_compare_runs_every_approach_prints_the_table_and_a_rerun_adds_no_trial(
    config_file, tmp_path
):
    url = f"sqlite:///{tmp_path / 'cmp.db'}"
    approaches = "sobol,uniform,llama,dolma,bimix,dml,regmix"
    args = ["--config", str(config_file), "--approaches", approaches, "--seeds", "1",
            "--storage", url, "--output-dir", str(tmp_path / "out"), "--no-progress"]
    first = invoke(*args)
    assert first.exit_code == 0, first.output
    for approach in approaches.split(","):
        assert f"\n│ {approach} " in first.stdout
    assert "run-to-run noise sigma" in first.stdout and "true regret" in first.stdout
    names = {s.study_name for s in optuna.get_all_study_summaries(url, include_best_trial=False)}
    assert names == {f"cmp/{a}/seed0" for a in approaches.split(",")}
    assert n_trials_in(url) == 7 * 8

    # every law was fitted at least once and said why it proposed what it did
    for law in ("bimix", "dml", "regmix"):
        study = optuna.load_study(study_name=f"cmp/{law}/seed0", storage=url)
        statuses = [t.user_attrs["mixing_law.mix"]["status"] for t in study.trials]
        assert "fitted" in statuses, (law, statuses)
    # the fixed baselines evaluated their presets
    llama = optuna.load_study(study_name="cmp/llama/seed0", storage=url).trials[0]
    assert llama.user_attrs["mix"] == pytest.approx(LLAMA_WEIGHTS, abs=1e-12)

    # outputs: HTML plot, Markdown table, the plot in every study for optuna-dashboard
    html = tmp_path / "out" / "cmp-compare.html"
    md = (tmp_path / "out" / "cmp-compare.md").read_text()
    assert html.exists() and "plotly" in html.read_text()[:5000].lower()
    assert md.count("\n| ") == 1 + 7
    study = optuna.load_study(study_name="cmp/dml/seed0", storage=url)
    keys = study._storage.get_study_system_attrs(study._study_id)
    assert any(k.startswith(f"dashboard:plot_data:{cmp.GRAPH_ID}") for k in keys)

    second = invoke(*args)
    assert second.exit_code == 0, second.output
    assert n_trials_in(url) == 7 * 8
    def table(out: str) -> list[str]:
        return [line for line in out.splitlines() if line.startswith("│")]

    assert table(second.stdout) == table(first.stdout)  # the same table from the same trials


def test_an_interrupted_comparison_carries_on_and_each_study_works_with_report(
    config_file, tmp_path
):
    url = f"sqlite:///{tmp_path / 'cmp.db'}"
    base = ["--config", str(config_file), "--approaches", "sobol,uniform", "--seeds", "1",
            "--storage", url, "--output-dir", str(tmp_path), "--no-progress", "--no-dashboard"]
    assert invoke(*base, "--n-trials", "3").exit_code == 0
    assert n_trials_in(url) == 2 * 3
    result = invoke(*base, "--n-trials", "5")
    assert result.exit_code == 0, result.output
    assert n_trials_in(url) == 2 * 5
    study = optuna.load_study(study_name="cmp/sobol/seed0", storage=url)
    assert [t.number for t in study.trials] == list(range(5))
    report = CliRunner().invoke(
        cli.cli, ["study", "report", "--study-name", "cmp/sobol/seed0", "--storage", url,
                  "--no-dashboard"]
    )
    assert report.exit_code == 0, report.output
    assert "sampler sobol" in report.stdout


@pytest.mark.parametrize(
    ("approaches", "message"),
    [
        ("sobol,annealing", "unknown approach 'annealing'"),
        ("sobol,sobol", "names sobol twice"),
        (",", "names no approach"),
    ],
)
def test_bad_approaches_exit_2_with_one_line(approaches, message, config_file, tmp_path):
    url = f"sqlite:///{tmp_path / 'cmp.db'}"
    result = invoke("--config", str(config_file), "--approaches", approaches, "--storage", url)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr
    assert "Traceback" not in result.output
    assert n_trials_in(url) == 0


def test_an_unavailable_approach_is_named_and_skipped_among_the_defaults(
    config_file, tmp_path, monkeypatch
):
    import dataclasses

    from optuna_mix import catalogue

    missing = dataclasses.replace(catalogue.APPROACHES["gp"], sampler="optuna_mix.samplers:Missing")
    monkeypatch.setitem(catalogue.APPROACHES, "gp", missing)
    url = f"sqlite:///{tmp_path / 'cmp.db'}"
    result = invoke("--config", str(config_file), "--approaches", "gp,sobol", "--storage", url)
    assert result.exit_code == 2
    assert "approach 'gp' is not available" in result.stderr
    config = parse_config({**_raw(config_file)})
    names, notes = cmp.resolve_approaches(config, None)
    assert "gp" not in names and any("'gp'" in n for n in notes)
    assert names == [a for a in cmp.default_approaches() if a != "gp"]


def test_gp_is_a_default_approach_once_simplex_gp_sampler_exists(config_file):
    from optuna_mix import samplers

    try:
        samplers.SimplexGPSampler
    except Exception:
        pytest.skip("SimplexGPSampler is not there yet")
    names, _ = cmp.resolve_approaches(parse_config(_raw(config_file)), None)
    assert names[0] == "gp"


def test_presets_need_the_seed_domains(tmp_path):
    raw = _raw_text(LAWS_FIT_EARLY.replace("[domains.social]", "[domains.wiki]"))
    config = parse_config(raw)
    with pytest.raises(LookupError, match="approach 'llama' needs the seed's domains"):
        cmp.resolve_approaches(config, ["sobol", "llama"])
    names, notes = cmp.resolve_approaches(config, None)
    assert "llama" not in names and "dolma" not in names and len(notes) >= 2


def test_bimix_is_skipped_where_the_validation_sets_are_not_the_domains():
    from optuna_mix.config import load_config
    from helpers import STUDIES

    config = load_config(STUDIES / "surface-heldout5.toml")
    with pytest.raises(LookupError, match="ties each loss to its own domain's weight"):
        cmp.resolve_approaches(config, ["sobol", "bimix"])
    names, notes = cmp.resolve_approaches(config, None)
    assert "bimix" not in names and {"dml", "regmix", "gp"} <= set(names)
    assert any("bimix" in n and "heldout_web" in n for n in notes)


def test_approach_configs_keep_the_objective_and_change_sampler_seed_and_budget(config_file):
    config = parse_config(_raw(config_file))
    plans = cmp.make_plans(config, ["dolma", "dml", "sobol"], seeds=2, n_trials=64)
    assert [p.name for p in plans] == [
        "cmp/dolma/seed0", "cmp/dolma/seed1", "cmp/dml/seed0", "cmp/dml/seed1",
        "cmp/sobol/seed0", "cmp/sobol/seed1",
    ]
    dolma = plans[1].config
    assert dolma.sampler == "dolma" and "weights" not in dolma.sampler_options
    assert get_approach("dolma").create(dolma.sampler_options, seed=0).weights == DOLMA_WEIGHTS
    assert dolma.seed == 1 and dolma.n_trials == 64
    assert dolma.objective_options["seed"] == 0  # the same surface for every seed
    assert plans[2].config.sampler_options == {"n_startup_trials": 7}


def test_presets_are_documented_mappings_summing_to_one():
    for weights, rounded in (
        (LLAMA_WEIGHTS, [0.0497, 0.7403, 0.0718, 0.0276, 0.1105]),
        (DOLMA_WEIGHTS, [0.0021, 0.7984, 0.1439, 0.0245, 0.0312]),
    ):
        assert list(weights) == DOMAINS
        assert [round(w, 4) for w in weights.values()] == rounded
        assert math.isclose(sum(weights.values()), 1.0, abs_tol=1e-12)
        validate_weights(weights)


def test_noise_is_the_pooled_spread_of_fixed_mixture_evaluations(config_file, tmp_path):
    url = f"sqlite:///{tmp_path / 'cmp.db'}"
    config = parse_config(_raw(config_file))
    result = cmp.run_compare(
        config, url, approaches=["uniform", "sobol"], n_trials=4, seeds=2, progress=False
    )
    per_seed = [
        [t.value for t in optuna.load_study(study_name=f"cmp/uniform/seed{s}", storage=url).trials]
        for s in (0, 1)
    ]
    within = [float(np.var(v, ddof=1)) for v in per_seed]
    between = float(np.var([np.mean(v) for v in per_seed], ddof=1))
    assert result.noise == pytest.approx(math.sqrt(np.mean(within) + between))
    assert "uniform" in result.noise_how
    # the surface's noise is 0.01 on the mean: the measured sigma is of that order
    assert 0.003 < result.noise < 0.03
    sobol = result.get("sobol")
    assert result.beyond_noise(sobol) is False and result.delta_to_sobol(sobol) == 0.0


def _raw(path: Path) -> dict:
    return _raw_text(path.read_text())


def _raw_text(text: str) -> dict:
    import tomllib

    return tomllib.loads(text)


def test_noise_of_a_seed_deterministic_objective_is_the_spread_between_seeds():
    # the GPT proxy repeats a value within a study; only the seed changes it
    assert cmp.evaluation_variance([np.full(5, 4.0), np.full(5, 4.2)]) == pytest.approx(0.02)
    # a noisy surface: same noise draws in every seed (keyed on the trial number)
    values = np.array([3.0, 3.1, 2.9])
    assert cmp.evaluation_variance([values, values]) == pytest.approx(0.01)
    assert cmp.evaluation_variance([np.array([3.0])]) is None


def test_fixed_trials_gives_the_fixed_mixtures_their_own_budget(config_file, tmp_path):
    url = f"sqlite:///{tmp_path / 'cmp.db'}"
    config = parse_config(_raw(config_file))
    result = cmp.run_compare(
        config, url, approaches=["uniform", "sobol"], n_trials=3, fixed_trials=1, seeds=1,
        progress=False,
    )
    counts = {s.study_name: s.n_trials for s in optuna.get_all_study_summaries(url, False)}
    assert counts == {"cmp/uniform/seed0": 1, "cmp/sobol/seed0": 3}
    assert result.get("uniform").n_trials == [1] and "1 for fixed mixtures" in cmp.markdown(result)



TINY_GPT = """
[study]
name = "tiny"
n_trials = 2
seed = 0

[objective]
kind = "gpt"
preset = "demo"
n_layer = 1
n_head = 2
n_embd = 16
seq_len = 32
vocab_size = 300
val_tokens = 128
tokens = 1536
batch_size = 4
lr = 3e-3
device = "cpu"
threads = 1
progress = false

[domains.books]
source = "synthetic"
chars = 20000
[domains.web]
source = "synthetic"
chars = 20000
[domains.code]
source = "synthetic"
chars = 20000
[domains.papers]
source = "synthetic"
chars = 20000
[domains.social]
source = "synthetic"
chars = 20000
"""


def test_compare_works_with_the_gpt_objective_and_measures_noise_between_seeds(tmp_path):
    url = f"sqlite:///{tmp_path / 'cmp.db'}"
    config = parse_config(_raw_text(TINY_GPT))
    result = cmp.run_compare(
        config, url, approaches=["sobol", "uniform"], seeds=2, fixed_trials=1,
        cache_dir=tmp_path / "cache", progress=False,
    )
    assert [a.n_trials for a in result.approaches] == [[2, 2], [1, 1]]
    uniform = [
        optuna.load_study(study_name=f"tiny/uniform/seed{s}", storage=url).trials[0].value
        for s in (0, 1)
    ]
    # deterministic given the seed: the noise is the spread of the fixed mixture over seeds
    assert result.noise == pytest.approx(float(np.std(uniform, ddof=1)))
    assert result.get("sobol").regrets is None
    header, rows = cmp.table_rows(result)
    assert "true regret" not in header and len(rows) == 2


def test_a_finished_study_with_other_domains_is_a_user_error(config_file, tmp_path):
    url = f"sqlite:///{tmp_path / 'cmp.db'}"
    args = ["--approaches", "sobol", "--seeds", "1", "--n-trials", "1", "--storage", url,
            "--output-dir", str(tmp_path), "--no-progress", "--no-dashboard"]
    assert invoke("--config", str(config_file), *args).exit_code == 0
    other = tmp_path / "other.toml"
    other.write_text(LAWS_FIT_EARLY.replace("[domains.social]", "[domains.wiki]"))
    result = invoke("--config", str(other), *args)
    assert result.exit_code == 2
    assert "already exists with other domains" in result.stderr


def test_compare_refuses_a_study_of_several_sizes():
    from optuna_mix.compare import run_compare

    config = parse_config({
        "study": {"name": "scaled", "n_trials": 4}, "sampler": {"name": "gp"},
        "objective": {"kind": "surface", "family": "scaled", "scales": ["xs", "s"]},
        "domains": {"a": {}, "b": {}}})
    with pytest.raises(ValueError, match="differ by model size .* `study transfer`"):
        run_compare(config, "sqlite:///:memory:")


@pytest.mark.parametrize(
    "diffs, beyond, needed",
    [
        ([0.05, 0.06, 0.04, 0.055], True, 3),       # the same sign at every seed, small spread
        ([0.02, 0.0, 0.03, -0.01], False, 16),      # a real difference: more seeds needed
        ([0.05, -0.05, 0.06, -0.04], False, 520),   # mean 0.005 in a spread of 0.058
        ([0.01, 0.01, 0.01], True, 2),              # no spread at all
        ([0.0, 0.0], False, None),                  # no difference: no number of seeds
    ],
)
def test_paired_differences_give_the_interval_and_the_seeds_a_difference_needs(
        diffs, beyond, needed):
    from scipy import stats

    p = cmp.paired_difference(diffs)
    d = np.array(diffs)
    assert p.n == len(d) and p.mean == pytest.approx(d.mean())
    assert p.se == pytest.approx(d.std(ddof=1) / math.sqrt(len(d)))
    t = stats.t.ppf(0.975, len(d) - 1)
    assert (p.low, p.high) == pytest.approx((d.mean() - t * p.se, d.mean() + t * p.se))
    assert p.beyond_noise is beyond
    assert p.seeds_needed == needed
    if needed is not None and needed > 2:  # the fewest m whose t interval excludes 0
        def half_width(m):
            return stats.t.ppf(0.975, m - 1) * d.std(ddof=1) / math.sqrt(m)
        assert half_width(needed) < abs(d.mean()) <= half_width(needed - 1)
    assert cmp.paired_difference([0.05]) is None  # one seed: nothing to pair


def test_the_verdict_pairs_by_seed_where_the_spread_between_seeds_hides_a_real_difference(
        config_file):
    # the real-text finding: uniform behind Sobol under every seed (+0.055 +- 0.012)
    # while sigma = 0.061 between seeds: unpaired, "beyond noise" said no on every row
    config = parse_config(_raw(config_file))
    seeds = [0, 1, 2, 3]
    sobol_best = np.array([5.00, 5.10, 4.95, 5.12])
    uniform_best = sobol_best + np.array([0.050, 0.070, 0.045, 0.055])

    def result(name, bests, curve_len=4):
        return cmp.ApproachResult(
            name, seeds, [np.full(curve_len, b) for b in bests], bests, None,
            {d: 0.2 for d in config.domain_names}, [curve_len] * 4,
            best_by_seed=dict(zip(seeds, map(float, bests))))

    res = cmp.CompareResult(config, [result("sobol", sobol_best),
                                     result("uniform", uniform_best)],
                            noise=0.061, noise_how="test", n_trials=4, seeds=seeds,
                            reeval_noise=0.0)
    uniform = res.get("uniform")
    paired = res.paired_to_sobol(uniform)
    assert paired.mean == pytest.approx(0.055) and paired.low > 0
    assert res.beyond_noise(uniform) is True
    header, rows = cmp.table_rows(res)
    row = dict(zip(header, next(r for r in rows if r[0] == "uniform")))
    assert row["beyond noise"] == "yes" and row["seeds for it"] == "3"
    assert row["vs sobol (paired: mean ± se [95% CI])"].startswith("+0.0550 ± 0.0054 [")
    # trials to best: against the best at the same seed, within 2 x the re-evaluation noise
    assert res.trials_to_best(res.get("sobol")) == (1.0, 4)
    assert res.trials_to_best(uniform) == (None, 0)
    from optuna_mix.compare.render import summary_lines

    text = "\n".join(summary_lines(res))
    assert "re-evaluation noise of one mixture within a study: 0.0000" in text


def test_compare_under_several_criteria_tables_each_criterion_s_best_mixtures(
        config_file, tmp_path):
    url = f"sqlite:///{tmp_path / 'cmp.db'}"
    args = ["--config", str(config_file), "--approaches", "sobol,uniform", "--criteria",
            "mean,max", "--seeds", "2", "--n-trials", "4", "--storage", url,
            "--output-dir", str(tmp_path / "out"), "--no-progress", "--no-dashboard"]
    out = invoke(*args)
    assert out.exit_code == 0, out.output
    names = {s.study_name for s in optuna.get_all_study_summaries(url, include_best_trial=False)}
    # the config's own criterion keeps its studies' names; another one gets its own
    assert names == {f"cmp{suffix}/{a}/seed{s}" for suffix in ("", "@max")
                     for a in ("sobol", "uniform") for s in (0, 1)}
    assert "criterion max:" in out.stdout and "worst-domain loss" in out.stdout

    config = parse_config(_raw(config_file))
    (_, mean_result), (_, max_result) = cmp.run_compare_criteria(
        config, url, ["mean", "max"], approaches=["sobol", "uniform"], n_trials=4, seeds=2,
        progress=False)  # a rerun: reads the same trials back
    rows = {(r.criterion, r.approach): r for r in cmp.criterion_rows("max", max_result)}
    sobol = max_result.get("sobol")
    for seed, losses in sobol.best_losses_by_seed.items():
        assert max(losses.values()) == pytest.approx(sobol.best_by_seed[seed])  # max's value
    r = rows[("max", "sobol")]
    assert r.worst_loss == pytest.approx(np.mean([max(v.values()) for v in
                                                  sobol.best_losses_by_seed.values()]))
    uniform = max_result.get("uniform").best_losses_by_seed
    better = [sum(v[k] < uniform[s][k] for k in v) for s, v in sobol.best_losses_by_seed.items()]
    assert r.improved == pytest.approx(np.mean(better)) and r.n_domains == len(config.domains)
    assert rows[("max", "uniform")].improved is None


def test_an_unknown_criterion_in_criteria_is_one_line_exit_2(config_file, tmp_path):
    out = invoke("--config", str(config_file), "--criteria", "mean,avg", "--storage",
                 f"sqlite:///{tmp_path / 'cmp.db'}", "--no-progress")
    assert out.exit_code == 2 and "unknown criterion 'avg'" in out.output


def test_compare_refuses_the_excess_criterion_before_anything_runs(config_file, tmp_path):
    url = f"sqlite:///{tmp_path / 'cmp.db'}"
    out = invoke("--config", str(config_file), "--criteria", "mean,excess", "--storage", url,
                 "--no-progress")
    assert out.exit_code == 2 and "compare with the excess criterion" in out.output
    assert optuna.get_all_study_names(url) == []  # not even the mean comparison ran
