"""The auditor's HTML report: one self-contained page, no scripts, no external assets.

Budget spent over time (inline SVG), spend per generator and per actor, every
entry's details, and the verification status computed when it was written.
"""

from __future__ import annotations

import html
import json

from .ledger.store import LedgerSnapshot

__all__ = ["render_html", "spend_chart_svg"]

_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:1100px}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem}
table{border-collapse:collapse;font-size:.85rem;width:100%}
th,td{border:1px solid #ccc;padding:.25rem .4rem;text-align:left;vertical-align:top}
th{background:#f3f3f3}.ok{background:#e6f4ea;border:1px solid #2e7d32;padding:.6rem}
.bad{background:#fdecea;border:1px solid #c62828;padding:.6rem}
.warn{background:#fff4e5;border:1px solid #ef6c00;padding:.6rem;margin:.4rem 0}
code{font-size:.8rem;word-break:break-all}details{margin:.2rem 0}
"""


def _e(x) -> str:
    return html.escape(str(x))


def spend_chart_svg(snapshot: LedgerSnapshot, width: int = 720, height: int = 260) -> str:
    """Step chart of ε spent (filter, and full curve) against entry number, with the budget line."""
    md = snapshot.metadata
    entries = snapshot.entries
    pad_l, pad_r, pad_t, pad_b = 56, 16, 16, 36
    w, h = width - pad_l - pad_r, height - pad_t - pad_b
    n = max(len(entries), 1)
    top = max([md.epsilon] + [max(e.epsilon_filter, e.epsilon_curve) for e in entries]) * 1.1

    def xy(i: int, eps: float) -> tuple[float, float]:
        return pad_l + w * i / n, pad_t + h * (1 - eps / top)

    def path(attr: str) -> str:
        pts, prev = [xy(0, 0.0)], 0.0
        for i, e in enumerate(entries, start=1):
            pts += [xy(i, prev), xy(i, getattr(e, attr))]
            prev = getattr(e, attr)
        return " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)

    bx0, by = xy(0, md.epsilon)
    bx1, _ = xy(n, md.epsilon)
    ticks = "".join(
        f'<text x="{pad_l - 6}" y="{xy(0, top * k / 4)[1] + 4:.1f}" font-size="11" text-anchor="end">'
        f"{top * k / 4:.2g}</text>" for k in range(5)
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="privacy budget spent over time">'
        f'<rect x="{pad_l}" y="{pad_t}" width="{w}" height="{h}" fill="#fafafa" stroke="#999"/>{ticks}'
        f'<line x1="{bx0:.1f}" y1="{by:.1f}" x2="{bx1:.1f}" y2="{by:.1f}" stroke="#c62828" stroke-dasharray="6 4"/>'
        f'<text x="{bx1 - 4:.1f}" y="{by - 5:.1f}" font-size="11" text-anchor="end" fill="#c62828">'
        f"budget ε = {md.epsilon:g}</text>"
        f'<polyline fill="none" stroke="#1565c0" stroke-width="2" points="{path("epsilon_filter")}"/>'
        f'<polyline fill="none" stroke="#2e7d32" stroke-width="1.5" stroke-dasharray="3 3" '
        f'points="{path("epsilon_curve")}"/>'
        f'<text x="{pad_l + w / 2:.1f}" y="{height - 8}" font-size="12" text-anchor="middle">entry number'
        f" (times: first {_e(entries[0].timestamp) if entries else '—'}, last "
        f"{_e(entries[-1].timestamp) if entries else '—'})</text>"
        f'<text x="14" y="{pad_t + h / 2:.1f}" font-size="12" transform="rotate(-90 14 {pad_t + h / 2:.1f})" '
        f'text-anchor="middle">ε spent (δ = {md.delta:g})</text></svg>'
        '<p style="font-size:.8rem"><span style="color:#1565c0">━ filter ε (the guarantee)</span> &nbsp; '
        '<span style="color:#2e7d32">┅ full-curve ε (valid if the runs were fixed in advance)</span></p>'
    )


def _group_table(title: str, groups: dict) -> str:
    rows = "".join(
        f"<tr><td>{_e(k)}</td><td>{v['entries']}</td><td>{v['cost']:.6g}</td><td>{100 * v['share']:.2f} %</td></tr>"
        for k, v in groups.items()
    )
    return (f"<h2>Spend per {title}</h2><table><tr><th>{title}</th><th>entries</th>"
            f"<th>RDP cost at α*</th><th>share of budget</th></tr>{rows}</table>")


def render_html(snapshot: LedgerSnapshot, report=None) -> str:
    from .export import spend_by

    md, entries = snapshot.metadata, snapshot.entries
    if report is None:
        status = '<div class="warn">Verification status: not checked when this report was written.</div>'
    elif report.ok:
        status = f'<div class="ok"><b>Verified</b>: {_e(report.summary())}</div>'
    else:
        status = f'<div class="bad"><b>VERIFICATION FAILED</b><pre>{_e(report.summary())}</pre></div>'
    insecure = [e.sequence for e in entries if e.insecure]
    if md.insecure or insecure:
        status += ('<div class="warn"><b>INSECURE DEVELOPMENT MODE</b>: '
                   f"{len(insecure)} entries are unsigned; nothing proves who wrote them.</div>")
    last = entries[-1] if entries else None
    from .export import delta_costs
    from .policy import parse_policy
    from .rdp import sum_up

    deltas = delta_costs(entries)
    try:
        policy = parse_policy(md.policy_toml.encode("utf-8"))
        reserve = policy.delta_reserve
    except ValueError:
        policy, reserve = None, float("nan")
    words_html = ""
    if policy is not None:
        from .gate import filter_for
        from .words import budget_words

        spent_rdp = last.filter_total if last is not None else 0.0
        try:
            words = budget_words(filter_for(md, policy), [spent_rdp] if spent_rdp else [],
                                 max_epsilon_per_run=policy.max_epsilon_per_run)
            words_html = f'<p class="budget"><b>Budget: {_e(words.headline)}</b>; {_e(words.next_run)}.</p>'
        except ValueError:
            words_html = ""
    delta_line = f"; δ spent {sum_up(deltas):.6g} of reserve {reserve:.6g}"
    rows = []
    # A run's parameters are recorded in each of its entries (AIM's lists made the page grow
    # by kilobytes an entry): written out once, where they first appear, and named after.
    first_seen: dict[str, int] = {}
    for e in entries:
        params = e.parameters
        if params:
            key = json.dumps(params, sort_keys=True)
            if key in first_seen:
                params = f"as in entry {first_seen[key]}"
            else:
                first_seen[key] = e.sequence
        detail = json.dumps({"kind": e.kind, "refs": e.refs, "commitment": e.commitment, "code_sha256": e.code_sha256,
                             "parameters": params, "event": None if e.event is None else json.loads(e.event)},
                            indent=1, sort_keys=True)
        rows.append(
            f"<tr><td>{e.sequence}</td><td>{_e(e.timestamp)}</td><td>{_e(e.actor)}</td><td>{_e(e.purpose)}</td>"
            f"<td>{_e(e.kind)}</td><td>{_e(e.generator or '')}</td><td>{_e(e.run_id or '')}</td><td>{e.cost:.6g}</td>"
            f"<td>{e.epsilon_filter:.6g}</td><td>{e.epsilon_curve:.6g}</td><td>{deltas[e.sequence - 1] if 0 < e.sequence <= len(deltas) else 0.0:.6g}</td>"
            f"<td>{_e(e.noise_source)}{' <b>UNSIGNED</b>' if e.insecure else ''}</td>"
            f"<td><details><summary>details</summary><pre>{_e(detail)}</pre>"
            f"<div>hash <code>{_e(e.entry_hash)}</code></div><div>prev <code>{_e(e.prev_hash)}</code></div>"
            f"<div>signature <code>{_e(e.signature)}</code></div></details></td></tr>"
        )
    return (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>Privacy ledger — {_e(md.dataset_fingerprint[:24])}…</title><style>{_CSS}</style></head><body>"
        "<h1>Privacy ledger report</h1>"
        f"{status}{words_html}"
        "<h2>Policy</h2><table>"
        f"<tr><th>dataset fingerprint</th><td><code>{_e(md.dataset_fingerprint)}</code></td></tr>"
        f"<tr><th>budget</th><td>ε = {md.epsilon:g}, δ = {md.delta:g}, {_e(md.relation)}</td></tr>"
        f"<tr><th>filter</th><td>order α* = {md.filter_order:.6g}, RDP budget {md.filter_budget:.6g}</td></tr>"
        f"<tr><th>spent</th><td>{'none' if last is None else f'ε = {last.epsilon_filter:.6g} (filter), {last.epsilon_curve:.6g} (full curve); RDP {last.filter_total:.6g} of {md.filter_budget:.6g}' + delta_line}</td></tr>"
        f"<tr><th>policy SHA-256</th><td><code>{_e(md.policy_sha256)}</code></td></tr>"
        f"<tr><th>officer key</th><td><code>{_e(md.officer_key_id)}</code></td></tr>"
        f"<tr><th>ledger key</th><td><code>{_e(md.ledger_key_id)}</code></td></tr>"
        f"<tr><th>ledger id</th><td><code>{_e(md.ledger_id)}</code></td></tr>"
        f"<tr><th>genesis hash</th><td><code>{_e(md.hash)}</code></td></tr>"
        f"<tr><th>created</th><td>{_e(md.created)}</td></tr></table>"
        f"<details><summary>policy text</summary><pre>{_e(md.policy_toml)}</pre></details>"
        f"<details><summary>public keys</summary><pre>{_e(md.officer_public_key)}\n{_e(md.ledger_public_key)}</pre>"
        "</details>"
        "<h2>Budget spent over time</h2>"
        f"{spend_chart_svg(snapshot)}"
        f"{_group_table('generator', spend_by(entries, 'generator'))}"
        f"{_group_table('actor', spend_by(entries, 'actor'))}"
        "<h2>Entries</h2><table><tr><th>#</th><th>time (UTC, minute)</th><th>actor</th><th>purpose</th>"
        "<th>kind</th><th>generator</th><th>run</th><th>RDP cost</th><th>ε filter</th><th>ε curve</th><th>δ part</th><th>noise</th>"
        f"<th></th></tr>{''.join(rows)}</table>"
        "</body></html>\n"
    )
