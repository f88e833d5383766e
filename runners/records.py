"""Run records: one JSON file per run, written atomically, with a versioned schema."""

from __future__ import annotations

import json
import os
from pathlib import Path

SCHEMA_VERSION = 1
RECORD_FILE = "record.json"

# Top-level fields every finished record carries (checked by tests and by the analysis).
REQUIRED = ("schema_version", "status", "implementation", "framework", "model_spec", "train_spec", "variant",
            "data", "environment", "runtime", "timing", "cpu", "memory", "metrics", "curves",
            "early_stopping", "files")


def write_json_atomic(path: Path, data) -> None:
    """Write to a temporary file beside ``path``, then rename: readers see all of it or nothing."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w") as out:
            json.dump(data, out, indent=1, default=_jsonable)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _jsonable(value):
    if hasattr(value, "tolist"):  # NumPy arrays and scalars
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in a record")


def read_record(run_dir: Path) -> dict:
    return json.loads((Path(run_dir) / RECORD_FILE).read_text())


def missing_fields(record: dict) -> list[str]:
    return [name for name in REQUIRED if name not in record]
