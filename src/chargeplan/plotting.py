"""Matplotlib figures of simulation results (optional extra: ``pip install matplotlib``).

matplotlib is imported inside each function, so importing :mod:`chargeplan` never
needs it. Figures are built with :class:`matplotlib.figure.Figure` directly (no
``pyplot`` state): save them with ``fig.savefig(path)``; notebooks display them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .simulate import SimulationResult

__all__ = ["plot_site_load", "plot_session_energy", "plot_kpis", "DEFAULT_KPIS"]

#: KPIs shown by :func:`plot_kpis` by default.
DEFAULT_KPIS: tuple[str, ...] = (
    "share_delivered_vs_demand",
    "share_sessions_served",
    "total_cost",
    "peak_import_kw",
    "limit_violations",
    "latency_median_ms",
)


def _new_figure(figsize: tuple[float, float]) -> Figure:
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("chargeplan.plotting needs matplotlib: pip install matplotlib") from exc
    return Figure(figsize=figsize, layout="constrained")


def _step_x(index: pd.DatetimeIndex, step_s: int) -> np.ndarray:
    """Slot edges as naive local datetimes (matplotlib's date axis), length n + 1."""
    local = index.tz_localize(None) if index.tz is not None else index
    edges = local.append(pd.DatetimeIndex([local[-1] + pd.Timedelta(seconds=step_s)]))
    return edges.to_pydatetime()


def plot_site_load(
    result: SimulationResult,
    *,
    max_evses: int = 12,
    show_price: bool = True,
    figsize: tuple[float, float] = (12.0, 4.5),
) -> Figure:
    """EV power stacked by EVSE, with site import, grid-connection capacity and price.

    Parameters
    ----------
    result : SimulationResult
        A run of :func:`chargeplan.simulate`.
    max_evses : int, default 12
        EVSEs with the most energy are shown one by one; the rest are stacked as
        "other EVSEs".
    show_price : bool, default True
        Draw the import price on a second y axis.
    figsize : tuple of float
        Figure size in inches.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig = _new_figure(figsize)
    ax = fig.add_subplot()
    power = result.power_kw
    if len(power) == 0:
        ax.set_title(f"{result.strategy}: nothing simulated")
        return fig
    energy = power.sum(axis=0)
    used = energy[energy > 0].sort_values(ascending=False)
    top = list(used.index[:max_evses])
    layers = [power[c].to_numpy() for c in top]
    labels = list(top)
    rest = [c for c in used.index if c not in top]
    if rest:
        layers.append(power[rest].sum(axis=1).to_numpy())
        labels.append(f"{len(rest)} other EVSEs")
    x = _step_x(power.index, result.step_s)
    colors: list[object] = [f"C{i % 10}" for i in range(len(top))]
    if rest:
        colors.append("lightgray")
    base = np.zeros(len(power))
    for values, label, color in zip(layers, labels, colors, strict=True):
        top_edge = base + values
        ax.stairs(top_edge, x, baseline=base, fill=True, alpha=0.8, label=label, color=color)
        base = top_edge
    ax.stairs(
        result.site_import_kw.to_numpy(),
        x,
        baseline=None,
        color="black",
        lw=1.2,
        label="site import",
    )
    cap = result.capacity_kw.to_numpy()
    if np.isfinite(cap).any():
        ax.stairs(
            np.where(np.isfinite(cap), cap, np.nan),
            x,
            baseline=None,
            color="tab:red",
            ls="--",
            lw=1.5,
            label="grid connection capacity",
        )
    ax.set_ylabel("power (kW)")
    ax.set_xlabel(f"time ({power.index.tz})" if power.index.tz is not None else "time")
    k = result.kpis
    ax.set_title(
        f"{result.strategy}: {k['delivered_kwh']:.0f} kWh delivered "
        f"({k['share_delivered_vs_demand']:.0%} of demand), cost {k['total_cost']:.2f} "
        f"{result.currency}, {int(k['limit_violations'])} limit violations"
    )
    ax.margins(x=0)
    handles, names = ax.get_legend_handles_labels()
    if show_price:
        ax2 = ax.twinx()
        ax2.stairs(
            result.price_import_per_kwh.to_numpy(),
            x,
            baseline=None,
            color="tab:gray",
            lw=1.0,
            label="price",
        )
        ax2.set_ylabel(f"import price ({result.currency}/kWh)")
        h2, n2 = ax2.get_legend_handles_labels()
        handles, names = handles + h2, names + n2
    ax.legend(handles, names, loc="upper left", bbox_to_anchor=(1.08, 1.0), fontsize="small")
    fig.autofmt_xdate()
    return fig


def plot_session_energy(
    result: SimulationResult,
    *,
    ax: Axes | None = None,
    figsize: tuple[float, float] = (11.0, 4.0),
) -> Figure:
    """Energy requested, physical demand and delivered, per session in arrival order.

    Parameters
    ----------
    result : SimulationResult
        A run of :func:`chargeplan.simulate`.
    ax : matplotlib.axes.Axes, optional
        Draw into these axes (default: a new figure).
    figsize : tuple of float
        Size of a new figure in inches.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if ax is None:
        fig = _new_figure(figsize)
        ax = fig.add_subplot()
    else:
        fig = ax.get_figure()  # type: ignore[assignment]
    s = result.sessions.sort_values("arrival")
    pos = np.arange(len(s))
    ax.bar(pos, s["requested_kwh"], width=0.9, color="lightgray", label="requested by driver")
    ax.bar(pos, s["demand_kwh"], width=0.6, color="tab:blue", alpha=0.5, label="EV demand")
    ax.bar(pos, s["delivered_kwh"], width=0.3, color="tab:green", label="delivered")
    missed = ~s["served"].to_numpy()
    if missed.any():
        ax.plot(
            pos[missed],
            s["delivered_kwh"].to_numpy()[missed],
            "v",
            color="tab:red",
            label="not fully served",
        )
    ax.set_xlabel("session (in arrival order)")
    ax.set_ylabel("energy (kWh)")
    ax.set_xlim(-1, len(s))
    ax.set_title(f"{result.strategy}: energy per session")
    ax.legend(loc="upper right", fontsize="small")
    return fig  # type: ignore[return-value]


def plot_kpis(
    results: Iterable[SimulationResult] | pd.DataFrame,
    *,
    kpis: Sequence[str] = DEFAULT_KPIS,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Bar charts comparing strategies, one panel per KPI.

    Parameters
    ----------
    results : iterable of SimulationResult or pandas.DataFrame
        Runs, or a table from :func:`chargeplan.simulate.kpi_table` /
        :func:`chargeplan.simulate.compare`.
    kpis : sequence of str, default DEFAULT_KPIS
        Columns to show.
    figsize : tuple of float, optional
        Figure size in inches (default: sized to the panels).

    Returns
    -------
    matplotlib.figure.Figure
    """
    if isinstance(results, pd.DataFrame):
        table = results
    else:
        from .simulate import kpi_table

        table = kpi_table(results)
    n = len(kpis)
    cols = min(3, n)
    rows = int(np.ceil(n / cols))
    if figsize is None:
        figsize = (4.0 * cols, rows * (1.8 + 0.25 * len(table)))
    fig = _new_figure(figsize)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    names = [str(i) for i in table.index]
    pos = np.arange(len(names))
    for ax, kpi in zip(axes, kpis, strict=False):
        values = table[kpi].to_numpy(dtype=np.float64)
        bars = ax.barh(pos, values, color="tab:blue")
        ax.set_yticks(pos, names, fontsize="small")
        ax.invert_yaxis()
        ax.set_title(kpi, fontsize="medium")
        fmt = "{:.1%}" if kpi.startswith("share") else "{:.3g}"
        ax.bar_label(bars, [fmt.format(v) for v in values], fontsize="x-small", padding=2)
        ax.margins(x=0.25)
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig
