"""dpsynth: differentially private synthetic data with a signed, verifiable privacy ledger.

`dpsynth.synthesize(frame, schema, epsilon=..., generator=...)` is the one-call path
(`dpsynth.quick`); the rest lives in the sub-packages (schema, table, generators, ...).
"""


def __getattr__(name: str):
    # Lazy: `import dpsynth` stays light (torch and pandas load only when used).
    if name == "synthesize":
        from .quick import synthesize

        return synthesize
    raise AttributeError(f"module 'dpsynth' has no attribute {name!r}")
