"""The audit's HTML report: one self-contained page (inline SVG, no scripts, no assets).

It shows the claim against the bounds, the verdict and why, the number of runs and the
largest bound that many runs could reach (the ceiling), the distribution of every
statistic in both worlds with the chosen threshold, the worst-case pair, the
configuration, and where the fits were charged.  Everything on it is public: the audit's
tables are made up and its scores are post-processing of their releases.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

__all__ = ["write_report", "histogram_svg"]

_OUT, _IN = "#4c72b0", "#dd8452"
_BINS = 30


def histogram_svg(out: Sequence[float], inn: Sequence[float], threshold: float | None, title: str,
                  width: int = 560, height: int = 200) -> str:
    """Two overlaid histograms (OUT, IN) on shared bins, and the threshold as a line."""
    o, i = np.asarray(out, dtype=float), np.asarray(inn, dtype=float)
    lo, hi = float(min(o.min(), i.min())), float(max(o.max(), i.max()))
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, _BINS + 1)
    ho, _ = np.histogram(o, edges)
    hi_, _ = np.histogram(i, edges)
    top = max(1, int(ho.max()), int(hi_.max()))
    left, right, upper, lower = 40, 10, 24, 30
    w, h = width - left - right, height - upper - lower
    x = lambda v: left + (v - lo) / (hi - lo) * w  # noqa: E731
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="{html.escape(title)}">',
             f'<text x="{left}" y="14" font-size="12">{html.escape(title)}</text>']
    bw = w / _BINS
    for counts, colour in ((ho, _OUT), (hi_, _IN)):
        for k, c in enumerate(counts):
            if c:
                bh = c / top * h
                parts.append(f'<rect x="{left + k * bw:.1f}" y="{upper + h - bh:.1f}" width="{bw:.1f}" '
                             f'height="{bh:.1f}" fill="{colour}" fill-opacity="0.55"/>')
    parts.append(f'<line x1="{left}" y1="{upper + h}" x2="{left + w}" y2="{upper + h}" stroke="#333"/>')
    for v in (lo, (lo + hi) / 2, hi):
        parts.append(f'<text x="{x(v):.1f}" y="{upper + h + 14}" font-size="10" text-anchor="middle">{v:.4g}</text>')
    parts.append(f'<text x="{left - 4}" y="{upper + 8}" font-size="10" text-anchor="end">{top}</text>')
    if threshold is not None and lo <= threshold <= hi:
        parts.append(f'<line x1="{x(threshold):.1f}" y1="{upper}" x2="{x(threshold):.1f}" y2="{upper + h}" '
                     f'stroke="#c00" stroke-dasharray="4 3"/>')
    parts.append(f'<rect x="{left + w - 150}" y="{upper}" width="10" height="10" fill="{_OUT}"/>'
                 f'<text x="{left + w - 136}" y="{upper + 9}" font-size="10">OUT (D′, {len(o)} fits)</text>'
                 f'<rect x="{left + w - 150}" y="{upper + 14}" width="10" height="10" fill="{_IN}"/>'
                 f'<text x="{left + w - 136}" y="{upper + 23}" font-size="10">IN (D, {len(i)} fits)</text>')
    parts.append("</svg>")
    return "".join(parts)


def _e(v: Any) -> str:
    return html.escape(str(v))


def write_report(path: str | os.PathLike, config: Mapping[str, Any], summary: Mapping[str, Any],
                 pair: Mapping[str, Any], timing: Mapping[str, Any]) -> Path:
    """Write the report page; returns its path."""
    claim = summary["claim"]
    verdict = ("FLAGGED: the generator leaks more than it claims" if summary["flagged"]
               else "passed: no bound exceeds the claim")
    rows = []
    for name, s in summary["statistics"].items():
        gdp = ("—" if s["eps_lb_gdp"] is None else f"{s['eps_lb_gdp']:.3f}") + ("" if s["gdp_counts"]
                                                                                else " (reference only)")
        rows.append(f"<tr><td>{_e(s['kind'])}</td><td>{_e(s['what'])}</td><td>{s['n_out']} / {s['n_in']}</td>"
                    f"<td>{s['fp']}</td><td>{s['fn']}</td><td><b>{s['eps_lb']:.3f}</b></td><td>{s['ceiling']:.3f}</td>"
                    f"<td>{s['mu_lb']:.3f}</td><td>{s['mu_ceiling']:.3f}</td><td>{gdp}</td><td>{s['auc']:.3f}</td>"
                    f"<td>{s['alpha']:.3g}</td><td>{_e(s['direction'])}, threshold {s['threshold']:.4g}</td></tr>")
    pictures = "".join(
        f"<figure>{histogram_svg(s['out'], s['in'], s['threshold'], s['kind'] + ': ' + s['what'])}</figure>"
        for s in summary["statistics"].values())
    reasons = "".join(f"<li>{_e(r)}</li>" for r in summary["reasons"]) or "<li>none</li>"
    warn = "" if summary["can_exceed_claim"] else (
        f"<p class='warn'>With {summary['eval_runs_per_world']} evaluation fits per world the largest ε bound this "
        f"audit could reach is {summary['ceiling']:.3f} ≤ the claim {claim['epsilon']:g}: it cannot show a "
        "violation of the claim by the Clopper–Pearson bound. Run more fits.</p>")
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>dpsynth audit: {_e(config['generator'])} at ε = {claim['epsilon']:g}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 6px;font-size:13px}}.flag{{color:#b00}}.ok{{color:#070}}.warn{{color:#a60}}
pre{{background:#f5f5f5;padding:6px;font-size:12px;white-space:pre-wrap}}</style></head><body>
<h1>Empirical privacy audit: {_e(config['generator'])}</h1>
<p class="{'flag' if summary['flagged'] else 'ok'}"><b>{_e(verdict)}</b></p>
<p>Claimed: <b>ε = {claim['epsilon']:g}</b> at δ = {claim['delta']:g} per fit (a Gaussian mechanism with this claim
is at most μ = {claim['mu']:.3f}-GDP). The bounds below are <b>lower bounds</b> on the privacy loss, each holding
with probability at least 1 − α (α = {summary['alpha']:g} in all, split over the bounds that count): a bound above
the claim shows a leak; a bound below it shows only that this audit found none — it is not a proof of privacy.</p>
<p>Reasons flagged:</p><ul>{reasons}</ul>
{warn}
<h2>Bounds</h2>
<p>{summary['runs_per_world']} fits per world: the first {summary['runs_per_world'] // 2} of each world chose the
threshold, the other {summary['eval_runs_per_world']} give the bound. <i>ceiling</i>: the largest bound that many
evaluation fits could reach (perfect separation).</p>
<table><tr><th>statistic</th><th>what</th><th>eval fits OUT / IN</th><th>FP</th><th>FN</th><th>ε_lb (CP)</th>
<th>ceiling</th><th>μ_lb (GDP)</th><th>μ ceiling</th><th>ε at δ from μ_lb</th><th>AUC</th><th>α of this bound</th><th>test</th></tr>
{''.join(rows)}</table>
<h2>The statistics in both worlds</h2>{pictures}
<h2>The worlds</h2>
<p>Relation: {_e(pair['relation'])}. D′ (OUT) = {_e(pair['out'])}; D (IN) = {_e(pair['in'])}; target {_e(pair['target'])}.
Why this pair is worst case for the {_e(pair['family'])} family: {_e(pair['why'])}.</p>
<h2>Where the fits were charged</h2>
<p>No governed data was touched and no governed budget was spent. Every fit ran through the real gate: its own
PrivateTable on the audit's made-up table, charged to an <b>audit ledger made for this audit</b> (fresh officer,
ledger and dataset keys, a signed policy naming the audit, budget {timing.get('audit_budget', 'large'):g}, one ledger
per world and chunk of fits, in a temporary folder deleted afterwards). ε charged per fit:
{summary['epsilon_spent']['min']:.6g} – {summary['epsilon_spent']['max']:.6g}.</p>
<h2>Configuration and cost</h2>
<pre>{_e(json.dumps(dict(config), indent=1, sort_keys=True))}</pre>
<p>Fits: {summary['fit_seconds']:.1f} s summed over fits (CPU {summary['fit_cpu_seconds']:.1f} s);
this session's wall time {timing.get('wall_seconds', 0.0):.1f} s with {timing.get('jobs', 1)} worker processes.</p>
</body></html>
"""
    p = Path(path)
    p.write_text(page, encoding="utf-8")
    return p
