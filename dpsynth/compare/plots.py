"""The comparison's plots (matplotlib, PNG): error and utility against ε, time per generator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["write_plots", "summary"]


def summary(results: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation over repeats, one row per (generator, ε, metric); a figure
    not computed in some repeat (NaN) leaves the mean NaN rather than averaging the others."""
    ok = results[results["metric"] != "failed"]
    g = ok.groupby(["generator", "epsilon", "metric"], dropna=False)["value"]
    return g.agg(mean=lambda v: v.mean(skipna=False), std="std", runs="count").reset_index()


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ImportError("dpsynth compare draws its plots with matplotlib: pip install matplotlib") from None

    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    return plt


def _lines(ax, summ: pd.DataFrame, metric: str, baseline: float | None = None) -> bool:
    data = summ[(summ["metric"] == metric) & summ["epsilon"].notna()]
    if data.empty:
        return False
    for name, d in data.groupby("generator"):
        d = d.sort_values("epsilon")
        ax.errorbar(d["epsilon"], d["mean"], yerr=d["std"].fillna(0.0), marker="o", capsize=3, label=name)
    if baseline is not None and np.isfinite(baseline):
        ax.axhline(baseline, color="k", linestyle="--", linewidth=1, label="train on real")
    from matplotlib.ticker import FixedLocator, NullLocator, ScalarFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator(sorted(data["epsilon"].unique())))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("ε")
    ax.set_title(metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return True


def write_plots(results: pd.DataFrame, out: Path) -> dict[str, Path]:
    """Write error_vs_epsilon.png, utility_vs_epsilon.png (with a target) and time_per_generator.png."""
    from .runner import BASELINE

    plt = _pyplot()
    summ = summary(results)
    plots: dict[str, Path] = {}

    tvd = sorted(m for m in summ["metric"].unique() if m.startswith("tvd_")) + (
        ["association_diff"] if "association_diff" in set(summ["metric"]) else [])
    if tvd:
        fig, axes = plt.subplots(1, len(tvd), figsize=(4.2 * len(tvd), 3.6), squeeze=False)
        for ax, metric in zip(axes[0], tvd):
            _lines(ax, summ, metric)
            ax.set_ylabel("lower is better")
        fig.suptitle("Fidelity against ε (mean ± sd over repeats)")
        fig.tight_layout()
        plots["error"] = out / "error_vs_epsilon.png"
        fig.savefig(plots["error"], dpi=100)
        plt.close(fig)

    util = sorted(m for m in summ["metric"].unique() if m.startswith("tstr_"))
    if util:
        fig, axes = plt.subplots(1, len(util), figsize=(4.2 * len(util), 3.6), squeeze=False)
        for ax, metric in zip(axes[0], util):
            base = summ[(summ["generator"] == BASELINE) & (summ["metric"] == metric)]["mean"]
            _lines(ax, summ, metric, baseline=float(base.iloc[0]) if len(base) else None)
            ax.set_ylabel("higher is better")
        fig.suptitle("Utility against ε: train on synthetic, test on real")
        fig.tight_layout()
        plots["utility"] = out / "utility_vs_epsilon.png"
        fig.savefig(plots["utility"], dpi=100)
        plt.close(fig)

    times = results[results["metric"].isin(["fit_seconds", "sample_seconds"])]
    if not times.empty:
        per = times.groupby(["generator", "metric"])["value"].mean().unstack(fill_value=0.0)
        fig, ax = plt.subplots(figsize=(1.6 * len(per) + 3, 3.6))
        bottom = np.zeros(len(per))
        for metric in [m for m in ("fit_seconds", "sample_seconds") if m in per.columns]:
            ax.bar(per.index, per[metric], bottom=bottom, label=metric.replace("_seconds", ""))
            bottom += per[metric].to_numpy()
        ax.set_ylabel("seconds per run (mean)")
        ax.set_title("Time per generator")
        ax.legend(fontsize=8)
        fig.tight_layout()
        plots["time"] = out / "time_per_generator.png"
        fig.savefig(plots["time"], dpi=100)
        plt.close(fig)
    return plots
