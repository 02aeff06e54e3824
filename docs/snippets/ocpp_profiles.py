"""How OCPP profiles are built (docs/concepts/ocpp-profiles.md)."""

# --8<-- [start:site]
import json
import warnings

import numpy as np
import pandas as pd

import chargeplan as cp
from chargeplan.ocpp import (
    ConnectorSchedule,
    StationCapabilities,
    build_profiles,
    check_profile,
    stable_profile_id,
)

t0 = pd.Timestamp("2024-06-03 08:00", tz="Europe/Amsterdam")
site = cp.Site(
    nodes=[cp.Node("grid", limit_a=63),
           # a dual-connector charger whose own 40 A limit is also sent to it
           cp.Node("charger-7", parent="grid", limit_a=40, station_id="CS-7")],
    evses=[cp.Evse("cs7-1", parent="charger-7", max_current_a=32,
                   station_id="CS-7", connector_id=1),
           cp.Evse("cs7-2", parent="charger-7", max_current_a=32,
                   station_id="CS-7", connector_id=2)],
)
sessions = [
    cp.Session("s1", evse="cs7-1", arrival=t0 - pd.Timedelta("1h"),
               departure=t0 + pd.Timedelta("4h"), energy_kwh=35, transaction_id=1001),
    cp.Session("s2", evse="cs7-2", arrival=t0, departure=t0 + pd.Timedelta("2h"),
               energy_kwh=12, transaction_id=1002),
]
prices = pd.Series([0.30, 0.12, 0.08, 0.25],
                   index=pd.date_range(t0, periods=4, freq="1h"))
plan = cp.optimize(site, sessions, start=t0, horizon="4h", step="15min",
                   tariff=cp.Tariff(import_price_per_kwh=prices))
# --8<-- [end:site]

# --8<-- [start:versions]
v201 = plan.to_ocpp("2.0.1")
for r in v201:
    p = r.payload["chargingProfile"]
    print(r.station_id, r.payload["evseId"], p["chargingProfilePurpose"], p["id"],
          p.get("transactionId"))
v16 = plan.to_ocpp("1.6")
print(json.dumps(v16[1].payload, indent=1))
# --8<-- [end:versions]
assert [r.payload["evseId"] for r in v201] == [0, 1, 2]
assert v16[1].payload["csChargingProfiles"]["transactionId"] == 1001

# --8<-- [start:stable-ids]
# re-planning an hour later updates the same profiles: the ids do not change
later = cp.optimize(site, sessions, start=t0 + pd.Timedelta("1h"), horizon="3h",
                    step="15min", tariff=cp.Tariff(import_price_per_kwh=prices))
ids_now = [r.payload["chargingProfile"]["id"] for r in v201]
ids_later = [r.payload["chargingProfile"]["id"] for r in later.to_ocpp("2.0.1")]
print(ids_now == ids_later, stable_profile_id("tx:s1") == ids_now[1])
# --8<-- [end:stable-ids]
assert ids_now == ids_later

# --8<-- [start:capabilities]
caps = StationCapabilities(rate_units=("W", "A"), max_periods=3, stack_level=1)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    in_watts = plan.to_ocpp("2.0.1", capabilities={"CS-7": caps})
tx = in_watts[1].payload["chargingProfile"]
print(tx["chargingSchedule"][0]["chargingRateUnit"], tx["stackLevel"])
for period in tx["chargingSchedule"][0]["chargingSchedulePeriod"]:
    print(period)
for w in caught:
    print(type(w.message).__name__, ":", w.message)
# --8<-- [end:capabilities]
assert len(tx["chargingSchedule"][0]["chargingSchedulePeriod"]) <= 3

# --8<-- [start:rounding]
# build_profiles() works on any version-neutral schedule, e.g. from another planner
sched = ConnectorSchedule(
    station_id="CS-9", connector_id=1, session_id="x", transaction_id="tx-9",
    dc=False, number_phases=3, w_per_a=3 * 230.0, min_current_a=6.0,
    current_a=np.array([16.04, 15.999999999, 7.25, 4.0]),
    power_w=np.array([16.04, 15.999999999, 7.25, 4.0]) * 3 * 230.0,
)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    (req,) = build_profiles([sched], [], start=t0, step_s=900, version="2.0.1")
print([(p["startPeriod"], p["limit"])
       for p in req.payload["chargingProfile"]["chargingSchedule"][0]["chargingSchedulePeriod"]])
print(caught[0].message)
# --8<-- [end:rounding]
periods = req.payload["chargingProfile"]["chargingSchedule"][0]["chargingSchedulePeriod"]
assert [p["limit"] for p in periods] == [16.0, 7.2, 0.0]

# --8<-- [start:check-profile]
payload = json.loads(json.dumps(v201[1].payload))  # a copy
payload["chargingProfile"]["chargingSchedule"][0]["chargingSchedulePeriod"][0]["limit"] = 3.0
payload["chargingProfile"]["chargingProfilePurpose"] = "ChargingStationExternalConstraints"
for problem in check_profile(payload, "2.0.1"):
    print(problem)
# --8<-- [end:check-profile]
assert check_profile(v201[1].payload, "2.0.1") == []
