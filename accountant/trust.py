"""Which keys a reader trusts: pinned keys, never the ones a file carries about itself.

A model file carries receipts, a seal and the ledger's genesis.  Whoever wrote
the file could also have written a key that makes them all verify, so a
verifier takes its keys from somewhere else:

* a ledger public key pinned directly (`--ledger-pub`, `ledger_public_key=`);
* an officer public key: then a ledger key is trusted when the file's genesis
  is signed by that officer and names it (the officer vouches for the ledger);
* a trust file the officer publishes (TOML, ``keys = ["officer.pub", ...]``,
  paths relative to the file), named by ``$DPSYNTH_TRUST`` when nothing is
  pinned in the call.

`TrustAnchors.ledger_key(key_id, genesis)` returns the trusted key for a
receipt's `ledger_key_id`, or raises `UntrustedKey`.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from .genesis import genesis_is_signed_by
from .keys import Ed25519PrivateKey, Ed25519PublicKey, KeyFileError, key_id, load_verifying_key, public_key_from_pem
from .ledger.entry import LedgerMetadata

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["TrustAnchors", "UntrustedKey", "load_trust", "TRUST_ENV"]

TRUST_ENV = "DPSYNTH_TRUST"


class UntrustedKey(ValueError):
    """No trusted key vouches for what is being verified."""


@dataclass(frozen=True)
class TrustAnchors:
    keys: tuple[Ed25519PublicKey, ...]
    source: str = "pinned keys"

    def key_ids(self) -> list[str]:
        return [key_id(k) for k in self.keys]

    def officer_of(self, genesis: LedgerMetadata | Mapping[str, Any] | None) -> Ed25519PublicKey | None:
        """The trusted key that signed this genesis (its officer), if one did."""
        if genesis is None:
            return None
        md = genesis if isinstance(genesis, LedgerMetadata) else _metadata(genesis)
        if md is None:
            return None
        return next((k for k in self.keys if genesis_is_signed_by(md, k)), None)

    def ledger_key(self, wanted_id: str | None, genesis: LedgerMetadata | Mapping[str, Any] | None = None
                   ) -> Ed25519PublicKey:
        """The trusted key with id `wanted_id`: pinned itself, or named by a genesis that a
        pinned (officer) key signed."""
        for k in self.keys:
            if key_id(k) == wanted_id:
                return k
        if genesis is not None:
            md = genesis if isinstance(genesis, LedgerMetadata) else _metadata(genesis)
            if md is not None and md.ledger_key_id == wanted_id and md.ledger_public_key:
                named = public_key_from_pem(md.ledger_public_key)
                if key_id(named) == wanted_id and any(genesis_is_signed_by(md, k) for k in self.keys):
                    return named
        raise UntrustedKey(f"no trusted key vouches for ledger key {wanted_id} (trusted: {', '.join(self.key_ids()) or 'none'}; "
                           f"from {self.source}); pin the ledger's published key or its officer's key")


def _metadata(data: Mapping[str, Any]) -> LedgerMetadata | None:
    try:
        return LedgerMetadata.from_dict(data)
    except (TypeError, ValueError):
        return None


def _key(item: Any, base: Path | None = None) -> Ed25519PublicKey:
    if isinstance(item, Ed25519PublicKey):
        return item
    if isinstance(item, Ed25519PrivateKey):
        return item.public_key()
    p = Path(item)
    if base is not None and not p.is_absolute():
        p = base / p
    return load_verifying_key(p)


def load_trust(spec: Any = None) -> TrustAnchors:
    """Trust anchors from: a TrustAnchors; a key or key file; a list of them; a trust TOML
    file; or, with nothing given, the file ``$DPSYNTH_TRUST`` names.  Raises UntrustedKey
    when there is nothing to trust."""
    if isinstance(spec, TrustAnchors):
        return spec
    if spec is None:
        env = os.environ.get(TRUST_ENV)
        if not env:
            raise UntrustedKey("no trusted key: pass the ledger's (or its officer's) published public key, or set "
                               f"${TRUST_ENV} to the trust file your officer publishes")
        spec = Path(env)
    if isinstance(spec, (str, os.PathLike)) and Path(spec).suffix.lower() == ".toml":
        p = Path(spec)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise UntrustedKey(f"cannot read the trust file {p}: {exc}") from None
        items = data.get("keys")
        if not isinstance(items, list) or not items or not all(isinstance(x, str) for x in items):
            raise UntrustedKey(f"{p}: a trust file lists public key files: keys = [\"officer.pub\", ...]")
        try:
            return TrustAnchors(tuple(_key(x, p.parent) for x in items), source=str(p))
        except KeyFileError as exc:
            raise UntrustedKey(f"{p}: {exc}") from None
    items: Iterable[Any] = spec if isinstance(spec, (list, tuple)) else [spec]
    keys: list[Ed25519PublicKey] = []
    sources: list[str] = []
    for x in items:
        if isinstance(x, (str, os.PathLike)) and Path(x).suffix.lower() == ".toml":
            anchors = load_trust(Path(x))  # a trust file among pinned keys
            keys += anchors.keys
            sources.append(anchors.source)
            continue
        try:
            keys.append(_key(x))
        except KeyFileError as exc:
            raise UntrustedKey(str(exc)) from None
        sources.append("pinned keys")
    return TrustAnchors(tuple(keys), source=", ".join(dict.fromkeys(sources)) or "pinned keys")
