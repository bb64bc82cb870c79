"""Recording and replaying private tables — test-only.

`RecordingTable` logs every measurement (its public description, the exact
answer, the noise, the released output and the receipt).  `ReplayTable` runs
on a neighbouring table and, instead of measuring, returns the recorded noisy
output of the same measurement — while computing the exact answer on its own
rows so that the replay can compare the two against the declared sensitivity.

Both would be a way around the gate if they could be used on real data (a
replay releases outputs computed on another table; a recording keeps exact
answers).  They therefore refuse to exist unless:

* the random source is a `SeededRandomSource` (reproducible, marked
  "seeded-test" in every ledger entry), and
* the gate's policy allows seeded test noise — only test ledgers
  (`accountant.testing.make_test_gate`) do; a production policy says
  `allow_seeded_noise = false` and the gate refuses seeded charges anyway.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from accountant.events import ComposedEvent

from ..table.measurement import Measurement
from ..table.private_table import PrivateTable

__all__ = ["Record", "RecordingTable", "ReplayTable", "RecordingRefused", "ReplayDivergence", "composed_json"]


class RecordingRefused(RuntimeError):
    """A recording/replay table was asked for outside a test setting."""


class ReplayDivergence(AssertionError):
    """The run on the neighbour asked for a different measurement than the recorded run."""


@dataclass
class Record:
    """One measurement of the recorded run."""

    measurement: Measurement
    receipt: Any
    exact: Any
    noise: Any
    output: Any


def composed_json(events: Sequence[Any]) -> str:
    """The JSON of what the gate records for these events (one entry for the batch)."""
    events = tuple(events)
    return (events[0] if len(events) == 1 else ComposedEvent(events)).to_json()


def _query_key(m: Measurement) -> str:
    return json.dumps({"kind": m.kind, "query": m.query, "events": composed_json(m.events),
                       "sensitivity": m.sensitivity, "norm": m.norm}, sort_keys=True, default=repr)


def _check_test_setting(gate: Any, random_source: Any) -> None:
    from dpsynth.noise.randomness import SeededRandomSource

    if not isinstance(random_source, SeededRandomSource) or not getattr(random_source, "is_seeded", False):
        raise RecordingRefused("recording/replay tables exist for tests only: they need a SeededRandomSource")
    policy = getattr(gate, "policy", None)
    if policy is None or not getattr(policy, "allow_seeded_noise", False):
        raise RecordingRefused("recording/replay tables need a test ledger whose policy allows seeded test noise "
                               "(accountant.testing.make_test_gate)")


def _frozen(value: Any) -> Any:
    """A copy of a recorded output that the replayed run cannot mutate into the record."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if hasattr(value, "detach") and hasattr(value, "clone"):  # a torch tensor
        return value.detach().clone()
    if isinstance(value, list):
        return [_frozen(v) for v in value]
    return value


class RecordingTable(PrivateTable):
    """A PrivateTable that logs each measurement (tests only; see the module docstring)."""

    def __init__(self, frame: Any, schema: Any, gate: Any, *, random_source: Any, actor: str | None = None,
                 dataset_key: bytes | None = None) -> None:
        _check_test_setting(gate, random_source)
        super().__init__(frame, schema, gate, random_source=random_source, actor=actor, dataset_key=dataset_key)
        self.log: list[Record] = []

    def _observe(self, spec: Measurement, receipt: Any, answer: Any, noise: Any, output: Any) -> None:
        self.log.append(Record(spec, receipt, _frozen(answer), noise, _frozen(output)))


class ReplayTable(PrivateTable):
    """A PrivateTable that answers with the recorded outputs (tests only).

    Each measurement must match the next recorded one (kind, query, events, declared
    sensitivity), else `ReplayDivergence`.  It is still charged to this table's gate (so the
    replayed run's ledger can be compared), its exact answer is computed on this table's
    rows and kept in `self.exact` beside the record, and the recorded output is returned.
    """

    def __init__(self, frame: Any, schema: Any, gate: Any, *, recording: Sequence[Record], random_source: Any,
                 actor: str | None = None, dataset_key: bytes | None = None) -> None:
        _check_test_setting(gate, random_source)
        super().__init__(frame, schema, gate, random_source=random_source, actor=actor, dataset_key=dataset_key)
        self._recording = list(recording)
        self.exact: list[Any] = []
        self.replay_receipts: list[Any] = []

    @property
    def consumed(self) -> int:
        return len(self.exact)

    def _answer(self, spec: Measurement, receipt: Any, *, noise: Callable[[], Any] | None,
                exact: Callable[[Any], Any], release: Callable[[Any, Any], Any]) -> Any:
        i = len(self.exact)
        if i >= len(self._recording):
            raise ReplayDivergence(f"measurement #{i} ({spec.kind}) was not in the recorded run: control flow "
                                   "depends on private data")
        rec = self._recording[i]
        if _query_key(spec) != _query_key(rec.measurement):
            raise ReplayDivergence(
                f"measurement #{i} differs from the recorded run: recorded {_query_key(rec.measurement)}, "
                f"replayed {_query_key(spec)}")
        # The noise is drawn (and discarded) so the seeded stream stays aligned with the recording.
        if noise is not None:
            noise()
        with self._open_rows(receipt) as rows:
            self.exact.append(exact(rows))
        self.replay_receipts.append(receipt)
        return _frozen(rec.output)
