"""Rounding solver rates to the station grid keeps every limit."""

import numpy as np
import pandas as pd

import chargeplan as cp
from chargeplan.problem import build_problem
from chargeplan.rounding import _trim_net_energy

T0 = pd.Timestamp("2024-06-01 12:00", tz="Europe/Amsterdam")


def test_trimming_a_charge_keeps_the_export_limit():
    """Energy above a request is taken back from charging only where export allows it.

    Two 15-min slots. In the second, 10 kW of PV is exported (export limit 0, so the
    EVs may not add to it): EV "a" discharges 7.2 A (4.968 kW) there and EV "b" charges
    as much, so the EVs' net is exactly 0. Plan for "b": 16 A (11.04 kW) then 7.2 A =
    4.002 kWh against 3.0 requested. Trimming from the last slot, as before, would
    lower its charge there and push export above the limit; the excess must come from
    slot 0.
    """
    site = cp.Site(
        nodes=[cp.Node("grid", limit_a=100.0)],
        evses=[
            cp.Evse("ea", parent="grid", max_current_a=16.0, bidirectional=True),
            cp.Evse("eb", parent="grid", max_current_a=16.0),
        ],
        export_limit_kw=0.0,
    )
    end = T0 + pd.Timedelta("30min")
    sessions = [
        cp.Session(
            "a",
            evse="ea",
            arrival=T0,
            departure=end,
            energy_kwh=0.0,
            v2g=True,
            battery_capacity_kwh=60.0,
            soc_now_pct=50.0,
            soc_min_pct=20.0,
        ),
        cp.Session("b", evse="eb", arrival=T0, departure=end, energy_kwh=3.0),
    ]
    pv = pd.Series([0.0, 10.0], index=pd.date_range(T0, periods=2, freq="15min"))
    forecast = cp.Forecast(pv_kw=pv)
    kw = dict(start=T0, horizon="30min", step="15min", forecast=forecast)
    grid = cp.validate(site, sessions, **kw)
    problem = build_problem(site, sessions, grid, None, forecast)
    kpa = problem.kw_per_a
    rate = np.array([[0.0, -7.2 * kpa[0]], [16.0 * kpa[1], 7.2 * kpa[1]]])
    current = np.round(rate / kpa[:, None], 1)
    _trim_net_energy(problem, rate, current)
    ev_kw = (rate * problem.present).sum(axis=0)
    assert ev_kw[1] >= -1e-9  # the EVs add nothing to the PV export in slot 1
    assert rate[1, 1] == 7.2 * kpa[1]
    delivered = (rate[1] * problem.present[1]).sum() * problem.grid.step_h
    assert delivered <= 3.0 + 1e-9
    assert delivered > 3.0 - 0.1 * kpa[1] * problem.grid.step_h  # one 0.1 A step at most
    assert current[1, 0] == 10.1  # 11.04 - 4.008 kW = 7.032 kW = 10.19 A, floored
