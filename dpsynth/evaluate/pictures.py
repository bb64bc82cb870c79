"""Pictures for the run report, as inline SVG (no scripts, no external assets, no plotting
library): per-column real-vs-synthetic distributions on the schema's codes, the two
association matrices side by side, and the budget bar.

The distributions and matrices are computed on the private table: they belong to the
report's quality section, which stays with the data holder (not a privacy guarantee).
"""

from __future__ import annotations

import html
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = ["column_distributions", "distribution_svg", "heatmap_svg", "budget_bar_svg"]

_REAL, _SYNTH = "#4c72b0", "#dd8452"
_MAX_BARS = 40


def _labels(col: Any) -> list[str]:
    from dpsynth.schema.decode import OTHER

    if col.is_discrete:
        out = [str(c) for c in col.categories] + ([OTHER] if col.other_code is not None else [])
    elif col.one_code_per_value:
        out = [str(int(e + 0.5)) for e in col.edges[:-1]]
    else:
        edges = col.edges
        if col.kind == "datetime":
            fmt = lambda x: pd.Timestamp(int(x * 1e9)).strftime("%Y-%m-%d")  # noqa: E731
        else:
            fmt = lambda x: f"{x:g}"  # noqa: E731
        out = [f"{fmt(a)}–{fmt(b)}" for a, b in zip(edges[:-1], edges[1:])]
        out += ["other"] if col.other_code is not None else []
    return out + (["missing"] if col.nullable else [])


def column_distributions(real_codes: pd.DataFrame, synth_codes: pd.DataFrame, schema: Any,
                         skip: Sequence[str] = ()) -> dict[str, tuple[list[str], list[float], list[float]]]:
    """{column: (labels, real shares, synthetic shares)} over the schema's codes."""
    out = {}
    for col in schema.columns:
        if col.name in skip:
            continue
        labels = _labels(col)
        k = len(labels)
        shares = []
        for codes in (real_codes[col.name], synth_codes[col.name]):
            c = np.asarray(codes, dtype=np.int64)
            c = c[(c >= 0) & (c < k)]
            counts = np.bincount(c, minlength=k).astype(float)
            shares.append((counts / counts.sum()).tolist() if counts.sum() else counts.tolist())
        out[col.name] = (labels, shares[0], shares[1])
    return out


def distribution_svg(name: str, labels: Sequence[str], real: Sequence[float], synth: Sequence[float],
                     width: int = 340, height: int = 150) -> str:
    """Grouped bars: each code's share in the real (blue) and synthetic (orange) table."""
    esc = html.escape
    k = len(labels)
    if k > _MAX_BARS:  # many codes: group neighbours so the bars stay readable
        step = -(-k // _MAX_BARS)
        labels = [f"{labels[i]}…" for i in range(0, k, step)]
        real = [sum(real[i:i + step]) for i in range(0, k, step)]
        synth = [sum(synth[i:i + step]) for i in range(0, k, step)]
        k = len(labels)
    top = max([*real, *synth, 1e-9])
    pad_l, pad_b, pad_t = 4, 18, 16
    w, h = width - 2 * pad_l, height - pad_b - pad_t
    slot = w / max(k, 1)
    bar = max(slot / 2 - 1, 0.5)
    parts = [f'<svg width="{width}" height="{height}" role="img">',
             f"<title>{esc(name)}: real (blue) and synthetic (orange) shares</title>",
             f'<text x="{pad_l}" y="12" font-size="11">{esc(name)}</text>']
    for i, (lab, r, s) in enumerate(zip(labels, real, synth)):
        x = pad_l + i * slot
        for j, (v, colour) in enumerate(((r, _REAL), (s, _SYNTH))):
            bh = h * v / top
            parts.append(f'<rect x="{x + j * bar:.1f}" y="{pad_t + h - bh:.1f}" width="{bar:.1f}" '
                         f'height="{bh:.1f}" fill="{colour}"><title>{esc(str(lab))}: '
                         f'{"real" if j == 0 else "synthetic"} {v:.3f}</title></rect>')
    parts.append(f'<line x1="{pad_l}" y1="{pad_t + h}" x2="{pad_l + w}" y2="{pad_t + h}" stroke="#888"/>')
    if k:
        parts.append(f'<text x="{pad_l}" y="{height - 4}" font-size="9">{esc(str(labels[0]))}</text>')
        parts.append(f'<text x="{pad_l + w}" y="{height - 4}" font-size="9" text-anchor="end">'
                     f'{esc(str(labels[-1]))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def heatmap_svg(title: str, matrix: pd.DataFrame, size: int = 300) -> str:
    """An association matrix (values in [0, 1]) as a grid of shaded cells."""
    esc = html.escape
    names = [str(c) for c in matrix.columns]
    n = len(names)
    cell = (size - 20) / max(n, 1)
    parts = [f'<svg width="{size}" height="{size + 4}" role="img">',
             f"<title>{esc(title)}</title>", f'<text x="0" y="12" font-size="11">{esc(title)}</text>']
    values = matrix.to_numpy(dtype=float)
    for i in range(n):
        for j in range(n):
            v = values[i, j]
            v = 0.0 if not np.isfinite(v) else float(min(1.0, max(0.0, abs(v))))
            shade = int(255 - 200 * v)
            parts.append(f'<rect x="{j * cell:.1f}" y="{20 + i * cell:.1f}" width="{cell:.1f}" height="{cell:.1f}" '
                         f'fill="rgb({shade},{shade},255)"><title>{esc(names[i])} × {esc(names[j])}: '
                         f'{v:.2f}</title></rect>')
    parts.append("</svg>")
    return "".join(parts)


def budget_bar_svg(used_fraction: float, width: int = 420, height: int = 22) -> str:
    """The share of the budget used (filled) and what remains."""
    u = float(min(1.0, max(0.0, used_fraction)))
    return (f'<svg width="{width}" height="{height}" role="img">'
            f"<title>{100 * u:.1f} % of the budget used</title>"
            f'<rect x="0" y="0" width="{width}" height="{height}" fill="#e8eef7" stroke="#999"/>'
            f'<rect x="0" y="0" width="{width * u:.1f}" height="{height}" fill="#c0504d"/>'
            f'<text x="6" y="{height - 6}" font-size="12">{100 * u:.1f} % used</text></svg>')


def pictures_html(distributions: Mapping[str, tuple], correlation: Any = None) -> str:
    parts = []
    if distributions:
        parts.append("<h3>Each column: real (blue) and synthetic (orange)</h3><div>")
        parts += [distribution_svg(name, *d) for name, d in distributions.items()]
        parts.append("</div>")
    if correlation is not None and len(correlation.real.columns) > 1:
        parts.append("<h3>Pairwise association: real and synthetic, side by side</h3><div>")
        parts.append(heatmap_svg("real", correlation.real))
        parts.append(heatmap_svg("synthetic", correlation.synth))
        parts.append("</div>")
    return "".join(parts)
