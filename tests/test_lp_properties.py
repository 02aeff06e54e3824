"""Property tests for the LP/MILP/auto paths with V2G, bids and demand charges."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import chargeplan as cp
from test_properties import HOURS, STEP_MIN, T0, scenarios


@st.composite
def v2g_scenarios(draw):
    site, sessions, prices, forecast = draw(scenarios())
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    bidir = {e.id for e in site.evses if rng.random() < 0.5}
    evses = [replace(e, bidirectional=e.id in bidir) for e in site.evses]
    site = cp.Site(
        nodes=site.nodes,
        evses=evses,
        voltage_v=site.voltage_v,
        export_limit_kw=float(rng.uniform(0, 30)) if rng.random() < 0.3 else None,
    )
    out = []
    for s in sessions:
        if s.evse in bidir and rng.random() < 0.7:
            soc = float(rng.uniform(20, 80))
            s = replace(
                s,
                v2g=True,
                battery_capacity_kwh=60.0,
                soc_now_pct=soc,
                soc_min_pct=float(rng.uniform(0, soc)),
                round_trip_efficiency=float(rng.uniform(0.8, 0.95)),
                degradation_cost_per_kwh=float(rng.uniform(0, 0.05)),
            )
        out.append(s)
    export = prices * float(rng.uniform(0.5, 1.2))
    tariff = cp.Tariff(
        import_price_per_kwh=prices,
        export_price_per_kwh=export,
        demand_charge_per_kw=float(rng.choice([0.0, 0.0, 5.0])),
    )
    bids = []
    if rng.random() < 0.5:
        a = float(rng.uniform(0, HOURS - 1))
        bids.append(
            cp.V2GBid(
                "b",
                start=T0 + pd.Timedelta(hours=a),
                end=T0 + pd.Timedelta(hours=a + 1),
                price_per_kwh=float(rng.uniform(0.2, 2)),
                max_discharge_kw=float(rng.uniform(1, 30)),
                committed_kw=0.0,
            )
        )
    return site, out, tariff, forecast, bids


@pytest.mark.parametrize("method", ["lp", "auto"])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=v2g_scenarios())
def test_lp_plans_never_break_a_limit(method, scenario):
    site, sessions, tariff, forecast, bids = scenario
    plan = cp.optimize(
        site,
        sessions,
        start=T0,
        horizon=f"{HOURS}h",
        step=f"{STEP_MIN}min",
        tariff=tariff,
        forecast=forecast,
        v2g_bids=bids,
        method=method,
    )
    assert plan.violations() == []
    s = plan.sessions
    assert (s["delivered_kwh"] <= s["requested_kwh"] + 1e-6).all()
    evses = {e.id: e for e in site.evses}
    for i, sess in enumerate(sessions):
        if not (sess.v2g and evses[sess.evse].bidirectional):
            assert (plan.rate_kw[i] >= 0).all()
        else:
            e = plan.rate_kw[i] * plan.problem.present[i] * STEP_MIN / 60
            running = np.cumsum(np.where(e < 0, e / sess.round_trip_efficiency, e))
            assert running.min(initial=0) >= -sess.reserve_depth_kwh() - 1e-6
