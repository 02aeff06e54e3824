"""PV and base load at the grid connection (docs/how-to/pv-and-base-load.md)."""

# --8<-- [start:forecast]
import numpy as np
import pandas as pd

import chargeplan as cp

t0 = pd.Timestamp("2024-06-03 07:00", tz="Europe/Amsterdam")
site = cp.Site(nodes=[cp.Node("grid", limit_a=50)],  # 50 A x 3 x 230 V = 34.5 kW
               evses=[cp.Evse(f"cp{i}", parent="grid", max_current_a=16) for i in range(4)])
evs = [cp.Session(f"s{i}", evse=f"cp{i}", arrival=t0, departure=t0 + pd.Timedelta("10h"),
                  energy_kwh=30) for i in range(4)]

hours = pd.date_range(t0, periods=10, freq="1h")
pv_kw = pd.Series(40 * np.sin(np.linspace(0.2, np.pi - 0.2, 10)), index=hours)  # 40 kWp
base_kw = pd.Series([8, 12, 15, 15, 14, 10, 15, 15, 12, 8.0], index=hours)  # the building
tariff = cp.Tariff(import_price_per_kwh=0.30, export_price_per_kwh=0.05)

forecast = cp.Forecast(pv_kw=pv_kw, base_load_kw=base_kw)
plan = cp.optimize(site, evs, start=t0, horizon="10h", step="15min", tariff=tariff,
                   forecast=forecast, method="lp")
table = pd.DataFrame({
    "pv_kw": pv_kw, "base_load_kw": base_kw,
    "ev_kw": plan.power_kw.sum(axis=1).resample("1h").mean(),
    "site_import_kw": plan.site_import_kw.resample("1h").mean(),
})
print(table.round(1))
print(f"energy cost {plan.kpis['energy_cost']:.2f} EUR, "
      f"peak import {plan.kpis['peak_import_kw']:.1f} kW")
# --8<-- [end:forecast]

# --8<-- [start:methods]
for method in ("greedy", "lp", "milp"):
    k = cp.optimize(site, evs, start=t0, horizon="10h", step="15min", tariff=tariff,
                    forecast=forecast, method=method).kpis
    print(f"{method:6s} energy cost {k['energy_cost']:6.2f} EUR, "
          f"delivered {k['delivered_kwh']:.1f} kWh")
# --8<-- [end:methods]
assert plan.kpis["share_sessions_served"] == 1.0
assert plan.site_import_kw.max() <= 34.5 + 1e-6
