"""The Optuna glue on a tiny config, through real Optuna studies and local files."""

import math

import optuna
import pandas as pd
import pytest

from optuna_mix import suggest_mixture
from optuna_mix.gpt_objective import GPTObjective
from optuna_mix.schema import check_gpt_objective


def validate_gpt_objective(objective, domains):
    problems = []
    check_gpt_objective(objective, domains, problems)
    return problems

TINY = {
    "kind": "gpt", "preset": "demo", "n_layer": 1, "n_head": 2, "n_embd": 16, "seq_len": 32,
    "vocab_size": 300, "val_tokens": 128, "tokens": 4 * 32 * 12, "batch_size": 4, "lr": 3e-3,
    "eval_interval": 4, "device": "cpu", "progress": False,
}


@pytest.fixture
def domains(tmp_path, write_jsonl):
    words = ["alpha beta gamma", "def f(x): return x + 1", "the cat sat on the mat"]
    write_jsonl(tmp_path / "prose.jsonl", [f"{words[2]} {i} times {words[0]}" for i in range(200)])
    pd.DataFrame({"text": [f"{words[1]} # {i}" for i in range(200)]}).to_parquet(tmp_path / "code.parquet")
    (tmp_path / "notes.txt").write_text("".join(f"note {i}: {words[0]} {i % 7}\n" for i in range(300)))
    return {
        "prose": {"source": "files", "path": str(tmp_path / "prose.jsonl")},
        "code": {"source": "files", "path": str(tmp_path / "*.parquet")},
        "notes": {"source": "files", "path": [str(tmp_path / "notes.txt")], "format": "text"},
    }


def test_validate_accepts_the_tiny_config_and_reports_each_problem(domains):
    assert validate_gpt_objective(TINY, domains) == []
    bad = {"kind": "gpt", "preset": "1b", "lr": "fast", "amp": "fp8", "compile": 1, "tokns": 5,
           "warmup": 1.5, "device": "tpu", "tokens": 0, "n_embd": 30}
    errors = validate_gpt_objective(bad, {"a": {"source": "files"}, "b": {"source": "synthetic"}})
    text = "\n".join(errors)
    for needle in ["[objective] unknown preset '1b' (choose from demo", "lr must be a number",
                   "unknown amp 'fp8'", "compile must be true or false", "unknown key 'tokns'",
                   "warmup must be in [0, 1)", "device must be auto", "tokens must be >= 1",
                   "[domains.a] path is missing", "[domains.b] unknown domain 'b' (choose from books"]:
        assert needle in text, needle
    assert all("\n" not in e for e in errors)
    assert "multiple of n_head" in "\n".join(validate_gpt_objective({"n_embd": 30}, domains))
    with pytest.raises(ValueError, match="unknown key"):
        GPTObjective({"kind": "gpt", "bogus": 1}, domains, seed=0, cache_dir="x")


def test_gpt_objective_in_a_real_study(domains, tmp_path):
    objective = GPTObjective(TINY, domains, seed=0, cache_dir=tmp_path / "cache")

    def run(trial: optuna.Trial) -> float:
        weights = suggest_mixture(trial, objective.domains)
        losses = objective.evaluate(trial, weights)
        trial.set_user_attr("losses", losses)
        return sum(losses.values()) / len(losses)

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(run, n_trials=2)
    assert objective.prepare() is objective.prepare()  # prepared once per process
    for t in study.trials:
        assert t.state == optuna.trial.TrialState.COMPLETE
        assert set(t.user_attrs["losses"]) == {"prose", "code", "notes"}
        assert all(math.isfinite(v) and v > 0 for v in t.user_attrs["losses"].values())
        assert t.user_attrs["tokens"] == 12 * 4 * 32
        assert t.user_attrs["seconds"] > 0 and t.user_attrs["tokens_per_second"] > 0
        assert set(t.user_attrs["epochs"]) == {"prose", "code", "notes"}
        assert sorted(t.intermediate_values) == [4, 8]


class _AlwaysPrune(optuna.pruners.BasePruner):
    def prune(self, study, trial) -> bool:
        return True


def test_gpt_objective_prunes_on_the_mean_intermediate_loss(domains, tmp_path):
    objective = GPTObjective(TINY, domains, seed=0, cache_dir=tmp_path / "cache")
    seen = []

    def run(trial):
        return sum(objective.evaluate(trial, {"prose": 0.5, "code": 0.5, "notes": 0.0}).values())

    study = optuna.create_study(pruner=_AlwaysPrune())
    study.optimize(run, n_trials=1, callbacks=[lambda s, t: seen.append(t)])
    t = seen[0]
    assert t.state == optuna.trial.TrialState.PRUNED
    assert list(t.intermediate_values) == [4] and t.user_attrs["tokens"] == 4 * 128


@pytest.mark.parametrize("name", ["demo.toml", "dolma5-25m.toml", "scale-demo.toml"])
def test_shipped_gpt_studies_validate(name):
    import tomllib
    from pathlib import Path

    raw = tomllib.loads((Path(__file__).resolve().parents[2] / "studies" / name).read_text())
    assert raw["objective"]["kind"] == "gpt"
    assert validate_gpt_objective(raw["objective"], raw["domains"]) == []
    assert list(raw["domains"]) == ["books", "web", "code", "papers", "social"]


def test_diverging_trial_fails_with_its_reason(domains, tmp_path):
    from optuna_mix.trainers import NonFiniteLossError

    objective = GPTObjective({**TINY, "lr": 1e30, "grad_clip": 0}, domains, seed=0, cache_dir=tmp_path / "c")
    study = optuna.create_study()
    study.optimize(lambda t: sum(objective.evaluate(t, {"prose": 1.0}).values()), n_trials=1,
                   catch=(NonFiniteLossError,))
    t = study.trials[0]
    assert t.state == optuna.trial.TrialState.FAIL
    assert "at step" in t.user_attrs["fail_reason"]


def test_scales_train_each_trial_at_its_preset_on_its_own_budget(domains, tmp_path):
    """With scales, the trial's size is a parameter (a pinned one here) and each preset trains
    tokens_per_param x its own parameters: the larger model sees more tokens."""
    tiny = {k: v for k, v in TINY.items() if k not in ("n_layer", "n_head", "n_embd", "tokens")}
    objective = GPTObjective({**tiny, "scales": ["s", "xs"], "tokens_per_param": 0.5,
                              "eval_interval": 0}, domains, seed=0, cache_dir=tmp_path / "c")

    def run(trial: optuna.Trial) -> float:
        return sum(objective.evaluate(trial, suggest_mixture(trial, objective.domains)).values())

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for size in (24_768, 55_584):
        study.enqueue_trial({"scale": size})
    study.optimize(run, n_trials=2)
    xs, s = study.trials
    assert (xs.user_attrs["preset"], s.user_attrs["preset"]) == ("xs", "s")
    assert (xs.user_attrs["n_params"], s.user_attrs["n_params"]) == (24_768, 55_584)
    steps_of = 4 * 32  # batch x seq_len: the budget rounds up to whole steps
    assert xs.user_attrs["tokens"] == math.ceil(0.5 * 24_768 / steps_of) * steps_of
    assert s.user_attrs["tokens"] == math.ceil(0.5 * 55_584 / steps_of) * steps_of
    assert objective.prepare() is objective.prepare()  # one tokenizer and data for every size
