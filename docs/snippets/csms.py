"""Re-planning inside a CSMS, without any networking (docs/how-to/csms-integration.md)."""
# ruff: noqa: E402  (imports stay next to the part of the page that uses them)
# requires: ocpp, jsonschema

# --8<-- [start:planner]
import warnings
from dataclasses import replace

import pandas as pd

import chargeplan as cp
from chargeplan.ocpp import StationCapabilities


class SitePlanner:
    """The running transactions of one site, and a plan made on every event."""

    def __init__(self, site, *, tariff=None, step="5min", horizon="12h", capabilities=None):
        self.site, self.tariff = site, tariff
        self.step, self.horizon = pd.Timedelta(step), horizon
        self.capabilities = capabilities  # StationCapabilities, or one per station id
        self.sessions = {}  # transaction id -> Session (what is left to deliver)

    def started(self, session):
        """TransactionEvent(Started): a new session."""
        self.sessions[session.transaction_id] = session

    def ended(self, transaction_id):
        """TransactionEvent(Ended): forget the session."""
        self.sessions.pop(transaction_id, None)

    def metered(self, transaction_id, kwh_since_last_plan):
        """MeterValues: lower what is left to deliver by what was delivered."""
        s = self.sessions[transaction_id]
        left = max(0.0, s.requested_energy_kwh() - kwh_since_last_plan)
        self.sessions[transaction_id] = replace(s, energy_kwh=left, battery_capacity_kwh=None,
                                                soc_now_pct=None, soc_target_pct=None)

    def replan(self, now):
        """Plan from now; return the plan and the SetChargingProfile requests to send."""
        start = now.floor(self.step)
        # OCPP profiles go to sessions plugged in during the first slot: keep an EV
        # that overstays its announced departure in the window
        live = [replace(s, arrival=min(s.arrival, start),
                        departure=max(s.departure, start + self.step))
                for s in self.sessions.values()]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", cp.ChargeplanWarning)
            plan = cp.optimize(self.site, live, start=start, horizon=self.horizon,
                               step=self.step, tariff=self.tariff)
            requests = plan.to_ocpp("2.0.1", capabilities=self.capabilities)
        for w in caught:  # e.g. periods merged to fit a station's period budget
            print("log:", w.category.__name__, w.message)
        return plan, requests
# --8<-- [end:planner]


# --8<-- [start:events]
from chargeplan.scenario import session_from_notify_ev_charging_needs

site = cp.Site(
    nodes=[cp.Node("grid", limit_a=40)],
    evses=[cp.Evse(f"CP{k}", parent="grid", max_current_a=32, station_id=f"CP{k}",
                   connector_id=1) for k in (1, 2, 3)],
)
planner = SitePlanner(site, capabilities=StationCapabilities(rate_units=("A",),
                                                             max_periods=24))
now = pd.Timestamp("2024-06-03 08:02:10", tz="UTC")

# TransactionEvent(Started) on CP1: until the EV says more, assume 20 kWh within 4 h
planner.started(cp.Session("CP1/tx-1", evse="CP1", arrival=now,
                           departure=now + pd.Timedelta("4h"), energy_kwh=20,
                           transaction_id="tx-1"))
# NotifyEVChargingNeeds from CP2's EV (ISO 15118): 3-phase AC, 18 kWh, leaves at 11:30
payload = {"evseId": 1, "chargingNeeds": {
    "requestedEnergyTransfer": "AC_three_phase",
    "departureTime": "2024-06-03T11:30:00.000Z",
    "acChargingParameters": {"energyAmount": 18000, "evMinCurrent": 6,
                             "evMaxCurrent": 16, "evMaxVoltage": 400}}}
planner.started(session_from_notify_ev_charging_needs(
    payload, evse="CP2", session_id="CP2/tx-2", arrival=now, transaction_id="tx-2"))

plan, requests = planner.replan(now)
for r in requests:  # send each to r.station_id as SetChargingProfile(r.payload)
    sched = r.payload["chargingProfile"]["chargingSchedule"][0]
    print(r.station_id, sched["startSchedule"],
          [(p["startPeriod"], p["limit"]) for p in sched["chargingSchedulePeriod"]][:4])

# 40 minutes later: meter values came in, and CP1's transaction ended
later = now + pd.Timedelta("40min")
planner.metered("tx-2", 7.0)
planner.ended("tx-1")
plan, requests = planner.replan(later)
print([r.station_id for r in requests], plan.sessions.round(2).to_dict("index"))
# --8<-- [end:events]
assert [r.station_id for r in requests] == ["CP2"]
assert abs(plan.sessions.loc["CP2/tx-2", "requested_kwh"] - 11.0) < 1e-9
