"""Run smartnoise-synth's packaged MST or AIM once, under smartnoise-synth's own Python.

    $SNSYNTH_PYTHON benchmarks/peers/snsynth_marginal.py --method mst --epsilon 1 \
        --delta 1e-9 --seed 0 --data adult.csv --domain adult-domain.json \
        --out synth.csv --meta meta.json

Every column is passed as categorical (the table is already integer-coded);
``preprocessor_eps=0`` because nothing needs DP bounds.  Note what smartnoise does
with that (not our choice): its transformer reads the category list from the data
without charging for it, so a code absent from the data is absent from its domain.
AIM gets every 3-way marginal as its workload (``degree=3``, no cell cap).  numpy's
global generator is seeded; smartnoise draws its Gaussian noise through OpenDP,
which cannot be seeded, so runs are not reproducible bit for bit.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--method", choices=("mst", "aim"), required=True)
    p.add_argument("--epsilon", type=float, required=True)
    p.add_argument("--delta", type=float, required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--domain", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--meta", type=Path, required=True)
    p.add_argument("--degree", type=int, default=3)
    p.add_argument("--max-model-size", type=float, default=80.0)
    args = p.parse_args()

    import numpy as np
    import pandas as pd
    from importlib.metadata import version

    from snsynth.aim import AIMSynthesizer
    from snsynth.mst import MSTSynthesizer

    domain = json.loads(args.domain.read_text())
    real = pd.read_csv(args.data)[list(domain)]
    np.random.seed(args.seed)
    if args.method == "mst":
        synth = MSTSynthesizer(epsilon=args.epsilon, delta=args.delta)
    else:
        synth = AIMSynthesizer(epsilon=args.epsilon, delta=args.delta, degree=args.degree,
                               max_cells=10**12, max_model_size=args.max_model_size)
    t0 = time.perf_counter()
    synth.fit(real, categorical_columns=list(domain), preprocessor_eps=0.0, nullable=False)
    t1 = time.perf_counter()
    rows = synth.sample(len(real))
    t2 = time.perf_counter()
    out = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows), columns=list(domain))
    out.columns = list(domain)
    out.to_csv(args.out, index=False)
    args.meta.write_text(json.dumps({
        "fit_s": t1 - t0, "sample_s": t2 - t1, "fit_sample_s": t2 - t0,
        "peer": f"smartnoise-synth {version('smartnoise-synth')} (mbi {version('mbi')}) {args.method}",
    }))


if __name__ == "__main__":
    main()
