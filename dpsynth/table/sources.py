"""Which random sources a private table accepts, and what the ledger calls them.

Production noise comes only from `SecureRandomSource` itself; a reproducible
`SeededRandomSource` only where the signed policy allows seeded test noise.
The label written into every ledger entry ("secure" or "seeded-test") is read
from the source's exact *type*, never from an attribute the object carries: a
subclass could claim `is_seeded = False` and hand out a replayable stream.
"""

from __future__ import annotations

from typing import Any

__all__ = ["resolve_source"]


def resolve_source(random_source: Any, policy: Any) -> tuple[Any, str]:
    """(the source to use, its ledger label) — or TypeError / PermissionError."""
    from dpsynth.noise.randomness import SecureRandomSource, SeededRandomSource

    if random_source is None:
        return SecureRandomSource(), "secure"
    kind = type(random_source)
    if kind is SecureRandomSource:
        return random_source, "secure"
    if kind is SeededRandomSource:
        if policy is not None and not getattr(policy, "allow_seeded_noise", False):
            raise PermissionError("a SeededRandomSource gives reproducible noise (tests only); the policy does not "
                                  "allow seeded test noise (allow_seeded_noise = false)")
        return random_source, "seeded-test"
    raise TypeError(f"random_source must be a dpsynth.noise.SecureRandomSource (production) or a "
                    f"SeededRandomSource (tests, where the policy allows them), not {kind.__module__}.{kind.__name__}")
