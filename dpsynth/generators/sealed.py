"""What every generator shares once fitted: the seal, verification, save and load.

A generator implements `_state()` (its whole fitted state as JSON metadata and
named arrays), `_from_state(meta, arrays, device)`, `_expected_events()` (the
events its fit says it charged) and, when it keeps its noisy outputs,
`_release_digests()`.  This mixin seals the state at the end of `fit`,
verifies it before every `sample`, and saves and loads it with the receipts —
checking them on load under a key the caller trusts (`accountant.trust`),
never a key from the file.
"""

from __future__ import annotations

import os
from typing import Any

from accountant.errors import InvalidReceipt
from accountant.trust import UntrustedKey, load_trust

from .model_file import read_model, write_model
from .provenance import Provenance, state_digest

__all__ = ["SealedModel", "NotFitted"]


class NotFitted(RuntimeError):
    """sample/save before fit."""


class SealedModel:
    FORMAT: str = ""
    generator_name: str = ""
    provenance: Provenance

    # -- what each generator provides ---------------------------------------------------------
    def _state(self) -> tuple[dict[str, Any], dict[str, Any]]:  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def _from_state(cls, meta: dict[str, Any], arrays: dict[str, Any], device: Any) -> "SealedModel":
        raise NotImplementedError  # pragma: no cover - abstract

    def _expected_events(self) -> list[str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _release_digests(self) -> dict[int, str] | None:
        return None

    def _require_fitted(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- the seal ---------------------------------------------------------------------------
    def _full_state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        meta, arrays = self._state()
        meta = {**meta, "format": self.FORMAT, "generator": self.generator_name,
                "provenance": self.provenance.to_dict()}
        return meta, arrays

    def state_digest(self) -> str:
        """SHA-256 of the model's whole state as it is now (what the seal commits to)."""
        meta, arrays = self._full_state()
        return state_digest(meta, arrays)

    def _seal(self, gate: Any, table: Any, run_id: str, actor: str | None) -> None:
        """At the end of `fit`: the run's receipts, then a signed seal entry over the state."""
        self.provenance = Provenance(list(table.receipts_for(run_id)), None, gate.metadata.to_dict(),
                                     trusted_key=gate.ledger_public_key, insecure=bool(gate.insecure))
        actor = actor if actor is not None else getattr(table, "_actor", None)
        receipt = gate.seal(self.provenance.charges, self.state_digest(),
                            purpose=f"{self.generator_name}: sealed model", generator=self.generator_name,
                            run_id=run_id, actor=actor)
        self.provenance.seal = receipt

    @property
    def receipts(self) -> list:
        """Every receipt of the fit: charges, opens, releases, and the seal last."""
        return self.provenance.all_receipts()

    def verify(self, gate: Any = None) -> None:
        """Raise InvalidReceipt unless the model is exactly what its sealed fit produced (see
        `dpsynth.generators.provenance`); with a gate, also that its ledger holds every receipt."""
        self._require_fitted()
        self.provenance.verify(self.state_digest(), expected_events=self._expected_events(),
                               release_digests=self._release_digests())
        if gate is not None:
            for r in self.provenance.all_receipts():
                gate.verify_receipt(r)

    # -- files --------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        """One file: the state (JSON metadata and arrays, never a raw row), the receipts and the
        seal.  Refuses a model that does not verify."""
        self._require_fitted()
        self.verify()
        meta, arrays = self._full_state()
        write_model(path, meta, arrays, self.provenance.seal.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike, *, trust: Any = None, device: Any = "auto") -> "SealedModel":
        """Read a model written by `save` and verify it under the keys you trust.

        `trust`: the ledger's published public key (file or key), the officer's (the file's
        ledger genesis must then be signed by it), a list of them, a trust TOML file, or None
        for ``$DPSYNTH_TRUST``.  Raises InvalidReceipt unless every check passes."""
        meta, arrays, seal = read_model(path)
        if meta.get("format") != cls.FORMAT or meta.get("generator") != cls.generator_name:
            raise ValueError(f"{path}: holds a {meta.get('generator')!r} model ({meta.get('format')!r}), not "
                             f"{cls.generator_name!r} ({cls.FORMAT})")
        try:
            provenance = Provenance.from_dict(meta.get("provenance"), seal)
            model = cls._from_state(meta, arrays, device)
        except InvalidReceipt:
            raise
        except (KeyError, TypeError, ValueError, IndexError, AttributeError, RuntimeError) as exc:
            raise ValueError(f"{path}: malformed {cls.generator_name} model file ({type(exc).__name__}: {exc})") \
                from None
        model.provenance = provenance
        try:
            anchors = load_trust(trust)
            provenance.trusted_key = anchors.ledger_key(provenance.seal.ledger_key_id, provenance.genesis)
        except UntrustedKey as exc:
            raise InvalidReceipt(f"{path}: {exc}") from None
        model.verify()
        return model
