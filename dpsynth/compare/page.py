"""The comparison's HTML page: one self-contained file (plots inlined as PNG data URIs)."""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path

import pandas as pd

from dpsynth.jobs.report import PRIVATE_FIGURES_NOTICE

from .plots import summary

__all__ = ["write_page"]

_STYLE = """<style>
body{font-family:sans-serif;max-width:1200px;margin:24px auto;color:#222}
table{border-collapse:collapse;margin:6px 0 16px}th,td{border:1px solid #ccc;padding:3px 8px;font-size:13px}
td{text-align:right}td:first-child,td:nth-child(2){text-align:left}
.notice{background:#fdecea;border:1px solid #e0a0a0;padding:8px 12px}img{max-width:100%}
</style>"""


def _ledger_line(ledger: Path) -> str:
    from accountant.ledger.open_store import describe_location, open_store

    store = open_store(ledger)
    try:
        snap = store.snapshot()
    finally:
        store.close()
    md, entries = snap.metadata, snap.entries
    spent = entries[-1].epsilon_filter if entries else 0.0
    return (f"Every run was charged to the comparison's ledger <code>{html.escape(describe_location(ledger))}</code>: "
            f"{len(entries)} entries, ε {spent:.4g} spent of {md.epsilon:g} (δ {md.delta:g}, filter guarantee). "
            f"Verify it with <code>dpsynth ledger verify</code> and the keys beside it.")


def write_page(results: pd.DataFrame, plots: dict[str, Path], out: Path, ledger: Path) -> Path:
    esc = html.escape
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>dpsynth compare</title>", _STYLE,
             "</head><body><h1>dpsynth compare</h1>",
             f"<p>{_ledger_line(ledger)}</p>",
             f'<p class="notice"><strong>{esc(PRIVATE_FIGURES_NOTICE)}</strong></p>',
             f"<p>Tidy results: <code>{esc(str(out / 'results.csv'))}</code>.</p>"]
    titles = {"error": "Fidelity against ε", "utility": "Utility against ε", "time": "Time per generator"}
    for key, path in plots.items():
        data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
        parts.append(f"<h2>{esc(titles.get(key, key))}</h2><img alt='{esc(key)}' src='data:image/png;base64,{data}'>")
    summ = summary(results)
    if not summ.empty:
        wide = summ.pivot_table(index=["generator", "epsilon"], columns="metric", values="mean", dropna=False)
        parts.append("<h2>Means over repeats</h2><table><tr><th>generator</th><th>ε</th>"
                     + "".join(f"<th>{esc(c)}</th>" for c in wide.columns) + "</tr>")
        for (gen, eps), row in wide.iterrows():
            cells = "".join("<td>—</td>" if not isinstance(v, float) or math.isnan(v) else f"<td>{v:.4g}</td>"
                            for v in row)
            eps_text = "—" if not isinstance(eps, float) or math.isnan(eps) else f"{eps:g}"
            parts.append(f"<tr><td>{esc(str(gen))}</td><td>{eps_text}</td>{cells}</tr>")
        parts.append("</table>")
    flagged = results[(results["metric"] != "failed") & results["note"].fillna("").astype(str).ne("")]
    if not flagged.empty:
        parts.append("<h2>Figures not computed</h2><p>Shown as — above: a number here would not measure what its "
                     "name says.</p><table><tr><th>generator</th><th>ε</th><th>repeat</th><th>figure</th>"
                     "<th>why</th></tr>")
        for _, r in flagged.iterrows():
            parts.append(f"<tr><td>{esc(str(r['generator']))}</td><td>{r['epsilon']:g}</td><td>{r['repeat']}</td>"
                         f"<td>{esc(str(r['metric']))}</td><td>{esc(str(r['note']))}</td></tr>")
        parts.append("</table>")
    failed = results[results["metric"] == "failed"]
    if not failed.empty:
        parts.append("<h2>Failed runs</h2><table><tr><th>generator</th><th>ε</th><th>repeat</th><th>error</th></tr>")
        for _, r in failed.iterrows():
            parts.append(f"<tr><td>{esc(str(r['generator']))}</td><td>{r['epsilon']:g}</td><td>{r['repeat']}</td>"
                         f"<td>{esc(str(r['note']))}</td></tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    page = out / "index.html"
    page.write_text("".join(parts), encoding="utf-8")
    return page
