"""Data per domain: documents -> BPE tokenizer -> cached token arrays with a fixed val split.

Only the first trial of a study (on any worker) tokenises: token arrays are saved as ``.npy``
under the study's cache, keyed by a hash of the source spec and the tokenizer, written to a
temporary file and moved into place with ``os.replace`` so that concurrent workers never see
a half-written file. Every trial then memory-maps the same arrays, so the validation split is
the same for every trial and never overlaps the training tokens.
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import itertools
import json
import logging
import os
import random
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from . import corpus

log = logging.getLogger(__name__)

EOS = "<|endoftext|>"
FILE_FORMATS = {".json": "json", ".jsonl": "json", ".parquet": "parquet", ".txt": "text", ".text": "text"}
_CACHE_FORMAT = 1  # bump when the on-disk layout changes

def _help(text: str) -> Any:
    """Field metadata: one line saying what the argument means (read by the config docs)."""
    return {"help": text}


@dataclass(frozen=True)
class SyntheticSource:
    """Documents of the embedded corpus (:mod:`corpus`), generated offline from a seed."""

    kind: ClassVar[str] = "synthetic"
    domain: str = field(metadata=_help("which embedded generator"))
    chars: int = field(default=600_000, metadata=_help("characters of text to generate"))
    seed: int = field(default=0, metadata=_help("seed of the generator"))


@dataclass(frozen=True)
class HFSource:
    """A dataset read by ``datasets.load_dataset`` (a hub name, or a builder on local files)."""

    kind: ClassVar[str] = "hf"
    path: str = field(metadata=_help("dataset name or builder (json, parquet, text, ...)"))
    name: str | None = field(default=None, metadata=_help("the dataset's configuration"))
    split: str = field(default="train", metadata=_help("split to read"))
    text_field: str = field(default="text", metadata=_help("column holding each document"))
    streaming: bool = field(default=False, metadata=_help("iterate without a local Arrow copy"))
    max_documents: int | None = field(default=None, metadata=_help("read at most this many"))
    data_dir: str | None = field(default=None, metadata=_help("data_dir of load_dataset"))
    data_files: str | tuple[str, ...] | None = field(
        default=None, metadata=_help("data_files of load_dataset (a path or a list)")
    )
    revision: str | None = field(default=None, metadata=_help("dataset revision on the hub"))


@dataclass(frozen=True)
class FileSource:
    """Local json/jsonl, parquet or text files, read through ``datasets`` as well."""

    kind: ClassVar[str] = "files"
    path: str | tuple[str, ...] = field(metadata=_help("a file path or glob, or a list of them"))
    format: str | None = field(
        default=None, metadata=_help("file format (default: from the extension)")
    )
    text_field: str = field(default="text", metadata=_help("field holding each document"))
    sample_by: str = field(
        default="line", metadata=_help("text files: what one document is")
    )
    max_documents: int | None = field(default=None, metadata=_help("read at most this many"))


Source = SyntheticSource | HFSource | FileSource
SOURCES: dict[str, type[Source]] = {c.kind: c for c in (SyntheticSource, HFSource, FileSource)}
SAMPLE_BY = ("line", "paragraph", "document")


@dataclass(frozen=True)
class DomainSpec:
    """One domain: its name and where its documents come from."""

    name: str
    source: Source

    def files(self) -> list[str]:
        """The local files of a ``files`` source, globs expanded, in a stable order."""
        assert isinstance(self.source, FileSource)
        patterns = self.source.path
        patterns = [patterns] if isinstance(patterns, str) else list(patterns)
        found: list[str] = []
        for pattern in patterns:
            matches = sorted(glob.glob(os.path.expanduser(pattern), recursive=True))
            if not matches:
                raise FileNotFoundError(f"domain {self.name!r}: no file matches {pattern!r}")
            found += matches
        return found

    def fingerprint(self) -> dict[str, Any]:
        """What the domain's tokens depend on; local files by name, size and mtime."""
        fp: dict[str, Any] = {"source": self.source.kind, **dataclasses.asdict(self.source)}
        if isinstance(self.source, SyntheticSource):
            fp["corpus_version"] = corpus.VERSION
        if isinstance(self.source, FileSource):
            fp["files"] = [(f, os.stat(f).st_size, os.stat(f).st_mtime_ns) for f in self.files()]
        return fp


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def iter_documents(spec: DomainSpec) -> Iterator[str]:
    """The domain's documents as strings (empty ones skipped), through ``datasets``."""
    src = spec.source
    if isinstance(src, SyntheticSource):
        yield from corpus.generate_documents(src.domain, chars=src.chars, seed=src.seed)
        return
    import datasets  # slow to import; only real sources need it

    if isinstance(src, HFSource):
        optional = {"name": src.name, "data_dir": src.data_dir, "revision": src.revision,
                    "data_files": list(src.data_files) if isinstance(src.data_files, tuple)
                    else src.data_files}
        kwargs = {k: v for k, v in optional.items() if v is not None}
        ds = datasets.load_dataset(src.path, split=src.split, streaming=src.streaming, **kwargs)
        field_name = src.text_field
    else:
        files = spec.files()
        fmt = src.format or FILE_FORMATS.get(Path(files[0]).suffix.lower())
        if fmt is None:
            raise ValueError(f"domain {spec.name!r}: cannot tell the format of {files[0]!r}; set format")
        extra = {"sample_by": src.sample_by} if fmt == "text" else {}
        # streaming reads the files once, without an Arrow copy in the HF cache
        ds = datasets.load_dataset(fmt, data_files=files, split="train", streaming=True, **extra)
        field_name = "text" if fmt == "text" else src.text_field
    for row in itertools.islice(ds, src.max_documents):
        if field_name not in row:
            raise ValueError(f"domain {spec.name!r}: documents have no field {field_name!r} (fields: {sorted(row)})")
        text = row[field_name]
        if text:
            yield text


