"""From the fits' scores to the audit's bounds and its verdict.

Every statistic the audit kept is bounded with `bounds.split_audit` (threshold on the first
half of each world's fits, bound on the second half).  The verdict counts:

* for every statistic, the Clopper–Pearson ε bound (valid for any mechanism);
* for white-box statistics of Gaussian measurements (the marginal generators' noisy
  marginals), also the Gaussian-DP bound μ_lb, turned into ε at the claim's δ.  For
  black-box statistics μ_lb is shown but not counted: the trade-off of a whole generator
  (exponential-mechanism selections, PATE's votes) need not be Gaussian.

The total error α is split evenly over the bounds that count (Bonferroni), so the chance
that a correct generator is flagged is at most α however many statistics are kept.  A fit
charged more than the claimed ε flags the audit outright (the claim is what the ledger
says one fit costs).
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from .bounds import ceiling, mu_from_eps, split_audit

__all__ = ["summarize", "STATISTICS"]

STATISTICS = {
    "score": ("black-box", "synthetic rows equal to the target (of n_synth)", False),
    "values": ("black-box", "synthetic cells holding one of the target's values", False),
    "white": ("white-box", "likelihood-ratio statistic of the noisy marginal measurements", True),
}
_SPENT_TOLERANCE = 1e-9


def summarize(config: Mapping[str, Any], fits: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Bounds per statistic, the claim in ε and μ, and the verdict (plain JSON)."""
    eps, delta, alpha = float(config["epsilon"]), float(config["delta"]), float(config["alpha"])
    by_world = {w: sorted((f for f in fits if f["world"] == w), key=lambda f: f["run"]) for w in ("out", "in")}
    n = min(len(by_world["out"]), len(by_world["in"]))
    if n < 4:
        raise ValueError(f"need at least 4 finished fits per world to bound ε, have {n}")
    kept = [k for k in STATISTICS if all(f.get(k) is not None for w in by_world.values() for f in w)]
    counted = sum(1 + (1 if STATISTICS[k][2] else 0) for k in kept)
    a_each = alpha / counted
    stats = {}
    flagged, reasons = False, []
    for k in kept:
        kind, what, gaussian = STATISTICS[k]
        out = [float(f[k]) for f in by_world["out"][:n]]
        inn = [float(f[k]) for f in by_world["in"][:n]]
        r = split_audit(out, inn, alpha=a_each, delta=delta, gaussian=gaussian)
        r.update({"kind": kind, "what": what, "gdp_counts": gaussian, "alpha": a_each, "out": out, "in": inn})
        stats[k] = r
        if r["eps_lb"] > eps:
            flagged = True
            reasons.append(f"{kind}: the Clopper–Pearson bound ε ≥ {r['eps_lb']:.3f} exceeds the claim {eps:g}")
        if gaussian and r["eps_lb_gdp"] is not None and r["eps_lb_gdp"] > eps:
            flagged = True
            reasons.append(f"{kind}: the Gaussian-DP bound μ ≥ {r['mu_lb']:.3f} (ε ≥ {r['eps_lb_gdp']:.3f} at "
                           f"δ = {delta:g}) exceeds the claim")
    spent = [float(f["epsilon_spent"]) for w in by_world.values() for f in w]
    if max(spent) > eps + _SPENT_TOLERANCE:
        flagged = True
        reasons.append(f"a fit was charged ε = {max(spent):.6g}, more than the claim {eps:g}")
    n_eval = n - n // 2
    cap = ceiling(n_eval, a_each, delta)
    return {
        "claim": {"epsilon": eps, "delta": delta, "mu": mu_from_eps(eps, delta)},
        "runs_per_world": n, "eval_runs_per_world": n_eval, "alpha": alpha,
        "ceiling": cap, "can_exceed_claim": cap > eps,
        "statistics": stats, "flagged": flagged, "reasons": reasons,
        "epsilon_spent": {"min": min(spent), "max": max(spent)},
        "fit_seconds": math.fsum(float(f["seconds"]) for w in by_world.values() for f in w),
        "fit_cpu_seconds": math.fsum(float(f["cpu_seconds"]) for w in by_world.values() for f in w),
        "eps_lb": max(s["eps_lb"] for s in stats.values()),
        "eps_lb_gdp": max((s["eps_lb_gdp"] or 0.0 for s in stats.values() if s["gdp_counts"]), default=None),
    }

