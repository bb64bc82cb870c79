"""Lower bounds on a mechanism's privacy loss from a distinguishing test's errors.

An audit fits a generator many times on each of two neighbouring tables (world OUT, D′,
and world IN, D) and reduces every fit to one number, its score.  A test "guess IN iff
the score is past a threshold" has false positives (OUT fits guessed IN) and false
negatives; (ε, δ)-DP forces FPR + e^ε·FNR ≥ 1 − δ and e^ε·FPR + FNR ≥ 1 − δ (Kairouz,
Oh, Viswanath 2015), so one-sided Clopper–Pearson upper bounds on the two rates give a
statistically valid lower bound on ε (research/auditing.md Appendix A).  The threshold
is chosen on the first half of each world's fits and the bound computed on the second
half: choosing it on the fits that bound ε would let the search itself manufacture
separation.

The Gaussian-DP bound μ_lb = Φ⁻¹(1 − FPR_u) − Φ⁻¹(FNR_u) is a valid lower bound only
when the mechanism's trade-off curve is Gaussian (compositions of Gaussian mechanisms:
marginal measurements, DP-SGD); `eps_from_mu` turns it into ε at the policy's δ.

`alpha` is the total one-sided error of the bound: each rate is bounded at α/2.  The
2024 audits' `privacy_estimates` level `alpha=0.1` is `alpha=0.05` here (it splits its
alpha twice).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
from scipy.optimize import brentq
from scipy.stats import beta, norm, rankdata

__all__ = ["cp_upper", "eps_lb_cp", "mu_lb_gdp", "gauss_delta", "eps_from_mu", "mu_from_eps", "ceiling",
           "candidate_thresholds", "split_audit", "auc"]


def cp_upper(k: int, n: int, a: float) -> float:
    """One-sided (1 − a) Clopper–Pearson upper bound on a rate seen k times in n trials."""
    if n <= 0:
        return 1.0
    return 1.0 if k >= n else float(beta.ppf(1.0 - a, k + 1, n - k))


def eps_lb_cp(fp: int, fn: int, n_out: int, n_in: int, alpha: float = 0.05, delta: float = 0.0) -> float:
    """A (1 − α) lower bound on ε from FP of n_out and FN of n_in (each rate bounded at α/2):
    the smallest ε consistent with both hypothesis-testing inequalities at the rates' upper
    bounds."""
    fpr_u, fnr_u = cp_upper(fp, n_out, alpha / 2), cp_upper(fn, n_in, alpha / 2)
    e1 = math.log(max(1.0 - delta - fnr_u, 1e-300) / fpr_u)
    e2 = math.log(max(1.0 - delta - fpr_u, 1e-300) / fnr_u)
    return max(0.0, e1, e2)


def mu_lb_gdp(fp: int, fn: int, n_out: int, n_in: int, alpha: float = 0.05) -> float:
    """A (1 − α) lower bound on μ, valid when the trade-off curve is Gaussian (μ-GDP)."""
    fpr_u, fnr_u = cp_upper(fp, n_out, alpha / 2), cp_upper(fn, n_in, alpha / 2)
    return max(0.0, float(norm.ppf(1.0 - fpr_u) - norm.ppf(fnr_u)))


def gauss_delta(eps: float, mu: float) -> float:
    """δ(ε) of μ-GDP (Dong, Roth, Su 2019, Cor. 2.13)."""
    return float(norm.cdf(-eps / mu + mu / 2) - math.exp(eps) * norm.cdf(-eps / mu - mu / 2))


def eps_from_mu(mu: float, delta: float) -> float:
    """The ε at which μ-GDP has δ(ε) = delta (0 when μ-GDP already has δ(0) ≤ delta)."""
    if mu <= 0 or gauss_delta(0.0, mu) <= delta:
        return 0.0
    hi = 1.0
    while gauss_delta(hi, mu) > delta:
        hi *= 2
    return float(brentq(lambda e: gauss_delta(e, mu) - delta, 0.0, hi, xtol=1e-12))


def mu_from_eps(eps: float, delta: float) -> float:
    """The μ whose GDP curve passes through (ε, δ): the largest μ an (ε, δ) claim allows a
    Gaussian mechanism."""
    hi = 1.0
    while gauss_delta(eps, hi) < delta:
        hi *= 2
    return float(brentq(lambda m: gauss_delta(eps, m) - delta, 1e-9, hi, xtol=1e-12))


def ceiling(n: int, alpha: float = 0.05, delta: float = 0.0) -> float:
    """The largest ε bound n evaluation fits per world can give (perfect separation): an
    audit whose bound sits at its ceiling has measured only that the runs ran out."""
    return eps_lb_cp(0, 0, n, n, alpha, delta)


def _confusion(out_eval: np.ndarray, in_eval: np.ndarray, t: float) -> tuple[int, int]:
    """Guess IN iff score ≥ t: FP = OUT fits guessed IN, FN = IN fits guessed OUT."""
    return int((out_eval >= t).sum()), int((in_eval < t).sum())


def candidate_thresholds(scores: np.ndarray) -> np.ndarray:
    """Midpoints between consecutive distinct scores, and one below and one above them all."""
    v = np.unique(scores)
    return np.concatenate([[v[0] - 1.0], (v[:-1] + v[1:]) / 2.0, [v[-1] + 1.0]])


def auc(scores_out: Sequence[float], scores_in: Sequence[float]) -> float:
    """P[an IN score beats an OUT score] (ties count half), over all fits."""
    o = np.asarray(scores_out, dtype=np.float64)
    i = np.asarray(scores_in, dtype=np.float64)
    ranks = rankdata(np.concatenate([o, i]))  # average ranks: a tie counts half (Mann–Whitney)
    return float((ranks[len(o):].sum() - len(i) * (len(i) + 1) / 2) / (len(o) * len(i)))


def _cp_upper_many(k: np.ndarray, n: int, a: float) -> np.ndarray:
    """`cp_upper` for many counts of one n at once."""
    k = np.asarray(k, dtype=np.float64)
    safe = np.minimum(k, n - 1)
    return np.where(k >= n, 1.0, beta.ppf(1.0 - a, safe + 1, n - safe))


def _best_threshold(sel_out: np.ndarray, sel_in: np.ndarray, alpha: float, delta: float,
                    gaussian: bool) -> tuple[float, float, float]:
    """(bound, sign, threshold) maximising the selection half's bound, over every threshold that
    splits the selection scores differently and both directions; ties keep the first found."""
    best = None
    for sign in (1.0, -1.0):  # +1: a high score says IN; -1: a low score says IN
        o, i = np.sort(sign * sel_out), np.sort(sign * sel_in)
        ts = candidate_thresholds(np.concatenate([o, i]))
        fp = len(o) - np.searchsorted(o, ts, side="left")   # OUT scores ≥ t
        fn = np.searchsorted(i, ts, side="left")             # IN scores < t
        fpr_u, fnr_u = _cp_upper_many(fp, len(o), alpha / 2), _cp_upper_many(fn, len(i), alpha / 2)
        with np.errstate(divide="ignore", invalid="ignore"):
            if gaussian:
                val = np.maximum(0.0, norm.ppf(1.0 - fpr_u) - norm.ppf(fnr_u))
            else:
                e1 = np.log(np.maximum(1.0 - delta - fnr_u, 1e-300) / fpr_u)
                e2 = np.log(np.maximum(1.0 - delta - fpr_u, 1e-300) / fnr_u)
                val = np.maximum(0.0, np.maximum(e1, e2))
        val = np.nan_to_num(val, nan=0.0, posinf=0.0)
        j = int(np.argmax(val))
        if best is None or val[j] > best[0]:
            best = (float(val[j]), sign, float(ts[j]))
    return best


def split_audit(scores_out: Sequence[float], scores_in: Sequence[float], *, alpha: float = 0.05,
                delta: float = 0.0, gaussian: bool = False) -> dict[str, Any]:
    """The first half of each world's scores picks the threshold and direction that maximise the
    bound (the GDP bound when `gaussian`, else the CP one); the second half gives FP, FN at that
    threshold, the CP ε bound, the GDP μ bound and its ε at δ, and the ceiling."""
    s_out = np.asarray(scores_out, dtype=np.float64)
    s_in = np.asarray(scores_in, dtype=np.float64)
    if not (np.isfinite(s_out).all() and np.isfinite(s_in).all()):
        raise ValueError("scores must be finite numbers")
    h_out, h_in = len(s_out) // 2, len(s_in) // 2
    if min(h_out, h_in) < 1:
        raise ValueError("need at least 2 scores per world")
    sel_out, ev_out = s_out[:h_out], s_out[h_out:]
    sel_in, ev_in = s_in[:h_in], s_in[h_in:]
    _, sign, t = _best_threshold(sel_out, sel_in, alpha, delta, gaussian)
    fp, fn = _confusion(sign * ev_out, sign * ev_in, t)
    mu = mu_lb_gdp(fp, fn, len(ev_out), len(ev_in), alpha)
    return {"threshold": sign * t, "direction": "high score = IN" if sign > 0 else "low score = IN",
            "fp": fp, "fn": fn, "n_out": len(ev_out), "n_in": len(ev_in),
            "eps_lb": eps_lb_cp(fp, fn, len(ev_out), len(ev_in), alpha, delta),
            "mu_lb": mu, "eps_lb_gdp": eps_from_mu(mu, delta) if delta > 0 else None,
            "ceiling": eps_lb_cp(0, 0, len(ev_out), len(ev_in), alpha, delta),
            "mu_ceiling": mu_lb_gdp(0, 0, len(ev_out), len(ev_in), alpha),
            "auc": auc(s_out, s_in)}
