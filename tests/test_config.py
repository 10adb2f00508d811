"""Study configs: the shipped ones load, every mistake gets its own clear line."""

from __future__ import annotations

import pytest

from optuna_mix.config import ConfigError, load_config, parse_config
from helpers import STUDIES

SURFACE = {
    "study": {"name": "s", "n_trials": 4, "seed": 0, "criterion": "mean"},
    "sampler": {"name": "sobol"},
    "objective": {"kind": "surface", "family": "dml", "noise": 0.01},
    "domains": {"a": {}, "b": {}, "c": {}},
}


SCALED = {"kind": "surface", "family": "scaled", "scales": ["xs", "s", "m"], "target": "l"}


def _gpt(**objective):
    """A gp study on the embedded corpus with these [objective] keys."""
    return {**SURFACE, "sampler": {"name": "gp"}, "objective": {"kind": "gpt", **objective},
            "domains": {"books": {"source": "synthetic"}, "web": {"source": "synthetic"}}}


def _with(**tables):
    raw = {k: dict(v) for k, v in SURFACE.items()}
    for table, changes in tables.items():
        raw[table] = {**raw.get(table, {}), **changes} if changes is not None else None
        if raw[table] is None:
            del raw[table]
    return raw


@pytest.mark.parametrize("path", sorted(STUDIES.glob("surface-*.toml")), ids=lambda p: p.name)
def test_shipped_surface_studies_load(path):
    config = load_config(path)
    assert config.objective == "surface" and len(config.domains) >= 2


def test_defaults_and_order():
    config = parse_config(SURFACE)
    assert config.domain_names == ["a", "b", "c"]
    assert (config.sampler, config.criterion, config.n_trials) == ("sobol", "mean", 4)


@pytest.mark.parametrize(
    "raw, message",
    [
        (_with(study={"colour": 1}), "[study] unknown key 'colour'"),
        (_with(study={"n_trials": "ten"}), "[study] n_trials must be an integer"),
        (_with(study={"n_trials": 0}), "n_trials must be at least 1"),
        (_with(study={"criterion": "avg"}), "unknown criterion 'avg'"),
        (_with(study={"pruner": "magic"}), "unknown pruner 'magic'"),
        (_with(sampler={"name": "magic"}), "unknown sampler 'magic'"),
        (_with(sampler={"name": "sobol", "n_startup": 3}), "unknown option 'n_startup'"),
        (_with(sampler={"name": "fixed"}), "fixed sampler needs weights"),
        (_with(sampler={"name": "gp", "n_startup_trials": "x"}), "n_startup_trials must be an integer"),
        (_with(sampler={"name": "gp", "n_startup_trials": -1}), "n_startup_trials must be >= 0"),
        (_with(sampler={"name": "fixed", "weights": {"a": 0.5, "z": 0.5}}), "unknown domain(s) z"),
        (_with(sampler={"name": "fixed", "weights": {"a": -1, "b": 2}}), "negative"),
        (_with(sampler={"name": "fixed", "weights": {"a": 0.3, "b": 0.3}}), "sum to 0.6"),
        (_with(objective={"kind": "quantum"}), "unknown kind 'quantum'"),
        (_with(objective={"family": "cubic"}), "[objective] unknown family 'cubic'"),
        (_with(objective={"noise": -1}), "noise must be >= 0"),
        (_with(domains=None), "no [domains.<name>] tables"),
        ({**SURFACE, "domains": {"a": {}}}, "at least 2 domains, got 1"),
        ({**SURFACE, "extra": {}}, "unknown table [extra]"),
        ({**SURFACE, "domains": {"a b": {}, "c": {}}}, "may use only letters"),
        # model sizes: scales and target
        (_with(objective={"family": "scaled"}), "a scaled surface needs scales"),
        (_with(objective={"scales": ["xs", "s"]}), "scales are for family scaled; a dml surface"),
        (_with(objective={**SCALED, "scales": ["xs", "huge"]}, sampler={"name": "gp"}),
         "unknown model preset 'huge' in scales"),
        (_with(objective={**SCALED, "target": "huge"}, sampler={"name": "gp"}),
         "unknown model preset 'huge' in target"),
        (_with(objective={**SCALED, "scales": ["m", "demo"]}, sampler={"name": "gp"}),
         "scales 'm' and 'demo' are the same size (98,688 parameters)"),
        (_with(objective={"family": "dml", "target": "l"}), "target is the model size the mixture "
         "is for; it needs scales"),
        (_with(objective=SCALED), "sampler 'sobol' cannot choose a trial's model size"),
        (_with(objective=SCALED, sampler={"name": "gp", "target_scale": 4e5}),
         "target_scale is set by [objective] target"),
        (_gpt(scales=["xs", "s"], tokens=1000), "tokens gives every model size one budget"),
        (_gpt(scales=["xs", "s"], n_embd=64), "n_embd would reshape every preset of scales"),
        # criteria and their parameters
        (_with(study={"criterion_fraction": 0.5}), 'criterion_fraction is for criterion = "cvar"'),
        (_with(study={"criterion_weights": {"a": 2}}), 'is for criterion = "weighted", not'),
        (_with(study={"criterion_reference": "uniform"}), 'is for criterion = "excess"'),
        (_with(study={"criterion": "cvar", "criterion_fraction": 0}),
         "criterion_fraction must be in (0, 1]"),
        (_with(study={"criterion": "weighted", "criterion_weights": {"z": 2}}),
         "criterion_weights for z: not among the validation sets (a, b, c)"),
        (_with(study={"criterion": "weighted", "criterion_weights": {"a": -1}}),
         "weights must be finite and >= 0"),
        (_with(study={"criterion": "weighted", "criterion_weights": {"a": 0, "b": 0, "c": 0}}),
         "must not all be 0"),
        (_with(study={"criterion": "weighted", "criterion_weights": {"a": "x"}}),
         "criterion_weights must be a table of numbers"),
        (_with(study={"criterion": "excess", "criterion_reference": "best"}),
         'criterion_reference must be "uniform" or a table'),
        (_with(study={"criterion": "excess", "criterion_reference": {"a": 0.5, "z": 0.5}}),
         "criterion_reference names z: not among the domains"),
        (_with(study={"criterion": "excess", "criterion_reference": {"a": 0.5, "b": 0.2}}),
         "sum to 1, got sum 0.7"),
        (_with(study={"criterion": "excess"}, objective=SCALED, sampler={"name": "gp"}),
         "criterion excess with [objective] scales"),
    ],
)
def test_each_mistake_has_a_clear_message(raw, message):
    with pytest.raises(ConfigError) as info:
        parse_config(raw)
    assert message in str(info.value)


