"""Remote measurements: the marginal path of a PrivateTable, answered by the service.

A researcher's own marginal-based mechanism calls `measure_marginals`,
`select_marginal` and `noisy_count` on a `dpsynth.remote.RemoteTable`; each call
arrives here with an idempotency key (`request_id`).  The order is:

1. an answer already stored for (person, request_id) is returned again (after
   checking the request is the same one, and releasing it if the service died
   between storing it and writing its release entry);
2. otherwise a view of the dataset's table charges in the person's name, under
   their cap and the request id (a charge already made under it is found, not
   made twice), computes the noisy answer, stores it, writes the release entry,
   and only then is the answer returned.

So a retried request — after a lost response, a killed service, a restarted
database — is charged once and answered with the one answer that was released.
An error before the charge names the argument; one after it says only that the
measurement failed (its message could depend on the rows) and the officer's log
keeps the detail under an error id.  That failure is remembered: a retry under the
same request id gets it again and never reads the rows a second time under the one
charge (each try would otherwise be a fresh look at the rows — and a failure can
itself depend on them — for the price of one charge).  A request the service was
killed in the middle of has no answer and no failure stored; its retry computes
the answer once, under the charge already made.  A ledger that cannot be reached
(its database restarting) is not a failure of the measurement: nothing is kept,
the service answers 503, and the client's retry under the same request id goes on
from where the ledger stands.

Before anything is charged, the cells of all the marginals a request counts must
stay within the service's `max_cells_per_request`: a request names columns, not
cells, and a few kilobytes of clique names can ask for terabytes of noise.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import threading
from typing import Any, Mapping

import numpy as np

from accountant.ledger.store import LedgerStoreError

from dpsynth.remote.protocol import decode_answer as decode_output
from dpsynth.remote.protocol import encode_answer as encode_output

from .table import ServedTable

__all__ = ["MeasurementService", "MeasurementFailed", "RequestMismatch", "KINDS"]

log = logging.getLogger("dpsynth.serve")
KINDS = ("marginals", "select", "count")


class MeasurementFailed(RuntimeError):
    """The measurement failed after its charge; nothing was released (details in the service log)."""


class RequestMismatch(ValueError):
    """The request id was used for another request."""


def request_digest(dataset: str, kind: str, args: Mapping[str, Any]) -> str:
    text = json.dumps({"dataset": dataset, "kind": kind, "args": args}, sort_keys=True, separators=(",", ":"),
                      allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def request_cells(domain: Mapping[str, int], kind: str, args: Mapping[str, Any], limit: int) -> int:
    """An upper bound on the cells the request's marginals count (stops counting past `limit`);
    columns the schema does not have count 1 (the table refuses them by name)."""
    cliques = args.get("cliques") if kind == "marginals" else args.get("candidates") if kind == "select" else None
    if not cliques:
        return 0
    recode = args.get("recode") or {}
    total = 0
    for clique in cliques:
        cells = 1
        for name in clique:
            size = domain.get(name, 1)
            m = recode.get(name) if isinstance(recode, Mapping) else None
            if isinstance(m, list) and m and all(isinstance(x, int) and x >= 0 for x in m):
                size = min(size, max(m) + 1)
            cells *= max(1, int(size))
            if cells > limit:
                return cells + total
        total += cells
        if total > limit:
            return total
    return total


def _call(table: ServedTable, kind: str, args: Mapping[str, Any]) -> Any:
    common = {k: args.get(k) for k in ("purpose", "generator", "run_id", "parameters")}
    if kind == "marginals":
        recode = args.get("recode")
        return table.measure_marginals([tuple(c) for c in args["cliques"]], args["sigma"], **common,
                                       recode=None if recode is None else {k: np.asarray(v, dtype=np.int64)
                                                                           for k, v in recode.items()})
    if kind == "select":
        recode = args.get("recode")
        return table.select_marginal([tuple(c) for c in args["candidates"]],
                                     [np.asarray(e, dtype=np.float64) for e in args["estimates"]], args["epsilon"],
                                     weights=args.get("weights"), offsets=args.get("offsets"), **common,
                                     recode=None if recode is None else {k: np.asarray(v, dtype=np.int64)
                                                                         for k, v in recode.items()})
    if kind == "count":
        return table.noisy_count(args["sigma"], **common)
    raise ValueError(f"unknown measurement {kind!r}")


class MeasurementService:
    def __init__(self, state: Any) -> None:
        self._state = state
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def _lock(self, person: str, request_id: str) -> threading.Lock:
        with self._locks_guard:
            if len(self._locks) > 10_000:
                self._locks = {k: v for k, v in self._locks.items() if v.locked()}
            return self._locks.setdefault((person, request_id), threading.Lock())

    def measure(self, dataset: Any, person: str, cap: float | None, kind: str, args: Mapping[str, Any],
                request_id: str, max_cells: int | None = None) -> dict[str, Any]:
        """The answer and its receipts (see the module docstring)."""
        if kind not in KINDS:
            raise ValueError(f"measurement must be one of {', '.join(KINDS)}")
        digest = request_digest(dataset.name, kind, args)
        with self._lock(person, request_id):
            stored = self._state.answer(person, request_id)
            if stored is not None:
                if stored.request_sha256 != digest:
                    raise RequestMismatch(f"request_id {request_id!r} was used for another request")
                return self._again(dataset, person, kind, stored)
            failed = self._state.failure(person, request_id)
            if failed is not None:
                if failed.request_sha256 != digest:
                    raise RequestMismatch(f"request_id {request_id!r} was used for another request")
                raise MeasurementFailed(failed.message)
            if max_cells is not None:
                cells = request_cells(dataset.table.domain, kind, args, max_cells)
                if cells > max_cells:
                    raise ValueError(f"this request counts more than {max_cells} cells in all (the service's "
                                     "max_cells_per_request); split it into smaller requests")
            gate = dataset.gate
            charge = gate.charge_receipt(person, request_id)
            if charge is not None and gate.lifecycle(charge) == "released":
                # Stored before released, so this cannot happen unless the state folder was lost.
                raise MeasurementFailed("this request's answer was released but the service no longer holds it")

            def keep(receipt: Any, output: Any) -> None:
                if not self._state.keep_answer(person, request_id, dataset.name, digest, receipt.sequence,
                                               encode_output(kind, output)):
                    raise MeasurementFailed("another answer to this request was stored first")

            table = ServedTable.over(dataset.table, actor=person, actor_cap=cap, request_id=request_id,
                                     keep_answer=keep, scope_runs=True)
            try:
                output = _call(table, kind, args)
            except LedgerStoreError:
                # The ledger's database failed (restarted, backend killed, a commit's outcome lost),
                # not the measurement: no failure is kept, the retry under this request id goes on.
                # Nothing about the rows shows in it, and the rows are read at most once per charge:
                # the only ledger writes are the charge (before the rows are read; a charge that did
                # commit is found by the retry) and the release (after the answer is stored; the retry
                # releases the stored answer).
                raise
            except Exception as exc:
                if table.charges:
                    error_id = secrets.token_hex(6)
                    log.exception("measurement %s of %s failed after its charge (error id %s)", kind, person,
                                  error_id)
                    message = (f"the measurement failed after its charge; nothing was released (error id "
                               f"{error_id} in the service log); a retry under this request id fails the same way")
                    # Remembered before the failure is reported, so no retry reads the rows again.
                    self._state.keep_failure(person, request_id, dataset.name, digest, table.charges[0].sequence,
                                             message)
                    raise MeasurementFailed(message) from None
                raise exc
            receipts = [r.to_dict() for r in table.receipts]
            self._state.answer_released(person, request_id, receipts)
            return {"kind": kind, "answer": encode_output(kind, output), "receipts": receipts}

    def _again(self, dataset: Any, person: str, kind: str, stored: Any) -> dict[str, Any]:
        """A stored answer, released first if its release entry was never written."""
        from dpsynth.table.commitments import release_digest

        if stored.receipts is not None:
            return {"kind": kind, "answer": stored.answer, "receipts": stored.receipts}
        gate = dataset.gate
        charge = gate.charge_receipt(person, stored.request_id)
        if charge is None or charge.sequence != stored.charge_sequence:
            raise MeasurementFailed("the stored answer's charge is not in the ledger")
        commitment = release_digest(decode_output(kind, stored.answer))
        release = gate.release_receipt(charge)
        if release is None:
            release = gate.release(charge, commitment, actor=person, parameters={"measurement": kind})
        elif release.commitment != commitment:
            raise MeasurementFailed("the ledger released another answer to this request")
        receipts = [charge.to_dict(), release.to_dict()]
        self._state.answer_released(person, stored.request_id, receipts)
        return {"kind": kind, "answer": stored.answer, "receipts": receipts}
