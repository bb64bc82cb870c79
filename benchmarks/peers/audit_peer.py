"""Fit a peer generator many times on one world of dpsynth's worst-case audit pair, under the
peer's own Python; print one ``FIT {json}`` line per fit (its black-box scores).

    $SNSYNTH_PYTHON benchmarks/peers/audit_peer.py --peer snsynth-mst --world in --runs 0:50 \
        --epsilon 1 --delta 1e-5 --n-synth 1000

The pair (dpsynth/audit/worlds.py, add/remove-one): D′ = four rows (0,0,0), D = D′ + (1,1,1),
three binary columns a, b, c.  Each fit is used as the peer documents it:

* ``snsynth-mst``: ``MSTSynthesizer(epsilon, delta).fit(df, categorical_columns=[a, b, c],
  preprocessor_eps=0.0)`` — categorical columns need no preprocessor budget in smartnoise-synth
  (it reads their category lists from the data, uncharged: what the audit is expected to see).
* ``synthcity-pategan``: ``Plugins().get("pategan", epsilon=..., n_teachers=2, ...)`` with c as
  the target column (synthcity needs one); n_iter=3 (small, so a fit takes seconds).
* ``snsynth-pategan``: smartnoise-synth's ``PATEGAN`` — its teacher count is ``int(n / 1000)``,
  so it cannot fit the five-row pair; this runner pads both worlds with 2000 rows (0,0,0)
  (a larger D′, same target) so that it has two teachers.

Imports the peer's installed package only; none of its code is copied.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import time


def cpu_seconds() -> float:
    s = resource.getrusage(resource.RUSAGE_SELF)
    return s.ru_utime + s.ru_stime


def world_frame(world: str, pad: int = 0):
    import pandas as pd

    rows = [(0, 0, 0)] * (4 + pad) + ([(1, 1, 1)] if world == "in" else [])
    return pd.DataFrame(rows, columns=["a", "b", "c"])


def scores(synth) -> tuple[int, int]:
    import numpy as np

    s = synth[["a", "b", "c"]].astype(str)
    hit = np.ones(len(s), dtype=bool)
    values = 0
    for c in "abc":
        eq = (s[c] == "1").to_numpy()
        hit &= eq
        values += int(eq.sum())
    return int(hit.sum()), values


def fit_snsynth_mst(df, args):
    from snsynth.mst import MSTSynthesizer

    synth = MSTSynthesizer(epsilon=args.epsilon, delta=args.delta)
    synth.fit(df, categorical_columns=list(df.columns), preprocessor_eps=0.0, nullable=False)
    import pandas as pd

    rows = synth.sample(args.n_synth)
    return rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows), columns=list(df.columns))


def fit_snsynth_pategan(df, args):
    import pandas as pd
    from snsynth.pytorch.nn import PATEGAN

    synth = PATEGAN(epsilon=args.epsilon, delta=args.delta)
    synth.fit(df, categorical_columns=list(df.columns), preprocessor_eps=0.0)
    rows = synth.sample(args.n_synth)
    return rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows), columns=list(df.columns))


def fit_synthcity_pategan(df, args):
    import tempfile
    from pathlib import Path

    from synthcity.plugins import Plugins
    from synthcity.plugins.core.dataloader import GenericDataLoader

    plugin = Plugins(categories=["privacy"]).get(
        "pategan", epsilon=args.epsilon, delta=args.delta, n_teachers=2, n_iter=3, generator_n_iter=2,
        batch_size=8, random_state=random.randrange(2**31), device="cpu",
        workspace=Path(tempfile.mkdtemp(prefix="synthcity_ws_")))
    plugin.fit(GenericDataLoader(df.astype(str), target_column="c"))
    return plugin.generate(count=args.n_synth).dataframe()


PEERS = {"snsynth-mst": (fit_snsynth_mst, 0), "snsynth-pategan": (fit_snsynth_pategan, 2000),
         "synthcity-pategan": (fit_synthcity_pategan, 0)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--peer", choices=sorted(PEERS), required=True)
    p.add_argument("--world", choices=("out", "in"), required=True)
    p.add_argument("--runs", required=True, help="A:B, the run indices [A, B)")
    p.add_argument("--epsilon", type=float, required=True)
    p.add_argument("--delta", type=float, default=1e-5)
    p.add_argument("--n-synth", type=int, default=1000)
    args = p.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import numpy as np

    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    fit, pad = PEERS[args.peer]
    a, b = (int(x) for x in args.runs.split(":"))
    df = world_frame(args.world, pad)
    for run in range(a, b):
        random.seed(run * 2 + (args.world == "in"))
        np.random.seed(run * 2 + (args.world == "in"))
        t0, c0 = time.perf_counter(), cpu_seconds()
        try:
            synth = fit(df.copy(), args)
            score, values = scores(synth)
            row = {"world": args.world, "run": run, "score": score, "values": values, "white": None,
                   "epsilon_spent": args.epsilon, "seconds": time.perf_counter() - t0,
                   "cpu_seconds": cpu_seconds() - c0}
        except Exception as exc:  # a peer that cannot fit this pair: say why, once
            print("ERROR " + json.dumps({"run": run, "error": f"{type(exc).__name__}: {exc}"[:500]}), flush=True)
            sys.exit(2)
        print("FIT " + json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