def test_all_mistakes_are_reported_at_once():
    raw = _with(study={"criterion": "avg", "n_trials": 0}, sampler={"name": "magic"})
    with pytest.raises(ConfigError) as info:
        parse_config(raw)
    assert len(info.value.problems) == 3


def test_duplicate_domain_in_toml_is_refused(tmp_path):
    path = tmp_path / "dup.toml"
    path.write_text('[study]\nname = "x"\n[domains.a]\n[domains.b]\n[domains.a]\n')
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)


def test_missing_file_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "nope.toml")


def test_sampler_subtables_select_options_with_the_sampler():
    raw = _with(sampler={"fixed": {"weights": {"a": 0.5, "b": 0.5}}})
    config = parse_config(raw)
    assert config.sampler == "sobol" and config.sampler_options == {}
    fixed = config.with_sampler("fixed")
    assert fixed.sampler == "fixed" and fixed.sampler_options == {"weights": {"a": 0.5, "b": 0.5}}


def test_config_round_trips_through_json():
    config = parse_config(SURFACE)
    assert type(config).from_json(config.to_json()) == config


@pytest.mark.parametrize(
    "storage, problem",
    [
        ({}, None),
        ({"heartbeat_interval": 5, "grace_period": 20}, None),
        ({"heartbeat_interval": 0}, "[storage] heartbeat_interval must be >= 1, got 0"),
        ({"grace_period": 30}, "[storage] grace_period (30) must be longer than heartbeat_interval (60)"),
        ({"heartbat": 3}, "[storage] unknown key 'heartbat' (allowed: heartbeat_interval, grace_period)"),
    ],
)
def test_the_storage_table_sets_the_heartbeats(storage, problem):
    raw = {**SURFACE, "storage": storage}
    if problem is None:
        config = parse_config(raw)
        assert config.storage_options == {"heartbeat_interval": 60, "grace_period": 180, **storage}
    else:
        with pytest.raises(ConfigError) as info:
            parse_config(raw)
        assert info.value.problems == [problem]


def test_scales_give_the_sampler_its_target_and_one_scale_needs_no_choice():
    config = parse_config({**SURFACE, "objective": SCALED, "sampler": {"name": "gp"}})
    assert config.scales.presets == ("xs", "s", "m") and config.scales.target == "l"
    assert config.scales.sizes == (24_768.0, 55_584.0, 98_688.0)
    assert config.sampler_arguments("gp")["target_scale"] == 393_984.0
    assert "target_scale" not in config.sampler_arguments("sobol")
    # scales in any order; the target defaults to the largest; one scale: any sampler
    config = parse_config({**SURFACE, "sampler": {"name": "gp"}, "objective": {
        "kind": "surface", "family": "scaled", "scales": ["m", "xs"]}})
    assert config.scales.presets == ("xs", "m") and config.scales.target == "m"
    one = parse_config({**SURFACE, "objective": {"kind": "surface", "family": "scaled",
                                                 "scales": ["l"]}})
    assert one.sampler == "sobol" and one.scales.presets == ("l",)


@pytest.mark.parametrize(
    "study, spec",
    [
        ({"criterion": "mean"}, ("mean", (), None, ())),
        ({"criterion": "weighted", "criterion_weights": {"b": 3}}, ("weighted", (("b", 3.0),),
                                                                     None, ())),
        ({"criterion": "cvar"}, ("cvar", (), 0.25, ())),
        ({"criterion": "cvar", "criterion_fraction": 0.5}, ("cvar", (), 0.5, ())),
        ({"criterion": "excess"}, ("excess", (), None, (("a", 1 / 3), ("b", 1 / 3),
                                                        ("c", 1 / 3)))),
        ({"criterion": "excess", "criterion_reference": {"a": 0.5, "c": 0.5}},
         ("excess", (), None, (("a", 0.5), ("b", 0.0), ("c", 0.5)))),
    ],
)
def test_the_criterion_keys_make_the_stored_criterion(study, spec):
    got = parse_config(_with(study=study)).criterion_spec
    assert (got.name, got.weights, got.fraction, got.reference_mixture) == spec
    assert got.reference is None  # an excess reference is trained by the study, not given


def test_criterion_key_mistakes_are_reported_beside_unrelated_ones():
    raw = _with(study={"n_trials": 0, "criterion": "weighted", "criterion_weights": {"a": -1}})
    with pytest.raises(ConfigError) as info:
        parse_config(raw)
    assert len(info.value.problems) == 2
    assert "weights must be finite and >= 0" in str(info.value)
