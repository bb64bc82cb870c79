"""Keys, canonical serialisation and the keyed dataset fingerprint."""

from __future__ import annotations

import hashlib
import hmac
import json
import stat

import numpy as np
import pandas as pd
import pytest

from accountant.fingerprint import fingerprint_table, generate_dataset_key, load_dataset_key, write_dataset_key
from accountant.keys import KeyFileError, load_private_key, load_public_key, sign, signature_is_valid, write_keypair
from accountant.ledger.hashing import canonical_json, normalise_json_value


def test_keypair_files_and_permissions(tmp_path):
    key_path, pub_path = write_keypair(tmp_path, "officer")
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert "PRIVATE KEY" in key_path.read_text() and "PUBLIC KEY" in pub_path.read_text()
    with pytest.raises(KeyFileError, match="refusing to overwrite"):
        write_keypair(tmp_path, "officer")
    with pytest.raises(KeyFileError):
        load_private_key(pub_path)


def test_signatures_are_domain_separated(tmp_path):
    key_path, pub_path = write_keypair(tmp_path, "k")
    key, pub = load_private_key(key_path), load_public_key(pub_path)
    sig = sign(key, "ledger-entry-v1", b"abc")
    assert signature_is_valid(pub, "ledger-entry-v1", b"abc", sig)
    assert not signature_is_valid(pub, "policy-v1", b"abc", sig)
    assert not signature_is_valid(pub, "ledger-entry-v1", b"abd", sig)
    assert not signature_is_valid(pub, "ledger-entry-v1", b"abc", "not base64!")


def test_canonical_json_round_trips_floats_bit_exactly():
    values = [0.1, 1 / 3, 5e-324, 1.7976931348623157e308, 2.0, 1e-06]
    text = canonical_json({"b": values, "a": 1})
    assert text.startswith('{"a":1,"b":[')
    assert json.loads(text)["b"] == values
    assert canonical_json(json.loads(text)) == text
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})
    assert normalise_json_value({"t": (1, np.float64(0.5))}, field="parameters") == {"t": [1, 0.5]}
    with pytest.raises(ValueError, match="parameters.x"):
        normalise_json_value({"x": float("inf")}, field="parameters")


def test_fingerprint_is_hmac_over_documented_serialisation():
    key = bytes(range(32))
    rows = [(1, "a", 0.5), (2, None, float("nan"))]
    # Independent recomputation from the documented format: a header line, then one line per row.
    expected_bytes = (b"rows\n" + b'{"columns":["x","y","z"]}\n' + b'[1,"a",0.5]\n' + b"[2,null,null]\n")
    expected = "hmac-sha256:" + hmac.new(key, expected_bytes, hashlib.sha256).hexdigest()
    assert fingerprint_table(rows, key, columns=["x", "y", "z"]) == expected
    df = pd.DataFrame({"x": [1, 2], "y": ["a", None], "z": [0.5, np.nan]})
    assert fingerprint_table(df, key) == expected


def test_fingerprint_depends_on_key_and_every_cell():
    df = pd.DataFrame({"age": [30, 41], "job": ["nurse", "chef"]})
    k1, k2 = generate_dataset_key(), generate_dataset_key()
    base = fingerprint_table(df, k1)
    assert fingerprint_table(df, k2) != base  # without the key, a guessed table cannot be confirmed
    changed = df.copy()
    changed.loc[1, "age"] = 42
    assert fingerprint_table(changed, k1) != base
    assert fingerprint_table(df.iloc[::-1], k1) != base
    assert fingerprint_table(b"raw bytes", k1) != fingerprint_table(b"raw bytez", k1)
    with pytest.raises(ValueError, match="16 bytes"):
        fingerprint_table(df, b"short")


def test_dataset_key_file(tmp_path):
    path = write_dataset_key(tmp_path / "dataset.key")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(load_dataset_key(path)) == 32
    with pytest.raises(FileExistsError):
        write_dataset_key(path)
