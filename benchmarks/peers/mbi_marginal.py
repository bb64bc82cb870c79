"""Run the authors' reference MST or AIM script (mbi / private-pgm repository) once.

Runs under the peer's Python (a venv holding the repository's ``src/mbi`` package):

    $MBI_PYTHON benchmarks/peers/mbi_marginal.py --repo /path/to/private-pgm \
        --method mst --epsilon 1 --delta 1e-9 --seed 0 \
        --data adult.csv --domain adult-domain.json --out synth.csv --meta meta.json

The mechanisms are imported from ``<repo>/mechanisms`` (``mst.MST``, ``aim.AIM``) and
called exactly as the scripts' own ``__main__`` blocks call them, except that

- numpy's global generator is seeded (the scripts draw all noise from ``np.random``),
- AIM gets the workload this benchmark uses (every 3-way marginal, weight 1; the
  script's CLI default is 2-way marginals of at most 10,000 cells),

so one run is one (method, ε, seed).  Nothing of the repository is copied here.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repo", type=Path, required=True, help="private-pgm checkout (has mechanisms/)")
    p.add_argument("--method", choices=("mst", "aim"), required=True)
    p.add_argument("--epsilon", type=float, required=True)
    p.add_argument("--delta", type=float, required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--domain", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--meta", type=Path, required=True)
    p.add_argument("--degree", type=int, default=3, help="AIM workload: all marginals of this degree")
    p.add_argument("--max-model-size", type=float, default=80.0, help="AIM's cap in MB (script default 80)")
    p.add_argument("--max-iters", type=int, default=1000, help="AIM's mirror-descent iterations (script default)")
    args = p.parse_args()

    sys.path.insert(0, str(args.repo / "mechanisms"))
    import numpy as np
    from mbi import Dataset

    t_import = time.perf_counter()
    if args.method == "mst":
        from mst import MST
    else:
        from aim import AIM
    data = Dataset.load(str(args.data), str(args.domain))
    np.random.seed(args.seed)

    t0 = time.perf_counter()
    if args.method == "mst":
        synth = MST(data, args.epsilon, args.delta)  # fit + sample (synthetic_data) in one call
        extra = {}
    else:
        workload = [(cl, 1.0) for cl in itertools.combinations(data.domain.attrs, args.degree)]
        mech = AIM(args.epsilon, args.delta, max_model_size=args.max_model_size, max_iters=args.max_iters)
        _, synth = mech.run(data, workload)
        extra = {"workload_size": len(workload), "max_model_size": args.max_model_size,
                 "max_iters": args.max_iters}
    t1 = time.perf_counter()
    synth.df.to_csv(args.out, index=False)
    args.meta.write_text(json.dumps({
        "fit_sample_s": t1 - t0,
        "setup_s": t0 - t_import,
        "peer": "mbi/private-pgm repository script mechanisms/" + args.method + ".py",
        "notes": "fit and sample timed together (the script's MST() returns the synthetic data)",
        **extra,
    }))


if __name__ == "__main__":
    main()
