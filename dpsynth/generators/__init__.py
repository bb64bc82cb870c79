"""Synthetic-data generators.  Every one has the same shape:

    model = MST(epsilon=1.0).fit(table)        # charges table.gate before it measures
    rows = model.sample(1000, where={"sex": "F"}, seed=0)
    model.save("m.bin"); MST.load("m.bin")     # load and sample re-verify the receipts
"""

from .dpctgan import DPCTGAN
from .marginal import AIM, MST, Independent

GENERATORS = {"mst": MST, "aim": AIM, "independent": Independent, "dpctgan": DPCTGAN}

__all__ = ["DPCTGAN", "MST", "AIM", "Independent", "GENERATORS"]
