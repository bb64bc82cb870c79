"""Ed25519 keys and signatures for policies, ledger entries and receipts.

Two roles hold keys: the privacy *officer* signs budget policies, and the
*ledger* signs every entry it writes.  Public keys are published for auditors;
a private key file is written with mode 0600 and never overwritten silently.

Signatures are always over a domain-separated message (`purpose` prefix) so a
signature made for one kind of object can never be replayed as another.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = [
    "Ed25519PrivateKey",
    "Ed25519PublicKey",
    "KeyFileError",
    "generate_keypair",
    "write_keypair",
    "load_private_key",
    "load_public_key",
    "load_verifying_key",
    "public_key_pem",
    "public_key_from_pem",
    "key_id",
    "sign",
    "signature_is_valid",
]


class KeyFileError(ValueError):
    """A key file is missing, unreadable or of the wrong kind."""


def generate_keypair() -> Ed25519PrivateKey:
    """A fresh Ed25519 private key (its public key is `.public_key()`)."""
    return Ed25519PrivateKey.generate()


def _private_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def public_key_pem(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """The SubjectPublicKeyInfo PEM text of a public key (of a private key's pair)."""
    if isinstance(key, Ed25519PrivateKey):
        key = key.public_key()
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def public_key_from_pem(text: str) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(text.encode())
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"not a PEM public key: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"expected an Ed25519 public key, got {type(key).__name__}")
    return key


def key_id(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """Short fingerprint of a public key: the first 16 hex digits of SHA-256 of its raw bytes."""
    if isinstance(key, Ed25519PrivateKey):
        key = key.public_key()
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:" + hashlib.sha256(raw).hexdigest()[:16]


def write_keypair(out_dir: str | os.PathLike, name: str, *, overwrite: bool = False) -> tuple[Path, Path]:
    """Generate a key pair and write NAME.key (PEM, mode 0600) and NAME.pub in `out_dir`.

    Refuses to overwrite an existing key unless `overwrite` is set: losing a
    ledger or officer key silently would orphan every signature it made.
    """
    if not name or any(c in name for c in "/\\") or name.startswith("."):
        raise KeyFileError(f"key name must be a plain file name, got {name!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    key_path, pub_path = out / f"{name}.key", out / f"{name}.pub"
    if not overwrite:
        for p in (key_path, pub_path):
            if p.exists():
                raise KeyFileError(f"{p} exists; refusing to overwrite a key (pass overwrite/--force)")
    key = generate_keypair()
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    fd = os.open(key_path, flags, 0o600)
    try:
        os.fchmod(fd, 0o600)  # the mode argument is masked by umask; make it exact
        os.write(fd, _private_pem(key))
    finally:
        os.close(fd)
    pub_path.write_text(public_key_pem(key))
    return key_path, pub_path


def load_private_key(path: str | os.PathLike) -> Ed25519PrivateKey:
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"cannot read private key {p}: {exc.strerror}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"{p} is not an unencrypted PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{p} holds a {type(key).__name__}, expected Ed25519")
    return key


def load_public_key(path: str | os.PathLike) -> Ed25519PublicKey:
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise KeyFileError(f"cannot read public key {p}: {exc.strerror}") from None
    try:
        return public_key_from_pem(text)
    except KeyFileError as exc:
        raise KeyFileError(f"{p}: {exc}") from None


def load_verifying_key(path: str | os.PathLike) -> Ed25519PublicKey:
    """The public key in a PEM file that holds either a public key or a private key."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"cannot read key {p}: {exc.strerror}") from None
    if b"PRIVATE KEY" in data:
        return load_private_key(p).public_key()
    return load_public_key(p)


def _message(purpose: str, payload: bytes) -> bytes:
    return b"dpsynth/" + purpose.encode() + b"\x00" + payload


def sign(key: Ed25519PrivateKey, purpose: str, payload: bytes) -> str:
    """Base64 Ed25519 signature of `payload` for the given purpose (domain separation)."""
    return base64.b64encode(key.sign(_message(purpose, payload))).decode()


def signature_is_valid(key: Ed25519PublicKey, purpose: str, payload: bytes, signature: str) -> bool:
    try:
        raw = base64.b64decode(signature.encode(), validate=True)
        key.verify(raw, _message(purpose, payload))
    except (InvalidSignature, ValueError, TypeError, AttributeError):
        return False
    return True
