"""Getting started: a small site, a first plan, OCPP export (docs/getting-started.md)."""
# ruff: noqa: E402  (imports stay next to the part of the page that uses them)

# --8<-- [start:site]
import pandas as pd

import chargeplan as cp

t0 = pd.Timestamp("2024-06-03 08:00", tz="Europe/Amsterdam")

site = cp.Site(
    nodes=[
        cp.Node("grid", limit_a=63),  # grid connection: 63 A on each phase
        cp.Node("feeder-1", parent="grid", limit_a=(32, 32, 32)),  # (L1, L2, L3)
    ],
    evses=[
        cp.Evse("cp1", parent="feeder-1", max_current_a=32, phase_rotation="RST"),
        cp.Evse("cp2", parent="feeder-1", max_current_a=32, phase_rotation="STR"),
        cp.Evse("dc1", parent="grid", max_power_kw=50, dc=True),
    ],
    voltage_v=230,
)
sessions = [
    cp.Session("tx-1", evse="cp1", arrival=t0, departure=t0 + pd.Timedelta("8h"),
               energy_kwh=30),
    cp.Session("tx-2", evse="cp2", arrival=t0, departure=t0 + pd.Timedelta("3h"),
               energy_kwh=10, phases=1),  # a 1-phase EV on a 3-phase EVSE
    cp.Session("tx-3", evse="dc1", arrival=t0 + pd.Timedelta("30min"),
               departure=t0 + pd.Timedelta("2h"), energy_kwh=40),
]
prices = pd.Series(  # EUR/kWh, each value holds until the next time stamp
    [0.30, 0.25, 0.10, 0.05, 0.12, 0.20, 0.35, 0.40],
    index=pd.date_range(t0, periods=8, freq="1h"),
)
# --8<-- [end:site]

# --8<-- [start:plan]
plan = cp.optimize(
    site, sessions, start=t0, horizon="8h", step="15min",
    tariff=cp.Tariff(import_price_per_kwh=prices),
)
print(plan)
print(plan.report.method, "-", plan.report.reason)
# --8<-- [end:plan]
assert plan.kpis["share_sessions_served"] == 1.0

# --8<-- [start:views]
print(plan.power_kw.head(6))  # kW per EVSE per slot (negative = discharge)
print(plan.current_a.head(6))  # A per conductor (0 for DC)
print(plan.sessions.round(3))  # requested / delivered / unmet kWh, cost
print({k: round(v, 3) for k, v in plan.kpis.items()})
# --8<-- [end:views]
assert list(plan.power_kw.columns) == ["cp1", "cp2", "dc1"]

# --8<-- [start:check]
plan.check()  # the independent checker; optimize() has already run it
assert plan.violations() == []
# --8<-- [end:check]

# --8<-- [start:ocpp]
import json

requests = plan.to_ocpp("2.0.1")
for r in requests:
    print(r.station_id, r.action, r.payload["evseId"],
          r.payload["chargingProfile"]["chargingProfilePurpose"])
print(json.dumps(requests[0].payload, indent=2))
# --8<-- [end:ocpp]
# only tx-1 and tx-2 are plugged in during the first slot: tx-3 has no transaction yet
assert [r.station_id for r in requests] == ["cp1", "cp2"]

# --8<-- [start:errors]
bad_site = cp.Site(
    nodes=[cp.Node("grid", limit_a=63)],
    evses=[cp.Evse("cp1", parent="grid", max_current_a=-16),
           cp.Evse("cp2", parent="nowhere", max_current_a=32)],
)
try:
    cp.optimize(bad_site, [], start=t0, horizon="8h")
except cp.InputError as err:
    print(err)  # every problem, each with its field path
    print(err.paths)
# --8<-- [end:errors]
    assert any(p.endswith(".parent") for p in err.paths)
else:
    raise AssertionError("expected an InputError")
