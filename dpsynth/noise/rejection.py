"""Batch rejection sampling: fill ``count`` outputs from pooled iid proposals.

Each round proposes enough candidates for all outputs still missing (scaled by the
acceptance rate seen so far) and keeps the accepted ones in proposal order.  This is
exact: the candidates are iid pairs (value, accepted), so given the accept indicators the
accepted values are iid from the target law, whichever of them are kept.  Pooling only
cuts the number of rounds (and so of NumPy calls), not the work per output.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Proposer = Callable[[int], "tuple[np.ndarray, np.ndarray]"]


def fill_by_rejection(count: int, propose: Proposer, expected_rate: float) -> np.ndarray:
    """``count`` accepted values (int64) from ``propose(m) -> (values, accepted)``."""
    out = np.empty(count, dtype=np.int64)
    filled = 0
    proposed = accepted_total = 0
    while filled < count:
        need = count - filled
        rate = accepted_total / proposed if accepted_total else expected_rate
        batch = int(need / max(rate, 1e-3) * 1.05) + 16
        values, accepted = propose(batch)
        kept = values[accepted][:need]
        out[filled : filled + kept.size] = kept
        filled += kept.size
        proposed += batch
        accepted_total += int(np.count_nonzero(accepted))
    return out
