"""Tokenizer, vocabulary, encoding, validation split and the on-disk cache."""

import subprocess
import sys

import numpy as np

from model import preprocess
from tests.conftest import REPO


def test_tokenize_drops_markup_and_lowercases():
    assert preprocess.tokenize("Great<br /><br />FILM, isn't it? 10/10") == ["great", "film", "isn't", "it", "10", "10"]


def test_vocabulary_reserves_padding_and_unknown_and_ranks_by_frequency():
    vocabulary = preprocess.build_vocabulary([["b", "a", "b"], ["c", "a", "b"]], size=4)
    assert vocabulary == ["<pad>", "<oov>", "b", "a"]  # "a" beats "c" on count; "c" does not fit


def test_the_punct_tokenizer_keeps_ratings_and_exclamations():
    assert preprocess.tokenize("Great<br />FILM!! isn't it? 7/10, 3.5/5", "punct") == [
        "great", "film", "!", "!", "isn't", "it", "?", "7/10", "3.5/5"]


def test_head_and_tail_truncation_keeps_both_ends():
    vocabulary = ["<pad>", "<oov>"] + list("abcdefg")
    x = preprocess.encode([list("abcdefg"), list("ab")], vocabulary, maxlen=5, head_tokens=2)
    assert x.tolist() == [[2, 3, 6, 7, 8], [0, 0, 0, 2, 3]]  # a b + e f g; a short review is untouched
    assert preprocess.lengths(x).tolist() == [5, 2]


def test_vocabulary_ties_break_alphabetically():
    assert preprocess.build_vocabulary([["z", "y", "x"]], size=5) == ["<pad>", "<oov>", "x", "y", "z"]


def test_encode_pads_at_the_front_and_keeps_the_end():
    vocabulary = ["<pad>", "<oov>", "good", "bad"]
    x = preprocess.encode([["good"], ["bad", "good", "unknown", "bad"], []], vocabulary, maxlen=3)
    assert x.dtype == np.int32
    assert x.tolist() == [[0, 0, 2], [2, 1, 3], [0, 0, 0]]


def test_prepare_builds_then_loads_the_same_cache(tiny_archive, tmp_path):
    built = preprocess.prepare(tiny_archive, vocab_size=50, maxlen=8, val_fraction=0.25, seed=1,
                               cache_dir=tmp_path, reviews_per_class=4)
    assert len(list((tmp_path / "prepared").glob("*.npz"))) == 1
    loaded = preprocess.prepare(tiny_archive, vocab_size=50, maxlen=8, val_fraction=0.25, seed=1,
                                cache_dir=tmp_path, reviews_per_class=4)
    for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test", "val_index"):
        assert np.array_equal(getattr(built, name), getattr(loaded, name)), name
    assert built.vocabulary == loaded.vocabulary
    # Stratified: the 2 held-out reviews are one of each class.
    assert sorted(loaded.y_val.tolist()) == [0.0, 1.0]
    assert len(loaded.y_train) == 6 and len(loaded.y_test) == 8
    assert loaded.x_train.shape == (6, 8)


def test_cache_key_changes_with_every_setting(tiny_archive):
    base = preprocess.cache_key(tiny_archive, 50, 8, 0.25, 1)
    assert len({base, preprocess.cache_key(tiny_archive, 51, 8, 0.25, 1),
                preprocess.cache_key(tiny_archive, 50, 9, 0.25, 1),
                preprocess.cache_key(tiny_archive, 50, 8, 0.2, 1),
                preprocess.cache_key(tiny_archive, 50, 8, 0.25, 2),
                preprocess.cache_key(tiny_archive, 50, 8, 0.25, 1, "punct"),
                preprocess.cache_key(tiny_archive, 50, 8, 0.25, 1, "words", 2)}) == 7


