"""Time grid and partial slots (docs/concepts/time-grid.md)."""

# --8<-- [start:partial]
import pandas as pd

import chargeplan as cp

t0 = pd.Timestamp("2024-06-03 08:00", tz="Europe/Amsterdam")
site = cp.Site(nodes=[cp.Node("grid", limit_a=32)],
               evses=[cp.Evse("cp1", parent="grid", max_current_a=16, phases=1)])
ev = cp.Session("s1", evse="cp1",
                arrival=t0 + pd.Timedelta("10min"),  # 5 minutes into the first 15-min slot
                departure=t0 + pd.Timedelta("50min"),
                energy_kwh=5)
plan = cp.optimize(site, [ev], start=t0, horizon="1h", step="15min")
print(plan.current_a["cp1"])  # the rate the EVSE may draw while the EV is there
print(plan.energy_kwh["s1"].round(3))  # energy per slot: rate x time present
# --8<-- [end:partial]
e = plan.energy_kwh["s1"].to_numpy()
assert abs(e[0] - 16 * 230 / 1000 * 5 / 60) < 1e-9  # 5 of 15 minutes at 16 A
assert plan.sessions.loc["s1", "unmet_kwh"] > 0  # 40 min x 3.68 kW < 5 kWh

# --8<-- [start:series]
# a DSO limit on the grid connection: 32 A, but 10 A from 08:20 to 08:40
limit = pd.Series([32.0, 10.0, 32.0],
                  index=[t0, t0 + pd.Timedelta("20min"), t0 + pd.Timedelta("40min")])
# the last value holds for one more spacing of the index: the series covers until 09:00
site2 = cp.Site(nodes=[cp.Node("grid", limit_a=limit)], evses=site.evses)
ev2 = cp.Session("s2", evse="cp1", arrival=t0, departure=t0 + pd.Timedelta("1h"),
                 energy_kwh=20)
plan2 = cp.optimize(site2, [ev2], start=t0, horizon="1h", step="15min")
print(plan2.current_a["cp1"])  # 10 A in the slots 08:15 and 08:30, which the dip touches
# --8<-- [end:series]
assert plan2.current_a["cp1"].tolist() == [16.0, 10.0, 10.0, 16.0]
