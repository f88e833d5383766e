"""Framework-neutral text preprocessing shared by all four implementations.

One tokenizer (two spellings: ``words``, the default, and ``punct``, which also
keeps ``!``, ``?`` and ratings such as ``7/10``), one vocabulary (from the rows
a run trains on: the official training split less the validation rows), one
seeded stratified validation split carved from train, int32 token arrays
padded at the front. Long reviews lose their beginning (``head_tokens=0``), so
that every review keeps its ending (where reviewers tend to state their
verdict) and the recurrent state at the last step has just read real words, or
keep their first ``head_tokens`` and their end. The result is cached on disk as
an uncompressed ``.npz``, keyed by everything that changes it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model import imdb

PREPROCESS_VERSION = 2  # bump when tokenizing or encoding changes (2: vocabulary without the validation rows)
PAD, OOV = 0, 1
RESERVED = ("<pad>", "<oov>")
PADDING = "pre"
TRUNCATING = "pre"

_MARKUP = re.compile(r"<[^>]+>")
TOKEN_PATTERNS = {
    "words": re.compile(r"[a-z0-9]+(?:'[a-z]+)?"),
    # Ratings ("7/10", "4/5") and "!"/"?" carry sentiment that the word pattern throws away.
    "punct": re.compile(r"[0-9]+(?:\.[0-9]+)?/[0-9]+|[a-z0-9]+(?:'[a-z]+)?|[!?]"),
}
TOKENIZERS = tuple(TOKEN_PATTERNS)


def tokenize(text: str, tokenizer: str = "words") -> list[str]:
    """Lower-cased tokens; HTML line breaks (``<br />``) and other tags are dropped."""
    return TOKEN_PATTERNS[tokenizer].findall(_MARKUP.sub(" ", text.lower()))


def build_vocabulary(token_lists, size: int) -> list[str]:
    """The ``size - 2`` most frequent words after the padding and unknown-word entries.

    Ties are broken alphabetically so that the vocabulary is the same on every machine.
    """
    counts = Counter()
    for tokens in token_lists:
        counts.update(tokens)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return list(RESERVED) + [word for word, _ in ranked[: size - len(RESERVED)]]


def truncate(tokens: list, maxlen: int, head_tokens: int = 0) -> list:
    """At most ``maxlen`` tokens: the first ``head_tokens`` and the last ``maxlen - head_tokens``."""
    if len(tokens) <= maxlen:
        return tokens
    return tokens[:head_tokens] + tokens[len(tokens) - (maxlen - head_tokens):]


def encode(token_lists, vocabulary: list[str], maxlen: int, head_tokens: int = 0) -> np.ndarray:
    """(n, maxlen) int32: each review's tokens after ``truncate``, left-padded with ``PAD``."""
    index = {word: i for i, word in enumerate(vocabulary)}
    out = np.zeros((len(token_lists), maxlen), dtype=np.int32)
    for row, tokens in enumerate(token_lists):
        ids = [index.get(word, OOV) for word in truncate(tokens, maxlen, head_tokens)]
        if ids:
            out[row, maxlen - len(ids):] = ids
    return out


def encode_texts(texts, vocabulary: list[str], maxlen: int, tokenizer: str = "words",
                 head_tokens: int = 0) -> np.ndarray:
    return encode([tokenize(text, tokenizer) for text in texts], vocabulary, maxlen, head_tokens)


def lengths(x: np.ndarray) -> np.ndarray:
    """Tokens per row of a front-padded array (``PAD`` appears only as padding)."""
    first = np.where((x != PAD).any(axis=1), (x != PAD).argmax(axis=1), x.shape[1])
    return (x.shape[1] - first).astype(np.int64)


def settings(model, train) -> dict:
    """The keyword arguments of ``prepare``/``cache_file`` for a run's ModelSpec and TrainSpec."""
    return dict(vocab_size=model.vocab_size, maxlen=model.maxlen, val_fraction=train.val_fraction, seed=train.data_seed,
                tokenizer=model.tokenizer, head_tokens=model.head_tokens, val_split=train.val_split)


