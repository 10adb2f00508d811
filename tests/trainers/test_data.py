import numpy as np
import pandas as pd
import pytest

from optuna_mix.trainers import DomainSpec, FileSource, HFSource, MixtureBatches, corpus, iter_documents, prepare_data
from optuna_mix.trainers import data as data_mod
from optuna_mix.trainers.data import split_documents


def _docs(tag: str, n: int) -> list[str]:
    return [f"{tag} document number {i} says hello to {tag} world {i * 7}." for i in range(n)]


def test_loads_local_json_jsonl_parquet_and_text(tmp_path, write_jsonl):
    write_jsonl(tmp_path / "a.jsonl", _docs("jsonl", 3))
    write_jsonl(tmp_path / "b.json", _docs("json", 2), field="body")
    pd.DataFrame({"content": _docs("parquet", 4)}).to_parquet(tmp_path / "c.parquet")
    (tmp_path / "d1.txt").write_text("\n".join(_docs("text", 2)) + "\n")
    (tmp_path / "d2.txt").write_text("\n".join(_docs("text", 3)) + "\n\n")

    def docs(table):
        return list(iter_documents(DomainSpec("x", FileSource(**table))))

    assert docs({"path": str(tmp_path / "a.jsonl")}) == _docs("jsonl", 3)
    assert docs({"path": str(tmp_path / "b.json"), "text_field": "body"}) == _docs("json", 2)
    assert docs({"path": str(tmp_path / "*.parquet"), "text_field": "content"}) == _docs("parquet", 4)
    assert docs({"path": str(tmp_path / "d*.txt")}) == _docs("text", 2) + _docs("text", 3)
    assert len(docs({"path": str(tmp_path / "d*.txt"), "sample_by": "document"})) == 2
    assert docs({"path": [str(tmp_path / "a.jsonl")], "max_documents": 2}) == _docs("jsonl", 2)
    # the hf source is the same code path: datasets' json builder on a local file
    hf = HFSource(path="json", data_files=str(tmp_path / "a.jsonl"), streaming=True)
    assert list(iter_documents(DomainSpec("x", hf))) == _docs("jsonl", 3)
    with pytest.raises(ValueError, match="no field 'text'"):
        docs({"path": str(tmp_path / "b.json")})
    with pytest.raises(FileNotFoundError):
        docs({"path": str(tmp_path / "missing*.jsonl")})


def test_corpus_is_deterministic_and_small():
    for d in corpus.DOMAINS:
        a = list(corpus.generate_documents(d, chars=5000, seed=3))
        assert a == list(corpus.generate_documents(d, chars=5000, seed=3))
        assert a != list(corpus.generate_documents(d, chars=5000, seed=4))
        assert 5000 <= sum(map(len, a)) < 10_000


def test_second_prepare_reuses_the_token_cache(tmp_path, monkeypatch, write_jsonl):
    write_jsonl(tmp_path / "a.jsonl", _docs("alpha", 60))
    write_jsonl(tmp_path / "b.jsonl", _docs("beta", 60))
    specs = [DomainSpec(n, FileSource(path=str(tmp_path / f"{n}.jsonl"))) for n in "ab"]
    first = prepare_data(specs, tmp_path / "cache", val_tokens=100, vocab_size=280)
    assert first.tokenized == ["a", "b"]
    files = sorted(p.name for p in (tmp_path / "cache").rglob("*") if p.is_file())
    assert len(files) == 5 and not any(f.endswith(".tmp") for f in files)

    def boom(*args, **kwargs):
        raise AssertionError("tokenised again")

    monkeypatch.setattr(data_mod, "tokenize_documents", boom)
    monkeypatch.setattr(data_mod, "train_tokenizer", boom)
    second = prepare_data(specs, tmp_path / "cache", val_tokens=100, vocab_size=280)
    assert second.tokenized == []
    for d in "ab":
        np.testing.assert_array_equal(first.domains[d].train, second.domains[d].train)
        np.testing.assert_array_equal(first.domains[d].val, second.domains[d].val)
        assert len(second.domains[d].val) == 101  # val_tokens targets need one more input
    # a changed source is a new cache entry
    write_jsonl(tmp_path / "a.jsonl", _docs("alpha", 61))
    with pytest.raises(AssertionError, match="tokenised again"):
        prepare_data(specs, tmp_path / "cache", val_tokens=100, vocab_size=280)


