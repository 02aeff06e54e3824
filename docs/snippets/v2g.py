"""V2G: discharging for bids and export prices, sent as OCPP 2.1 (docs/how-to/v2g.md)."""

# --8<-- [start:inputs]
import pandas as pd

import chargeplan as cp

t0 = pd.Timestamp("2024-06-03 16:00", tz="Europe/Amsterdam")
site = cp.Site(
    nodes=[cp.Node("grid", limit_a=63)],
    evses=[cp.Evse("v2g-1", parent="grid", max_power_kw=11, dc=True, bidirectional=True,
                   station_id="CS-V2G", connector_id=1)],
    export_limit_kw=20,  # most the EVs may feed into the grid
)
ev = cp.Session(
    "tx-42", evse="v2g-1", arrival=t0, departure=t0 + pd.Timedelta("15h"),
    battery_capacity_kwh=60, soc_now_pct=70, soc_target_pct=80,  # asks for 6 kWh
    soc_min_pct=40,  # the driver's reserve: never below 40 %
    v2g=True, round_trip_efficiency=0.9, degradation_cost_per_kwh=0.03,
)
hours = pd.date_range(t0, periods=15, freq="1h")
import_price = pd.Series([0.25, 0.30, 0.38, 0.40, 0.33, 0.25, 0.20, 0.15, 0.10,
                          0.08, 0.07, 0.07, 0.09, 0.12, 0.18], index=hours)
tariff = cp.Tariff(import_price_per_kwh=import_price,
                   export_price_per_kwh=import_price - 0.02)
bid = cp.V2GBid("fcr-evening", start=t0 + pd.Timedelta("2h"), end=t0 + pd.Timedelta("4h"),
                price_per_kwh=0.15, max_discharge_kw=10)
# --8<-- [end:inputs]

# --8<-- [start:plan]
plan = cp.optimize(site, [ev], start=t0, horizon="15h", step="15min",
                   tariff=tariff, v2g_bids=[bid])
print(plan.report.method, "-", plan.report.reason)
hourly = plan.power_kw["v2g-1"].resample("1h").mean()
print(pd.DataFrame({"power_kw": hourly, "import_price": import_price}).round(2))
k = plan.kpis
print(f"discharged {k['v2g_discharged_kwh']:.1f} kWh, bid revenue {k['v2g_revenue']:.2f}, "
      f"degradation {k['degradation_cost']:.2f}, total cost {k['total_cost']:.2f} EUR")
print(plan.sessions.round(2))
# --8<-- [end:plan]
assert k["v2g_discharged_kwh"] > 1.0
assert plan.sessions.loc["tx-42", "unmet_kwh"] < 0.02

# --8<-- [start:ocpp]
(request,) = plan.to_ocpp("2.1")
schedule = request.payload["chargingProfile"]["chargingSchedule"][0]
print(schedule["chargingRateUnit"])
for period in schedule["chargingSchedulePeriod"][:6]:
    print(period)
# --8<-- [end:ocpp]
assert any(p.get("setpoint", 0) < 0 for p in schedule["chargingSchedulePeriod"])

# --8<-- [start:no-v2g-in-201]
try:
    plan.to_ocpp("2.0.1")
except cp.InputError as err:
    print(err.problems[0].message)
# --8<-- [end:no-v2g-in-201]
else:
    raise AssertionError("expected an InputError")
