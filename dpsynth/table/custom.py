"""A researcher's own mechanism on the rows: allowed only by the signed policy, and recorded.

`custom_measurement(mechanism, events, ...)` is the one path on which code that
dpsynth did not vet reads the rows.  The policy must say
`allow_custom_code = true`; the charge's ledger entry records the SHA-256 of
the mechanism's code (`code_sha256`), so an auditor sees exactly which entries
rest on the caller's own privacy claim; the output's SHA-256 is committed in
the release entry like any other.  The events are the caller's declaration:
dpsynth cannot check that the code is as private as they say.
"""

from __future__ import annotations

import hashlib
import marshal
from typing import Any, Callable, Sequence

from accountant.errors import PolicyViolation

from .commitments import release_digest
from .measurement import Measurement

__all__ = ["CustomMechanismMixin", "code_digest"]


def code_digest(mechanism: Callable[..., Any]) -> str:
    """SHA-256 of a function's compiled code (nested code objects included), module and
    qualified name.  Values it closes over are not part of it: the entry names code."""
    code = getattr(mechanism, "__code__", None)
    if code is None:
        code = getattr(getattr(mechanism, "__call__", None), "__code__", None)
    if code is None:
        raise TypeError("mechanism must be a Python function (its code is hashed into the ledger)")
    h = hashlib.sha256(b"dpsynth/custom-code-v1\0")
    h.update(f"{getattr(mechanism, '__module__', '')}:{getattr(mechanism, '__qualname__', '')}\0".encode())
    h.update(marshal.dumps(code))
    return h.hexdigest()


class CustomMechanismMixin:
    """`PrivateTable`'s explicit path for caller-supplied mechanisms."""

    def custom_measurement(self, mechanism: Callable[[Any], Any], events: Sequence[Any], *, purpose: str,
                           generator: str | None = "custom", run_id: str | None = None,
                           parameters: dict | None = None) -> Any:
        """Charge `events`, run `mechanism(rows)` on a copy of the rows, release its output.

        Refused (PolicyViolation, nothing charged) unless the policy allows custom code."""
        if not callable(mechanism):
            raise TypeError("mechanism must be callable")
        if not self._gate.policy.allow_custom_code:
            raise PolicyViolation("caller-supplied code may not read the rows: the policy does not set "
                                  "allow_custom_code = true")
        digest = code_digest(mechanism)
        events = tuple(events)
        spec = Measurement(kind="custom", query={"code_sha256": digest}, events=events, sensitivity=float("inf"),
                           norm="l2")
        receipt = self._charge(spec, purpose=purpose, generator=generator, run_id=run_id, parameters=parameters,
                               code_sha256=digest)
        output = self._answer(spec, receipt, noise=None, exact=lambda rows: mechanism(rows.frame.copy()),
                              release=lambda answer, _: answer)
        self._commit_release(receipt, release_digest(output), {"measurement": "custom"})
        return output
