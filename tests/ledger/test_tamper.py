"""Every kind of tampering makes verify fail and name the first bad entry."""

from __future__ import annotations

import json

from accountant.events import GaussianEvent, LaplaceEvent
from accountant.export import to_jsonl
from accountant.keys import load_private_key, public_key_pem, key_id, sign, write_keypair
from accountant.ledger.entry import ENTRY_PURPOSE, HEAD_PURPOSE, Entry
from accountant.ledger.sqlite import SQLiteLedgerStore
from accountant.verify import verify_path

from ._tamper import rewrite_entries, rewrite_head, rewrite_metadata


def _fill(tl, n=5):
    for i in range(n):
        event = LaplaceEvent(50.0) if i % 2 else GaussianEvent(40.0)
        tl.gate.charge(event, purpose=f"charge {i}", generator="mst", parameters={"i": i})
    tl.gate.close()


def _verify(tl, path=None):
    return verify_path(path or tl.ledger_path, officer_public_key=tl.officer_pub, ledger_public_key=tl.ledger_pub)


def _resign(entries: list[dict], key, start: int = 0) -> list[dict]:
    """What an attacker holding the ledger key does: re-hash and re-sign from `start` on."""
    prev = entries[start - 1]["entry_hash"] if start else None
    for d in entries[start:]:
        if prev is not None:
            d["prev_hash"] = prev
        e = Entry.from_dict(d)
        d["entry_hash"] = e.compute_hash()
        d["signature"] = sign(key, ENTRY_PURPOSE, d["entry_hash"].encode())
        prev = d["entry_hash"]
    return entries


def test_untouched_ledger_verifies(ledger):
    _fill(ledger)
    report = _verify(ledger)
    assert report.ok, report.summary()
    assert report.entries == 5 and report.keys_pinned


def test_edited_field_is_named(ledger):
    _fill(ledger)

    def edit(es):
        es[2]["purpose"] = "something innocent"
        return es

    rewrite_entries(ledger.ledger_path, edit)
    report = _verify(ledger)
    assert not report.ok and report.first_bad_entry == 3
    assert "edited" in str(report.first_problem)


def test_lowered_cost_resigned_with_the_ledger_key_is_caught_by_recomputation(ledger):
    """Even the ledger key's holder cannot under-report: totals are recomputed from events."""
    _fill(ledger)
    key = load_private_key(ledger.ledger_key)

    def edit(es):
        es[1]["cost"] = es[1]["cost"] / 2
        return _resign(es, key, start=1)

    rewrite_entries(ledger.ledger_path, edit)
    report = _verify(ledger)
    assert not report.ok and report.first_bad_entry == 2
    assert "cost" in str(report.first_problem)


def test_deleted_entry(ledger):
    _fill(ledger)
    rewrite_entries(ledger.ledger_path, lambda es: es[:1] + es[2:])
    report = _verify(ledger)
    assert not report.ok and report.first_bad_entry == 2


def test_reordered_entries(ledger):
    _fill(ledger)
    rewrite_entries(ledger.ledger_path, lambda es: [es[0], es[2], es[1], *es[3:]])
    report = _verify(ledger)
    assert not report.ok and report.first_bad_entry == 2
    assert "reordered" in str(report.first_problem)


def test_inserted_entry(ledger):
    _fill(ledger)

    def edit(es):
        forged = json.loads(json.dumps(es[1]))
        forged["purpose"] = "forged"
        return es[:3] + [forged] + es[3:]

    rewrite_entries(ledger.ledger_path, edit)
    report = _verify(ledger)
    assert not report.ok and report.first_bad_entry == 4


def test_dropped_last_entry_is_caught_by_the_signed_head(ledger):
    _fill(ledger)
    rewrite_entries(ledger.ledger_path, lambda es: es[:-1])
    report = _verify(ledger)
    assert not report.ok and report.first_bad_entry == 5
    assert "truncated" in str(report.first_problem)


