"""dpsynth: differentially private synthetic data with a signed, verifiable privacy ledger.

`dpsynth.synthesize(frame, schema, epsilon=..., generator=...)` is the one-call path
(`dpsynth.quick`); the rest lives in the sub-packages (schema, table, generators, ...).
"""

import os as _os
import sys as _sys

# Torch's CPU kernels run on OpenMP (libgomp), whose idle threads spin by default: on a
# shared machine two spinning threads doubled AIM's CPU time and slowed it down (see
# benchmarks/results/aim_speed.md).  libgomp reads the policy once, when torch loads, so
# it is set here, before any dpsynth module imports torch; the user's own setting wins.
# When torch was loaded first, dpsynth.pgm runs its large tensors on one thread instead.
if "torch" not in _sys.modules:
    _os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def __getattr__(name: str):
    # Lazy: `import dpsynth` stays light (torch and pandas load only when used).
    if name == "synthesize":
        from .quick import synthesize

        return synthesize
    raise AttributeError(f"module 'dpsynth' has no attribute {name!r}")
