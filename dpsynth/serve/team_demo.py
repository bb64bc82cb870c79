"""A team setting on made-up data, in one folder: what `dpsynth service demo` builds.

The demo dataset (dpsynth.demo: keys, a signed policy and its ledger), one key pair
per person (an officer, two researchers, an auditor), a service configuration
with per-person caps, signed by the officer.  Used by the docs' quick start and by
the tests; a real deployment writes the same files by hand (docs/team.md).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["make_team_workspace", "TEAM"]

# (name, roles, cap on the demo dataset or None for the dataset's default)
TEAM = (("olivia", ("officer",), None), ("alice", ("researcher",), 1.0), ("bob", ("researcher",), None),
        ("audrey", ("auditor",), None))


def make_team_workspace(folder: str | os.PathLike, *, n_rows: int = 2000, epsilon_total: float = 3.0,
                        default_cap: float = 0.5, workers: int = 2, response_quantum_ms: int = 50,
                        requests_per_minute: int = 6000, ledger: str | None = None,
                        allow_seeded_noise: bool = False) -> dict[str, Path]:
    """Write the team demo into `folder`; returns the paths (config, officer_pub, keys of each person)."""
    import tomli_w

    from accountant.keys import load_private_key, write_keypair
    from dpsynth.demo.workspace import setup_workspace

    from .config import sign_config_file

    root = Path(folder)
    paths = setup_workspace(root, n_rows=n_rows, epsilon_total=epsilon_total, allow_seeded_noise=allow_seeded_noise)
    people = root / "people"
    out: dict[str, Path] = {"root": root, "officer_key": root / "keys" / "officer.key", **paths}
    roster = []
    for name, roles, cap in TEAM:
        key, pub = write_keypair(people, name, overwrite=True)
        out[f"{name}_key"] = key
        entry = {"name": name, "roles": list(roles), "public_key": f"people/{name}.pub"}
        if cap is not None:
            entry["caps"] = {"demo": cap}
        roster.append(entry)
    config = {
        "service": {"name": "dpsynth-demo", "version": 1, "state": "state", "workers": workers,
                    "requests_per_minute": requests_per_minute, "response_quantum_ms": response_quantum_ms},
        "datasets": [{"name": "demo", "data": "data.csv", "schema": "schema.toml", "dataset_key": "keys/dataset.key",
                      "policy": "policy.toml", "ledger": ledger or "ledger.db", "ledger_key": "keys/ledger.key",
                      "default_cap": default_cap}],
        "people": roster,
    }
    cfg = root / "service.toml"
    cfg.write_text(tomli_w.dumps(config))
    sign_config_file(cfg, load_private_key(out["officer_key"]))
    out["config"] = cfg
    return out
