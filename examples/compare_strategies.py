"""Compare charging strategies on a real ACN-Data week at Caltech, replayed as a CSMS would.

* Sessions: ACN-Data, Caltech, arrivals from Monday 2019-09-09 (``--days`` days, 7 by
  default). The strategy is told what drivers entered in the app (expected departure,
  requested energy; the truth with ``--knowledge perfect``); the EVs behave as they
  really did (true departure; they stop
  drawing after the energy they really took, ``delivered_energy_kwh``).
* Site: the Caltech-like ACN (54 EVSEs, 208 V line-to-line) behind a 50 kW transformer.
* Prices: Dutch day-ahead prices of the week from Monday 2023-09-11, shifted so that
  local midnight at Caltech gets the price of midnight in Amsterdam (same weekday and
  hour of day). PV: a 30 kWp roof with the Dutch 2019 profile shifted by 8 hours to
  Californian solar time.
* Strategies: chargeplan's ``greedy`` and ``auto`` (and ``lp`` when available), and the
  baselines ``uncontrolled``, ``equal_share``, ``edf``, ``llf`` and ``round_robin``.
  Every strategy re-plans on every arrival, departure, expected departure, EV full,
  and every 15 minutes, with 5-minute slots over 24 hours.

Prints the KPI table and writes figures to ``--out`` (default ``docs/img``).

Run: ``python examples/compare_strategies.py [--days 1] [--out DIR] [--strategies a,b]
[--knowledge perfect] [--progress]``.
"""

from __future__ import annotations

import argparse
import functools
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import pandas as pd

import chargeplan as cp
from chargeplan import datasets
from chargeplan.simulate import acn_sim_sessions, kpi_table, simulate
from chargeplan.solvers import METHODS

TZ = "America/Los_Angeles"
FIRST_DAY = pd.Timestamp("2019-09-09", tz=TZ)
PRICE_SOURCE = pd.Timestamp("2023-09-11", tz="Europe/Amsterdam")  # also a Monday
PV_SHIFT = pd.Timedelta(hours=8)  # solar noon: ~11:40 UTC in NL, ~19:50 UTC at Caltech
PV_KWP = 30.0
HORIZON = pd.Timedelta("24h")

SHOWN = [
    "delivered_kwh",
    "share_delivered_vs_requested",
    "share_delivered_vs_demand",
    "share_sessions_served",
    "total_cost",
    "peak_import_kw",
    "limit_violations",
    "violation_time_h",
    "replans",
    "latency_median_ms",
    "latency_p95_ms",
    "latency_max_ms",
]


#: Delay cost of the "<method>+delay" strategies, EUR per kWh per hour: charge earlier
#: when departures are the drivers' estimates (see docs/concepts/solvers.md).
DELAY_COST = 0.02


def default_strategies() -> list[str]:
    core = [m for m in ("greedy", "auto", "lp") if m in METHODS]
    return core + ["auto+delay", "uncontrolled", "equal_share", "edf", "llf", "round_robin"]


def strategy_of(name: str) -> str | Callable[..., cp.Plan]:
    """A method or baseline name, or "<method>+delay" for optimize with the delay cost."""
    if name.endswith("+delay"):
        return functools.partial(
            cp.optimize, method=name.removesuffix("+delay"), delay_cost_per_kwh_h=DELAY_COST
        )
    return name


def inputs(days: int) -> tuple[cp.Site, list, pd.Timestamp, pd.Timestamp, cp.Tariff, cp.Forecast]:
    site = datasets.caltech_site(transformer_cap_kw=50.0)
    start = FIRST_DAY
    rows = datasets.load_acn_sessions(start, start + pd.Timedelta(days=days))
    sims = acn_sim_sessions(rows, site)
    # run until every EV has left
    end = max(s.departure_true for s in sims).ceil("h")
    until = end + HORIZON + pd.Timedelta("1h")  # prices and PV must cover every horizon
    prices = datasets.load_nl_day_ahead_prices(start, until, source_start=PRICE_SOURCE)
    pv = datasets.load_pv_kw_per_kwp(start - PV_SHIFT, until - PV_SHIFT)
    pv.index = pv.index + PV_SHIFT
    tariff = cp.Tariff(import_price_per_kwh=prices)
    forecast = cp.Forecast(pv_kw=PV_KWP * pv)
    return site, sims, start, end, tariff, forecast


