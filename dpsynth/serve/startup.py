"""Starting the service from its configuration file, refusing to go back in time.

The state folder remembers the highest configuration version in force (also one
pushed while running, `PUT /config`, kept as `state/config.toml` with its
signature).  Started again from an older file, the service refuses: a removed
person or a lowered cap cannot come back by a restart.  Started from the same
version, it uses the file; from a newer one, the newer file.

The kept pair (configuration and signature) is replaced as a pair (`keep_config`):
both are written beside the old ones first, then renamed into place; a service
killed between the two renames finishes them when it starts again, so a crash
during a push never leaves a pair that fails its signature (which would read as
tampering and keep the service from starting).
"""

from __future__ import annotations

import os
from pathlib import Path

from accountant.keys import Ed25519PublicKey

from .config import ConfigError, config_signature_path, load_config, parse_config, verify_config_signature
from .service import Service

__all__ = ["start_service", "keep_config"]

_NEXT = ".next"


def _write(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _sync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory handles
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def keep_config(state: Path, raw: bytes, signature: bytes) -> None:
    """Replace the state folder's kept configuration and its signature, as a pair."""
    kept = state / "config.toml"
    sig = config_signature_path(kept)
    state.mkdir(parents=True, exist_ok=True)
    _write(kept.with_name(kept.name + _NEXT), raw)
    _write(sig.with_name(sig.name + _NEXT), signature)
    _sync_dir(state)
    os.replace(sig.with_name(sig.name + _NEXT), sig)
    os.replace(kept.with_name(kept.name + _NEXT), kept)
    _sync_dir(state)


def _finish_keep(state: Path, officer: Ed25519PublicKey) -> None:
    """Complete a `keep_config` cut short by a crash: the new configuration (and its signature,
    if it was not moved yet) are moved into place when they verify together; a half-written
    new pair is dropped (the old pair still stands)."""
    kept = state / "config.toml"
    sig = config_signature_path(kept)
    new_raw, new_sig = kept.with_name(kept.name + _NEXT), sig.with_name(sig.name + _NEXT)
    if not new_raw.exists() and not new_sig.exists():
        return
    try:
        raw = new_raw.read_bytes()
        signature = new_sig.read_bytes() if new_sig.exists() else sig.read_bytes()
        verify_config_signature(raw, signature, officer)
    except (OSError, ConfigError):
        for p in (new_raw, new_sig):
            p.unlink(missing_ok=True)
        return
    if new_sig.exists():
        os.replace(new_sig, sig)
    os.replace(new_raw, kept)
    _sync_dir(state)


def start_service(path: str | os.PathLike, officer: Ed25519PublicKey) -> Service:
    config = load_config(path, officer)
    kept = config.state / "config.toml"
    if config.state.is_dir():
        _finish_keep(config.state, officer)
    if kept.is_file():
        raw = kept.read_bytes()
        try:
            verify_config_signature(raw, config_signature_path(kept).read_text(), officer)
        except OSError:
            raise ConfigError(f"{kept} has no signature beside it; the state folder was tampered with") from None
        previous = parse_config(raw, config.base)
        if config.version < previous.version:
            raise ConfigError(f"service.version {config.version} is older than the version {previous.version} "
                              f"already in force (kept in {kept}); start with that one or a newer one")
        if config.version == previous.version and config.raw != previous.raw:
            raise ConfigError(f"service.version {config.version} is already in force with other content "
                              f"({kept}); raise the version")
    keep_config(config.state, config.raw, config_signature_path(Path(path)).read_bytes())
    return Service(config, officer)