def test_vocabulary_comes_from_the_training_split_only(tiny_archive, tmp_path):
    prepared = preprocess.prepare(tiny_archive, vocab_size=500, maxlen=8, val_fraction=0.25, seed=0,
                                  cache_dir=tmp_path, reviews_per_class=4)
    assert not any(word.startswith("test") for word in prepared.vocabulary)
    # The validation rows stand in for unseen reviews: the vocabulary is what the other training rows hold.
    from model import imdb

    texts = imdb.read(tiny_archive, 4)["train"].texts
    kept = [preprocess.tokenize(text) for i, text in enumerate(texts) if i not in set(prepared.val_index.tolist())]
    assert prepared.vocabulary == preprocess.build_vocabulary(kept, 500)
    everything = preprocess.build_vocabulary([preprocess.tokenize(text) for text in texts], 500)
    assert set(everything) - set(prepared.vocabulary)  # the held-out rows had words of their own


def test_subset_is_stratified_and_seeded(tiny_archive, tmp_path):
    prepared = preprocess.prepare(tiny_archive, vocab_size=50, maxlen=8, val_fraction=0.25, seed=0,
                                  cache_dir=tmp_path, reviews_per_class=4)
    small = prepared.subset(train_size=4, test_size=4, seed=3)
    assert sorted(small.y_train.tolist()) == [0, 0, 1, 1] and sorted(small.y_test.tolist()) == [0, 0, 1, 1]
    again = prepared.subset(train_size=4, test_size=4, seed=3)
    assert np.array_equal(small.x_train, again.x_train)


def test_tokenizing_needs_neither_torch_nor_tensorflow(tiny_archive, tmp_path):
    code = ("import sys; from model import preprocess; "
            f"preprocess.prepare(__import__('pathlib').Path({str(tiny_archive)!r}), 50, 8, 0.25, 0, "
            f"cache_dir=__import__('pathlib').Path({str(tmp_path)!r}), reviews_per_class=4); "
            "print(sorted(m for m in ('torch', 'tensorflow', 'keras') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_real_data_cache(imdb_archive, cache_dir):
    from model.spec import ModelSpec

    spec = ModelSpec()  # the defaults' cache entry, which later tests reuse
    prepared = preprocess.prepare(imdb_archive, vocab_size=spec.vocab_size, maxlen=spec.maxlen, val_fraction=0.1,
                                  seed=0, cache_dir=cache_dir)
    assert prepared.x_train.shape == (22_500, spec.maxlen) and prepared.x_val.shape == (2_500, spec.maxlen)
    assert prepared.x_test.shape == (25_000, spec.maxlen)
    assert prepared.y_val.sum() == 1_250 and prepared.y_test.sum() == 12_500
    assert len(prepared.vocabulary) == spec.vocab_size and prepared.x_train.max() == spec.vocab_size - 1
    # Pre-padding: a short review ends in real tokens, a long one fills the row.
    assert (prepared.x_train[:, -1] > 0).all()


def test_a_movie_split_keeps_every_movie_on_one_side():
    from model.imdb import Split

    movies = [f"tt{i // 5}" for i in range(200)]  # 40 movies, 5 reviews each
    labels = np.array([(i // 5) % 2 for i in range(200)], dtype=np.int8)
    split = Split(texts=[""] * 200, labels=labels, ratings=labels, movies=movies)
    train, val = preprocess.validation_rows(split, 0.1, seed=0, val_split="movies")
    assert not {movies[i] for i in train} & {movies[i] for i in val}
    assert len(train) + len(val) == 200 and 10 <= len(val) <= 30 and 0 < labels[val].mean() < 1
    again, _ = preprocess.validation_rows(split, 0.1, seed=0, val_split="movies")
    assert np.array_equal(train, again)


def test_the_real_archive_names_the_movie_of_every_review(imdb_archive):
    from model import imdb

    splits = imdb.read(imdb_archive)
    assert all(splits["train"].movies) and all(splits["test"].movies)
    # The official test set's movies are (all but one) not in the training set: why val_split=movies exists.
    assert len(set(splits["train"].movies) & set(splits["test"].movies)) <= 1
