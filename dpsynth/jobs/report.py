"""The run report: one self-contained HTML page (inline style, no scripts, no external assets).

Two parts with different status, and the page says so:

- the spend and the receipts: what the ledger already records, shareable;
- the quality figures: computed on the private table, so NOT differentially
  private — they stay with the data holder and are not a privacy guarantee.
"""

from __future__ import annotations

import datetime as _dt
import html
from pathlib import Path
from typing import Any

from .tables import atomic_write

__all__ = ["describe_event", "render_run_report", "write_run_report", "PRIVATE_FIGURES_NOTICE"]

PRIVATE_FIGURES_NOTICE = (
    "The quality figures below are computed on the private table: they are not for release and are "
    "not a privacy guarantee. Keep this report with the data. The guarantee is the ledger."
)

_STYLE = """<style>
body{font-family:sans-serif;max-width:1100px;margin:24px auto;color:#222}
table{border-collapse:collapse;margin:6px 0 16px}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:left;font-size:13px}
code{font-size:12px}.notice{background:#fdecea;border:1px solid #e0a0a0;padding:8px 12px}
.ok{color:#1a6b2a}
</style>"""


def _row(cells: list[Any], tag: str = "td") -> str:
    return "<tr>" + "".join(f"<{tag}>{html.escape(str(c))}</{tag}>" for c in cells) + "</tr>"


def describe_event(event_json: str) -> str:
    """A short human description of a charged event, e.g. "10 × discrete_gaussian(σ=14.3)"."""
    import json
    from collections import Counter

    def leaves(e: dict, count: int = 1):
        if e.get("type") == "composed":
            for sub in e.get("events", []):
                yield from leaves(sub, count)
        elif e.get("type") == "self_composed":
            yield from leaves(e.get("event", {}), count * int(e.get("count", 1)))
        else:
            params = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                               for k, v in sorted(e.items()) if k not in ("type", "relation"))
            yield f"{e.get('type')}({params})", count

    try:
        counts: Counter = Counter()
        for label, n in leaves(json.loads(event_json)):
            counts[label] += n
    except (ValueError, AttributeError, TypeError):
        return event_json
    return "; ".join(f"{n} × {label}" if n > 1 else label for label, n in counts.items())


def coarse_duration(seconds: float) -> str:
    """A duration to the minute ("under a minute", "about 3 minutes")."""
    minutes = int(round(seconds / 60.0))
    if minutes < 1:
        return "under a minute"
    return f"about {minutes} minute{'s' if minutes != 1 else ''}"


def render_run_report(result: Any) -> str:
    spec = result.spec
    esc = html.escape
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'>",
             f"<title>dpsynth run: {esc(spec.generator)}</title>", _STYLE, "</head><body>",
             f"<h1>dpsynth run — {esc(spec.generator)} at ε = {spec.epsilon:g}</h1>",
             f"<p>Written {esc(_dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'))}"
             f"{' from ' + esc(str(spec.source)) if spec.source else ''}.</p>"]
    budget = getattr(result, "budget", None)
    if budget is not None:
        from dpsynth.evaluate.pictures import budget_bar_svg

        parts.append(f"<p><b>Budget: {esc(budget.headline)}</b>; {esc(budget.next_run)}.</p>"
                     f"<p>{budget_bar_svg(budget['used_fraction'])}</p>")
    # Quality first (what the researcher came for), the receipts after.
    if result.evaluation is not None:
        parts.append("<h2>Quality</h2>")
        parts.append(f'<p class="notice"><strong>{esc(PRIVATE_FIGURES_NOTICE)}</strong></p>')
        parts.append(result.evaluation.to_html())
    parts.append("<h2>Privacy spend</h2><table>")
    parts.append(_row(["ε of this run (full RDP curve, at the policy's δ)", f"{result.epsilon_run:.6g}"]))
    parts.append(_row(["ledger ε after this run (filter guarantee)",
                       f"{result.epsilon_ledger:.6g} of {result.epsilon_budget:g}"]))
    parts.append(_row(["δ (the policy's)", f"{result.delta:g}"]))
    parts.append(_row(["ledger", spec.ledger]))
    if spec.seed is not None:
        parts.append(_row(["noise", "SEEDED TEST NOISE (recorded as seeded-test in the ledger)"]))
    parts.append("</table>")
    parts.append("<h2>Receipts</h2><p>Each receipt names a signed ledger entry of this run: a charge paid for a "
                 "measurement, its release committed to the SHA-256 of the noisy output, and the seal binds the "
                 "model file's whole state.  The model file carries them; sampling and loading verify them.</p>"
                 "<table>")
    parts.append(_row(["#", "kind", "purpose", "event / commitment", "cost (RDP at α*)", "ledger ε after",
                       "entry hash", "signature"], "th"))
    for r in result.receipts:
        what = describe_event(r.event) if r.kind == "charge" else (
            f"refs #{', #'.join(map(str, r.refs))}" + (f"; sha256 {r.commitment[:16]}…" if r.commitment else ""))
        parts.append(_row([r.sequence, r.kind, r.purpose, what, f"{r.cost:.6g}",
                           f"{r.epsilon_filter:.6g}", r.entry_hash[:16] + "…",
                           (r.signature or "UNSIGNED")[:16] + "…"]))
    parts.append("</table><details><summary>the events as recorded (JSON)</summary>")
    for r in result.receipts:
        if r.event is not None:
            parts.append(f"<p>#{r.sequence}: <code>{esc(r.event)}</code></p>")
    parts.append("</details>")
    parts.append("<h2>Outputs</h2><table>")
    for label, path in (("synthetic table", spec.synthetic), ("model (with receipts)", spec.model),
                        ("this report", spec.report)):
        parts.append(_row([label, path]))
    proportions = getattr(spec, "proportions", None)
    if proportions:
        from dpsynth.generators.proportions import REBALANCE_NOTE

        (col, shares), = proportions.items()
        parts.append(_row(["rebalanced (output.proportions)",
                           f"{col}: {', '.join(f'{v} {s:g}' for v, s in shares.items())}; {REBALANCE_NOTE}"]))
    # Whole minutes only: a shareable report keeps no sub-minute timing (proofs/filter.md).
    total = sum(result.seconds.values())
    parts.append(_row(["time (whole run)", coarse_duration(total)]))
    parts.append("</table>")
    parts.append("</body></html>")
    return "".join(parts)


def write_run_report(result: Any, path: str | Path) -> Path:
    text = render_run_report(result)
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
