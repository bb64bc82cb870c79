"""The SHA-256 a release entry commits to: a canonical digest of a released output.

Every noisy output that leaves the private table is committed to in the ledger
(`Gate.release`), so a model file claiming other noisy measurements than the
ones released — exact counts, say — is caught by recomputing this digest.  The
encoding is plain and reproducible from the model file: arrays by dtype, shape
and little-endian bytes; everything else as canonical JSON.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np

__all__ = ["release_digest", "RunningDigest", "canonical_release"]


def _plain(obj: Any) -> Any:
    from .measurement import NoisyMarginal

    if isinstance(obj, NoisyMarginal):
        return {"clique": list(obj.clique), "sigma": float(obj.sigma), "values": _plain(obj.values)}
    if hasattr(obj, "detach") and hasattr(obj, "cpu"):  # a torch tensor
        obj = obj.detach().cpu().numpy()
    if isinstance(obj, np.ndarray):
        arr = np.ascontiguousarray(obj)
        if arr.dtype.byteorder == ">":
            arr = arr.astype(arr.dtype.newbyteorder("<"))
        return {"array": str(arr.dtype), "shape": list(arr.shape),
                "sha256": hashlib.sha256(arr.tobytes()).hexdigest()}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (list, tuple)):
        return [_plain(o) for o in obj]
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return {"repr": repr(obj), "type": type(obj).__name__}


def canonical_release(obj: Any) -> bytes:
    return json.dumps(_plain(obj), sort_keys=True, separators=(",", ":"), allow_nan=False,
                      ensure_ascii=False).encode("utf-8")


def release_digest(obj: Any) -> str:
    """SHA-256 (hex) of the canonical encoding of a released output."""
    return hashlib.sha256(canonical_release(obj)).hexdigest()


class RunningDigest:
    """A session's commitment: SHA-256 over the digests of its outputs, in order."""

    def __init__(self) -> None:
        self._h = hashlib.sha256(b"dpsynth/session-v1\0")
        self.count = 0

    def add(self, obj: Any) -> str:
        d = release_digest(obj)
        self._h.update(d.encode() + b"\n")
        self.count += 1
        return d

    def hexdigest(self) -> str:
        return self._h.copy().hexdigest()
