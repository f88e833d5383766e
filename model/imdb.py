"""Read the Large Movie Review Dataset (Maas et al., ACL 2011) in its official layout.

Accepted sources, all in the layout of the official ``aclImdb_v1.tar.gz``
(``aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt``):

* the official archive (it also holds ``train/unsup``, which is skipped),
* ``aclImdb_v1_labeled.tar.gz`` (the same layout, labelled part only),
* an already-extracted ``aclImdb/`` folder.

Archives are streamed member by member (about 2 s for the 50k reviews on a
2-core machine); nothing is extracted to disk.
"""

from __future__ import annotations

import os
import re
import tarfile
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from model.errors import UserError

if TYPE_CHECKING:  # numpy is imported where the arrays are made, not to read the archive
    import numpy as np

OFFICIAL_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
ARCHIVE_NAMES = ("aclImdb_v1.tar.gz", "aclImdb_v1_labeled.tar.gz")
REVIEWS_PER_CLASS = 12_500  # per split, in the official release
SPLITS = ("train", "test")
LABELS = {"neg": 0, "pos": 1}

_REVIEW = re.compile(r"(?:^|/)aclImdb/(train|test)/(pos|neg)/(\d+)_(\d+)\.txt$")
_URLS = re.compile(r"(?:^|/)aclImdb/(train|test)/urls_(pos|neg)\.txt$")
_TITLE = re.compile(r"tt\d+")


class DatasetError(UserError):
    """The data could not be found or is not the complete dataset."""


@dataclass(frozen=True)
class Split:
    """One official split, ordered by (label, review id) so that every source reads alike."""

    texts: list[str]
    labels: "np.ndarray"  # (n,) int8, 1 = positive
    ratings: "np.ndarray"  # (n,) int8, the 1-10 star rating in the file name
    movies: list[str]  # the IMDb title each review is about (urls_<label>.txt, line = review id); "" if unknown


def default_cache_dir() -> Path:
    return Path(os.environ.get("RNNBENCH_CACHE", Path.home() / ".cache" / "rnnbench"))


def candidate_paths(explicit: str | os.PathLike | None = None) -> list[Path]:
    """Where the data is looked for, in order: option, $IMDB_DATA, download cache, usual places."""
    if explicit:
        return [Path(explicit).expanduser()]
    if os.environ.get("IMDB_DATA"):
        return [Path(os.environ["IMDB_DATA"]).expanduser()]
    places = [default_cache_dir(), Path.cwd(), Path.cwd() / "data", Path.cwd().parent / "shared" / "data"]
    found = [place / name for place in places for name in ARCHIVE_NAMES]
    found += [place / "aclImdb" for place in places]
    return found


def locate(explicit: str | os.PathLike | None = None, download: bool = True,
           url: str = OFFICIAL_URL, timeout_s: float = 10.0) -> Path:
    """Return the first existing data source, downloading the official archive if none exists."""
    candidates = candidate_paths(explicit)
    for path in candidates:
        if path.exists():
            return path
    looked = ", ".join(str(p) for p in candidates[:3]) + (" ..." if len(candidates) > 3 else "")
    hint = "set IMDB_DATA=/path/to/aclImdb_v1.tar.gz (or an aclImdb/ folder) or pass --data"
    if explicit or os.environ.get("IMDB_DATA") or not download:
        raise DatasetError(f"IMDB data not found at {looked}; {hint}")
    target = default_cache_dir() / ARCHIVE_NAMES[0]
    try:
        _download(url, target, timeout_s)
    except OSError as error:  # URLError, timeouts and refused connections are all OSErrors
        reason = getattr(error, "reason", error)
        raise DatasetError(f"IMDB data not found (looked in {looked}) and the download from "
                           f"{url} failed ({reason}); {hint}") from None
    return target


def _download(url: str, target: Path, timeout_s: float) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    with urllib.request.urlopen(url, timeout=timeout_s) as response, open(partial, "wb") as out:
        while chunk := response.read(1 << 20):
            out.write(chunk)
    read(partial)  # a truncated or corrupt download raises here, before it is kept
    partial.replace(target)


def read(path: str | os.PathLike, reviews_per_class: int | None = REVIEWS_PER_CLASS) -> dict[str, Split]:
    """Read both labelled splits; refuse anything but complete, balanced data.

    ``reviews_per_class`` is the count each (split, label) must have; ``None``
    accepts any balanced count (for small archives built by tests).
    """
    path = Path(path)
    if path.is_dir():
        root = path if path.name == "aclImdb" else path / "aclImdb"
        items, urls = _read_folder(root)
    else:
        items, urls = _read_archive(path)
    return _to_splits(items, urls, path, reviews_per_class)


def _read_archive(path: Path) -> tuple[list[tuple[str, str, int, int, str]], dict]:
    items, urls = [], {}
    try:
        with tarfile.open(path, mode="r:gz") as archive:
            for member in archive:
                match, listing = _REVIEW.search(member.name), _URLS.search(member.name)
                if match and member.isfile():
                    split, label, review_id, rating = match.groups()
                    text = archive.extractfile(member).read().decode("utf-8")
                    items.append((split, label, int(review_id), int(rating), text))
                elif listing and member.isfile():
                    urls[listing.groups()] = archive.extractfile(member).read().decode("utf-8").splitlines()
    except (tarfile.TarError, EOFError, zlib.error, OSError, UnicodeDecodeError) as error:
        raise DatasetError(f"{path} is not a complete aclImdb archive ({error}); "
                           "delete it and download it again") from None
    return items, urls


def _read_folder(root: Path) -> tuple[list[tuple[str, str, int, int, str]], dict]:
    items, urls = [], {}
    for split in SPLITS:
        for label in LABELS:
            for file in (root / split / label).glob("*.txt"):
                match = _REVIEW.search(file.as_posix())
                if match:
                    items.append((split, label, int(match[3]), int(match[4]), file.read_text("utf-8")))
            listing = root / split / f"urls_{label}.txt"
            if listing.is_file():
                urls[split, label] = listing.read_text("utf-8").splitlines()
    return items, urls


def _movie(urls: dict, split: str, label: str, review_id: int) -> str:
    lines = urls.get((split, label), [])
    match = _TITLE.search(lines[review_id]) if review_id < len(lines) else None
    return match.group() if match else ""


def _to_splits(items, urls: dict, source: Path, reviews_per_class: int | None) -> dict[str, Split]:
    import numpy as np  # imported late: the CLIs set thread variables before NumPy loads

    items.sort(key=lambda item: (item[0], item[1], item[2]))
    splits = {}
    for split in SPLITS:
        rows = [item for item in items if item[0] == split]
        counts = {label: sum(row[1] == label for row in rows) for label in LABELS}
        expected = reviews_per_class or max(counts.values())
        if not rows or any(count != expected for count in counts.values()):
            raise DatasetError(f"{source} is incomplete: {split} has {counts['pos']} positive and "
                               f"{counts['neg']} negative reviews, expected {expected} of each")
        splits[split] = Split(
            texts=[row[4] for row in rows],
            labels=np.array([LABELS[row[1]] for row in rows], dtype=np.int8),
            ratings=np.array([row[3] for row in rows], dtype=np.int8),
            movies=[_movie(urls, split, row[1], row[2]) for row in rows],
        )
    return splits
