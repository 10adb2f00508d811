"""study transfer: the top mixtures, uniform, the small-scale optimum and the recommendation
trained at a larger preset in a sibling study that a rerun carries on."""

from __future__ import annotations

import optuna
import pytest
from click.testing import CliRunner
from optuna.trial import TrialState

from optuna_mix.cli import cli
from optuna_mix.config import parse_config
from optuna_mix.runner import create_mix_study, load_mix_study, optimize
from optuna_mix.scale import PRESET_ATTR, preset_size
from optuna_mix.storage import open_storage
from optuna_mix.transfer import (
    RECOMMENDED,
    SMALL_OPTIMUM,
    UNIFORM,
    plan_transfer,
    run_transfer,
    sibling_name,
)

DOMAINS = {"books": {}, "web": {}, "code": {}}


def _scaled(n_trials: int = 12, **objective) -> dict:
    return {
        "study": {"name": "scaled", "n_trials": n_trials, "seed": 0},
        "sampler": {"name": "gp", "n_startup_trials": 4},
        "objective": {"kind": "surface", "family": "scaled", "scales": ["xs", "s"],
                      "target": "l", "noise": 0.005, **objective},
        "domains": DOMAINS,
    }


@pytest.fixture(scope="module")
def scaled_study(tmp_path_factory):
    """A finished scale-aware study on a scaled surface (its storage URL)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('transfer') / 'study.db'}"
    mix = create_mix_study(parse_config(_scaled()), open_storage(url))
    optimize(mix, show_progress=False)
    return url


def _load(url: str):
    storage = open_storage(url)
    return load_mix_study("scaled", storage), storage


def test_the_plan_labels_each_mixture_once(scaled_study):
    mix, _ = _load(scaled_study)
    plan = plan_transfer(mix, "l", top=3)
    assert plan.sibling == sibling_name("scaled", "l") == "scaled@l"
    assert plan.source_preset == "xs"  # the smallest trained size: where the study's way ranks
    labels = [label for c in plan.candidates for label in c.labels]
    assert labels[:2] == ["top 1", "small-scale optimum"]
    assert [lab for lab in labels if lab.startswith("top ")] == ["top 1", "top 2", "top 3"]
    assert labels.count(UNIFORM) == labels.count(RECOMMENDED) == labels.count(SMALL_OPTIMUM) == 1
    keys = [c.key() for c in plan.candidates]
    assert len(keys) == len(set(keys))  # one training per distinct mixture
    xs = [t for t in mix.study.trials if t.user_attrs.get(PRESET_ATTR) == "xs"]
    best = min(xs, key=lambda t: t.value)
    assert plan.labelled(SMALL_OPTIMUM).source_trial == best.number
    assert [c.source_value for c in plan.top] == sorted(c.source_value for c in plan.top)
    assert plan.labelled(UNIFORM).weights == pytest.approx({d: 1 / 3 for d in DOMAINS})
    predicted = plan.labelled(RECOMMENDED).predicted
    assert predicted is not None and predicted[1] > 0


def test_run_trains_at_the_larger_size_and_a_rerun_carries_on(scaled_study):
    mix, storage = _load(scaled_study)
    plan = plan_transfer(mix, "l", top=3)
    assert run_transfer(plan, mix, storage, show_progress=False) == len(plan.candidates)
    sibling = optuna.load_study(study_name="scaled@l", storage=scaled_study)
    done = sibling.get_trials(states=(TrialState.COMPLETE,))
    assert len(done) == len(plan.candidates)
    assert {t.params["scale"] for t in done} == {preset_size("l")}
    assert all(c.value is not None and c.regret is not None for c in plan.candidates)
    rho, n = plan.rank_correlation()
    assert n == 3 and -1 <= rho <= 1
    assert [name for name, _ in plan.verdicts()] == [SMALL_OPTIMUM, UNIFORM]
    rec, uniform = plan.labelled(RECOMMENDED), plan.labelled(UNIFORM)
    assert dict(plan.verdicts())[UNIFORM] == pytest.approx(rec.value - uniform.value)

    again = plan_transfer(mix, "l", top=3)
    assert run_transfer(again, mix, storage, show_progress=False) == 0  # nothing trained twice
    assert [c.value for c in again.candidates] == [c.value for c in plan.candidates]
    more = plan_transfer(mix, "l", top=4)
    new = len(more.candidates) - len(plan.candidates)
    assert run_transfer(more, mix, storage, show_progress=False) == new


def test_a_failed_training_is_retried_by_the_next_run(tmp_path, monkeypatch):
    from optuna_mix.objective import SurfaceEvaluator

    url = f"sqlite:///{tmp_path / 'fail.db'}"
    mix = create_mix_study(parse_config(_scaled(n_trials=6)), open_storage(url))
    optimize(mix, show_progress=False)
    original = SurfaceEvaluator.__call__
    calls = []

    def first_fails(self, trial, weights):
        calls.append(trial.number)
        if len(calls) == 1:
            raise RuntimeError("out of memory")
        return original(self, trial, weights)

    monkeypatch.setattr(SurfaceEvaluator, "__call__", first_fails)
    mix, storage = _load(url)
    plan = plan_transfer(mix, "m", top=2)
    run_transfer(plan, mix, storage, show_progress=False)
    assert sum(c.value is None for c in plan.candidates) == 1
    assert any("did not finish" in note for note in plan.notes)
    retry = plan_transfer(mix, "m", top=2)
    assert run_transfer(retry, mix, storage, show_progress=False) == 1
    assert all(c.value is not None for c in retry.candidates)


@pytest.mark.parametrize("preset, message", [
    ("s", "--preset s (55,584 parameters) is no larger than the study's largest"),
    ("xl", "unknown preset 'xl'"),
])
def test_a_preset_that_is_not_larger_is_refused(scaled_study, preset, message):
    mix, _ = _load(scaled_study)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        plan_transfer(mix, preset, top=3)


def test_the_cli_prints_the_correlation_and_the_verdicts(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "scaled.toml"
    config.write_text(
        '[study]\nname = "scaled"\nn_trials = 12\nseed = 1\n'
        '[sampler]\nname = "gp"\nn_startup_trials = 4\n'
        '[objective]\nkind = "surface"\nfamily = "scaled"\nscales = ["xs", "s"]\n'
        'target = "m"\nnoise = 0.005\n'
        '[domains.books]\n[domains.web]\n[domains.code]\n')
    runner = CliRunner()
    assert runner.invoke(cli, ["study", "create", "--config", str(config)]).exit_code == 0
    assert runner.invoke(cli, ["study", "optimize", "--study-name", "scaled",
                               "--no-progress", "--dashboard-every", "0"]).exit_code == 0
    args = ["study", "transfer", "--study-name", "scaled", "--preset", "m", "--top", "3",
            "--no-progress"]
    out = runner.invoke(cli, args)
    assert out.exit_code == 0, out.output
    assert "rank correlation of the top 3 across sizes (xs -> m): Spearman rho = " in out.output
    assert "the small-scale optimum at m:" in out.output and "uniform at m:" in out.output
    assert "one training run at the larger size" in out.output
    bad = runner.invoke(cli, args[:4] + ["--preset", "xs"])
    assert bad.exit_code == 2 and bad.output.count("\n") == 1
    assert "is no larger than the study's largest trained size" in bad.output


def test_a_surface_without_sizes_cannot_be_transferred(tmp_path):
    raw = {"study": {"name": "flat", "n_trials": 2}, "sampler": {"name": "sobol"},
           "objective": {"kind": "surface", "family": "dml"}, "domains": DOMAINS}
    storage = open_storage(f"sqlite:///{tmp_path / 'flat.db'}")
    mix = create_mix_study(parse_config(raw), storage)
    optimize(mix, show_progress=False)
    with pytest.raises(ValueError, match="has no model size"):
        plan_transfer(load_mix_study("flat", storage), "l", top=2)


def test_a_single_size_gpt_study_transfers_on_the_same_tokens_per_parameter(tmp_path):
    """The seed's experiment in miniature: a study of one preset (no scales; s reshaped to
    xs's width, so 24,768 parameters), its mixtures trained at a larger preset, unreshaped,
    on tokens scaled by the size ratio."""
    objective = {"kind": "gpt", "preset": "s", "n_embd": 32, "seq_len": 32, "vocab_size": 300,
                 "val_tokens": 128, "tokens": 2048, "batch_size": 4, "lr": 3e-3,
                 "device": "cpu", "progress": False}
    raw = {"study": {"name": "tiny", "n_trials": 3, "seed": 0}, "sampler": {"name": "sobol"},
           "objective": objective,
           "domains": {d: {"source": "synthetic", "chars": 20_000} for d in ("books", "code")}}
    storage = open_storage(f"sqlite:///{tmp_path / 'gpt.db'}")
    mix = create_mix_study(parse_config(raw), storage)
    optimize(mix, show_progress=False, cache_dir=tmp_path / "cache")
    mix = load_mix_study("tiny", storage)
    plan = plan_transfer(mix, "s", top=2)
    assert plan.source_preset is None
    assert any("trains one size" in note for note in plan.notes)  # the GP's pick at xs
    run_transfer(plan, mix, storage, cache_dir=tmp_path / "cache", show_progress=False)
    sibling = load_mix_study("tiny@s", storage)
    assert sibling.config.objective_options["preset"] == "s"
    assert sibling.config.objective_options["n_embd"] is None  # the override stays behind
    assert sibling.config.objective_options["tokens"] == round(2048 * 55_584 / 24_768)
    done = sibling.study.get_trials(states=(TrialState.COMPLETE,))
    assert len(done) == len(plan.candidates) >= 3
    assert {t.user_attrs["n_params"] for t in done} == {55_584}
