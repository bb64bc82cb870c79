"""Worker processes for the concurrency and crash tests (importable by spawn)."""

from __future__ import annotations

import os
import random
import time

from accountant.events import GaussianEvent
from accountant.gate import BudgetExceeded, Gate


def race(ledger_path: str, key_path: str, worker: int, start, out_queue) -> None:
    """Charge the same small event until the budget refuses; report every receipt."""
    gate = Gate.open(ledger_path, ledger_key=key_path)
    receipts = []
    start.wait()
    try:
        while True:
            r = gate.charge(GaussianEvent(30.0), purpose=f"race worker {worker}", generator="mst",
                            actor=f"worker-{worker}")
            receipts.append((r.sequence, r.entry_hash))
            # A real process runs its mechanism between charges; without a pause SQLite's
            # busy handler lets one process starve the others and there is no race to test.
            time.sleep(random.uniform(0, 0.01))
    except BudgetExceeded:
        pass
    finally:
        out_queue.put((worker, receipts))
        gate.close()


def charge_forever(ledger_path: str, key_path: str, conn) -> None:
    """Charge tiny events in a loop, sending each receipt over the pipe after the commit."""
    gate = Gate.open(ledger_path, ledger_key=key_path)
    conn.send(("ready", os.getpid()))
    i = 0
    while True:
        r = gate.charge(GaussianEvent(1000.0), purpose=f"crash {i}", generator="mst")
        conn.send((r.sequence, r.entry_hash))
        i += 1


def race_n(ledger: str, key_path: str, worker: int, charges: int, sigma: float, start, out_queue) -> None:
    """Up to `charges` charges of GaussianEvent(sigma), stopping early on a refusal; report
    every receipt (as a dict) and whether the budget refused one."""
    gate = Gate.open(ledger, ledger_key=key_path)
    receipts, refused = [], False
    start.wait()
    try:
        for i in range(charges):
            r = gate.charge(GaussianEvent(sigma), purpose=f"race worker {worker} #{i}", generator="mst",
                            actor=f"worker-{worker}")
            receipts.append(r.to_dict())
            time.sleep(random.uniform(0, 0.005))
    except BudgetExceeded:
        refused = True
    finally:
        out_queue.put((worker, receipts, refused))
        gate.close()
