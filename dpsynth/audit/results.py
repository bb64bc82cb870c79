"""The audit's results file: one JSON line per fit, resumable, and refused when edited.

The first line is a header carrying the audit's configuration; every later line is one
fit's outcome (world, run index, scores, ε charged, seconds).  Each line carries `chain`,
the SHA-256 of the previous line's chain and this line's content, so a line edited,
dropped or moved by hand breaks the chain and `--resume` refuses the file instead of
bounding ε from numbers no fit produced.  (A chain is tamper-*evident* against edits, not
proof against someone who recomputes it: the audit's evidence is re-running it.)  A file
written for another configuration is refused too: scores of two configurations must never
be pooled.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

__all__ = ["ResultsFile", "ResultsError", "FORMAT"]

FORMAT = "dpsynth.audit.results/1"
_FIT_KEYS = {"world", "run", "score", "values", "white", "epsilon_spent", "seconds", "cpu_seconds", "chain"}


class ResultsError(ValueError):
    """The results file cannot be used for this audit (edited, foreign, malformed)."""


def _canonical(obj: Mapping[str, Any]) -> str:
    return json.dumps({k: v for k, v in obj.items() if k != "chain"}, sort_keys=True, separators=(",", ":"),
                      allow_nan=False)


def _link(prev: str, obj: Mapping[str, Any]) -> str:
    return hashlib.sha256((prev + "\n" + _canonical(obj)).encode()).hexdigest()


class ResultsFile:
    """Append-only JSONL of one audit's fits."""

    def __init__(self, path: str | os.PathLike, config: Mapping[str, Any]) -> None:
        self.path = Path(path)
        self.config = json.loads(json.dumps(dict(config)))  # plain JSON, as it will read back
        self.fits: list[dict[str, Any]] = []
        self._chain = ""

    # -- writing ---------------------------------------------------------------------------------
    def start(self) -> None:
        """A new file with its header (refuses to overwrite one)."""
        if self.path.exists():
            raise FileExistsError(f"{self.path} exists: resume it (--resume) or choose another --out")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        header = {"format": FORMAT, "config": self.config}
        header["chain"] = self._chain = _link("", header)
        with open(self.path, "x", encoding="utf-8") as f:
            f.write(json.dumps(header, sort_keys=True) + "\n")

    def append(self, fits: Iterable[Mapping[str, Any]]) -> None:
        lines = []
        for fit in fits:
            row = {k: fit[k] for k in _FIT_KEYS - {"chain"}}
            row["chain"] = self._chain = _link(self._chain, row)
            self.fits.append(row)
            lines.append(json.dumps(row, sort_keys=True, allow_nan=False))
        if lines:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write("\n".join(lines) + "\n")
                f.flush()
                os.fsync(f.fileno())

    # -- reading ---------------------------------------------------------------------------------
    def resume(self) -> None:
        """Read an existing file back; refuse it unless it is this configuration's, unedited."""
        if not self.path.exists():
            raise FileNotFoundError(f"{self.path}: nothing to resume")
        text = self.path.read_text(encoding="utf-8")
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        elif lines:  # a last line cut by an interruption: drop it (its fit is simply redone)
            lines.pop()
        if not lines:
            raise ResultsError(f"{self.path}: no header line")
        try:
            header = json.loads(lines[0])
        except json.JSONDecodeError:
            raise ResultsError(f"{self.path}: line 1 is not JSON") from None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise ResultsError(f"{self.path}: not a dpsynth audit results file ({FORMAT})")
        if header.get("chain") != _link("", header):
            raise ResultsError(f"{self.path}: line 1 was edited (its chain does not match)")
        if header.get("config") != self.config:
            diff = sorted(k for k in set(self.config) | set(header.get("config") or {})
                          if (header.get("config") or {}).get(k) != self.config.get(k))
            raise ResultsError(f"{self.path} was written for another audit configuration (differs in: "
                               f"{', '.join(diff)}); its fits cannot be pooled with these")
        chain, seen, fits = header["chain"], set(), []
        runs = int(self.config["runs"])
        for i, line in enumerate(lines[1:], start=2):
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                raise ResultsError(f"{self.path}: line {i} is not JSON") from None
            if not isinstance(row, dict) or set(row) != _FIT_KEYS:
                raise ResultsError(f"{self.path}: line {i} is not a fit record")
            if row["chain"] != _link(chain, row):
                raise ResultsError(f"{self.path}: line {i} was edited, dropped or moved (its chain does not match)")
            chain = row["chain"]
            key = (row["world"], row["run"])
            if row["world"] not in ("out", "in") or not isinstance(row["run"], int) or not 0 <= row["run"] < runs:
                raise ResultsError(f"{self.path}: line {i} names no run of this audit")
            if key in seen:
                raise ResultsError(f"{self.path}: line {i} repeats run {row['run']} of world {row['world']}")
            if any(not isinstance(row[k], (int, float)) or isinstance(row[k], bool) or not math.isfinite(row[k])
                   for k in ("score", "values")) or (row["white"] is not None and not (
                    isinstance(row["white"], (int, float)) and math.isfinite(row["white"]))):
                raise ResultsError(f"{self.path}: line {i} has a score that is not a finite number")
            seen.add(key)
            fits.append(row)
        self.fits, self._chain = fits, chain
        if len(lines) != len(text.rstrip("\n").split("\n")):  # a cut last line was dropped: rewrite the file
            self.path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def done(self) -> set[tuple[str, int]]:
        return {(f["world"], f["run"]) for f in self.fits}