# ---------------------------------------------------------------------------- tokenizer


def train_tokenizer(texts_by_domain: dict[str, list[str]], vocab_size: int) -> Tokenizer:
    """Byte-level BPE on a balanced sample: the same number of characters from each domain."""
    budget = min(sum(len(t) for t in texts) for texts in texts_by_domain.values())
    sample: list[str] = []
    for texts in texts_by_domain.values():
        used = 0
        for t in texts:
            if used >= budget:
                break
            sample.append(t[: budget - used])
            used += len(sample[-1])
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(sample, trainer)
    return tok


def _sample_texts(spec: DomainSpec, chars: int) -> list[str]:
    """The first ``chars`` characters of a domain's documents."""
    out, used = [], 0
    for doc in iter_documents(spec):
        out.append(doc)
        used += len(doc)
        if used >= chars:
            break
    return out


def load_tokenizer(
    specs: list[DomainSpec], cache_dir: Path, *, vocab_size: int, sample_chars: int,
    path: str | Path | None = None,
) -> tuple[Tokenizer, str]:
    """The given tokenizer.json, or one trained once on the domains and cached; and its hash."""
    if path is not None:
        data = Path(path).read_bytes()
        return Tokenizer.from_str(data.decode()), hashlib.sha256(data).hexdigest()
    key = _digest([_CACHE_FORMAT, [s.fingerprint() for s in specs], vocab_size, sample_chars])
    target = cache_dir / f"tokenizer-{key[:16]}.json"
    if not target.exists():
        log.info("training a %d-token BPE tokenizer on %d domains", vocab_size, len(specs))
        tok = train_tokenizer({s.name: _sample_texts(s, sample_chars) for s in specs}, vocab_size)
        _atomic_write(target, tok.to_str().encode())
    data = target.read_bytes()
    return Tokenizer.from_str(data.decode()), hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------------- token cache


def _atomic_write(target: Path, data: bytes | np.ndarray) -> None:
    """Write to a temporary file beside ``target``, then ``os.replace``: never half a file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            if isinstance(data, np.ndarray):
                np.save(f, data)
            else:
                f.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def tokenize_documents(docs: Iterable[str], tok: Tokenizer, batch: int = 256) -> list[np.ndarray]:
    """Each document's token ids, ending with the end-of-text token."""
    eos = tok.token_to_id(EOS)
    dtype = np.uint16 if tok.get_vocab_size() <= 2**16 else np.uint32
    out: list[np.ndarray] = []
    docs = iter(docs)
    while chunk := list(itertools.islice(docs, batch)):
        for enc in tok.encode_batch(chunk, add_special_tokens=False):
            out.append(np.array([*enc.ids, eos], dtype=dtype))
    return out


def split_documents(docs: list[np.ndarray], val_tokens: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, val): val is exactly ``val_tokens + 1`` tokens from randomly chosen whole
    documents (the last one cut); train is every other document, in order. Disjoint."""
    order = list(range(len(docs)))
    random.Random(seed).shuffle(order)
    need, val_ids = val_tokens + 1, set()
    for i in order:
        if need <= 0:
            break
        val_ids.add(i)
        need -= len(docs[i])
    if need > 0:
        raise ValueError(f"only {val_tokens + 1 - need} tokens, fewer than val_tokens={val_tokens}")
    val = np.concatenate([docs[i] for i in order[: len(val_ids)]])[: val_tokens + 1]
    rest = [d for i, d in enumerate(docs) if i not in val_ids]
    train = np.concatenate(rest) if rest else docs[0][:0]
    return train, val


@dataclass
class DomainTokens:
    """One domain's token ids (memory-mapped when cached): training stream and val set."""

    name: str
    train: np.ndarray
    val: np.ndarray


