"""The network and its training, as plain data shared by every implementation and every record."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import NamedTuple

from model.errors import UserError

CELLS = ("rnn", "gru", "lstm")
CELL_NAMES = {"rnn": "SimpleRNN", "gru": "GRU", "lstm": "LSTM"}


def depth_label(layers: int, bidirectional: bool) -> str:
    return f"{layers}L{' bi' if bidirectional else ''}"


class Configuration(NamedTuple):
    """One network shape of a sweep's grid: the model axes every table groups runs by (``CONFIGURATION``)."""

    cell: str
    layers: int
    bidirectional: bool

    @classmethod
    def of(cls, item) -> Configuration:
        """The configuration of a spec, a record's row (dict, pandas row or itertuples tuple)."""
        return cls(*(item[name] if isinstance(item, Mapping) else getattr(item, name) for name in cls._fields))

    @classmethod
    def parse(cls, slug: str) -> Configuration:
        """The configuration a slug names ('lstm1', 'gru2-bi')."""
        match = re.fullmatch(rf"({'|'.join(CELLS)})(\d)(-bi)?", slug)
        if not match:
            raise SpecError(f"configuration {slug!r}: write cell, layers and -bi, e.g. lstm1 or gru2-bi")
        return cls(match[1], int(match[2]), bool(match[3]))

    @property
    def label(self) -> str:
        """How tables and plots name it: 'LSTM 2L bi'."""
        if not self.layers:
            return "no recurrent layer"
        return f"{CELL_NAMES[self.cell]} {depth_label(self.layers, self.bidirectional)}"

    @property
    def slug(self) -> str:
        """How run ids and folders name it: 'lstm2-bi'."""
        return f"{self.cell}{self.layers}{'-bi' if self.bidirectional else ''}"


CONFIGURATION = list(Configuration._fields)


TOKENIZERS = ("words", "punct")  # model/preprocess.py defines them
SCHEDULES = ("constant", "warmup_cosine")
VAL_SPLITS = ("reviews", "movies")
# uniform: Keras' default draw; ppmi-svd: word vectors from the training rows' co-occurrences (model/pretrain.py)
EMBEDDING_INITS = ("uniform", "ppmi-svd")
POOLINGS = ("max", "max-mean")
MAX_LAYERS = 4
# Native TensorFlow's formulations of the recurrent loop (a variant in model/implementations.py).
TF_FORMULATIONS = ("loop", "precomputed", "block")
# The fastest correct native TF formulation per cell, measured here (table in model/tf_model.py).
TF_FASTEST = {"lstm": "loop", "gru": "loop", "rnn": "precomputed"}


class SpecError(UserError):
    """A setting outside what the benchmark supports (reported to users in one line)."""


