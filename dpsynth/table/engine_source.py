"""What every source whose rows stay in an engine (files, a database) offers a private table.

A source is public description only (where the rows are, never the rows).  `bind` is the
one step at which a `PrivateTable` takes the rows: the source's keyed fingerprint is
computed and checked against the policy's (`check_dataset`) before any value is shown to
the caller, then the engine checks every value against the schema and the rows stay there,
readable as exact counts inside charged measurements (`EngineRows`).
"""

from __future__ import annotations

from typing import Any, Callable

__all__ = ["EngineSource"]


class EngineSource:
    engine_name = "engine"

    def bind(self, schema: Any, dataset_key: bytes | None, check_dataset: Callable[[str], Any]) -> Any:
        """The engine's reading of the rows under a complete `schema`: fingerprinted under
        `dataset_key` and checked with `check_dataset` (when a key is given: only a ledger in
        insecure development mode omits it), then validated in the engine."""
        raise NotImplementedError
