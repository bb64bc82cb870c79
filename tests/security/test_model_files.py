"""Attacks on model files (threat model #6 and beyond): edited state, exact statistics in
place of noisy ones, self-made receipts, seals and receipts grafted from other fits, crafted
files.  Every refusal is checked through `load(trust=...)`, `dpsynth model verify` and, where
the model is in memory, `save` (no file written) and `sample` (no rows).
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from accountant.errors import InvalidReceipt
from accountant.testing import make_test_gate
from dpsynth.cli import app
from dpsynth.generators import MST
from dpsynth.generators.model_file import audit_model, load_model
from dpsynth.table.measurement import NoisyMarginal

from .support import SCHEMA, governed, read_model_blob, rewrite_model, small_frame, table_on

REFUSED = (InvalidReceipt, ValueError)
FRAME = small_frame()


def _verify(path, *args):
    return CliRunner().invoke(app, ["model", "verify", str(path), *map(str, args)])


def _refused_everywhere(path: Path, ledger, *, cli_args=()) -> None:
    for trust in (ledger.ledger_pub, ledger.officer_pub):
        with pytest.raises(REFUSED):
            MST.load(path, trust=trust, device="cpu")
        with pytest.raises(REFUSED):
            load_model(path, trust=trust, device="cpu")
    res = _verify(path, "--trust", ledger.officer_pub, *cli_args)
    assert res.exit_code == 1 and isinstance(res.exception, SystemExit), (res.exception, res.output)


def _exact_oneway(column: str) -> np.ndarray:
    j = SCHEMA.names.index(column)
    return np.bincount(SCHEMA.encode(FRAME)[:, j], minlength=SCHEMA.domain()[column]).astype(np.int64)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """Two honest MST fits on one governed ledger, saved."""
    d = tmp_path_factory.mktemp("models")
    ledger = governed(d / "ledger", FRAME)
    table = table_on(ledger, seed=0)
    paths = []
    for i in range(2):
        model = MST(epsilon=1.0, iters=30, device="cpu").fit(table)
        model.save(d / f"model{i}.pt")
        paths.append(d / f"model{i}.pt")
    return {"ledger": ledger, "a": paths[0], "b": paths[1], "dir": d}


def test_an_honest_model_verifies(fitted):
    ledger = fitted["ledger"]
    model = MST.load(fitted["a"], trust=ledger.officer_pub, device="cpu")
    assert len(model.sample(5, seed=0)) == 5
    assert _verify(fitted["a"], "--trust", ledger.ledger_pub, "--ledger", ledger.ledger_path, "--rederive"
                   ).exit_code == 0


# --------------------------------------------------------------------------- 6. content bound to receipts

def test_model_state_edited_after_its_seal_is_refused(fitted, tmp_path):
    ledger = fitted["ledger"]

    def potentials(b):
        name = next(k for k in b["arrays"] if k.startswith("model/"))
        b["arrays"][name] = b["arrays"][name] + 0.5

    def settings(b):
        b["meta"]["config"]["iters"] = 31

    def schema(b):
        b["meta"]["schema"]["columns"][1]["upper"] = 11.0

    def fit_log(b):
        b["meta"]["fit_log"]["rho_spent"] = 0.0

    def expected_events(b):
        b["meta"]["expected_events"] = b["meta"]["expected_events"][:1]

    for edit in (potentials, settings, schema, fit_log, expected_events):
        path = rewrite_model(fitted["a"], tmp_path / f"{edit.__name__}.pt", edit)
        _refused_everywhere(path, ledger)
    # In memory: an edited model neither samples nor saves.
    for edit in (lambda m: [f.values.add_(0.5) for _, f in m.model.potentials.items()],
                 lambda m: m.fit_log.__setitem__("rho_spent", 0.0)):
        model = MST.load(fitted["a"], trust=ledger.ledger_pub, device="cpu")
        edit(model)
        with pytest.raises(InvalidReceipt):
            model.sample(5)
        with pytest.raises(InvalidReceipt):
            model.save(tmp_path / "edited-in-memory.pt")
        assert not (tmp_path / "edited-in-memory.pt").exists()


def test_exact_marginal_swapped_into_a_model_is_refused(fitted, tmp_path):
    ledger = fitted["ledger"]
    blob = read_model_blob(fitted["a"])
    first = blob["meta"]["releases"][0]["cliques"][0][0]

    def exact(b):  # the outsider's edit: the exact counts where the noisy ones were
        b["arrays"]["release/0/0"] = torch.as_tensor(_exact_oneway(first))

    _refused_everywhere(rewrite_model(fitted["a"], tmp_path / "exact.pt", exact), ledger)

    # The solo researcher's version: the table's noisy answers (charged and released) are
    # swapped for exact ones before the model is built, so the seal covers the exact counts.
    # The release entries committed to the noisy outputs: the model is refused all the same.
    table = table_on(ledger, seed=1)
    honest = table.measure_marginals

    def exact_marginals(cliques, sigma, **kwargs):
        noisy = honest(cliques, sigma, **kwargs)
        if len(cliques[0]) == 1 and not kwargs.get("recode"):
            return [NoisyMarginal(m.clique, _exact_oneway(m.clique[0]), m.sigma) for m in noisy]
        return noisy

    table.measure_marginals = exact_marginals
    model = MST(epsilon=1.0, iters=30, compress=False, device="cpu").fit(table)
    with pytest.raises(InvalidReceipt, match="release committed"):
        model.sample(5)
    with pytest.raises(InvalidReceipt):
        model.save(tmp_path / "exact-fit.pt")
    assert not (tmp_path / "exact-fit.pt").exists()


def test_dpctgan_with_exact_category_counts_is_refused(tmp_path):
    """The old attack: a DP-CTGAN file holding exact category counts passed `model verify`."""
    from dpsynth.generators import DPCTGAN

    ledger = governed(tmp_path / "l", FRAME, epsilon=10.0, max_records=200)
    table = table_on(ledger, seed=2)
    honest = table.noisy_category_counts
    layout = table.layout()

    def exact_counts(columns, z, **kwargs):
        honest(columns, z, **kwargs)  # charged and released (noisy)...
        feats = layout.transform(FRAME)  # ...but the model gets the exact counts
        return [feats[:, b.start:b.end].sum(axis=0).astype(np.float64) for b in layout.categorical_blocks]

    table.noisy_category_counts = exact_counts
    model = DPCTGAN(epsilon=1.0, epochs=1, batch_size=40, generator_dims=(8,), discriminator_dims=(8,),
                    embedding_dim=4, device="cpu", progress=False, seed=0).fit(table)
    with pytest.raises(InvalidReceipt, match="release committed"):
        model.sample(3)
    with pytest.raises(InvalidReceipt):
        model.save(tmp_path / "exact-counts.pt")
    assert not (tmp_path / "exact-counts.pt").exists()


def test_self_signed_model_file_is_refused(fitted, tmp_path, monkeypatch):
    ledger = fitted["ledger"]
    # The attacker's own officer, ledger key and ledger for the same table: receipts that
    # verify under the keys the file carries.
    own = make_test_gate(tmp_path / "own", frame=FRAME, epsilon=1000.0)
    from dpsynth.table import PrivateTable

    table = PrivateTable(FRAME, SCHEMA, own.gate, dataset_key=own.dataset_key)
    MST(epsilon=100.0, iters=30, device="cpu").fit(table).save(tmp_path / "self.pt")
    assert MST.load(tmp_path / "self.pt", trust=own.officer_pub, device="cpu")  # under the attacker's keys
    _refused_everywhere(tmp_path / "self.pt", ledger)
    monkeypatch.delenv("DPSYNTH_TRUST", raising=False)
    with pytest.raises(InvalidReceipt, match="no trusted key"):
        MST.load(tmp_path / "self.pt", device="cpu")
    res = _verify(tmp_path / "self.pt")
    assert res.exit_code == 1 and "no trusted key" in res.output
    # The trust file of the real officer does not vouch for it either.
    trust = tmp_path / "trust.toml"
    trust.write_text(f'keys = ["{ledger.officer_pub}"]\n')
    monkeypatch.setenv("DPSYNTH_TRUST", str(trust))
    with pytest.raises(InvalidReceipt):
        MST.load(tmp_path / "self.pt", device="cpu")
    assert MST.load(fitted["a"], device="cpu")


def test_marginal_model_not_fitted_from_its_releases_is_refused(fitted, tmp_path):
    ledger = fitted["ledger"]

    class Doctored(MST):  # potentials moved after estimation, before the seal
        generator_name = "mst"

        def _fit(self, run):
            super()._fit(run)
            for _, factor in self.model.potentials.items():
                factor.values.add_(0.25 * torch.rand(factor.values.shape, generator=torch.Generator().manual_seed(0),
                                                     dtype=factor.values.dtype))

    table = table_on(ledger, seed=4)
    Doctored(epsilon=1.0, iters=30, device="cpu").fit(table).save(tmp_path / "doctored.pt")
    # The seal and the releases are genuine (it loads and samples under the trusted key):
    # only re-deriving the model from its committed outputs shows it.
    assert len(MST.load(tmp_path / "doctored.pt", trust=ledger.ledger_pub, device="cpu").sample(3)) == 3
    with pytest.raises(InvalidReceipt, match="not the fit of its measurements|another model"):
        audit_model(tmp_path / "doctored.pt", trust=ledger.ledger_pub, rederive=True)
    res = _verify(tmp_path / "doctored.pt", "--trust", ledger.ledger_pub, "--rederive")
    assert res.exit_code == 1 and isinstance(res.exception, SystemExit), res.output


# --------------------------------------------------------------------------- grafts

def test_seal_or_receipts_grafted_from_another_fit_are_refused(fitted, tmp_path):
    ledger = fitted["ledger"]
    a, b = read_model_blob(fitted["a"]), read_model_blob(fitted["b"])

    def other_seal(blob):
        blob["seal"] = b["seal"]

    def other_receipts(blob):
        blob["meta"]["provenance"]["receipts"] = b["meta"]["provenance"]["receipts"]

    def other_receipts_and_seal(blob):
        other_seal(blob)
        other_receipts(blob)

    def other_releases(blob):  # a release commitment for another output
        for k in [k for k in blob["arrays"] if k.startswith("release/")]:
            if k in b["arrays"]:
                blob["arrays"][k] = b["arrays"][k]

    def other_genesis(blob):
        other = make_test_gate(tmp_path / "other-ledger")
        blob["meta"]["provenance"]["genesis"] = other.gate.metadata.to_dict()

    def dropped_receipt(blob):
        blob["meta"]["provenance"]["receipts"] = blob["meta"]["provenance"]["receipts"][:-1]

    for edit in (other_seal, other_receipts, other_receipts_and_seal, other_releases, other_genesis,
                 dropped_receipt):
        _refused_everywhere(rewrite_model(fitted["a"], tmp_path / f"{edit.__name__}.pt", edit), ledger)
    assert a["seal"] != b["seal"]


# --------------------------------------------------------------------------- crafted files

class _Boom:
    def __reduce__(self):
        import os

        return (os.system, ("touch /tmp/dpsynth-security-pwned",))


def test_crafted_model_files_are_refused_without_crashing(fitted, tmp_path):
    ledger = fitted["ledger"]
    marker = Path("/tmp/dpsynth-security-pwned")
    marker.unlink(missing_ok=True)
    pickled = tmp_path / "pickle.pt"
    torch.save({"meta": _Boom(), "arrays": {}, "seal": "{}"}, pickled)
    raw = tmp_path / "raw.pt"
    raw.write_bytes(pickle.dumps(_Boom()))
    crafted = [pickled, raw]

    def variant(name, edit):
        crafted.append(rewrite_model(fitted["a"], tmp_path / f"{name}.pt", edit))

    def first_array(b, fn):
        k = next(k for k in b["arrays"] if b["arrays"][k].is_floating_point())
        b["arrays"][k] = fn(b["arrays"][k])

    variant("bfloat16", lambda b: first_array(b, lambda t: t.to(torch.bfloat16)))
    variant("sparse", lambda b: first_array(b, lambda t: t.to_sparse()))
    variant("requires-grad", lambda b: first_array(b, lambda t: t.clone().requires_grad_(True)))
    variant("genesis-list", lambda b: b["meta"]["provenance"].__setitem__("genesis", [1, 2]))
    variant("provenance-str", lambda b: b["meta"].__setitem__("provenance", "x"))
    variant("releases-int", lambda b: b["meta"].__setitem__("releases", 5))
    variant("config-str", lambda b: b["meta"].__setitem__("config", {"epsilon": "1"}))
    variant("config-extra", lambda b: b["meta"]["config"].__setitem__("device", "cuda:7"))
    variant("model-none", lambda b: b["meta"].__setitem__("model", None))
    variant("receipt-int", lambda b: b["meta"]["provenance"].__setitem__("receipts", [5]))
    variant("seal-list", lambda b: b.__setitem__("seal", "[1]"))
    variant("seal-nan", lambda b: b.__setitem__("seal", json.dumps(b["seal"]).replace('"cost": 0.0', '"cost": NaN')))
    variant("meta-deep", lambda b: b.__setitem__("meta", "[" * 100_000 + "]" * 100_000))
    variant("format-dpctgan", lambda b: b["meta"].__setitem__("format", "dpsynth.dpctgan/2"))
    variant("arrays-list", lambda b: b.__setitem__("arrays", [torch.zeros(1)]))
    for path in crafted:
        with pytest.raises(REFUSED):
            load_model(path, trust=ledger.ledger_pub, device="cpu")
        res = _verify(path, "--trust", ledger.ledger_pub)
        assert res.exit_code == 1 and isinstance(res.exception, SystemExit), (path.name, res.exception)
        res = CliRunner().invoke(app, ["ledger", "verify", str(ledger.ledger_path), "--receipts", str(path)])
        assert res.exception is None or isinstance(res.exception, SystemExit), (path.name, res.exception)
    assert not marker.exists(), "loading a model file ran code"


def test_receipts_relabelled_to_another_ledger_of_the_same_officer_are_refused(tmp_path):
    """Hole found: the officer vouches for ledger key K2 through ledger L2's genesis; whoever
    holds K2 could relabel a model's receipts as entries of the officer's OTHER ledger L1 (its
    id and dataset), re-sign them and the seal with K2, keep L2's genesis, and the file
    verified "sealed by ledger L1" under the officer's key.  Receipts must now belong to the
    genesis that vouches for their key."""
    import dataclasses

    from accountant.keys import load_private_key, sign
    from accountant.ledger.entry import ENTRY_PURPOSE
    from accountant.policy import render_policy, sign_policy_file
    from accountant.receipt import Receipt
    from accountant.fingerprint import fingerprint_table, generate_dataset_key
    from accountant.gate import Gate, init_ledger
    from accountant.keys import write_keypair
    from dpsynth.generators.provenance import state_digest
    from dpsynth.table import PrivateTable

    l1 = governed(tmp_path / "l1", FRAME)                      # dataset A, ledger L1, key K1, officer O
    frame_b = small_frame(50, seed=9)
    key_b = generate_dataset_key()
    d2 = tmp_path / "l2"
    d2.mkdir()
    k2, k2_pub = write_keypair(d2, "ledger")
    policy = d2 / "policy.toml"
    policy.write_text(render_policy(epsilon=20.0, delta=1e-6, relation="add_or_remove_one",
                                    fingerprint=fingerprint_table(frame_b, key_b), max_records=1000,
                                    generators=["*"], allow_seeded_noise=True))
    sign_policy_file(policy, load_private_key(l1.officer_key))
    init_ledger(d2 / "ledger.db", policy, officer_key=l1.officer_key, ledger_key=k2_pub)   # same officer O
    gate2 = Gate.open(d2 / "ledger.db", ledger_key=k2)
    table_b = PrivateTable(frame_b, SCHEMA, gate2, dataset_key=key_b)
    MST(epsilon=1.0, iters=20, device="cpu").fit(table_b).save(tmp_path / "b.pt")
    assert MST.load(tmp_path / "b.pt", trust=l1.officer_pub, device="cpu")

    key = load_private_key(k2)
    md1 = l1.gate.metadata

    def relabel(d: dict) -> dict:
        r = dataclasses.replace(Receipt.from_dict(d), ledger_id=md1.ledger_id,
                                dataset_fingerprint=md1.dataset_fingerprint)
        h = r.entry().compute_hash()
        return dataclasses.replace(r, entry_hash=h, signature=sign(key, ENTRY_PURPOSE, h.encode())).to_dict()

    def forge(blob):
        prov = blob["meta"]["provenance"]
        prov["receipts"] = [relabel(r) for r in prov["receipts"]]
        arrays = {k: v.numpy() for k, v in blob["arrays"].items()}
        seal = dataclasses.replace(Receipt.from_dict(relabel(blob["seal"])), commitment=state_digest(blob["meta"],
                                                                                                    arrays))
        h = seal.entry().compute_hash()
        blob["seal"] = dataclasses.replace(seal, entry_hash=h, signature=sign(key, ENTRY_PURPOSE,
                                                                               h.encode())).to_dict()

    forged = rewrite_model(tmp_path / "b.pt", tmp_path / "forged.pt", forge)
    for trust in (l1.officer_pub, [l1.officer_pub, k2_pub]):
        with pytest.raises(InvalidReceipt):
            MST.load(forged, trust=trust, device="cpu")
    res = _verify(forged, "--trust", l1.officer_pub)
    assert res.exit_code == 1 and isinstance(res.exception, SystemExit), res.output
