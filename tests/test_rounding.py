"""Rounding solver rates to the station grid keeps every limit."""

import numpy as np
import pandas as pd

import chargeplan as cp
from chargeplan.problem import build_problem, floor_to_grid
from chargeplan.rounding import _round_cells, _trim_net_energy

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


def _round_cells_numpy(rate, dc, kw_per_a, pmin, dmin):
    """The rounding as it was written in numpy: the reference for the numba kernel."""
    sign = np.where(rate < 0.0, -1.0, 1.0)
    mag = np.abs(rate)
    mins = np.where(rate < 0.0, dmin[:, None], pmin[:, None])
    out = np.zeros_like(rate)
    current = np.full_like(rate, np.nan)
    ac = ~dc
    kpa = kw_per_a[ac][:, None]
    amps = floor_to_grid(mag[ac] / kpa)
    i_min = np.round(mins[ac] / kpa, 6)
    amps = np.round(np.where(amps < i_min - 1e-6, 0.0, amps), 1) * sign[ac]
    current[ac] = amps + 0.0
    out[ac] = amps * kpa + 0.0
    kw = floor_to_grid(mag[dc] * 1000.0) / 1000.0
    out[dc] = np.where(kw < mins[dc] - 1e-9, 0.0, kw) * sign[dc] + 0.0
    return out, current


def test_round_kernel_is_numpys_rounding_bit_for_bit():
    """Every cell rounds as the numpy expressions do, on the cells where a reordered
    formula would differ: rates a few ulps around the points where flooring to the grid
    flips, minimum currents just off the 1e-6 grid, discharges, -0.0, AC at several
    voltages and DC."""
    rng = np.random.default_rng(11)
    S, T = 300, 64
    dc = rng.random(S) < 0.25
    kw_per_a = np.where(dc, 0.0, rng.choice([0.12, 0.208, 0.23, 0.24, 0.69, 1.245], S))
    unit = np.where(dc, 1e-3, kw_per_a)[:, None]  # kW per A, or per W for DC
    # grid points k * 0.1 (A, or W for DC) just below where floor(x / 0.1 + 1e-6) flips
    k = rng.integers(0, 400, (S, T))
    x = (k - 1e-6) * 0.1 * unit
    x = x + rng.integers(-3, 4, (S, T)) * np.spacing(x)
    rate = np.where(rng.random((S, T)) < 0.8, x, k * 0.1 * unit)
    rate *= rng.choice([1.0, -1.0], (S, T))
    rate[rng.random((S, T)) < 0.03] = -0.0
    rate[rng.random((S, T)) < 0.03] = rng.uniform(-200.0, 200.0)
    # minimum currents a little off the 1e-6 grid that np.round(..., 6) snaps them to
    off = rng.choice([0.0, 4e-7, -4e-7, 1.4e-6, -1.4e-6], S)
    pmin = np.where(dc, rng.choice([0.0, 0.05, 5.0], S), (6.0 + off) * kw_per_a)
    dmin = pmin * rng.choice([0.0, 1.0], S)
    rate[~dc, :8] = 6.0 * kw_per_a[~dc, None]  # at the minimum
    want_rate, want_current = _round_cells_numpy(rate, dc, kw_per_a, pmin, dmin)
    got_rate, got_current = np.empty_like(rate), np.empty_like(rate)
    _round_cells(rate, dc, kw_per_a, pmin, dmin, got_rate, got_current)
    assert np.array_equal(got_rate, want_rate)
    assert np.array_equal(got_current, want_current, equal_nan=True)
    for got in (got_rate, got_current):
        assert not np.signbit(got[got == 0.0]).any()  # no negative zeros
