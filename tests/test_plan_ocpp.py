"""End to end: optimize() -> Plan.to_ocpp() payloads are schema-valid, keep the rules
and never allow more than the verified plan."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings

import chargeplan as cp
from chargeplan.ocpp import StationCapabilities, check_profile
from test_ocpp import schema_errors
from test_properties import HOURS, N_SLOTS, STEP_MIN, T0, node_limits, scenarios, slot_values


def with_stations(site: cp.Site) -> cp.Site:
    """Make every non-root node with EVSEs directly below it a charging station."""
    below: dict[str, list[cp.Evse]] = {}
    for e in site.evses:
        below.setdefault(e.parent, []).append(e)
    nodes, evses = [], []
    for n in site.nodes:
        if n.parent is not None and n.id in below:
            n = replace(n, station_id=f"st-{n.id}")
        nodes.append(n)
    for e in site.evses:
        parent = next(n for n in nodes if n.id == e.parent)
        if parent.station_id is not None:
            k = [x.id for x in below[e.parent]].index(e.id) + 1
            e = replace(e, station_id=parent.station_id, connector_id=k)
        evses.append(e)
    return cp.Site(nodes=nodes, evses=evses, voltage_v=site.voltage_v)


def limit_at_slots(periods, step_s, key="limit"):
    starts = [p["startPeriod"] for p in periods]
    out = np.empty(N_SLOTS)
    for t in range(N_SLOTS):
        k = np.searchsorted(starts, t * step_s, side="right") - 1
        out[t] = periods[k][key]
    return out


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=scenarios())
def test_payloads_valid_and_never_above_plan(version, scenario):
    site, sessions, prices, forecast = scenario
    site = with_stations(site)
    # 1.6 needs integer transaction ids
    sessions = [replace(s, transaction_id=i + 1) for i, s in enumerate(sessions)]
    plan = cp.optimize(
        site,
        sessions,
        start=T0,
        horizon=f"{HOURS}h",
        step=f"{STEP_MIN}min",
        tariff=cp.Tariff(import_price_per_kwh=prices),
        forecast=forecast,
    )
    caps = StationCapabilities(max_periods=6)
    requests = plan.to_ocpp(version, capabilities=caps)
    slot0_end = T0 + pd.Timedelta(minutes=STEP_MIN)
    active = {s.evse for s in sessions if s.arrival < slot0_end and T0 < s.departure}
    tx = [r for r in requests if "TxProfile" in str(r.payload)]
    assert len(tx) == len(active)
    n_station_nodes = sum(n.station_id is not None for n in site.nodes)
    assert len(requests) - len(tx) <= n_station_nodes
    step_s = STEP_MIN * 60
    by_tx = {s.transaction_id: i for i, s in enumerate(sessions)}
    evses = {e.id: e for e in site.evses}
    for r in requests:
        assert schema_errors(r.payload, version) == []
        assert check_profile(r.payload, version, max_periods=6) == []
        if version == "1.6":
            prof = r.payload["csChargingProfiles"]
            sched = prof["chargingSchedule"]
        else:
            prof = r.payload["chargingProfile"]
            sched = prof["chargingSchedule"][0]
        assert sched["startSchedule"] == "2024-06-01T04:00:00.000Z"
        assert sched["duration"] == HOURS * 3600
        if prof["chargingProfilePurpose"] != "TxProfile":
            # the station max profile never allows more than the node's own limits
            node = next(n for n in site.nodes if n.station_id == r.station_id)
            lim = limit_at_slots(sched["chargingSchedulePeriod"], step_s)
            node_a = node_limits(node).min(axis=0)
            node_kw = slot_values(node.limit_kw)
            assert (lim >= 0).all()
            if sched["chargingRateUnit"] == "A":
                assert (lim <= node_a + 1e-9).all()
                # per phase, so the power is at most 3 V times it
                assert (3 * site.voltage_v * lim <= node_kw * 1000 + 1e-6).all()
            else:
                assert np.isinf(node_a).all()  # W cannot bound a phase current
                assert (lim <= node_kw * 1000 + 1e-6).all()
            continue
        s = by_tx[int(prof["transactionId"])]
        evse = evses[sessions[s].evse]
        assert r.station_id == evse.ocpp_station_id
        lim = limit_at_slots(sched["chargingSchedulePeriod"], step_s)
        if sched["chargingRateUnit"] == "A":
            assert not evse.dc
            assert (lim <= plan.current_a_array[s] + 1e-9).all()
        else:
            assert (lim <= plan.rate_kw[s] * 1000 + 1e-6).all()


def test_station_max_profile_carries_node_limit():
    t0 = pd.Timestamp("2024-06-01 08:00", tz="UTC")
    site = cp.Site(
        nodes=[
            cp.Node("grid", limit_a=100),
            cp.Node("charger", parent="grid", limit_a=40.05, station_id="CS-1"),
        ],
        evses=[
            cp.Evse(f"c{k}", parent="charger", max_current_a=32, station_id="CS-1", connector_id=k)
            for k in (1, 2)
        ],
    )
    ss = [
        cp.Session(
            f"s{k}",
            evse=f"c{k}",
            arrival=t0,
            departure=t0 + pd.Timedelta("2h"),
            energy_kwh=30,
            transaction_id=k,
        )
        for k in (1, 2)
    ]
    plan = cp.optimize(site, ss, start=t0, horizon="2h", step="15min")
    reqs = plan.to_ocpp("1.6")
    max_profiles = [r for r in reqs if r.payload["connectorId"] == 0]
    assert len(max_profiles) == 1 and max_profiles[0].station_id == "CS-1"
    prof = max_profiles[0].payload["csChargingProfiles"]
    assert prof["chargingProfilePurpose"] == "ChargePointMaxProfile"
    assert "transactionId" not in prof
    assert prof["chargingSchedule"]["chargingSchedulePeriod"] == [{"startPeriod": 0, "limit": 40.0}]
    tx = [r.payload for r in reqs if r.payload["connectorId"] > 0]
    assert sorted(p["connectorId"] for p in tx) == [1, 2]
    assert all(schema_errors(r.payload, "1.6") == [] for r in reqs)


def test_station_max_profile_folds_the_kw_limit_into_amperes():
    """Found by a bug hunt: the kW limit of a node with both limits was left out."""
    t0 = pd.Timestamp("2024-06-03 08:00", tz="Europe/Amsterdam")
    site = cp.Site(
        nodes=[
            cp.Node("grid", limit_a=100),
            cp.Node("charger", parent="grid", limit_a=32, limit_kw=11, station_id="CS1"),
        ],
        evses=[
            cp.Evse(f"cp{i}", parent="charger", max_current_a=32, station_id="CS1", connector_id=i)
            for i in (1, 2)
        ],
    )
    ss = [cp.Session(f"s{i}", f"cp{i}", t0, t0 + pd.Timedelta("4h"), energy_kwh=40) for i in (1, 2)]
    plan = cp.optimize(site, ss, start=t0, horizon="4h", step="15min")
    (station,) = [r for r in plan.to_ocpp("2.0.1") if r.payload["evseId"] == 0]
    sched = station.payload["chargingProfile"]["chargingSchedule"][0]
    # 11 kW / (3 x 230 V) = 15.94 A per phase, rounded down (not the 32 A phase limit)
    assert sched["chargingRateUnit"] == "A"
    assert sched["chargingSchedulePeriod"] == [{"startPeriod": 0, "limit": 15.9}]
    # the plan's 3-phase EVs fit under it
    assert plan.current_a_array.sum(axis=0).max() <= 15.9 + 1e-9
    # in W it could not bound the phase currents: no weaker profile is sent
    with pytest.raises(cp.InputError, match="rule 26"):
        plan.to_ocpp("2.0.1", capabilities=StationCapabilities(rate_units=("W",)))
