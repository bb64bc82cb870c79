"""The private table as the service uses it: one person's view of a governed dataset.

A `ServedTable` is a `PrivateTable` whose every charge is made in a person's name
(the authenticated actor), under their cap on the dataset, and — for a remote
measurement — under the request's idempotency key, so that a retried request is
charged once, with the caller's run id kept apart from everyone else's
(`person/run`: a run id like "run-1" is easy to guess, and the policy's per-run cap
counts per run id).  A job's run ids are the generators' own (random) ones.
A job's table also stops before its next charge, or the next step of a session,
once the job is cancelled: what was charged before stands (it was released to
the run), nothing more is spent.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

from dpsynth.table import PrivateTable

__all__ = ["ServedTable", "JobCancelled"]


class JobCancelled(Exception):
    """The job was cancelled; raised at the next charge or session step."""


class ServedTable(PrivateTable):
    _actor_cap: float | None = None
    _cancel: threading.Event | None = None
    _request_id: str | None = None
    _keep_answer: Callable[[Any, Any], None] | None = None
    _scope_runs: bool = False

    @classmethod
    def over(cls, base: PrivateTable, *, actor: str, actor_cap: float | None, cancel: threading.Event | None = None,
             request_id: str | None = None, keep_answer: Callable[[Any, Any], None] | None = None,
             scope_runs: bool = False) -> "ServedTable":
        """A view of the dataset's bound table (validated and fingerprinted once, at start-up)."""
        view = base._view_as(cls, actor=actor)
        view._actor_cap = actor_cap
        view._cancel = cancel
        view._request_id = request_id
        view._keep_answer = keep_answer
        view._scope_runs = scope_runs
        return view

    def _check_cancel(self) -> None:
        if self._cancel is not None and self._cancel.is_set():
            raise JobCancelled("the job was cancelled")

    def _charge(self, spec: Any, *, purpose: str, generator: str | None, run_id: str | None,
                parameters: Any, code_sha256: str | None = None) -> Any:
        self._check_cancel()
        scoped = f"{self._actor}/{run_id}" if run_id is not None and self._scope_runs else run_id
        receipt = super()._charge(spec, purpose=purpose, generator=generator, run_id=scoped, parameters=parameters,
                                  code_sha256=code_sha256)
        # One request id buys one charge: a second measurement in the same call would need its own.
        self._request_id = None
        return receipt

    def _charge_options(self) -> dict[str, Any]:
        return {"actor_cap": self._actor_cap, "request_id": self._request_id}

    def _answer(self, spec: Any, receipt: Any, **kwargs: Any) -> Any:
        output = super()._answer(spec, receipt, **kwargs)
        if self._keep_answer is not None:
            # Stored before the release entry is written: a crash between the two is repaired
            # by the retry, which releases the stored answer (dpsynth.serve.measurements).
            self._keep_answer(receipt, output)
        return output

    def _step(self, *args: Any, **kwargs: Any) -> Any:
        self._check_cancel()
        return super()._step(*args, **kwargs)
