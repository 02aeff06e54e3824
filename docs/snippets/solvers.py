"""Solvers and the auto policy (docs/concepts/solvers.md)."""

# --8<-- [start:compare]
import numpy as np
import pandas as pd

import chargeplan as cp

t0 = pd.Timestamp("2024-06-03 07:00", tz="Europe/Amsterdam")
rng = np.random.default_rng(7)
n = 12


def make_site(grid_limit_a):
    """Return 12 chargers on two 50 A feeders below a grid connection."""
    return cp.Site(
        nodes=[cp.Node("grid", limit_a=grid_limit_a),
               cp.Node("f1", parent="grid", limit_a=50),
               cp.Node("f2", parent="grid", limit_a=50)],
        evses=[cp.Evse(f"cp{i}", parent="f1" if i % 2 else "f2", max_current_a=32)
               for i in range(n)],
    )


sessions = [
    cp.Session(f"s{i}", evse=f"cp{i}",
               arrival=t0 + pd.Timedelta(minutes=int(rng.integers(0, 120))),
               departure=t0 + pd.Timedelta(hours=int(rng.integers(4, 10))),
               energy_kwh=float(rng.uniform(10, 40)))
    for i in range(n)
]
prices = pd.Series(0.25 + 0.1 * np.sin(np.arange(12) / 2.0),
                   index=pd.date_range(t0, periods=12, freq="1h"))
tariff = cp.Tariff(import_price_per_kwh=prices)

cp.optimize(make_site(80), sessions, start=t0, horizon="12h", method="greedy")  # warm-up

for grid_limit_a in (80, 50):  # a loose site, then a congested one
    print(f"grid connection {grid_limit_a} A")
    for method in ("greedy", "lp", "milp", "auto"):
        plan = cp.optimize(make_site(grid_limit_a), sessions, start=t0, horizon="12h",
                           step="15min", tariff=tariff, method=method)
        k, r = plan.kpis, plan.report
        print(f"  {method:6s} -> {r.method:6s} {r.status:9s} unmet {k['unmet_kwh']:5.1f} kWh"
              f"  cost {k['energy_cost']:5.2f}  {1000 * r.solve_time_s:6.1f} ms  ({r.reason})")
# --8<-- [end:compare]
assert plan.report.method == "lp"  # auto on the congested site: the LP did better
