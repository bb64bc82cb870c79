"""Compare generators side by side: several generators × several ε × repeats on one table.

    from dpsynth.compare import compare
    res = compare(frame, schema, gate=gate, dataset_key=key, generators=["mst", "aim"],
                  epsilons=[0.5, 1, 2], repeats=3, target="income", out="cmp")
    # cmp/results.csv, cmp/*.png, cmp/index.html; every run charged to `gate`'s ledger
"""

from .runner import BASELINE, RESULT_COLUMNS, ComparisonResult, compare, demo_comparison

__all__ = ["BASELINE", "RESULT_COLUMNS", "ComparisonResult", "compare", "demo_comparison"]
