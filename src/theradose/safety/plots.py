"""Plots of markers per cycle (matplotlib, Agg backend)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path


def plot_psa(
    dates: Sequence[date], psa_ng_ml: Sequence[float], cycles: Sequence[int | None], out: Path
) -> Path:
    """Waterfall-style plot of PSA change from baseline (%) over time with cycle labels; PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = sorted(range(len(dates)), key=lambda i: dates[i])
    d = [dates[i] for i in order]
    v = [psa_ng_ml[i] for i in order]
    change = [100.0 * (x / v[0] - 1.0) for x in v]
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.plot(d, change, marker="o", color="tab:blue")  # type: ignore[arg-type]
    ax.axhline(-50.0, color="tab:green", linestyle="--", label="−50 % (PCWG3 response)")
    ax.axhline(25.0, color="tab:red", linestyle=":", label="+25 % (progression, with ≥ 2 ng/mL)")
    for day, value, cycle in zip(d, change, [cycles[i] for i in order], strict=True):
        if cycle is not None:
            ax.annotate(
                f"C{cycle}", (day, value), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8
            )
    ax.set_ylabel("PSA change from baseline (%)")
    ax.legend(fontsize=7, loc="best")
    fig.autofmt_xdate()
    fig.tight_layout()
    tmp = out.with_suffix(".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(out)
    return out
