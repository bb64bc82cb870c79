"""Starting a ledger: the officer-signed genesis.

Only the privacy officer can start a ledger.  `init_ledger` verifies the
policy's signature, then writes the ledger's metadata — the *genesis*: the
policy text, both public keys, the filter, a fresh random `ledger_id` (or the
one the policy names) and a random nonce — signed by the officer's private key.
A ledger deleted and created again is therefore a new ledger with a new
genesis hash (and, unless the policy pins it, a new id), never the old one
with its budget refunded; and someone without the officer's key cannot start
one at all.
"""

from __future__ import annotations

import os
import secrets
import warnings
from pathlib import Path

from .errors import InsecureModeWarning
from .filter import RenyiFilter
from .keys import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
    KeyFileError,
    key_id,
    load_private_key,
    load_verifying_key,
    public_key_pem,
    sign,
    signature_is_valid,
)
from .ledger.entry import FORMAT, GENESIS_PURPOSE, Head, LedgerMetadata, coarse_timestamp
from .ledger.open_store import open_store
from .ledger.store import LedgerStore
from .orders import orders_with
from .policy import (
    PolicyError,
    PolicySignature,
    new_ledger_id,
    parse_policy,
    policy_hash,
    read_signature,
    signature_path_for,
    verify_policy_signature,
)

__all__ = ["init_ledger", "genesis_is_signed_by"]


def genesis_is_signed_by(metadata: LedgerMetadata, officer: Ed25519PublicKey) -> bool:
    """True iff the genesis carries `officer`'s valid signature over its hash."""
    if metadata.is_legacy or not metadata.genesis_signature:
        return False
    return signature_is_valid(officer, GENESIS_PURPOSE, metadata.hash.encode(), metadata.genesis_signature)


def _officer_private(key: str | os.PathLike | Ed25519PrivateKey | None) -> Ed25519PrivateKey | None:
    if key is None or isinstance(key, Ed25519PrivateKey):
        return key
    try:
        return load_private_key(key)
    except KeyFileError:
        raise PolicyError(f"ledger init needs the officer's PRIVATE key (it signs the ledger's genesis); {key} is "
                          "not one (a .pub file is the public half)") from None


def init_ledger(
    path: str | os.PathLike,
    policy_path: str | os.PathLike,
    *,
    officer_key: str | os.PathLike | Ed25519PrivateKey | None,
    ledger_key: str | os.PathLike | Ed25519PrivateKey | Ed25519PublicKey | None,
    signature_path: str | os.PathLike | None = None,
    insecure: bool = False,
    store: LedgerStore | None = None,
    ledger_id: str | None = None,
) -> LedgerMetadata:
    """Create a ledger governed by a signed policy at `path` (a SQLite file, or a
    ``postgresql://…[#ledger=NAME]`` URL); return its genesis.

    `officer_key` is the officer's private key: it must be the key that signed the
    policy, and it signs the genesis.  `ledger_key` names the key that will sign the
    entries (its public key, or the private key file).  `ledger_id` defaults to the
    policy's `ledger_id`, else a fresh random id.  With `insecure=True` (development
    only) nothing needs to be signed and the ledger is marked insecure for ever.
    """
    raw = Path(policy_path).read_bytes()
    try:
        policy = parse_policy(raw)
    except PolicyError as exc:
        raise PolicyError(f"{policy_path}: {exc}") from None
    sig_path = Path(signature_path) if signature_path is not None else signature_path_for(policy_path)
    sig: PolicySignature | None = read_signature(sig_path) if sig_path.exists() else None
    officer = _officer_private(officer_key)
    lkey: Ed25519PublicKey | None = None
    if ledger_key is not None:
        lkey = ledger_key.public_key() if isinstance(ledger_key, Ed25519PrivateKey) else (
            ledger_key if isinstance(ledger_key, Ed25519PublicKey) else load_verifying_key(ledger_key))
    if not insecure:
        if officer is None:
            raise PolicyError("ledger init needs the officer's private key (it signs the ledger's genesis)")
        if sig is None:
            raise PolicyError(f"{policy_path} is not signed (no {sig_path}); run `dpsynth policy sign`")
        verify_policy_signature(raw, sig, officer.public_key())
        if lkey is None:
            raise PolicyError("ledger init needs the ledger's key (its public key is recorded in the genesis)")
        if key_id(lkey) == key_id(officer):
            raise PolicyError("the ledger key must not be the officer's key (two roles, two keys)")
    else:
        warnings.warn("creating a ledger in INSECURE DEVELOPMENT MODE: its entries will be unsigned",
                      InsecureModeWarning, stacklevel=2)
        if sig is not None and officer is not None:
            verify_policy_signature(raw, sig, officer.public_key())
    if ledger_id is None:
        ledger_id = policy.ledger_id or new_ledger_id()
    elif policy.ledger_id is not None and ledger_id != policy.ledger_id:
        raise PolicyError(f"the policy governs ledger {policy.ledger_id}, not {ledger_id}")
    filt = RenyiFilter(policy.epsilon, policy.delta, order=policy.order, delta_reserve=policy.delta_reserve)
    officer_pub = None if officer is None else officer.public_key()
    metadata = LedgerMetadata(
        format=FORMAT,
        created=coarse_timestamp(),
        policy_toml=raw.decode("utf-8"),
        policy_sha256=policy_hash(raw),
        policy_signature=None if sig is None else sig.to_dict(),
        officer_public_key=None if officer_pub is None else public_key_pem(officer_pub),
        officer_key_id=None if officer_pub is None else key_id(officer_pub),
        ledger_public_key=None if (lkey is None or insecure) else public_key_pem(lkey),
        ledger_key_id=None if (lkey is None or insecure) else key_id(lkey),
        dataset_fingerprint=policy.dataset_fingerprint,
        relation=policy.relation.value,
        epsilon=policy.epsilon,
        delta=policy.delta,
        filter_order=filt.order,
        filter_budget=filt.budget,
        # The filter's α* joins the grid: a run filling the budget at α* then also has a
        # full-curve ε at most the filter's.
        curve_orders=[float(a) for a in orders_with(filt.order)],
        insecure=bool(insecure),
        ledger_id=ledger_id,
        genesis_nonce=secrets.token_hex(16),
    )
    if not insecure:
        metadata = LedgerMetadata(**{**metadata.to_dict(), "genesis_signature": sign(
            officer, GENESIS_PURPOSE, metadata.hash.encode())})
    # The head at 0 names the genesis; the genesis carries the officer's signature.
    head = Head(sequence=0, entry_hash=metadata.hash, signature="")
    if store is not None:
        store.initialise(metadata, head)
        return metadata
    store = open_store(path)
    try:
        store.initialise(metadata, head)
    finally:
        store.close()
    return metadata
