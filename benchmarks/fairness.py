"""Fairness of DP synthetic Adult: measure it, rebalance rare groups for free, fit with it in mind.

    python benchmarks/fairness.py                          # every cell below, one seed each
    python benchmarks/fairness.py --epsilons 1 --only aim aim_fair mst
    python benchmarks/fairness.py --only dpctgan --epsilons 1
    python benchmarks/fairness.py --render-only            # rewrite the .md from the .json

Adult raw, the official split (``pategan_tables.ADULT``: the loader and public schemas of the
PATE-GAN / DP-CTGAN benchmarks), sensitive columns ``sex`` and ``race``, target ``income``
(positive class ``>50K``).  Each fit runs on a fresh test ledger with real (CSPRNG) noise and
samples as many rows as the training split.  Per cell:

* the TSTR classifier (gradient boosting, ``dpsynth.evaluate.utility``) tested on the real test
  split: overall ROC-AUC, per-group recall, and fairlearn's demographic-parity and
  equalized-odds differences per sensitive column, beside train-on-real (TRTR);
* for the marginal models, per-group 2-way marginal error (mean 2-way TVD of the other columns
  within a group, on the binned schema) of each group, and the overall mean 2-way TVD;
* rebalancing (``sample(n, proportions=...)``, no budget) of ``sex`` to Female 0.5 and of ``race``
  to parity (0.2 each), with the TSTR figures again.

Targets (issue #18): AIM keeps the real data's DP difference within 0.02; rebalancing a rare
group raises its TSTR recall at most 0.01 overall ROC-AUC lost; fairness-aware AIM
(``favour = [sex, race, income]``, factor 4) cuts the smallest group's 2-way error by >= 20 %
with the overall error within 5 %.  One seed per cell (AIM on Adult takes minutes per fit on a
shared 2-core machine): read small differences as noise.  Results: ``results/fairness.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
for p in (str(REPO),):
    if p not in sys.path:
        sys.path.insert(0, p)
if str(BENCH) not in sys.path:
    sys.path.append(str(BENCH))

import pategan_tables  # noqa: E402

RESULTS = BENCH / "results" / "fairness.json"
SENSITIVE = ("sex", "race")
DELTA = 1e-6
FAVOUR_WEIGHT = 4.0
IMPLS = ("aim", "aim_fair", "mst", "dpctgan", "pategan")
REBALANCE = {"sex": {"Female": 0.5},
             "race": {r: 0.2 for r in ("White", "Black", "Asian-Pac-Islander", "Amer-Indian-Eskimo", "Other")}}


def cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _model(impl: str, epsilon: float, seed: int):
    from dpsynth.generators import AIM, DPCTGAN, MST, PATEGAN

    if impl == "aim":
        return AIM(epsilon=epsilon)
    if impl == "aim_fair":
        return AIM(epsilon=epsilon, favour=[*SENSITIVE, "income"], favour_weight=FAVOUR_WEIGHT)
    if impl == "mst":
        return MST(epsilon=epsilon)
    if impl == "dpctgan":
        return DPCTGAN(epsilon=epsilon, epochs=8, batch_size=500, seed=seed, progress=False, device="cpu")
    return PATEGAN(epsilon=epsilon, seed=seed, progress=False, device="cpu")


def tstr(synth, test, spec, *, real_train=None, seed: int = 0) -> dict:
    """Overall accuracy / ROC-AUC and the per-group and disparity figures (gradient boosting)."""
    from threadpoolctl import threadpool_limits

    from dpsynth.evaluate.fairness import fairness_scores

    with threadpool_limits(2):
        fair = fairness_scores(synth, test, spec, list(SENSITIVE), real_train=real_train, positive=">50K",
                               model="gradient_boosting", seed=seed)
    # The overall figures of the same fitted classifier (binary: ROC-AUC of the >50K score, as
    # dpsynth.evaluate.utility computes it).
    overall = fair.overall["synthetic"]
    return {"accuracy": overall["accuracy"], "roc_auc": overall["roc_auc"], "fairness": fair.to_dict()}


def group_errors(train, synth, schema) -> dict:
    from dpsynth.evaluate.fairness import group_marginal_errors
    from dpsynth.evaluate.fidelity import mean_tvds
    from dpsynth.jobs.quality import canonical_view

    real_c, _ = canonical_view(train, schema, None, "real")
    synth_c, _ = canonical_view(synth, schema, None, "synthetic")
    domain = schema.domain()
    out = {"overall_2way": mean_tvds(real_c, synth_c, domain, (2,))[2]}
    for col in SENSITIVE:
        labels = [str(c) for c in schema.column(col).categories]
        errors = group_marginal_errors(real_c, synth_c, domain, col, ks=(2,))
        out[col] = {labels[g]: e[2] for g, e in errors.items() if g < len(labels)}
    return out


def one_cell(impl: str, epsilon: float, seed: int, train, test, threads: int = 1) -> dict:
    import torch

    from accountant.testing import make_test_gate
    from dpsynth.table import PrivateTable

    torch.set_num_threads(threads)
    table = pategan_tables.ADULT
    marginal = impl in ("aim", "aim_fair", "mst")
    schema = table.marginal_schema() if marginal else table.schema()
    model = _model(impl, epsilon, seed)
    out: dict = {"impl": impl, "epsilon": epsilon, "seed": seed, "n_train": len(train), "threads": threads}
    with tempfile.TemporaryDirectory(prefix="fairness-bench-ledger-") as tmp:
        ledger = make_test_gate(tmp, epsilon=epsilon, delta=DELTA, max_records=table.max_records, frame=train)
        private = PrivateTable(train, schema, ledger.gate, dataset_key=ledger.dataset_key)
        t0, c0 = time.perf_counter(), cpu_seconds()
        model.fit(private)
        out.update(fit_seconds=time.perf_counter() - t0, fit_cpu_seconds=cpu_seconds() - c0)
        spent = list(ledger.gate.spent_costs())
        synth = model.sample(len(train), seed=seed)
        rebalanced = {col: model.sample(len(train), seed=seed, proportions={col: shares})
                      for col, shares in REBALANCE.items()}
        # Rebalancing is post-processing: the ledger must not have moved.
        out["rebalance_charged_nothing"] = list(ledger.gate.spent_costs()) == spent
        out["epsilon_spent"] = model.epsilon_spent()
    spec = table.column_spec()
    t0, c0 = time.perf_counter(), cpu_seconds()
    out["tstr"] = tstr(synth, test, spec, seed=seed)
    out["rebalanced"] = {}
    for col, frame in rebalanced.items():
        shares = frame[col].value_counts(normalize=True).to_dict()
        out["rebalanced"][col] = {"shares": {str(k): float(v) for k, v in shares.items()},
                                  "tstr": tstr(frame, test, spec, seed=seed)}
    if marginal:
        out["group_errors"] = group_errors(train, synth, schema)
    out["eval_seconds"], out["eval_cpu_seconds"] = time.perf_counter() - t0, cpu_seconds() - c0
    return out


def reference(train, test) -> dict:
    spec = pategan_tables.ADULT.column_spec()
    out = tstr(train, test, spec)
    out["shares"] = {col: {str(k): float(v) for k, v in train[col].value_counts(normalize=True).items()}
                     for col in SENSITIVE}
    return out


# --------------------------------------------------------------------------- results


def load_results(path: Path = RESULTS) -> dict:
    if path.exists():
        return json.loads(path.read_text())
    return {"benchmark": "fairness", "cells": {}, "reference": None}


def save_results(results: dict, path: Path = RESULTS) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1, sort_keys=True, default=float))
    (path.with_suffix(".md")).write_text(render(results))


def _f(v, spec=".3f") -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def _disparity(fair: dict, column: str, who: str, key: str) -> float:
    for d in fair["disparities"]:
        if d["column"] == column and d["trained_on"] == who:
            return d[key]
    return math.nan


def _group(fair: dict, column: str, group: str) -> dict:
    for g in fair["groups"]:
        if g["column"] == column and g["group"] == group:
            return g
    return {}


LABELS = {"aim": "AIM", "aim_fair": "AIM, fairness-aware (favour sex, race, income ×4)", "mst": "MST",
          "dpctgan": "DP-CTGAN (8 epochs)", "pategan": "PATE-GAN"}


def render(results: dict) -> str:
    ref = results.get("reference")
    cells = sorted(results["cells"].values(), key=lambda c: (IMPLS.index(c["impl"]), c["epsilon"]))
    lines = ["# Fairness on Adult raw (official split): sex and race, target income > 50K", "",
             "Generated by `benchmarks/fairness.py` (see its docstring).  One seed per cell; every fit on a fresh "
             "test ledger with CSPRNG noise.  Classifier: gradient boosting (`dpsynth.evaluate.utility`), trained "
             "on the synthetic rows (TSTR) or the real training split (TRTR), tested on the real test split.  "
             "DP diff / EO diff: fairlearn's demographic-parity and equalized-odds differences of that classifier "
             "over the groups of the column (0 = parity).  Times: CPU seconds (wall seconds), on a shared 2-core "
             "machine.", ""]
    if ref:
        fr = ref["fairness"]
        lines += ["## Train on real (TRTR), the reference", "",
                  f"ROC-AUC {_f(ref['roc_auc'])}, accuracy {_f(ref['accuracy'])}; "
                  f"DP diff sex {_f(_disparity(fr, 'sex', 'synthetic', 'demographic_parity_difference'))}, "
                  f"race {_f(_disparity(fr, 'race', 'synthetic', 'demographic_parity_difference'))}; "
                  f"EO diff sex {_f(_disparity(fr, 'sex', 'synthetic', 'equalized_odds_difference'))}, "
                  f"race {_f(_disparity(fr, 'race', 'synthetic', 'equalized_odds_difference'))}.", "",
                  "Group shares of the training split: " + "; ".join(
                      f"{c}: " + ", ".join(f"{g} {v:.3f}" for g, v in sorted(s.items(), key=lambda kv: -kv[1]))
                      for c, s in ref["shares"].items()), ""]
    lines += ["## Disparities of the TSTR classifier (target: |DP diff − TRTR's| ≤ 0.02 for AIM)", "",
              "| generator | ε | ROC-AUC | DP diff sex | Δ vs TRTR | DP diff race | Δ vs TRTR | EO diff sex | EO diff race "
              "| fit CPU s (wall s) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for c in cells:
        fr = c["tstr"]["fairness"]
        row = [LABELS[c["impl"]], f"{c['epsilon']:g}", _f(c["tstr"]["roc_auc"])]
        for col in SENSITIVE:
            dp = _disparity(fr, col, "synthetic", "demographic_parity_difference")
            rdp = _disparity(ref["fairness"], col, "synthetic", "demographic_parity_difference") if ref else math.nan
            row += [_f(dp), _f(dp - rdp, "+.3f")]
        row += [_f(_disparity(fr, col, "synthetic", "equalized_odds_difference")) for col in SENSITIVE]
        row.append(f"{c['fit_cpu_seconds']:.0f} ({c['fit_seconds']:.0f})")
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "## Rebalancing by conditional sampling (no budget: the ledger is unchanged)", "",
              "Each synthetic table is drawn again with `proportions`: sex → Female 0.5; race → 0.2 for each of "
              "the five groups (parity).  Recall of the positive class (>50K) of the group on the real test rows, "
              "and the overall ROC-AUC (target: the rare group's recall up, ROC-AUC down by at most 0.01).", "",
              "| generator | ε | column | group | share (plain → rebalanced) | recall plain | recall rebalanced "
              "| ROC-AUC plain | ROC-AUC rebalanced | Δ ROC-AUC | ledger unchanged |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    rare = {"sex": ["Female"], "race": ["Amer-Indian-Eskimo", "Other", "Black"]}
    for c in cells:
        for col, groups in rare.items():
            rb = c["rebalanced"][col]
            for g in groups:
                plain_g = _group(c["tstr"]["fairness"], col, g)
                reb_g = _group(rb["tstr"]["fairness"], col, g)
                lines.append("| " + " | ".join([
                    LABELS[c["impl"]], f"{c['epsilon']:g}", col, g,
                    f"{_f(plain_g.get('share_synthetic'))} → {_f(rb['shares'].get(g))}",
                    _f(plain_g.get("tstr", {}).get("recall")), _f(reb_g.get("tstr", {}).get("recall")),
                    _f(c["tstr"]["roc_auc"]), _f(rb["tstr"]["roc_auc"]),
                    _f(rb["tstr"]["roc_auc"] - c["tstr"]["roc_auc"], "+.3f"),
                    "yes" if c.get("rebalance_charged_nothing") else "NO"]) + " |")
    marg = [c for c in cells if "group_errors" in c]
    if marg:
        lines += ["", "## Per-group 2-way marginal error (mean 2-way TVD of the other columns within the group)", "",
                  "Target: fairness-aware AIM's error for the smallest group ≥ 20 % lower than plain AIM's at the "
                  "same ε, its overall 2-way error within 5 %.", "",
                  "| generator | ε | overall 2-way | sex=Female | race=Other | race=Amer-Indian-Eskimo | race=Black |",
                  "|---|---|---|---|---|---|---|"]
        for c in marg:
            ge = c["group_errors"]
            lines.append("| " + " | ".join([LABELS[c["impl"]], f"{c['epsilon']:g}", _f(ge["overall_2way"]),
                                            _f(ge["sex"].get("Female")), _f(ge["race"].get("Other")),
                                            _f(ge["race"].get("Amer-Indian-Eskimo")), _f(ge["race"].get("Black"))])
                         + " |")
        pairs = []
        for eps in sorted({c["epsilon"] for c in marg}):
            plain = results["cells"].get(key("aim", eps, 0))
            fair = results["cells"].get(key("aim_fair", eps, 0))
            if plain and fair:
                smallest = min(ref["shares"]["race"], key=ref["shares"]["race"].get) if ref else "Other"
                p, f = plain["group_errors"]["race"][smallest], fair["group_errors"]["race"][smallest]
                po, fo = plain["group_errors"]["overall_2way"], fair["group_errors"]["overall_2way"]
                pairs.append(f"ε = {eps:g}: smallest group (race={smallest}) {_f(p)} → {_f(f)} "
                             f"({100 * (f - p) / p:+.1f} %); overall {_f(po)} → {_f(fo)} ({100 * (fo - po) / po:+.1f} %)")
        if pairs:
            lines += ["", "Fairness-aware vs plain AIM: " + "; ".join(pairs) + "."]
    missing = [f"{LABELS[i]} ε={e:g}" for i in IMPLS for e in (1.0, 3.0) if key(i, e, 0) not in results["cells"]]
    if missing:
        lines += ["", "Not run (time on the shared machine): " + ", ".join(missing) + "."]
    discussion = BENCH / "results" / "fairness_discussion.md"
    if discussion.exists():
        lines += ["", discussion.read_text().rstrip()]
    return "\n".join(lines) + "\n"


def key(impl: str, epsilon: float, seed: int) -> str:
    return f"{impl}/eps={epsilon:g}/seed={seed}"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epsilons", type=float, nargs="+", default=[1.0, 3.0])
    p.add_argument("--only", nargs="+", choices=IMPLS, default=["aim", "aim_fair", "mst"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads of a fit")
    p.add_argument("--out", type=Path, default=RESULTS, help="results file (runs in parallel: one file each)")
    p.add_argument("--merge", type=Path, nargs="*", default=[], help="merge these results files into --out")
    p.add_argument("--render-only", action="store_true")
    a = p.parse_args(argv)
    results = load_results(a.out)
    for other in a.merge:
        extra = load_results(other)
        results["cells"].update(extra["cells"])
        results["reference"] = results.get("reference") or extra.get("reference")
    if a.render_only or a.merge:
        save_results(results, a.out)
        return
    train, test = pategan_tables.ADULT.load()
    if results.get("reference") is None:
        results["reference"] = reference(train, test)
        save_results(results, a.out)
    for eps in a.epsilons:
        for impl in a.only:
            print(f"[fairness] {impl} ε={eps:g}", file=sys.stderr, flush=True)
            results["cells"][key(impl, eps, a.seed)] = one_cell(impl, eps, a.seed, train, test, a.threads)
            save_results(results, a.out)


if __name__ == "__main__":
    main()
