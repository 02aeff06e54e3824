"""Demand charges: pay for the monthly peak (docs/how-to/demand-charges.md)."""

# --8<-- [start:tariffs]
import pandas as pd

import chargeplan as cp

t0 = pd.Timestamp("2024-06-03 08:00", tz="Europe/Amsterdam")
site = cp.Site(nodes=[cp.Node("grid", limit_a=100)],
               evses=[cp.Evse(f"cp{i}", parent="grid", max_current_a=32) for i in range(6)])
evs = [cp.Session(f"s{i}", evse=f"cp{i}", arrival=t0 + pd.Timedelta(minutes=30 * i),
                  departure=t0 + pd.Timedelta(hours=9), energy_kwh=35) for i in range(6)]
prices = pd.Series([0.20, 0.22, 0.25, 0.15, 0.10, 0.12, 0.18, 0.24, 0.30],
                   index=pd.date_range(t0, periods=9, freq="1h"))

energy_only = cp.Tariff(import_price_per_kwh=prices)
with_demand = cp.Tariff(import_price_per_kwh=prices,
                        demand_charge_per_kw=12.0,  # EUR per kW of the peak
                        peak_already_kw=15.0)  # this month's peak so far
for name, tariff in (("energy only", energy_only), ("with demand charge", with_demand)):
    plan = cp.optimize(site, evs, start=t0, horizon="9h", step="15min", tariff=tariff)
    k = plan.kpis
    print(f"{name:18s} {plan.report.method:6s} peak {k['peak_import_kw']:5.1f} kW  "
          f"energy {k['energy_cost']:5.2f} + demand {k['demand_charge']:5.2f} "
          f"= {k['total_cost']:6.2f} EUR")

# what the energy-only plan would have cost under the demand tariff
first = cp.optimize(site, evs, start=t0, horizon="9h", step="15min", tariff=energy_only)
billed = first.kpis["energy_cost"] + 12.0 * max(0.0, first.kpis["peak_import_kw"] - 15.0)
print(f"energy-only plan billed with the demand charge: {billed:.2f} EUR")
# --8<-- [end:tariffs]
assert plan.report.method in ("lp", "milp")
assert k["peak_import_kw"] < 30
