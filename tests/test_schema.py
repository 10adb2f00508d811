"""The config schema's pure functions, table-driven: one key, one table, one domain source."""

from __future__ import annotations

import pytest

from optuna_mix import schema
from optuna_mix.schema import Key, check_table

COUNT = Key("count", (int,), 3, "how many", check=(lambda v: v >= 1, "must be >= 1"))
RATE = Key("rate", (float,), 0.5, "a rate")
MODE = Key("mode", (str,), "a", "a mode", choices=("a", "b"))
PATHS = Key("path", (str, list), None, "paths", required=True)


@pytest.mark.parametrize(
    "key, value, problem",
    [
        (COUNT, 2, None),
        (COUNT, 0, "[t] count must be >= 1, got 0"),
        (COUNT, 2.0, "[t] count must be an integer, got 2.0"),
        (COUNT, True, "[t] count must be an integer, got True"),
        (RATE, 1, None),  # an integer is a number
        (RATE, float("nan"), "[t] rate must be finite, got nan"),
        (RATE, "x", "[t] rate must be a number, got 'x'"),
        (MODE, "b", None),
        (MODE, "c", "[t] unknown mode 'c' (choose from a, b)"),
        (PATHS, ["a", "b"], None),
        (PATHS, [], "[t] path must be a string or a list of strings, got []"),
        (PATHS, ["a", 1], "[t] path must be a string or a list of strings, got ['a', 1]"),
        (Key("x", (int,), None, ""), None, None),  # None is "not set" where it is the default
    ],
)
def test_key_problem(key, value, problem):
    assert key.problem(value, "[t]") == problem


@pytest.mark.parametrize(
    "table, values, problems",
    [
        ({"path": "p"}, {"count": 3, "rate": 0.5, "mode": "a", "path": "p"}, []),
        ({"path": "p", "count": 7}, {"count": 7, "rate": 0.5, "mode": "a", "path": "p"}, []),
        ({}, {"count": 3, "rate": 0.5, "mode": "a", "path": None}, ["[t] path is missing"]),
        ({"path": "p", "colour": 1}, {"count": 3, "rate": 0.5, "mode": "a", "path": "p"},
         ["[t] unknown key 'colour' (allowed: count, rate, mode, path)"]),
        ({"path": "p", "count": 0, "mode": "z"},
         {"count": 3, "rate": 0.5, "mode": "a", "path": "p"},
         ["[t] count must be >= 1, got 0", "[t] unknown mode 'z' (choose from a, b)"]),
        ("not a table", {"count": 3, "rate": 0.5, "mode": "a", "path": None},
         ["[t] must be a table"]),
    ],
)
def test_check_table_reports_every_problem_and_keeps_defaults(table, values, problems):
    found: list[str] = []
    declared = schema.keys(COUNT, RATE, MODE, PATHS)
    assert check_table(table, declared, "[t]", found) == values
    assert found == problems


def _domain_problems(name, table):
    problems: list[str] = []
    schema.check_domain_table(name, table, problems)
    return problems


@pytest.mark.parametrize(
    "name, table, problem",
    [
        ("books", {"source": "synthetic"}, None),
        ("news", {"source": "synthetic", "domain": "web"}, None),
        ("x", {"source": "hf", "path": "allenai/dolma", "streaming": True}, None),
        ("x", {"source": "files", "path": ["a.jsonl", "b.jsonl"], "format": "json"}, None),
        ("x", {}, "[domains.x] source is missing (one of synthetic, hf, files)"),
        ("x", {"source": "s3"}, "[domains.x] unknown source 's3' (choose from synthetic, hf, files)"),
        ("x", {"source": "files"}, "[domains.x] path is missing"),
        ("x", {"source": "hf"}, "[domains.x] path is missing"),
        ("x", {"source": "files", "path": "a", "paht": "a"}, "[domains.x] unknown key 'paht'"),
        ("x", {"source": "hf", "path": "p", "streaming": 1},
         "[domains.x] streaming must be true or false, got 1"),
        ("x", {"source": "hf", "path": "p", "max_documents": 0},
         "[domains.x] max_documents must be >= 1, got 0"),
        ("news", {"source": "synthetic"}, "[domains.news] unknown domain 'news' (choose from books"),
        ("x", {"source": "files", "path": "a", "format": "csv"}, "[domains.x] unknown format 'csv'"),
        ("x", {"source": "files", "path": "a", "sample_by": "word"}, "unknown sample_by 'word'"),
        ("books", {"source": "synthetic", "seed": -3}, None),  # a seed may be any integer
    ],
)
def test_domain_tables(name, table, problem):
    problems = _domain_problems(name, table)
    if problem is None:
        assert problems == []
    else:
        assert len(problems) == 1 and problem in problems[0], problems


def test_domain_keys_come_from_the_trainers_dataclasses():
    from optuna_mix.trainers import HFSource

    hf = schema.domain_keys("hf")
    assert hf["split"].default == HFSource.split == "train"
    assert hf["path"].required and not hf["split"].required
    assert hf["data_files"].types == (str, list)
    assert hf["max_documents"].meaning == "read at most this many"


def test_domain_spec_is_typed_and_fingerprints_as_before(tmp_path):
    from optuna_mix.trainers import FileSource, SyntheticSource

    spec = schema.domain_spec("books", {"source": "synthetic", "chars": 100})
    assert spec.source == SyntheticSource(domain="books", chars=100, seed=0)
    (tmp_path / "a.txt").write_text("x\n")
    files = schema.domain_spec("d", {"source": "files", "path": [str(tmp_path / "a.txt")]})
    assert files.source == FileSource(path=(str(tmp_path / "a.txt"),))
    # the token cache's key: the same dict as the TOML-table specs of before gave
    fp = spec.fingerprint()
    assert {k: v for k, v in fp.items() if k != "corpus_version"} == {
        "source": "synthetic", "domain": "books", "chars": 100, "seed": 0}


def test_gpt_objective_cross_key_rule_is_one_more_line():
    problems: list[str] = []
    schema.check_gpt_objective({"n_embd": 30}, {}, problems)
    assert len(problems) == 1 and "multiple of n_head" in problems[0]
