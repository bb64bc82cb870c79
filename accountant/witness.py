"""The gate's own memory of each ledger's head: a rollback this machine has seen is refused.

A ledger file can be replaced by an older copy of itself (every signature in
the copy is valid) or deleted and re-initialised under a policy that names its
ledger id.  Nothing inside the file can tell.  So the gate keeps, outside the
ledger, the last head it read or wrote for each ledger id — the sequence
number, the entry hash and the genesis hash — in a small file per ledger under
the *witness folder* (``$DPSYNTH_WITNESS_DIR``, default
``~/.local/state/dpsynth/witness``).  On opening a ledger it refuses one that no
longer holds the witnessed entry, or whose genesis differs.

This is a tripwire, not a proof: someone who can delete the witness folder as
well as replace the ledger is caught only by what lives elsewhere — receipts
in model files (`dpsynth ledger verify --receipts`), the officer's signed
checkpoints, a head an auditor pinned (proofs/threat_model.md).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .errors import LedgerIntegrityError
from .ledger.entry import Entry

__all__ = ["Witness", "default_witness_dir", "WITNESS_ENV"]

WITNESS_ENV = "DPSYNTH_WITNESS_DIR"


def default_witness_dir() -> Path:
    env = os.environ.get(WITNESS_ENV)
    if env:
        return Path(env)
    state = os.environ.get("XDG_STATE_HOME")
    base = Path(state) if state else Path.home() / ".local" / "state"
    return base / "dpsynth" / "witness"


@dataclass(frozen=True)
class _Seen:
    ledger_id: str
    genesis_hash: str
    sequence: int
    entry_hash: str


class Witness:
    """One folder of witnessed heads, one JSON file per ledger id."""

    def __init__(self, directory: str | os.PathLike | None = None) -> None:
        self.directory = Path(directory) if directory is not None else default_witness_dir()

    def _path(self, ledger_id: str) -> Path:
        # The id comes from the ledger file, which an outsider may have written: it names a
        # file here only if it is a ledger id (32 hex digits), never a path ("../other-id").
        from .policy import is_ledger_id

        if not is_ledger_id(ledger_id):
            raise LedgerIntegrityError(f"ledger id {ledger_id!r} is not 32 lower-case hex digits; the gate stays shut")
        return self.directory / f"{ledger_id}.json"

    # -- which officer started the ledgers of a ledger key (trust on first use) -------------------
    def _officer_path(self, ledger_public_key_sha256: str) -> Path:
        return self.directory / f"officer-of-{ledger_public_key_sha256}.json"

    def check_officer(self, ledger_public_key_sha256: str, officer_public_key_sha256: str, *,
                      pinned: bool = False) -> None:
        """Refuse a ledger whose genesis is signed by another officer than the one this machine
        saw start the ledgers of this ledger key.

        Without it, an outsider who can write the ledger file needs no key at all to hand the
        gate a fresh budget: make an officer key of their own, sign the (public) policy text with
        it, and start a ledger naming the (public) ledger key.  An explicitly pinned officer key
        (`pinned=True`) is recorded without the check (the caller chose to trust it)."""
        path = self._officer_path(ledger_public_key_sha256)
        if not pinned:
            try:
                seen = json.loads(path.read_text())["officer"]
            except FileNotFoundError:
                seen = None
            except (OSError, ValueError, KeyError, TypeError):
                raise LedgerIntegrityError(f"the witness file {path} is unreadable; the gate stays shut (remove it "
                                           "only if you know why it is damaged)") from None
            if seen is not None and seen != officer_public_key_sha256:
                raise LedgerIntegrityError(
                    "this ledger's genesis is signed by another officer key than the ledgers of this ledger key "
                    "this machine opened before (a ledger started with a self-made officer key is a fresh budget "
                    "nobody governs); pin the officer's published key (officer_public_key) if the officer really "
                    "changed keys; the gate stays shut")
            if seen == officer_public_key_sha256:
                return
        body = json.dumps({"ledger_key": ledger_public_key_sha256, "officer": officer_public_key_sha256},
                          sort_keys=True)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".officer.", dir=self.directory)
            with os.fdopen(fd, "w") as fh:
                fh.write(body)
            os.replace(tmp, path)
        except OSError:
            pass

    def _read(self, ledger_id: str) -> _Seen | None:
        try:
            data = json.loads(self._path(ledger_id).read_text())
            seen = _Seen(str(data["ledger_id"]), str(data["genesis_hash"]), int(data["sequence"]),
                         str(data["entry_hash"]))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            raise LedgerIntegrityError(f"the witness file {self._path(ledger_id)} is unreadable; the gate stays "
                                       "shut (remove it only if you know why it is damaged)") from None
        return seen if seen.ledger_id == ledger_id else None

    def check(self, ledger_id: str, genesis_hash: str, head_sequence: Callable[[], int],
              entry_at: Callable[[int], Entry | None]) -> None:
        """Raise LedgerIntegrityError if the ledger lost an entry this machine witnessed.

        The witness is read before the ledger's head: a head only grows, so an honest
        ledger is always at least as far along as what was witnessed before it was read."""
        seen = self._read(ledger_id)
        if seen is None:
            return
        head_sequence = head_sequence()
        if seen.genesis_hash != genesis_hash:
            raise LedgerIntegrityError(
                f"ledger {ledger_id} was re-initialised: this machine saw a ledger of that id with another "
                "genesis (a fresh budget under the same policy); the gate stays shut")
        if seen.sequence > head_sequence:
            raise LedgerIntegrityError(
                f"ledger {ledger_id} was rolled back: this machine saw entry #{seen.sequence}, the ledger now "
                f"ends at #{head_sequence}; the gate stays shut")
        if seen.sequence > 0:
            entry = entry_at(seen.sequence)
            if entry is None or entry.entry_hash != seen.entry_hash:
                raise LedgerIntegrityError(
                    f"ledger {ledger_id} was rewritten: entry #{seen.sequence} differs from the one this "
                    "machine saw; the gate stays shut")

    def record(self, ledger_id: str, genesis_hash: str, sequence: int, entry_hash: str) -> None:
        """Remember the head (never moves backwards).  Best effort: an unwritable folder
        only weakens the tripwire, it never stops a charge."""
        path = self._path(ledger_id)  # a ledger id, never a path (raises before any file is made)
        try:
            current = self._read(ledger_id)
        except LedgerIntegrityError:
            current = None
        if current is not None and current.genesis_hash == genesis_hash and current.sequence >= sequence:
            return
        body = json.dumps({"ledger_id": ledger_id, "genesis_hash": genesis_hash, "sequence": int(sequence),
                           "entry_hash": entry_hash}, sort_keys=True)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{ledger_id}.", dir=self.directory)
            with os.fdopen(fd, "w") as fh:
                fh.write(body)
            os.replace(tmp, path)
        except OSError:
            pass