@dataclass
class Prepared:
    """Encoded arrays for one (data source, vocabulary size, maxlen, split) setting."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    val_index: np.ndarray  # rows of the official train split held out for validation
    vocabulary: list[str]
    key: str
    source: str

    def subset_rows(self, train_size: int | None, test_size: int | None, seed: int):
        """Row indices (train, val, test) of a stratified, seeded subset; val shrinks in proportion."""
        rng = np.random.default_rng(seed)
        train = _stratified_pick(self.y_train, train_size, rng)
        val_size = None if train_size is None else max(2, round(train_size * len(self.y_val) / len(self.y_train)))
        return train, _stratified_pick(self.y_val, val_size, rng), _stratified_pick(self.y_test, test_size, rng)

    def subset(self, train_size: int | None, test_size: int | None, seed: int) -> "Prepared":
        if train_size is None and test_size is None:
            return self
        train, val, test = self.subset_rows(train_size, test_size, seed)
        return Prepared(self.x_train[train], self.y_train[train], self.x_val[val], self.y_val[val],
                        self.x_test[test], self.y_test[test], self.val_index[val], self.vocabulary,
                        self.key, self.source)


def _stratified_pick(labels: np.ndarray, n: int | None, rng: np.random.Generator) -> np.ndarray:
    if n is None or n >= len(labels):
        return np.arange(len(labels))
    chosen = []
    for label in (0, 1):
        rows = np.flatnonzero(labels == label)
        take = n // 2 if label == 0 else n - n // 2
        chosen.append(rng.choice(rows, size=min(take, len(rows)), replace=False))
    return np.sort(np.concatenate(chosen))


def source_fingerprint(path: Path) -> str:
    """Cheap identity of a data source: its path, size and modification time."""
    stat = path.stat()
    return f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"


def cache_key(source: Path, vocab_size: int, maxlen: int, val_fraction: float, seed: int, tokenizer: str = "words",
              head_tokens: int = 0, val_split: str = "reviews") -> str:
    settings = dict(version=PREPROCESS_VERSION, source=source_fingerprint(source), vocab_size=vocab_size,
                    maxlen=maxlen, val_fraction=val_fraction, seed=seed, padding=PADDING,
                    truncating=TRUNCATING, tokenizer=tokenizer, head_tokens=head_tokens, val_split=val_split)
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def cache_file(source: Path, vocab_size: int, maxlen: int, val_fraction: float, seed: int, tokenizer: str = "words",
               head_tokens: int = 0, val_split: str = "reviews", cache_dir: Path | None = None) -> Path:
    key = cache_key(source, vocab_size, maxlen, val_fraction, seed, tokenizer, head_tokens, val_split)
    return Path(cache_dir or imdb.default_cache_dir()) / "prepared" / f"imdb-{key}.npz"


def prepare(source: Path, vocab_size: int, maxlen: int, val_fraction: float = 0.1, seed: int = 0,
            tokenizer: str = "words", head_tokens: int = 0, val_split: str = "reviews", cache_dir: Path | None = None,
            reviews_per_class: int | None = imdb.REVIEWS_PER_CLASS) -> Prepared:
    """Load the encoded dataset from the cache, building the cache entry first if needed."""
    file = cache_file(source, vocab_size, maxlen, val_fraction, seed, tokenizer, head_tokens, val_split, cache_dir)
    key = file.stem.removeprefix("imdb-")
    if file.exists():
        return _load(file, key, str(source))
    splits = imdb.read(source, reviews_per_class)
    prepared = _build(splits, vocab_size, maxlen, val_fraction, seed, tokenizer, head_tokens, val_split, key,
                      str(source))
    _save(prepared, file)
    return prepared


def validation_rows(split, val_fraction: float, seed: int, val_split: str = "reviews"):
    """(training rows, validation rows) of the official training split, each sorted."""
    from sklearn.model_selection import StratifiedGroupKFold, train_test_split

    rows, labels = np.arange(len(split.labels)), split.labels
    if val_split == "reviews":
        train_rows, val_rows = train_test_split(rows, test_size=val_fraction, random_state=seed, stratify=labels)
    else:
        if not all(split.movies):
            raise imdb.DatasetError("val_split=movies needs the archive's urls_pos.txt/urls_neg.txt, which are missing")
        # One fold of round(1 / val_fraction), stratified by label, never splitting a movie's reviews.
        folds = StratifiedGroupKFold(n_splits=round(1 / val_fraction), shuffle=True, random_state=seed)
        train_rows, val_rows = next(folds.split(rows, labels, groups=split.movies))
    return np.sort(train_rows), np.sort(val_rows)


def _build(splits, vocab_size, maxlen, val_fraction, seed, tokenizer, head_tokens, val_split, key,
           source) -> Prepared:
    train_tokens = [tokenize(text, tokenizer) for text in splits["train"].texts]
    y_all = splits["train"].labels.astype(np.float32)
    train_rows, val_rows = validation_rows(splits["train"], val_fraction, seed, val_split)
    # The validation rows stand in for unseen reviews: their words must not shape the vocabulary.
    vocabulary = build_vocabulary([train_tokens[i] for i in train_rows], vocab_size)
    x_all = encode(train_tokens, vocabulary, maxlen, head_tokens)
    x_test = encode_texts(splits["test"].texts, vocabulary, maxlen, tokenizer, head_tokens)
    return Prepared(x_all[train_rows], y_all[train_rows], x_all[val_rows], y_all[val_rows], x_test,
                    splits["test"].labels.astype(np.float32), val_rows, vocabulary, key, source)


def _save(prepared: Prepared, file: Path) -> None:
    from model.records import atomic

    with atomic(file) as tmp, open(tmp, "wb") as out:  # readers never see a half-written cache entry
        np.savez(out, x_train=prepared.x_train, y_train=prepared.y_train, x_val=prepared.x_val,
                 y_val=prepared.y_val, x_test=prepared.x_test, y_test=prepared.y_test,
                 val_index=prepared.val_index, vocabulary=np.array(prepared.vocabulary))


def _load(file: Path, key: str, source: str) -> Prepared:
    with np.load(file) as data:
        arrays = {name: data[name] for name in data.files}
    vocabulary = arrays.pop("vocabulary").tolist()
    return Prepared(**arrays, vocabulary=vocabulary, key=key, source=source)


def split_texts(source: Path, prepared: Prepared, train_size: int | None = None, test_size: int | None = None,
                seed: int = 0, reviews_per_class: int | None = imdb.REVIEWS_PER_CLASS):
    """Raw texts and labels of exactly the rows a run trains and tests on (for the scikit-learn baseline)."""
    splits = imdb.read(source, reviews_per_class)
    train = splits["train"]
    held_out = np.zeros(len(train.labels), dtype=bool)
    held_out[prepared.val_index] = True
    fit_rows = np.flatnonzero(~held_out)  # the order of prepared.x_train
    train_rows, _, test_rows = prepared.subset_rows(train_size, test_size, seed)
    fit_rows = fit_rows[train_rows]
    test = splits["test"]
    return ([train.texts[i] for i in fit_rows], train.labels[fit_rows],
            [test.texts[i] for i in test_rows], test.labels[test_rows])
