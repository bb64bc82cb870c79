"""Read and write tables (CSV or Parquet, by suffix) and write files without half-written states."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

import pandas as pd

__all__ = ["read_table", "write_table", "atomic_write"]


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """A CSV (read with pandas' defaults, like `dpsynth policy fingerprint`) or Parquet file."""
    p = Path(path)
    if p.suffix.lower() == ".parquet":
        return pd.read_parquet(p)
    return pd.read_csv(p)


def write_table(frame: pd.DataFrame, path: str | os.PathLike) -> Path:
    p = Path(path)
    if p.suffix.lower() == ".parquet":
        return atomic_write(p, lambda tmp: frame.to_parquet(tmp, index=False))
    return atomic_write(p, lambda tmp: frame.to_csv(tmp, index=False))


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call `write(tmp_path)` and move the result into place: `path` is never half-written."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", dir=p.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, p)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return p
