"""Child programs that run a PEER's marginal synthesizer in the peer's own Python.

Each file here runs under the peer's interpreter (not ours), imports only the
standard library, numpy, pandas and the peer's own package, and writes a
synthetic CSV (integer codes, the real table's columns) plus a small JSON of
in-process timings.  None of the peer's code is copied here: it is imported from
the peer's installed package or repository checkout at run time.
"""