@dataclass(frozen=True)
class ModelSpec:
    """Embedding -> ``layers`` x recurrent layer -> max over time -> dropout -> one logit.

    With ``segment_len``, each review is cut into consecutive segments of that many tokens that run through the
    recurrent stack as rows of their own (Johnson & Zhang 2016), and the max is taken over every timestep of
    every segment of the review: fewer sequential steps, larger matrix products.

    ``layers=0`` leaves the recurrent stack out (the embeddings themselves are pooled): the ablation that measures
    what the recurrent layer adds to a recipe (``cell`` is then unused).
    """

    cell: str = "lstm"
    layers: int = 1
    units: int = 64
    embedding_dim: int = 64
    bidirectional: bool = False
    dropout: float = 0.5
    vocab_size: int = 10_000
    maxlen: int = 200
    tokenizer: str = "words"
    head_tokens: int = 0  # tokens kept from the start of a long review; the rest of maxlen from its end
    embedding_dropout: float = 0.0  # dropout on the embedded tokens
    segment_len: int = 0  # 0: the review is one sequence
    embedding_init: str = "uniform"  # EMBEDDING_INITS
    # > 0: each token's embedding plus a learned vector for each n-gram it ends, n = 2..ngram_order (the bigram
    # (previous token, token), then the trigram...), all in this many shared rows (ngram_ids below: the n-gram
    # read as a base-vocab_size number, mod the rows; fastText shares hashed rows too, with another hash). An
    # n-gram touching padding adds nothing. 0: words only. Where vocab_size and the rows share a factor the ids
    # lose digits of the oldest token: with 30,000 words and 2**18 rows, bigrams (a, b) and (a + 16,384, b) share
    # a row (how competitive-ngrams ran; a row count prime to vocab_size keeps them apart).
    ngram_buckets: int = 0
    ngram_order: int = 2
    # max: the max over every timestep (of every segment) of the review; max-mean: beside it, the mean over the
    # review's real tokens (padding left out): the strongest evidence and the weight of all of it
    pooling: str = "max"

    def __post_init__(self):
        if self.cell not in CELLS:
            raise SpecError(f"unknown cell {self.cell!r}; choose one of {', '.join(CELLS)}")
        if not 0 <= self.layers <= MAX_LAYERS:
            raise SpecError(f"layers must be between 0 and {MAX_LAYERS}, got {self.layers}")
        if not self.layers and self.bidirectional:
            raise SpecError("layers 0 (no recurrent layer) has no direction: run it unidirectional")
        if self.maxlen < 1:
            raise SpecError(f"maxlen must be at least 1, got {self.maxlen}")
        if self.units < 1 or self.embedding_dim < 1:
            raise SpecError("units and embedding_dim must be at least 1")
        if self.vocab_size < 3:
            raise SpecError(f"vocab_size must be at least 3 (padding, unknown word, one word), got {self.vocab_size}")
        for name in ("dropout", "embedding_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise SpecError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if self.tokenizer not in TOKENIZERS:
            raise SpecError(f"unknown tokenizer {self.tokenizer!r}; choose one of {', '.join(TOKENIZERS)}")
        if not 0 <= self.head_tokens < self.maxlen:
            raise SpecError(f"head_tokens must be in [0, maxlen), got {self.head_tokens}")
        if self.embedding_init not in EMBEDDING_INITS:
            raise SpecError(f"unknown embedding_init {self.embedding_init!r}; "
                            f"choose one of {', '.join(EMBEDDING_INITS)}")
        if self.pooling not in POOLINGS:
            raise SpecError(f"unknown pooling {self.pooling!r}; choose one of {', '.join(POOLINGS)}")
        if self.ngram_buckets < 0:
            raise SpecError(f"ngram_buckets must be at least 0, got {self.ngram_buckets}")
        if self.ngram_buckets and self.ngram_order > min(self.maxlen, self.width_multiple):
            raise SpecError(f"ngram_order {self.ngram_order} is longer than a batch can be wide "
                            f"({min(self.maxlen, self.width_multiple)} tokens)")
        if not 2 <= self.ngram_order or self.vocab_size ** self.ngram_order >= 2 ** 63:
            raise SpecError(f"ngram_order must be at least 2 and vocab_size ** ngram_order below 2**63 (int64 ids), "
                            f"got {self.ngram_order}")
        if self.segment_len < 0 or (self.segment_len and self.maxlen % self.segment_len):
            raise SpecError(f"segment_len must be 0 or divide maxlen {self.maxlen}, got {self.segment_len}")

    @property
    def embeddings(self) -> int:
        """Embedding tables at the head of the canonical weights: the words', then the n-grams' if any."""
        return 2 if self.ngram_buckets else 1

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def pooled_features(self) -> int:
        """The width of what the output layer reads."""
        pooled = self.units * self.directions if self.layers else self.embedding_dim
        return pooled * (2 if self.pooling == "max-mean" else 1)

    @property
    def width_multiple(self) -> int:
        """Every length-bucketed batch's width (tokens per row) is a multiple of this: a few distinct widths,
        so that graph frameworks trace a few step functions, not one per review length."""
        return self.segment_len or 32


@dataclass(frozen=True)
class TrainSpec:
    """Everything that decides the training trajectory, given explicitly (framework defaults differ)."""

    batch_size: int = 64
    epochs: int = 3
    learning_rate: float = 1e-3
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-7  # Keras' and TF's default; torch's is 1e-8, so it is always passed
    clip_global_norm: float = 1.0
    patience: int = 1  # epochs without a lower validation loss before stopping
    # True: the weights of the epoch with the lowest validation loss are restored at the end (Keras'
    # restore_best_weights). False: the run keeps the weights it ends with (a schedule that anneals to 0 ends
    # on weights averaged by its small last steps); early stopping still ends it when patience runs out.
    restore_best: bool = True
    val_fraction: float = 0.1
    # reviews: a stratified random share of the training reviews; movies: of the training *movies* (all the
    # reviews of a movie on one side), as the official test set's movies are disjoint from the training set's
    val_split: str = "reviews"
    seed: int = 0
    # None: the seed above. Set, the validation split (and with it the vocabulary and any subset) stays fixed
    # while the seed varies weights, batch order and dropout: runs that differ only there can be averaged
    # and judged on the same validation reviews (an ensemble's search).
    split_seed: int | None = None
    train_size: int | None = None  # None: all 22,500 training reviews after the validation split
    test_size: int | None = None  # None: the whole official 25k test set
    eval_batch_size: int = 500
    validations_per_epoch: int = 1  # evenly spaced; the last at the end of the epoch (early stopping reads it)
    # constant, or warmup_cosine: linear from 0 to learning_rate over warmup_fraction of the steps of all
    # epochs, then a cosine to 0 (keras.optimizers.schedules.CosineDecay's formula; learning_rate_at below)
    schedule: str = "constant"
    warmup_fraction: float = 0.1
    # Batches of reviews of similar length, each cut to its longest review (rounded up to the segment length):
    # the seeded permutation is cut into pools of bucket_pool batches, each pool sorted by length.
    bucket_pool: int = 0  # 0: no bucketing, every batch is maxlen wide

    @property
    def data_seed(self) -> int:
        """The seed of the validation split, the vocabulary built beside it and any subset."""
        return self.seed if self.split_seed is None else self.split_seed

    def __post_init__(self):
        for name in ("batch_size", "epochs", "patience", "eval_batch_size", "validations_per_epoch"):
            if getattr(self, name) < 1:
                raise SpecError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("learning_rate", "epsilon", "clip_global_norm"):
            if not getattr(self, name) > 0:
                raise SpecError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("beta_1", "beta_2"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise SpecError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        for name in ("seed", "split_seed"):
            if (getattr(self, name) or 0) < 0:
                raise SpecError(f"{name} must be at least 0, got {getattr(self, name)}")
        if self.schedule not in SCHEDULES:
            raise SpecError(f"unknown schedule {self.schedule!r}; choose one of {', '.join(SCHEDULES)}")
        if not 0.0 <= self.warmup_fraction < 1.0:
            raise SpecError(f"warmup_fraction must be in [0, 1), got {self.warmup_fraction}")
        if self.val_split not in VAL_SPLITS:
            raise SpecError(f"unknown val_split {self.val_split!r}; choose one of {', '.join(VAL_SPLITS)}")
        if self.bucket_pool < 0:
            raise SpecError(f"bucket_pool must be at least 0, got {self.bucket_pool}")
        if not 0.0 < self.val_fraction < 0.5:
            raise SpecError(f"val_fraction must be in (0, 0.5), got {self.val_fraction}")
        for name in ("train_size", "test_size"):
            value = getattr(self, name)
            if value is not None and value < 4:
                raise SpecError(f"{name} must be at least 4 reviews, got {value}")
        if self.train_size is not None and self.train_size < self.batch_size:
            raise SpecError(f"train_size {self.train_size} does not fill one batch of {self.batch_size}")


def ngram_ids(history, spec: ModelSpec):
    """The row of each n-gram, given its tokens oldest first (int64 arrays, one per position): the n-gram read as
    a base-vocab_size number, mod ngram_buckets. Operators only, so NumPy, torch and TF arrays give the same ids."""
    ids = history[0]
    for tokens in history[1:]:
        ids = ids * spec.vocab_size + tokens
    return ids % spec.ngram_buckets


def warmup_steps(train: TrainSpec, total_steps: int) -> int:
    return int(train.warmup_fraction * total_steps)


def learning_rate_at(train: TrainSpec, step: int, total_steps: int) -> float:
    """The learning rate of 0-based step ``step`` of ``total_steps``: Keras' CosineDecay(0, total - warmup,
    warmup_target=learning_rate, warmup_steps=warmup), which the Keras implementation uses as is."""
    if train.schedule == "constant":
        return train.learning_rate
    warmup = warmup_steps(train, total_steps)
    step = min(step, total_steps)
    if step < warmup:
        return train.learning_rate * step / warmup
    return train.learning_rate * 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / (total_steps - warmup)))


def from_dict(cls, data: dict):
    """A spec from its ``asdict`` form; unknown keys are refused, missing ones take their defaults."""
    names = {f.name for f in fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise SpecError(f"unknown {cls.__name__} setting(s): {', '.join(sorted(unknown))}")
    return cls(**data)
