"""Two kinds of stress on one ledger: racing processes, and processes killed mid-charge."""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import signal
import sys

import pytest

from accountant.events import GaussianEvent
from accountant.filter import RenyiFilter
from accountant.ledger.sqlite import SQLiteLedgerStore
from accountant.testing import make_test_gate
from accountant.verify import verify_path

from . import _workers

N_WORKERS = 8


def test_racing_processes_never_overspend_and_never_lose_an_entry(tmp_path):
    tl = make_test_gate(tmp_path, epsilon=1.0, delta=1e-6)
    tl.gate.close()
    filt = RenyiFilter(1.0, 1e-6)
    per_charge = filt.cost(GaussianEvent(30.0))
    capacity = int(filt.budget // per_charge)
    assert 30 <= capacity <= 60, capacity  # enough charges for a real race, few enough to be quick

    ctx = mp.get_context("spawn")
    start, queue = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_workers.race, args=(str(tl.ledger_path), str(tl.ledger_key), w, start, queue))
             for w in range(N_WORKERS)]
    for p in procs:
        p.start()
    start.set()
    results = dict(queue.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0

    receipts = [r for rs in results.values() for r in rs]
    store = SQLiteLedgerStore(tl.ledger_path)
    entries = store.snapshot().entries
    store.close()
    # Every admitted charge is in the ledger exactly once, and nothing else is.
    assert sorted(receipts) == sorted((e.sequence, e.entry_hash) for e in entries)
    assert len({h for _, h in receipts}) == len(receipts)
    # The filter admitted exactly as many charges as fit (each worker stopped on a refusal).
    assert len(entries) == capacity
    assert entries[-1].filter_total <= filt.budget
    assert sum(1 for rs in results.values() if rs) >= 2, "the processes did not actually race"
    assert verify_path(tl.ledger_path, officer_public_key=tl.officer_pub, ledger_public_key=tl.ledger_pub).ok


@pytest.mark.skipif(sys.platform != "linux", reason="uses fork + SIGKILL")
def test_sigkill_mid_charge_keeps_every_returned_receipt(tmp_path):
    tl = make_test_gate(tmp_path, epsilon=1.0, delta=1e-6)
    tl.gate.close()
    # fork: a fresh interpreter per kill (spawn) would cost a second each; the child opens its own gate.
    ctx = mp.get_context("fork")
    rng = random.Random(1234)
    reported: list[tuple[int, str]] = []
    kills = 30
    for _ in range(kills):
        parent, child = ctx.Pipe(duplex=False)
        p = ctx.Process(target=_workers.charge_forever, args=(str(tl.ledger_path), str(tl.ledger_key), child))
        p.start()
        child.close()
        assert parent.recv()[0] == "ready"
        for _ in range(rng.randrange(0, 4)):
            reported.append(parent.recv())
        # Kill at a random moment, usually inside the next charge's transaction.
        for _ in range(rng.randrange(0, 200)):
            pass
        os.kill(p.pid, signal.SIGKILL)
        p.join()
        assert p.exitcode == -signal.SIGKILL
        while parent.poll():  # receipts sent before the kill landed
            try:
                reported.append(parent.recv())
            except EOFError:
                break
        parent.close()

    report = verify_path(tl.ledger_path, officer_public_key=tl.officer_pub, ledger_public_key=tl.ledger_pub)
    assert report.ok, report.summary()
    store = SQLiteLedgerStore(tl.ledger_path)
    stored = {(e.sequence, e.entry_hash) for e in store.snapshot().entries}
    store.close()
    assert len(reported) >= 20 and set(reported) <= stored
    # The ledger is still usable after all that.
    gate = tl.reopen()
    gate.charge(GaussianEvent(1000.0), purpose="after the crashes", generator="mst")
    gate.close()
    assert verify_path(tl.ledger_path).ok
