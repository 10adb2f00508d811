"""The catalogue: every approach builds its sampler, and everything else is derived from it."""

from __future__ import annotations

import dataclasses

import pytest
from optuna.samplers import BaseSampler

from helpers import DOMAINS
from optuna_mix import catalogue, compare
from optuna_mix.catalogue import APPROACHES, Approach, get_approach, sampler_option_problems
from optuna_mix.config import parse_config
from optuna_mix.samplers import FixedMixtureSampler
from optuna_mix.samplers.fixed import LLAMA_WEIGHTS

REQUIRED = {"fixed": {"weights": {"books": 0.5, "web": 0.5}}}


@pytest.mark.parametrize("name", list(APPROACHES))
def test_every_approach_builds_its_sampler_and_a_config_may_name_it(name):
    approach = get_approach(name)
    sampler = approach.create(REQUIRED.get(name, {}), seed=3)
    assert isinstance(sampler, approach.sampler_class()) and isinstance(sampler, BaseSampler)
    assert not {"seed", "law", "independent_sampler"} & set(approach.option_names())
    raw = {"study": {"name": "s"}, "sampler": {"name": name, **REQUIRED.get(name, {})},
           "objective": {"kind": "surface"}, "domains": {d: {} for d in DOMAINS}}
    assert parse_config(raw).sampler == name


def test_presets_and_laws_are_fixed_by_the_catalogue():
    llama = get_approach("llama").create({}, seed=0)
    assert isinstance(llama, FixedMixtureSampler) and llama.weights == LLAMA_WEIGHTS
    assert "weights" not in get_approach("llama").option_names()
    for law in ("bimix", "dml", "regmix"):
        sampler = get_approach(law).create({"n_startup_trials": 5}, seed=3)
        assert sampler.law == law and sampler.n_startup_trials == 5
    assert get_approach("fixed").required_options() == ["weights"]


@pytest.mark.parametrize(
    "name, options, domains, problem",
    [
        ("sobol", {}, DOMAINS, None),
        ("sobol", {"n_startup": 3}, DOMAINS,
         "[sampler] unknown option 'n_startup' for sampler 'sobol' (allowed: none)"),
        ("gp", {"n_startup_trials": "x"}, DOMAINS,
         "[sampler] n_startup_trials must be an integer for sampler 'gp', got 'x'"),
        ("gp", {"n_startup_trials": -1}, DOMAINS, "[sampler] n_startup_trials must be >= 0, got -1"),
        ("gp", {"coordinates": "ilr"}, DOMAINS, "[sampler] coordinates must be one of"),
        ("dml", {"n_startup": 5}, DOMAINS, "[sampler] unknown option 'n_startup' for sampler 'dml'"),
        ("fixed", {}, DOMAINS, "[sampler] the fixed sampler needs weights = { domain = weight, ... }"),
        ("fixed", {"weights": {"books": 0.5, "zz": 0.5}}, DOMAINS,
         "[sampler] weights name unknown domain(s) zz (domains: books, web, code, papers, social)"),
        ("llama", {}, ["a", "b"], "[sampler] sampler 'llama' needs the seed's domains"),
        ("magic", {}, DOMAINS, "[sampler] unknown sampler 'magic' (choose from gp, sobol"),
    ],
)
def test_sampler_option_problems(name, options, domains, problem):
    problems = sampler_option_problems(name, options, domains)
    if problem is None:
        assert problems == []
    else:
        assert len(problems) == 1 and problems[0].startswith(problem), problems


def test_compare_lists_are_derived_from_the_catalogue():
    assert compare.default_approaches() == [
        a.name for a in APPROACHES.values() if a.in_compare and a.compare_default]
    assert set(compare.compare_approaches()) == {a.name for a in APPROACHES.values() if a.in_compare}
    assert [a for a in APPROACHES if not APPROACHES[a].searching] == [
        "uniform", "llama", "dolma", "fixed"]


def test_option_meanings_come_from_the_docstring():
    meanings = catalogue.option_meanings("gp")
    assert set(meanings) == set(get_approach("gp").option_names())
    assert meanings["mc_samples"] == "quasi-MC samples of qLogNEI."


def test_register_refuses_a_name_in_use_and_an_unimportable_class_is_named(monkeypatch):
    with pytest.raises(ValueError, match="exists already"):
        catalogue.register_approach(dataclasses.replace(APPROACHES["sobol"]))
    missing = Approach("ghost", "optuna_mix.samplers:Ghost", "not there")
    monkeypatch.setitem(APPROACHES, "ghost", missing)
    with pytest.raises(ValueError, match="sampler 'ghost' is not available"):
        missing.sampler_class()
