"""Starting the service from its configuration file, refusing to go back in time.

The state folder remembers the highest configuration version in force (also one
pushed while running, `PUT /config`, kept as `state/config.toml` with its
signature).  Started again from an older file, the service refuses: a removed
person or a lowered cap cannot come back by a restart.  Started from the same
version, it uses the file; from a newer one, the newer file.
"""

from __future__ import annotations

import os
from pathlib import Path

from accountant.keys import Ed25519PublicKey

from .config import ConfigError, config_signature_path, load_config, parse_config, verify_config_signature
from .service import Service

__all__ = ["start_service"]


def start_service(path: str | os.PathLike, officer: Ed25519PublicKey) -> Service:
    config = load_config(path, officer)
    kept = config.state / "config.toml"
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
    config.state.mkdir(parents=True, exist_ok=True)
    kept.write_bytes(config.raw)
    config_signature_path(kept).write_bytes(config_signature_path(Path(path)).read_bytes())
    return Service(config, officer)