def test_truncated_sqlite_file(ledger):
    _fill(ledger, n=30)
    data = ledger.ledger_path.read_bytes()
    ledger.ledger_path.write_bytes(data[: len(data) // 2])
    report = _verify(ledger)
    assert not report.ok
    assert "truncated or corrupt" in report.summary() or report.first_bad_entry is not None


def test_truncated_jsonl_export(ledger, tmp_path):
    _fill(ledger)
    store = SQLiteLedgerStore(ledger.ledger_path)
    text = to_jsonl(store.snapshot())
    store.close()
    lines = text.splitlines()
    cut = tmp_path / "cut.jsonl"
    cut.write_text("\n".join(lines[:4]) + "\n")  # metadata + 3 entries, no head
    report = _verify(ledger, cut)
    assert not report.ok and report.first_bad_entry == 4
    half = tmp_path / "half.jsonl"
    half.write_text(text[: len(text) // 2])  # cut in the middle of a line
    report = _verify(ledger, half)
    assert not report.ok and report.first_bad_entry is not None


def test_swapped_key_in_metadata(ledger, tmp_path):
    """Replace the ledger's public key: signatures no longer verify from entry 1."""
    _fill(ledger)
    _, other_pub = write_keypair(tmp_path / "attacker", "ledger")

    def edit(md):
        md["ledger_public_key"] = other_pub.read_text()
        return md

    rewrite_metadata(ledger.ledger_path, edit)
    report = verify_path(ledger.ledger_path)  # even without pinned keys
    assert not report.ok and report.first_bad_entry == 1


def _forge(ledger, tmp_path, *, officer_too: bool) -> None:
    """Swap the ledger key in the genesis and re-sign every entry and the head with it; with
    `officer_too` also swap the officer key and re-sign the policy and the genesis."""
    from accountant.ledger.entry import GENESIS_PURPOSE, LedgerMetadata
    from accountant.policy import sign_policy

    attacker_key_path, _ = write_keypair(tmp_path / "attacker", "ledger")
    attacker = load_private_key(attacker_key_path)
    officer_path, _ = write_keypair(tmp_path / "attacker", "officer")
    officer = load_private_key(officer_path)
    holder = {}

    def edit_md(md):
        md["ledger_public_key"] = public_key_pem(attacker)
        md["ledger_key_id"] = key_id(attacker)
        if officer_too:
            md["officer_public_key"] = public_key_pem(officer)
            md["officer_key_id"] = key_id(officer)
            md["policy_signature"] = sign_policy(md["policy_toml"].encode(), officer).to_dict()
            unsigned = LedgerMetadata.from_dict({**md, "genesis_signature": ""})
            md["genesis_signature"] = sign(officer, GENESIS_PURPOSE, unsigned.hash.encode())
        holder["md"] = md
        return md

    rewrite_metadata(ledger.ledger_path, edit_md)
    genesis = LedgerMetadata.from_dict(holder["md"]).hash

    def edit(es):
        es[0]["prev_hash"] = genesis
        for d in es:
            d["ledger_key_id"] = key_id(attacker)
        _resign(es, attacker, start=0)
        return es

    rewrite_entries(ledger.ledger_path, edit)

    def edit_head(h):
        store = SQLiteLedgerStore(ledger.ledger_path)
        e = store.snapshot().entries[-1]
        store.close()
        h["entry_hash"] = e.entry_hash
        h["signature"] = sign(attacker, HEAD_PURPOSE, f"{h['sequence']}:{e.entry_hash}".encode())
        return h

    rewrite_head(ledger.ledger_path, edit_head)


def test_swapped_ledger_key_and_everything_resigned_is_caught_by_the_officers_genesis(ledger, tmp_path):
    _fill(ledger)
    _forge(ledger, tmp_path, officer_too=False)
    # Without the officer's key the genesis cannot be re-signed: caught even without pins.
    report = verify_path(ledger.ledger_path)
    assert not report.ok and "genesis is not signed by the officer" in report.summary()


def test_swapped_officer_and_ledger_keys_are_caught_by_pinned_keys(ledger, tmp_path):
    _fill(ledger)
    _forge(ledger, tmp_path, officer_too=True)
    # Self-consistent forgery: passes when the auditor trusts the keys inside the ledger…
    assert verify_path(ledger.ledger_path).ok
    # …and fails against the published keys.
    report = _verify(ledger)
    assert not report.ok
    assert "not the published one" in report.summary()


def test_altered_policy_in_metadata(ledger):
    _fill(ledger)

    def edit(md):
        md["policy_toml"] = md["policy_toml"].replace("epsilon = 1.0", "epsilon = 10.0")
        return md

    rewrite_metadata(ledger.ledger_path, edit)
    report = _verify(ledger)
    assert not report.ok
    assert "policy" in str(report.first_problem)
    assert report.first_problem.sequence == 0
