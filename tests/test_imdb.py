"""The dataset loader: official layout from an archive or a folder, and its refusals."""

import tarfile
import time

import numpy as np
import pytest

from model import imdb
from tests.conftest import REVIEWS, make_archive


def test_reads_archive_in_official_layout(tiny_archive):
    splits = imdb.read(tiny_archive, reviews_per_class=4)
    for name in ("train", "test"):
        split = splits[name]
        assert len(split.texts) == 8
        assert split.labels.tolist() == [0] * 4 + [1] * 4  # ordered by (label, id): neg first
        assert set(split.ratings[:4]) == {2} and set(split.ratings[4:]) == {9}
    assert splits["train"].texts[4].startswith(REVIEWS["pos"][0])


def test_extracted_folder_reads_the_same_as_the_archive(tiny_archive, tmp_path):
    with tarfile.open(tiny_archive) as archive:
        archive.extractall(tmp_path / "extracted", filter="data")
    from_folder = imdb.read(tmp_path / "extracted" / "aclImdb", reviews_per_class=4)
    from_parent = imdb.read(tmp_path / "extracted", reviews_per_class=4)
    from_archive = imdb.read(tiny_archive, reviews_per_class=4)
    for name in ("train", "test"):
        assert from_folder[name].texts == from_archive[name].texts == from_parent[name].texts
        assert np.array_equal(from_folder[name].labels, from_archive[name].labels)


def test_official_archive_unsup_reviews_are_skipped(tmp_path):
    splits = imdb.read(make_archive(tmp_path / "a.tar.gz", unsup=True), reviews_per_class=4)
    assert len(splits["train"].texts) == 8


def test_truncated_archive_is_an_error_not_a_smaller_dataset(tiny_archive):
    data = tiny_archive.read_bytes()
    tiny_archive.write_bytes(data[: len(data) // 2])
    with pytest.raises(imdb.DatasetError, match="not a complete aclImdb archive"):
        imdb.read(tiny_archive, reviews_per_class=None)


def test_corrupt_archive_is_an_error(tmp_path):
    bad = tmp_path / "aclImdb_v1.tar.gz"
    bad.write_bytes(b"this is not a gzip file at all")
    with pytest.raises(imdb.DatasetError, match="not a complete"):
        imdb.read(bad)


def test_incomplete_or_unbalanced_data_is_refused(tmp_path):
    with pytest.raises(imdb.DatasetError, match="incomplete"):
        imdb.read(make_archive(tmp_path / "small.tar.gz"), reviews_per_class=imdb.REVIEWS_PER_CLASS)
    with pytest.raises(imdb.DatasetError, match="expected 5 of each"):
        imdb.read(make_archive(tmp_path / "unbalanced.tar.gz", extra_neg=1), reviews_per_class=None)


def test_missing_data_fails_fast_with_a_hint(tmp_path, monkeypatch):
    monkeypatch.setenv("IMDB_DATA", str(tmp_path / "nowhere.tar.gz"))
    with pytest.raises(imdb.DatasetError, match="IMDB_DATA"):
        imdb.locate()


def test_failed_download_fails_fast_with_a_hint(tmp_path, monkeypatch):
    monkeypatch.delenv("IMDB_DATA", raising=False)
    monkeypatch.setenv("RNNBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)  # no aclImdb anywhere near
    start = time.perf_counter()
    # Port 9 on loopback refuses at once: the same code path as a machine without network.
    with pytest.raises(imdb.DatasetError, match="download .* failed.*IMDB_DATA"):
        imdb.locate(url="http://127.0.0.1:9/aclImdb_v1.tar.gz", timeout_s=5)
    assert time.perf_counter() - start < 5
    assert not (tmp_path / "cache" / "aclImdb_v1.tar.gz").exists()


def test_explicit_path_wins(tiny_archive, monkeypatch):
    monkeypatch.setenv("IMDB_DATA", "/nonexistent")
    assert imdb.locate(tiny_archive) == tiny_archive


def test_shared_archive_is_the_full_balanced_dataset(imdb_archive):
    splits = imdb.read(imdb_archive)
    for name in ("train", "test"):
        assert len(splits[name].texts) == 25_000
        assert int(splits[name].labels.sum()) == 12_500
        assert set(np.unique(splits[name].ratings[splits[name].labels == 1])) <= {7, 8, 9, 10}
        assert set(np.unique(splits[name].ratings[splits[name].labels == 0])) <= {1, 2, 3, 4}