def warm_up() -> None:
    """Load the compiled numba kernels once so the first re-plan is not timed with it."""
    t0 = pd.Timestamp("2024-01-01", tz="UTC")
    site = cp.Site(
        nodes=[cp.Node("g", limit_a=32)], evses=[cp.Evse("e", parent="g", max_current_a=32)]
    )
    ev = cp.Session("s", "e", t0, t0 + pd.Timedelta("1h"), energy_kwh=1.0)
    cp.optimize(site, [ev], start=t0, horizon="1h", step="15min", method="greedy")


def main(days: int, out_dir: Path, strategies: list[str], progress: bool, knowledge: str) -> None:
    site, sims, start, end, tariff, forecast = inputs(days)
    demand = sum(s.demand_true_kwh for s in sims)
    requested = sum(s.session.requested_energy_kwh() for s in sims)
    print(
        f"Caltech ACN, 50 kW transformer, {len(sims)} sessions arriving "
        f"{start.date()} .. {(start + pd.Timedelta(days=days - 1)).date()}, simulated until "
        f"{end}; drivers requested {requested:.0f} kWh, EVs took {demand:.0f} kWh"
    )
    warm_up()
    results = []
    for name in strategies:
        t0 = time.perf_counter()
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                res = simulate(
                    site,
                    sims,
                    start=start,
                    end=end,
                    strategy=strategy_of(name),
                    name=name,
                    step="5min",
                    horizon=HORIZON,
                    replan_every="15min",
                    tariff=tariff,
                    forecast=forecast,
                    knowledge=knowledge,
                    progress=progress,
                )
        except cp.ChargeplanError as exc:
            print(f"  {name:13s} failed: {type(exc).__name__}: {str(exc).splitlines()[0]}")
            continue
        note = f", {len(caught)} warnings" if caught else ""
        print(f"  {name:13s} simulated in {time.perf_counter() - t0:6.1f} s{note}")
        results.append(res)

    table = kpi_table(results)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print()
        print(table[SHOWN].round(3).to_string())

    try:
        from chargeplan.plotting import plot_kpis, plot_session_energy, plot_site_load
    except ImportError:
        print("matplotlib is not installed: no figures")
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    tag = f"caltech_{days}d" + ("" if knowledge == "estimated" else f"_{knowledge}")
    by_name = {r.strategy: r for r in results}
    written = []
    for name in ("greedy", "uncontrolled", "equal_share"):
        if name in by_name:
            path = out_dir / f"{tag}_site_load_{name}.png"
            plot_site_load(by_name[name]).savefig(path, dpi=110)
            written.append(path)
    if "greedy" in by_name:
        path = out_dir / f"{tag}_session_energy_greedy.png"
        plot_session_energy(by_name["greedy"]).savefig(path, dpi=110)
        written.append(path)
    path = out_dir / f"{tag}_kpis.png"
    plot_kpis(table).savefig(path, dpi=110)
    written.append(path)
    print("\nfigures: " + ", ".join(str(p) for p in written))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=7, help="days of arrivals (default 7)")
    parser.add_argument("--out", type=Path, default=Path("docs/img"), help="figure directory")
    parser.add_argument(
        "--strategies",
        type=lambda s: s.split(","),
        default=None,
        help="comma-separated strategies (default: all)",
    )
    parser.add_argument("--progress", action="store_true", help="show progress bars")
    parser.add_argument(
        "--knowledge",
        choices=["estimated", "perfect"],
        default="estimated",
        help="tell strategies the drivers' estimates (default) or the truth",
    )
    args = parser.parse_args()
    strategies = args.strategies or default_strategies()
    main(args.days, args.out, strategies, args.progress, args.knowledge)
