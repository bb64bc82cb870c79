"""Files that hold a private table, as an engine source names them: listing, the keyed
fingerprint of their bytes, and change detection — what every engine backend shares.

The fingerprint of a file source (what the policy's ``dataset.fingerprint`` governs) is
an HMAC-SHA256 under the dataset key of the files' bytes
(`accountant.fingerprint.fingerprint_files`: the format, each file's name relative to
the pattern's directory, its size and the SHA-256 of its bytes), streamed in 1 MiB
chunks: no row is parsed, and an edited byte in any file — or a file added to or removed
from the glob — gives another fingerprint.  Paths are expanded by Python: regular local
files only, no URLs.
"""

from __future__ import annotations

import glob as _glob
import hashlib
import os
import re
from pathlib import Path
from typing import Any, Callable

from .engine_source import EngineSource

__all__ = ["FileSource", "check_columns"]

_GLOB_CHARS = re.compile(r"[*?\[]")
_SUFFIX_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}


def _base_dir(pattern: str) -> Path:
    parts = Path(pattern).parts
    fixed = []
    for p in parts:
        if _GLOB_CHARS.search(p):
            break
        fixed.append(p)
    if len(fixed) == len(parts):  # a single file
        return Path(*fixed).parent
    return Path(*fixed) if fixed else Path(".")


def check_columns(names: list[str], schema: Any) -> None:
    """The files' columns (as the engine reads them) must be exactly the schema's, once each."""
    from ..schema.errors import EncodingError

    dup = sorted({c for c in names if names.count(c) > 1})
    if dup:
        raise EncodingError(f"the table has duplicate columns {dup}")
    missing = [n for n in schema.names if n not in names]
    extra = [c for c in names if c not in schema.names]
    if missing or extra:
        raise EncodingError(f"the table's columns do not match the schema: missing {missing}, not in the "
                            f"schema {extra}")


class FileSource(EngineSource):
    """A CSV file, a Parquet file or a glob of Parquet files (``**`` descends into folders);
    subclasses add the engine that reads them (`open_rows`).  Public description only: the
    rows are read by the private table that holds the source, inside charged measurements."""

    formats: tuple[str, ...] = ("parquet", "csv")
    engine_name = "engine"

    def __init__(self, path: str | os.PathLike, *, format: str | None = None) -> None:
        pattern = os.fspath(path)
        if not isinstance(pattern, str) or not pattern or "\x00" in pattern:
            raise ValueError("path must be a non-empty file path or glob")
        if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", pattern):
            raise ValueError("path must be a local file or glob (no URLs)")
        if format is None:
            format = _SUFFIX_FORMATS.get(Path(pattern).suffix.lower())
            if format is None:
                raise ValueError(f"cannot tell the format of {pattern!r} from its suffix: pass "
                                 + " or ".join(f"format={f!r}" for f in self.formats))
        if format not in self.formats:
            raise ValueError(f"format must be one of {self.formats} for a {self.engine_name} source, got {format!r}")
        files = list({os.path.realpath(p) for p in _glob.glob(pattern, recursive=True)})
        if not files:
            raise FileNotFoundError(f"no file matches {pattern!r}")
        for f in files:
            if not os.path.isfile(f):
                raise ValueError(f"{f!r} is not a regular file")
        if format == "csv" and len(files) != 1:
            raise ValueError("a CSV source is one file (use a glob of Parquet files for a table in many files)")
        base = os.path.realpath(_base_dir(pattern))
        named = sorted((os.path.relpath(f, base), f) for f in files)
        self.pattern = pattern
        self.format = format
        self.files: tuple[str, ...] = tuple(f for _, f in named)
        self.names: tuple[str, ...] = tuple(n for n, _ in named)

    # -- the fingerprint ----------------------------------------------------------------------
    def file_digests(self) -> list[tuple[str, int, str]]:
        """(name, size, SHA-256 of the bytes) per file, streamed (private: a plain hash of the data)."""
        out = []
        for name, f in zip(self.names, self.files):
            h = hashlib.sha256()
            size = 0
            with open(f, "rb") as fh:
                while True:
                    chunk = fh.read(1 << 20)
                    if not chunk:
                        break
                    size += len(chunk)
                    h.update(chunk)
            out.append((name, size, h.hexdigest()))
        return out

    def fingerprint(self, key: bytes) -> str:
        """The keyed fingerprint the policy's dataset.fingerprint must hold (module docstring)."""
        from accountant.fingerprint import fingerprint_files

        return fingerprint_files(self.format, self.file_digests(), key)

    def _stats(self) -> list[tuple[int, int, int, int, int]]:
        out = []
        for f in self.files:
            s = os.stat(f)
            out.append((s.st_dev, s.st_ino, s.st_size, s.st_mtime_ns, s.st_ctime_ns))
        return out

    # -- the engine ---------------------------------------------------------------------------
    def bind(self, schema: Any, dataset_key: bytes | None, check_dataset: Callable[[str], Any]) -> Any:
        """The fingerprint is of the files' bytes (streamed), checked before the engine reads a row."""
        stats = self._stats()  # before the bytes are read: a write from here on is caught
        digests = self.file_digests()
        if dataset_key is not None:
            from accountant.fingerprint import fingerprint_files

            check_dataset(fingerprint_files(self.format, digests, bytes(dataset_key)))
        return self.open_rows(schema, digests, stats)

    def open_rows(self, schema: Any, digests: list[tuple[str, int, str]],
                  stats: list[tuple[int, int, int, int, int]]) -> Any:
        """The engine's reading of these files under a complete `schema` (checked in the engine);
        `digests` and `stats` were taken when the files were fingerprinted."""
        raise NotImplementedError
