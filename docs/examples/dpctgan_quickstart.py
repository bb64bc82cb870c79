"""DP-CTGAN from Python: see the training plan before anything is charged, fit, sample,
then audit the saved model against the ledger, under the published keys, as an auditor would.

Run:  python docs/examples/dpctgan_quickstart.py     (about a minute on 2 CPU threads)
"""

import tempfile
from pathlib import Path

import pandas as pd

from accountant import Gate
from accountant.fingerprint import load_dataset_key
from dpsynth.demo import setup_workspace
from dpsynth.generators import DPCTGAN
from dpsynth.generators.model_file import audit_model
from dpsynth.schema import Schema
from dpsynth.table import PrivateTable

ws = Path(tempfile.mkdtemp(prefix="dpsynth-example-"))
setup_workspace(ws, n_rows=3000)               # officer: table, schema, keys, signed policy, ledger, trust file

gate = Gate.open(ws / "ledger.db", ledger_key=ws / "keys" / "ledger.key")
table = PrivateTable(pd.read_csv(ws / "data.csv"), Schema.load(ws / "schema.toml"), gate,
                     dataset_key=load_dataset_key(ws / "keys" / "dataset.key"))

# Small networks and few epochs so that the example is quick; the defaults are CTGAN's.
model = DPCTGAN(epsilon=1.0, epochs=3, batch_size=500, generator_dims=(64, 64), discriminator_dims=(64, 64),
                embedding_dim=32, progress=False)

# The whole plan is fixed from public numbers (the policy's bound on n, not n) before any
# record is read; preflight shows it and charges nothing.
plan = model.preflight(table)
print(f"plan: {plan.steps} DP-SGD steps at sampling rate {plan.sampling_rate:g} (expected batch "
      f"{plan.sampling_rate * 3000:.0f} of these 3,000 rows), noise multiplier {plan.noise_multiplier:.3f}, "
      f"clipping norm {plan.max_grad_norm:g}; category counts with noise multiplier "
      f"{plan.frequency_noise_multiplier:.2f}; epsilon {plan.epsilon:g} at delta {plan.delta:g}")
assert gate.spent_costs() == []                # nothing charged yet

# The fit writes: a charge and a release for the noisy category counts; a charge for the whole
# DP-SGD plan, an open (the session starts), a release committing to every step's noisy gradient
# sum; and a seal over the trained model.  DP-SGD's sampling, clipping and noise run inside the
# table (table.dpsgd_session): the training loop never sees a row.
model.fit(table)
print(f"ledger entries of the fit: {', '.join(r.kind for r in model.receipts)}")
print(model.sample(5, where={"income": ">100k"}, seed=0))
model.save(ws / "dpctgan.pt")
gate.close()

# The auditor's check of the file (`dpsynth model verify`): the state against its seal, every
# receipt under the published ledger key, each charge released once, each receipt an entry of
# the verified ledger (its policy pinned by the officer's published key), and the epsilon the
# events compose to.
audit = audit_model(ws / "dpctgan.pt", trust=ws / "keys" / "ledger.pub", ledger=ws / "ledger.db",
                    officer_public_key=ws / "keys" / "officer.pub")
print(audit.summary())
print(f"this model spent epsilon {audit.epsilon:.4f} (its run's own full curve; at most the 1.0 asked for)")
