"""Shared fixtures: a tiny model shape and tiny synthetic data, built once per session."""

from __future__ import annotations

import json

import pytest
import torch

from optuna_mix.trainers import DomainSpec, GPTConfig, MixtureData, SyntheticSource, TrainConfig, corpus, prepare_data

TINY_VOCAB = 300


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """Tiny models run fastest on one thread, and do not stall when other jobs share the CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> MixtureData:
    """All five embedded domains, small: ~20k characters each, 256 validation tokens."""
    specs = [DomainSpec(d, SyntheticSource(domain=d, chars=20_000)) for d in corpus.DOMAINS]
    return prepare_data(specs, tmp_path_factory.mktemp("cache"), val_tokens=256, vocab_size=TINY_VOCAB)


@pytest.fixture
def tiny_model() -> GPTConfig:
    return GPTConfig(vocab_size=TINY_VOCAB, seq_len=32, n_layer=1, n_head=2, n_embd=16)


@pytest.fixture
def tiny_train() -> TrainConfig:
    return TrainConfig(batch_size=4, tokens=4 * 32 * 12, lr=3e-3, device="cpu", seed=0)


def _write_jsonl(path, texts: list[str], field: str = "text") -> None:
    path.write_text("".join(json.dumps({field: t, "id": i}) + "\n" for i, t in enumerate(texts)))


@pytest.fixture
def write_jsonl():
    """``write_jsonl(path, texts, field="text")``: one JSON object per line."""
    return _write_jsonl
