"""The network and its training, as plain data shared by every implementation and every record."""

from __future__ import annotations

from dataclasses import dataclass, fields

from model.errors import UserError

CELLS = ("rnn", "gru", "lstm")
MAX_LAYERS = 4
# Native TensorFlow's formulations of the recurrent loop (a variant in model/implementations.py).
TF_FORMULATIONS = ("loop", "precomputed", "block")
# The fastest correct native TF formulation per cell, measured here (table in model/tf_model.py).
TF_FASTEST = {"lstm": "loop", "gru": "loop", "rnn": "precomputed"}


class SpecError(UserError):
    """A setting outside what the benchmark supports (reported to users in one line)."""


@dataclass(frozen=True)
class ModelSpec:
    """Embedding -> ``layers`` x recurrent layer -> max over time -> dropout -> one logit."""

    cell: str = "lstm"
    layers: int = 1
    units: int = 64
    embedding_dim: int = 64
    bidirectional: bool = False
    dropout: float = 0.5
    vocab_size: int = 10_000
    maxlen: int = 200

    def __post_init__(self):
        if self.cell not in CELLS:
            raise SpecError(f"unknown cell {self.cell!r}; choose one of {', '.join(CELLS)}")
        if not 1 <= self.layers <= MAX_LAYERS:
            raise SpecError(f"layers must be between 1 and {MAX_LAYERS}, got {self.layers}")
        if self.maxlen < 1:
            raise SpecError(f"maxlen must be at least 1, got {self.maxlen}")
        if self.units < 1 or self.embedding_dim < 1:
            raise SpecError("units and embedding_dim must be at least 1")
        if self.vocab_size < 3:
            raise SpecError(f"vocab_size must be at least 3 (padding, unknown word, one word), got {self.vocab_size}")
        if not 0.0 <= self.dropout < 1.0:
            raise SpecError(f"dropout must be in [0, 1), got {self.dropout}")

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1


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
    val_fraction: float = 0.1
    seed: int = 0
    train_size: int | None = None  # None: all 22,500 training reviews after the validation split
    test_size: int | None = None  # None: the whole official 25k test set
    eval_batch_size: int = 500
    validations_per_epoch: int = 1  # evenly spaced; the last at the end of the epoch (early stopping reads it)

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
        if self.seed < 0:
            raise SpecError(f"seed must be at least 0, got {self.seed}")
        if not 0.0 < self.val_fraction < 0.5:
            raise SpecError(f"val_fraction must be in (0, 0.5), got {self.val_fraction}")
        for name in ("train_size", "test_size"):
            value = getattr(self, name)
            if value is not None and value < 4:
                raise SpecError(f"{name} must be at least 4 reviews, got {value}")
        if self.train_size is not None and self.train_size < self.batch_size:
            raise SpecError(f"train_size {self.train_size} does not fill one batch of {self.batch_size}")


def from_dict(cls, data: dict):
    """A spec from its ``asdict`` form; unknown keys are refused, missing ones take their defaults."""
    names = {f.name for f in fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise SpecError(f"unknown {cls.__name__} setting(s): {', '.join(sorted(unknown))}")
    return cls(**data)
