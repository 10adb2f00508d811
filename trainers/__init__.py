"""The GPT proxy trainer: model, data pipeline and training loop. Knows nothing of Optuna.

Typical use::

    specs = [DomainSpec(d, SyntheticSource(domain=d)) for d in corpus.DOMAINS]
    data = prepare_data(specs, ".cache", val_tokens=16384, vocab_size=512)
    cfg = GPTConfig.preset("demo", vocab_size=data.vocab_size)
    result = train(cfg, data, {"books": 0.5, "code": 0.5}, TrainConfig(device="cpu"))
    result.losses  # {"books": 3.1, "web": ..., ...}
"""

from . import corpus
from .data import (
    DataRepeatWarning,
    DomainSpec,
    DomainTokens,
    FileSource,
    HFSource,
    MixtureBatches,
    MixtureData,
    SOURCES,
    SyntheticSource,
    iter_documents,
    prepare_data,
    train_tokenizer,
)
from .model import GPT, PRESETS, GPTConfig
from .train import (
    AmpPlan,
    NonFiniteLossError,
    TrainConfig,
    TrainResult,
    evaluate,
    lr_at,
    resolve_amp,
    resolve_device,
    token_budget,
    train,
)

__all__ = [
    "AmpPlan",
    "DataRepeatWarning",
    "DomainSpec",
    "DomainTokens",
    "FileSource",
    "HFSource",
    "GPT",
    "GPTConfig",
    "MixtureBatches",
    "MixtureData",
    "NonFiniteLossError",
    "PRESETS",
    "SOURCES",
    "SyntheticSource",
    "TrainConfig",
    "TrainResult",
    "corpus",
    "evaluate",
    "iter_documents",
    "lr_at",
    "prepare_data",
    "resolve_amp",
    "resolve_device",
    "token_budget",
    "train",
    "train_tokenizer",
]