@dataclass
class MixtureData:
    """Everything a trial trains and evaluates on; built once, shared by all trials."""

    domains: dict[str, DomainTokens]
    vocab_size: int
    tokenizer: Tokenizer | None = None
    tokenized: list[str] = field(default_factory=list)  # domains tokenised by this call

    @classmethod
    def from_arrays(
        cls, train: dict[str, np.ndarray], val: dict[str, np.ndarray], vocab_size: int
    ) -> MixtureData:
        """In-memory data (tests, benchmarks): no tokenizer, no cache."""
        return cls({d: DomainTokens(d, train[d], val[d]) for d in train}, vocab_size)

    @property
    def train(self) -> dict[str, np.ndarray]:
        return {d: t.train for d, t in self.domains.items()}

    @property
    def val(self) -> dict[str, np.ndarray]:
        return {d: t.val for d, t in self.domains.items()}


def prepare_data(
    specs: list[DomainSpec],
    cache_dir: str | Path,
    *,
    val_tokens: int,
    vocab_size: int = 1024,
    tokenizer: str | Path | None = None,
    tokenizer_sample_chars: int = 2_000_000,
    split_seed: int = 0,
) -> MixtureData:
    """Tokenizer and token arrays of every domain, from the cache or built into it."""
    cache_dir = Path(cache_dir)
    tok, tok_hash = load_tokenizer(
        specs, cache_dir, vocab_size=vocab_size, sample_chars=tokenizer_sample_chars, path=tokenizer
    )
    domains, tokenized = {}, []
    for spec in specs:
        key = _digest([_CACHE_FORMAT, spec.fingerprint(), tok_hash, val_tokens, split_seed])[:16]
        train_path = cache_dir / "tokens" / f"{spec.name}-{key}.train.npy"
        val_path = train_path.with_name(f"{spec.name}-{key}.val.npy")
        if not (train_path.exists() and val_path.exists()):
            log.info("tokenising domain %r", spec.name)
            docs = tokenize_documents(iter_documents(spec), tok)
            try:
                train, val = split_documents(docs, val_tokens, split_seed)
            except ValueError as e:
                raise ValueError(f"domain {spec.name!r}: {e}") from None
            _atomic_write(train_path, train)
            _atomic_write(val_path, val)  # written last: its presence marks a complete entry
            tokenized.append(spec.name)
        domains[spec.name] = DomainTokens(
            spec.name, np.load(train_path, mmap_mode="r"), np.load(val_path, mmap_mode="r")
        )
    return MixtureData(domains, tok.get_vocab_size(), tok, tokenized)


# ---------------------------------------------------------------------------- batches


class DataRepeatWarning(UserWarning):
    """A domain's training tokens were seen more than once."""


class MixtureBatches:
    """Batches of ``seq_len + 1`` token windows; each row's domain drawn by the weights.

    A domain is read in epochs: a random permutation of its non-overlapping windows, then a
    new one. A domain of weight 0 is never drawn. :meth:`epochs` says how far each domain got.
    """

    def __init__(
        self, train: dict[str, np.ndarray], weights: dict[str, float], *,
        batch_size: int, seq_len: int, seed: int,
    ) -> None:
        unknown = set(weights) - set(train)
        if unknown:
            raise ValueError(f"weights for unknown domains: {sorted(unknown)}")
        w = {d: float(weights.get(d, 0.0)) for d in train}
        if any(not np.isfinite(v) or v < 0 for v in w.values()) or sum(w.values()) <= 0:
            raise ValueError(f"weights must be finite, >= 0 and not all 0: {w}")
        self.all_names = list(train)
        self.names = [d for d in train if w[d] > 0]
        self.p = np.array([w[d] for d in self.names]) / sum(w.values())
        self.arrays = {d: train[d] for d in self.names}
        self.windows = {d: (len(a) - 1) // seq_len for d, a in self.arrays.items()}
        for d, n in self.windows.items():
            if n < 1:
                raise ValueError(f"domain {d!r} has {len(self.arrays[d])} training tokens, fewer than seq_len+1")
        self.batch_size, self.seq_len = batch_size, seq_len
        self.rng = np.random.default_rng(seed)
        self.drawn = dict.fromkeys(self.names, 0)
        self._order = {d: self.rng.permutation(n) for d, n in self.windows.items()}

    def next(self) -> np.ndarray:
        """A (batch_size, seq_len + 1) int64 array: inputs are [:, :-1], targets [:, 1:]."""
        rows = self.rng.choice(len(self.names), size=self.batch_size, p=self.p)
        out = np.empty((self.batch_size, self.seq_len + 1), dtype=np.int64)
        for r, k in enumerate(rows):
            d = self.names[k]
            i = self.drawn[d] % self.windows[d]
            if i == 0 and self.drawn[d]:
                self._order[d] = self.rng.permutation(self.windows[d])
            start = int(self._order[d][i]) * self.seq_len
            out[r] = self.arrays[d][start : start + self.seq_len + 1]
            self.drawn[d] += 1
        return out

    def epochs(self) -> dict[str, float]:
        """Passes over each domain's training windows so far (0 for weight-0 domains)."""
        return {d: self.drawn[d] / self.windows[d] if d in self.windows else 0.0
                for d in self.all_names}
