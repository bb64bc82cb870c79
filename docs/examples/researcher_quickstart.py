"""Fit, sample, save and load a generator from Python — with the gate explicit.

Run:  python docs/examples/researcher_quickstart.py
"""

import tempfile
from pathlib import Path

import pandas as pd

from accountant import Gate
from accountant.fingerprint import load_dataset_key
from dpsynth.demo import setup_workspace
from dpsynth.generators import MST
from dpsynth.schema import Schema
from dpsynth.table import PrivateTable

# The officer's part (normally done once, with the CLI; see docs/officer.md): a table, its
# schema, keys, a signed policy (epsilon 3 in total), a ledger and a trust file.
ws = Path(tempfile.mkdtemp(prefix="dpsynth-example-"))
setup_workspace(ws)

# The researcher's part.  Every measurement goes through the gate, which writes a signed
# charge before the noisy answer exists and a release committing to it before it is returned;
# the dataset key binds the table to the dataset the policy governs.
gate = Gate.open(ws / "ledger.db", ledger_key=ws / "keys" / "ledger.key")
table = PrivateTable(pd.read_csv(ws / "data.csv"), Schema.load(ws / "schema.toml"), gate,
                     dataset_key=load_dataset_key(ws / "keys" / "dataset.key"))
model = MST(epsilon=1.0).fit(table)            # charges the gate, then measures
synthetic = model.sample(5000, seed=0)          # post-processing: spends nothing
model.save(ws / "mst.pt")

# Load under a key you trust, never the one the file carries: here the officer's published trust
# file (keys = ["keys/officer.pub"]); the officer's key vouches for the ledger key in the genesis.
again = MST.load(ws / "mst.pt", trust=ws / "trust.toml")   # checks the seal and every receipt
print(again.sample(5, where={"sex": "Female"}, seed=1))
charges = [r for r in model.receipts if r.kind == "charge"]
print(f"{len(model.receipts)} receipts ({len(charges)} charges, each released once, then the seal); this model "
      f"spent epsilon {model.epsilon_spent():.3f}; the ledger admits rho {gate.remaining_rho():.4f} more")
gate.close()