def test_validation_split_is_fixed_and_disjoint():
    docs = [np.arange(i * 10, i * 10 + 10, dtype=np.uint16) for i in range(50)]
    train, val = split_documents(docs, val_tokens=95, seed=0)
    train2, val2 = split_documents(docs, val_tokens=95, seed=0)
    np.testing.assert_array_equal(val, val2)
    np.testing.assert_array_equal(train, train2)
    assert len(val) == 96 and not set(val) & set(train)
    assert len(train) + 100 == 500  # 10 whole documents held out, the 10th cut to fit
    with pytest.raises(ValueError, match="fewer than val_tokens"):
        split_documents(docs, val_tokens=500, seed=0)


def test_prepared_val_text_never_in_train(tmp_path, write_jsonl):
    write_jsonl(tmp_path / "a.jsonl", [f"unique{i:03d} " + "lorem ipsum " * 3 for i in range(80)])
    spec = DomainSpec("a", FileSource(path=str(tmp_path / "a.jsonl")))
    data = prepare_data([spec], tmp_path / "c", val_tokens=200, vocab_size=300)
    tok = data.tokenizer
    val_ids = {w for w in tok.decode(data.domains["a"].val.tolist()).split() if w.startswith("unique")}
    train_ids = {w for w in tok.decode(data.domains["a"].train.tolist()).split() if w.startswith("unique")}
    assert val_ids and train_ids and not val_ids & train_ids


def _constant_domains(n: int = 3, length: int = 10_000) -> dict[str, np.ndarray]:
    return {f"d{i}": np.full(length, i, dtype=np.uint16) for i in range(n)}


def test_weight_zero_domain_is_never_drawn_and_weights_are_followed():
    b = MixtureBatches(_constant_domains(), {"d0": 0.75, "d1": 0.25, "d2": 0.0}, batch_size=8, seq_len=16, seed=0)
    rows = np.concatenate([b.next()[:, 0] for _ in range(500)])
    counts = np.bincount(rows, minlength=3)
    assert counts[2] == 0
    assert counts[0] / counts.sum() == pytest.approx(0.75, abs=0.03)
    assert b.epochs()["d2"] == 0.0 and b.epochs()["d0"] > 0


def test_batches_are_reproducible_and_walk_epochs():
    arr = {"a": np.arange(16 * 10 + 1, dtype=np.uint16)}
    b1, b2 = (MixtureBatches(arr, {"a": 1.0}, batch_size=5, seq_len=16, seed=1) for _ in range(2))
    x1, x2 = b1.next(), b2.next()
    np.testing.assert_array_equal(x1, x2)
    y = b1.next()
    starts = sorted(np.concatenate([x1[:, 0], y[:, 0]]).tolist())
    assert starts == list(range(0, 160, 16))  # one epoch: every window exactly once
    assert b1.epochs() == {"a": 1.0}
    np.testing.assert_array_equal(x1[:, 1:], x1[:, :1] + np.arange(1, 17))


def test_bad_weights_are_rejected():
    with pytest.raises(ValueError, match="unknown"):
        MixtureBatches(_constant_domains(), {"zz": 1.0}, batch_size=2, seq_len=4, seed=0)
    with pytest.raises(ValueError, match="not all 0"):
        MixtureBatches(_constant_domains(), {"d0": 0.0}, batch_size=2, seq_len=4, seed=0)
    with pytest.raises(ValueError, match="not all 0"):
        MixtureBatches(_constant_domains(), {"d0": float("nan")}, batch_size=2, seq_len=4, seed=0)
