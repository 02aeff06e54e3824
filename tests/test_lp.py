"""LP/MILP solver on HiGHS: hand-solved optima, V2G rules, demand charge, fallback."""

import warnings

import numpy as np
import pandas as pd
import pytest

import chargeplan as cp
from chargeplan.check import check_plan
from chargeplan.exceptions import SolverError, SolverFallbackWarning
from chargeplan.problem import build_problem
from chargeplan.solvers import lp as lp_mod

T0 = pd.Timestamp("2024-03-04 00:00", tz="UTC")
KPA3 = 0.69  # kW per A on 3 phases at 230 V


def h(x):
    return pd.Timedelta(hours=x)


def hourly(values, start=T0):
    return pd.Series(values, index=pd.date_range(start, periods=len(values), freq="1h"))


def one_evse_site(bidirectional=False, **kw):
    return cp.Site(
        nodes=[cp.Node("grid", limit_a=63)],
        evses=[cp.Evse("cp", parent="grid", max_current_a=16, bidirectional=bidirectional)],
        **kw,
    )


@pytest.mark.parametrize("method", ["lp", "milp"])
def test_cheapest_hours(method):
    site = cp.Site(
        nodes=[cp.Node("grid", limit_a=63)], evses=[cp.Evse("cp1", parent="grid", max_current_a=32)]
    )
    s = cp.Session("s1", evse="cp1", arrival=T0, departure=T0 + h(4), energy_kwh=44.16)
    tariff = cp.Tariff(import_price_per_kwh=hourly([0.3, 0.1, 0.2, 0.4]))
    plan = cp.optimize(
        site, [s], start=T0, horizon="4h", step="15min", tariff=tariff, method=method
    )
    np.testing.assert_allclose(plan.current_a["cp1"], [0] * 4 + [32] * 8 + [0] * 4)
    assert plan.kpis["total_cost"] == pytest.approx(22.08 * 0.1 + 22.08 * 0.2)
    assert plan.report.method == method and plan.report.status == "optimal"


def test_pv_surplus_used_first():
    site = one_evse_site()
    s = cp.Session("s", evse="cp", arrival=T0, departure=T0 + h(6), energy_kwh=11.04)
    pv = hourly([0, 0, 0, 20, 20, 0])
    plan = cp.optimize(
        site,
        [s],
        start=T0,
        horizon="6h",
        step="15min",
        tariff=cp.Tariff(import_price_per_kwh=0.3, export_price_per_kwh=0.05),
        forecast=cp.Forecast(pv_kw=pv),
        method="lp",
    )
    cur = plan.current_a["cp"].to_numpy()
    assert cur[:12].sum() == 0 and cur[16:].sum() == 0
    np.testing.assert_allclose(cur[12:16], 16)
    # 20 kW PV for 2 h = 40 kWh; 11.04 kWh used by the EV: export revenue 28.96 * 0.05
    assert plan.kpis["energy_cost"] == pytest.approx(-(40 - 11.04) * 0.05)


def v2g_session(**kw):
    base = dict(
        id="s",
        evse="cp",
        arrival=T0,
        departure=T0 + h(3),
        energy_kwh=0.0,
        battery_capacity_kwh=60,
        soc_now_pct=50,
        soc_min_pct=50 - 100 / 6,
        v2g=True,
        round_trip_efficiency=0.9,
    )
    base.update(kw)
    return cp.Session(**base)


def test_v2g_arbitrage_that_pays():
    # sell at 0.50 in hour 0, buy back at 0.10 later. Reserve depth 10 kWh of battery:
    # at most 9 kWh at the meter (eta 0.9) at <= 11.04 kW; recharge 10 kWh at 0.10.
    site = one_evse_site(bidirectional=True)
    prices = hourly([0.5, 0.1, 0.1])
    tariff = cp.Tariff(import_price_per_kwh=prices, export_price_per_kwh=prices)
    plan = cp.optimize(
        site, [v2g_session()], start=T0, horizon="3h", step="1h", tariff=tariff, method="milp"
    )
    assert plan.power_kw["cp"].iloc[0] < 0
    k = plan.kpis
    # 9 kWh less what rounding may take: the reserve keeps back one 0.1 A step per
    # charge slot (0.069 kWh each) and the rate is rounded down to 0.1 A
    assert 9.0 - 0.069 - 0.069 <= k["v2g_discharged_kwh"] <= 9.0
    x = k["v2g_discharged_kwh"]
    assert k["total_cost"] == pytest.approx(0.1 * x / 0.9 - 0.5 * x, abs=5e-3)
    assert plan.sessions.loc["s", "delivered_kwh"] == pytest.approx(0.0, abs=0.08)
    assert plan.sessions.loc["s", "delivered_kwh"] <= 1e-9


@pytest.mark.parametrize("case", ["spread_below_loss", "degradation", "not_willing"])
def test_v2g_that_does_not_pay_or_is_not_allowed(case):
    site = one_evse_site(bidirectional=True)
    prices = hourly([0.105, 0.1, 0.1]) if case == "spread_below_loss" else hourly([0.5, 0.1, 0.1])
    kw = {}
    if case == "degradation":
        kw["degradation_cost_per_kwh"] = 0.5
    if case == "not_willing":
        kw["v2g"] = False
    tariff = cp.Tariff(import_price_per_kwh=prices, export_price_per_kwh=prices)
    plan = cp.optimize(
        site, [v2g_session(**kw)], start=T0, horizon="3h", step="1h", tariff=tariff, method="lp"
    )
    assert (plan.power_kw["cp"] >= 0).all()
    assert plan.kpis["v2g_discharged_kwh"] == 0


@pytest.mark.parametrize(
    ("evse_kw", "session_kw"),
    [
        ({"max_power_kw": 50, "dc": True, "max_discharge_power_kw": 0}, {}),
        ({"max_power_kw": 50, "dc": True}, {"max_discharge_power_kw": 0.0}),
        ({"max_current_a": 32, "max_discharge_current_a": 0}, {}),
        ({"max_current_a": 32}, {"max_discharge_current_a": 0.0}),
        ({"max_current_a": 32, "max_discharge_power_kw": 0}, {}),
    ],
)
def test_a_zero_discharge_limit_means_no_discharge(evse_kw, session_kw):
    """Found by a bug hunt: a limit of 0 was read as "not given" (the charge limit)."""
    site = cp.Site(
        nodes=[cp.Node("grid", limit_a=200)],
        evses=[cp.Evse("cp", parent="grid", bidirectional=True, **evse_kw)],
    )
    session = v2g_session(departure=T0 + h(4), energy_kwh=5, **session_kw)
    bid = cp.V2GBid("b", start=T0 + h(1), end=T0 + h(2), price_per_kwh=2.0, max_discharge_kw=50)
    kw = dict(start=T0, horizon="4h", step="1h", v2g_bids=[bid])
    plan = cp.optimize(
        site, [session], tariff=cp.Tariff(import_price_per_kwh=0.1), **kw, method="lp"
    )
    assert (plan.rate_kw >= 0).all()
    # the independent checker reads the limit as 0 too: a discharge is a violation
    rate = np.array([[0.0, -5.0, 5.0, 5.0]])
    current = rate / (KPA3 if "max_current_a" in evse_kw else 1.0)
    grid = cp.validate(site, [session], start=T0, horizon="4h", step="1h")
    found = check_plan(
        site, [session], grid, rate, np.zeros_like(rate) if "dc" in evse_kw else current
    )
    assert {v.kind for v in found} & {"max_discharge_power", "max_discharge_current"}


def test_v2g_needs_bidirectional_evse():
    with pytest.raises(cp.InputError) as e:
        cp.optimize(
            one_evse_site(bidirectional=False), [v2g_session()], start=T0, horizon="3h", step="1h"
        )
    assert "sessions[0] (id='s').v2g" in e.value.paths


def test_v2g_bid_paid_and_reserve_kept():
    # flat 0.2 prices, a bid paying 1.0/kWh for up to 5 kW in hour 1
    site = one_evse_site(bidirectional=True)
    bid = cp.V2GBid("b1", start=T0 + h(1), end=T0 + h(2), price_per_kwh=1.0, max_discharge_kw=5)
    plan = cp.optimize(
        site,
        [v2g_session(energy_kwh=5.0)],
        start=T0,
        horizon="3h",
        step="1h",
        tariff=cp.Tariff(import_price_per_kwh=0.2),
        v2g_bids=[bid],
        method="milp",
    )
    p = plan.power_kw["cp"].to_numpy()
    assert p[1] == pytest.approx(-5.0, abs=0.07)
    assert plan.kpis["v2g_revenue"] == pytest.approx(5.0, abs=0.07)
    assert plan.sessions.loc["s", "delivered_kwh"] == pytest.approx(5.0, abs=0.07)
    assert plan.violations() == []


def test_reserve_limits_discharge():
    # depth 2 kWh of battery (1.8 kWh at the meter); 15-min slots; min 6 A = 4.14 kW.
    # A bid pays for up to 5 kW in the first hour: one discharge slot at 5 kW takes
    # 1.38 kWh from the battery, two in a row would break the reserve, so the MILP
    # alternates discharge and recharge.
    site = one_evse_site(bidirectional=True)
    bid = cp.V2GBid("b1", start=T0, end=T0 + h(1), price_per_kwh=1.0, max_discharge_kw=5)
    s = v2g_session(soc_min_pct=50 - 200 / 60)
    plan = cp.optimize(
        site,
        [s],
        start=T0,
        horizon="3h",
        step="15min",
        tariff=cp.Tariff(import_price_per_kwh=0.2),
        v2g_bids=[bid],
        method="milp",
    )
    assert plan.violations() == []
    p = plan.power_kw["cp"].to_numpy()
    e = p * 0.25
    running = np.cumsum(np.where(e < 0, e / 0.9, e))
    assert running.min() >= -2.0 - 1e-9
    assert running.min() <= -1.3  # the reserve is used
    assert not ((p[:-1] < 0) & (p[1:] < 0)).any()  # never two discharge slots in a row
    assert p.min() == pytest.approx(-7.2 * 0.69)  # 5 kW -> 7.2 A rounded down
    assert plan.kpis["v2g_revenue"] == pytest.approx(2 * 7.2 * 0.69 * 0.25)


def test_demand_charge_flattens_peak():
    site = cp.Site(
        nodes=[cp.Node("grid", limit_a=63)], evses=[cp.Evse("cp1", parent="grid", max_current_a=32)]
    )
    s = cp.Session("s1", evse="cp1", arrival=T0, departure=T0 + h(4), energy_kwh=22.08)
    flat = cp.optimize(
        site,
        [s],
        start=T0,
        horizon="4h",
        step="15min",
        method="lp",
        tariff=cp.Tariff(import_price_per_kwh=0.2),
    )
    assert flat.kpis["peak_import_kw"] == pytest.approx(32 * KPA3)
    dc = cp.optimize(
        site,
        [s],
        start=T0,
        horizon="4h",
        step="15min",
        method="lp",
        tariff=cp.Tariff(import_price_per_kwh=0.2, demand_charge_per_kw=10),
    )
    # 22.08 kWh over 4 h: 5.52 kW = 8 A on 3 phases in every slot
    assert dc.kpis["peak_import_kw"] == pytest.approx(5.52)
    np.testing.assert_allclose(dc.current_a["cp1"], 8.0)
    assert dc.kpis["demand_charge"] == pytest.approx(55.2)


def test_peak_already_reached_is_free():
    site = cp.Site(
        nodes=[cp.Node("grid", limit_a=63)], evses=[cp.Evse("cp1", parent="grid", max_current_a=32)]
    )
    s = cp.Session("s1", evse="cp1", arrival=T0, departure=T0 + h(4), energy_kwh=22.08)
    plan = cp.optimize(
        site,
        [s],
        start=T0,
        horizon="4h",
        step="15min",
        method="lp",
        tariff=cp.Tariff(import_price_per_kwh=0.2, demand_charge_per_kw=10, peak_already_kw=11.04),
    )
    assert plan.kpis["peak_import_kw"] <= 11.04 + 1e-6
    assert plan.kpis["demand_charge"] == pytest.approx(0.0, abs=1e-6)
    assert plan.kpis["delivered_kwh"] == pytest.approx(22.08)


def _kinds(keys):
    return np.unique(keys >> np.int64(52)).tolist()


def test_site_import_substituted_where_the_site_only_imports():
    # 2 kW base load all along, 20 kW PV in hours 3-4: the site can export only there
    site = one_evse_site()
    s = cp.Session("s", evse="cp", arrival=T0, departure=T0 + h(6), energy_kwh=11.04)
    tariff = cp.Tariff(import_price_per_kwh=hourly([0.3, 0.1, 0.3, 0.3, 0.3, 0.3]))
    kw = dict(start=T0, horizon="6h", step="15min", tariff=tariff)

    def model(forecast, tariff_=tariff):
        grid = cp.validate(site, [s], **{**kw, "tariff": tariff_}, forecast=forecast)
        return lp_mod.build_lp(build_problem(site, [s], grid, tariff_, forecast))

    base = cp.Forecast(base_load_kw=2.0)
    m = model(base)
    # separable: only the energy row, no import column, presolve off; the base load's
    # import cost (2 kW x 6 h, 1 h of it at 0.1) is the objective's constant
    assert _kinds(m.row_keys) == [1] and m.presolve == "off"
    assert 4 not in _kinds(m.col_keys) and 5 not in _kinds(m.col_keys)
    assert m.offset == pytest.approx(2.0 * (5 * 0.3 + 0.1))
    plan = cp.optimize(site, [s], **kw, forecast=base, method="lp")
    # 11.04 kWh at 11.04 kW: the cheap hour
    assert plan.kpis["energy_cost"] == pytest.approx(m.offset + 11.04 * 0.1)

    pv = cp.Forecast(base_load_kw=2.0, pv_kw=hourly([0, 0, 0, 20, 20, 0]))
    m = model(pv)
    bal = m.row_keys[(m.row_keys >> np.int64(52)) == 3] & np.int64((1 << 20) - 1)
    assert bal.tolist() == list(range(12, 20)) and m.presolve == "choose"
    assert m.offset == pytest.approx(2.0 * (3 * 0.3 + 0.1))  # hours 0-2 and 5

    dc = cp.Tariff(import_price_per_kwh=0.2, demand_charge_per_kw=10)
    m = model(base, dc)  # the demand rows need the import in every slot
    assert (m.row_keys >> np.int64(52) == 3).sum() == 24 and m.offset == 0.0


def test_export_limit_caps_v2g():
    # 6 kW export: 8.6 A on 3 phases (5.934 kW) is the most discharge allowed
    site = one_evse_site(bidirectional=True, export_limit_kw=6.0)
    prices = hourly([0.5, 0.1, 0.1])
    plan = cp.optimize(
        site,
        [v2g_session()],
        start=T0,
        horizon="3h",
        step="1h",
        tariff=cp.Tariff(import_price_per_kwh=prices, export_price_per_kwh=prices),
        method="lp",
    )
    assert plan.power_kw["cp"].iloc[0] >= -6.0 - 1e-9
    # 8.6 A would fit, but 0.1 A stays reserved for rounding a charge down: 8.5 A
    assert plan.power_kw["cp"].iloc[0] == pytest.approx(-8.5 * 0.69)


def test_auto_uses_lp_for_v2g_and_falls_back_on_failure(monkeypatch):
    site = one_evse_site(bidirectional=True)
    prices = hourly([0.5, 0.1, 0.1])
    tariff = cp.Tariff(import_price_per_kwh=prices, export_price_per_kwh=prices)
    ok = cp.optimize(
        site, [v2g_session(energy_kwh=3.0)], start=T0, horizon="3h", step="1h", tariff=tariff
    )
    assert ok.report.method in ("lp", "milp") and "LP features" in ok.report.reason

    def broken(h, **kw):
        raise SolverError("HiGHS hit its time limit", status="time_limit")

    monkeypatch.setattr(lp_mod, "_run", broken)
    with pytest.warns(SolverFallbackWarning, match="time_limit"):
        plan = cp.optimize(
            site, [v2g_session(energy_kwh=3.0)], start=T0, horizon="3h", step="1h", tariff=tariff
        )
    assert plan.report.method == "greedy"
    assert "fell back to greedy" in plan.report.reason
    assert plan.report.info["fallback_from"]["status"] == "time_limit"
    assert plan.violations() == []
    assert (plan.power_kw["cp"] >= 0).all()
    with pytest.raises(SolverError):
        cp.optimize(
            site,
            [v2g_session(energy_kwh=3.0)],
            start=T0,
            horizon="3h",
            step="1h",
            tariff=tariff,
            method="lp",
        )


def test_time_limit_validated():
    with pytest.raises(cp.InputError) as e:
        cp.optimize(one_evse_site(), [], start=T0, horizon="1h", step="15min", time_limit_s=-1)
    assert "optimize.time_limit_s" in e.value.paths


@pytest.mark.parametrize("time_limit_s", [-1, 0, float("nan"), True, "1"])
def test_parameter_problems_come_with_the_inputs_problems(time_limit_s):
    """One InputError names every offending field: before, time_limit_s and the delay
    cost were checked only once the inputs had passed (and True was a 1 s limit)."""
    with pytest.raises(cp.InputError) as e:
        cp.optimize(
            one_evse_site(),
            [],
            start=T0,
            horizon="1h",
            step="7min",
            time_limit_s=time_limit_s,
            delay_cost_per_kwh_h=-1,
        )
    assert e.value.paths == [
        "optimize.horizon",
        "optimize.time_limit_s",
        "optimize.delay_cost_per_kwh_h",
    ]


def test_auto_falls_back_to_lp_when_greedy_leaves_energy_unmet():
    # priority-free EDF/LLF greedy gives the long session the cheap early slots; the
    # short one then cannot be served. LP serves both.
    site = cp.Site(
        nodes=[cp.Node("f", limit_a=16)],
        evses=[
            cp.Evse("a", parent="f", max_current_a=16),
            cp.Evse("b", parent="f", max_current_a=16),
        ],
    )
    ss = [
        cp.Session("long", evse="a", arrival=T0, departure=T0 + h(2), energy_kwh=11.04),
        cp.Session("short", evse="b", arrival=T0, departure=T0 + h(1), energy_kwh=5.52),
    ]
    tariff = cp.Tariff(import_price_per_kwh=hourly([0.1, 0.9]))
    g = cp.optimize(site, ss, start=T0, horizon="2h", step="15min", tariff=tariff, method="greedy")
    a = cp.optimize(site, ss, start=T0, horizon="2h", step="15min", tariff=tariff)
    assert a.kpis["unmet_kwh"] <= g.kpis["unmet_kwh"] + 1e-9
    assert a.kpis["unmet_kwh"] == pytest.approx(0.0, abs=0.02)


@pytest.mark.parametrize("seed", range(8))
def test_milp_never_worse_than_greedy(seed):
    rng = np.random.default_rng(seed)
    n = 6
    site = cp.Site(
        nodes=[
            cp.Node("g", limit_a=float(rng.integers(20, 60))),
            cp.Node("f", parent="g", limit_a=float(rng.integers(10, 40))),
        ],
        evses=[cp.Evse(f"e{i}", parent="f" if i % 2 else "g", max_current_a=32) for i in range(n)],
    )
    ss = [
        cp.Session(
            f"s{i}",
            evse=f"e{i}",
            arrival=T0 + h(rng.uniform(0, 2)),
            departure=T0 + h(rng.uniform(3, 6)),
            energy_kwh=float(rng.uniform(2, 25)),
        )
        for i in range(n)
    ]
    tariff = cp.Tariff(import_price_per_kwh=hourly(rng.uniform(0.05, 0.5, 6)))
    kw = dict(start=T0, horizon="6h", step="30min", tariff=tariff)
    g = cp.optimize(site, ss, method="greedy", **kw)
    m = cp.optimize(site, ss, method="milp", **kw)
    assert m.violations() == [] and g.violations() == []
    # rounding to 0.1 A costs at most one step per slot and session
    tol = n * 12 * 0.1 * KPA3 * 0.5
    assert m.kpis["unmet_kwh"] <= g.kpis["unmet_kwh"] + tol
    if abs(m.kpis["unmet_kwh"] - g.kpis["unmet_kwh"]) < 1e-3:
        assert m.kpis["energy_cost"] <= g.kpis["energy_cost"] + tol * 0.5


def test_milp_fills_a_node_of_exactly_the_minimum_current():
    # The MILP keeps a small headroom on node rows against HiGHS's tolerances, so a 6 A
    # site could not hold one EV at its 6 A minimum: the MILP delivered nothing. The
    # greedy refill places that energy. Hand-solved: 6 A x 3 x 230 V = 4.14 kW; 5 kWh
    # would need 4.83 slots of 15 min, and a 5th slot at the minimum would overshoot the
    # request, so 4 slots at 6 A: 4.14 kWh.
    site = cp.Site(
        nodes=[cp.Node("grid", limit_a=6)], evses=[cp.Evse("e1", parent="grid", max_current_a=32)]
    )
    s = cp.Session("s1", evse="e1", arrival=T0, departure=T0 + h(2), energy_kwh=5.0)
    plan = cp.optimize(site, [s], start=T0, horizon="2h", step="15min", method="milp")
    assert plan.report.method == "milp"
    np.testing.assert_allclose(np.sort(plan.current_a["e1"].to_numpy()), [0] * 4 + [6] * 4)
    assert plan.sessions["delivered_kwh"].iloc[0] == pytest.approx(4.14)
    assert plan.report.info["refilled_weighted_kwh"] == pytest.approx(4.14)


def test_lp_build_has_no_silent_warnings():
    site = one_evse_site()
    s = cp.Session("s", evse="cp", arrival=T0, departure=T0 + h(2), energy_kwh=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cp.optimize(site, [s], start=T0, horizon="2h", step="15min", method="lp")


def test_highs_status_unknown_is_retried():
    # a real re-plan (2019-09-11 simulation) on which HiGHS 1.16 stops the relaxation
    # with status Unknown after postsolve; one more run from its basis solves it
    from pathlib import Path

    from chargeplan.scenario import load_scenario

    sc = load_scenario(Path(__file__).parent / "data" / "lp_status_unknown.json")
    plan = sc.optimize(method="lp")
    assert plan.report.method == "lp" and plan.violations() == []
    assert plan.kpis["delivered_kwh"] > 0


def test_v2g_refill_never_lowers_an_lp_charge():
    """A V2G case hypothesis found: the refill after the LP repair broke the export limit.

    To keep the min-current rule for the last bit of an EV's energy, the greedy refill
    takes energy back from the EV's dearest slots. It took it from a charge the LP had
    planned in a slot where the site exports up to its limit, so the export rose above
    it (16.40 > 16.10 kW in slot 8) and ``optimize`` raised. With EVs that may
    discharge, the refill now leaves every LP rate as it is.
    """
    from pathlib import Path

    from chargeplan.scenario import load_scenario

    sc = load_scenario(Path(__file__).parent / "data" / "lp_v2g_export_give_back.json")
    plan = sc.optimize(method="lp")
    assert plan.report.method == "lp" and plan.violations() == []


def test_refill_checks_phasor_lines_exactly_after_a_clipped_row():
    """A 2019-09-11 re-plan where the LP refill broke the transformer's L1 limit.

    The LP plan loads the line-to-line transformer beyond the sum-of-magnitudes bound of
    its current rows (legal: the exact phasor stays in limit), so the refill starts from
    rows clipped at 0. Capacity given back for the min-current rule then raised them
    above 0, and a linear pre-check that trusted them skipped the exact phasor bound:
    139.12 A > 138.89 A, and ``optimize`` raised. Found by the real-day evaluation.
    """
    from pathlib import Path

    from chargeplan.scenario import load_scenario

    sc = load_scenario(Path(__file__).parent / "data" / "refill_phasor_clipped_row.json")
    plan = sc.optimize(method="lp")
    assert plan.report.method == "lp" and plan.violations() == []


class _FlakyHighs:
    """Stands in for a Highs object whose first run ends with the given status."""

    def __init__(self, first):
        import highspy

        self.statuses = [first, highspy.HighsModelStatus.kOptimal]
        self.options = {"presolve": "choose"}
        self.runs = []

    def run(self):
        self.runs.append(self.options["presolve"])

    def getModelStatus(self):
        return self.statuses[min(len(self.runs), 2) - 1]

    def setOptionValue(self, k, v):
        self.options[k] = v

    def getOptionValue(self, k):
        return self.options[k]

    def modelStatusToString(self, ms):
        return str(ms)


@pytest.mark.parametrize("first", ["kUnknown", "kInfeasible", "kUnboundedOrInfeasible"])
def test_run_retries_numerical_artefacts_once_with_presolve_off(first):
    import highspy

    h = _FlakyHighs(getattr(highspy.HighsModelStatus, first))
    assert lp_mod._run(h) == "optimal"
    assert h.runs == ["choose", "off"] and h.options["presolve"] == "choose"


def test_run_raises_on_a_time_limit_without_retry():
    import highspy

    h = _FlakyHighs(highspy.HighsModelStatus.kTimeLimit)
    with pytest.raises(SolverError, match="time limit"):
        lp_mod._run(h)
    assert h.runs == ["choose"]


def test_lp_repair_keeps_a_bid_the_relaxation_met_by_charging_and_discharging():
    # A bid pays 1.0/kWh for 5 kW in hour 2; energy costs 0.1. The relaxation "meets"
    # it by charging 5.56 kW and discharging 5 kW in the same cells; keeping the larger
    # side (the charge) loses the bid. The repair then also tries keeping the
    # discharge there, and comes close to what the exact MILP finds.
    site = one_evse_site(bidirectional=True)
    s = v2g_session(departure=T0 + h(4), energy_kwh=5.0, soc_min_pct=20)
    bid = cp.V2GBid("b", start=T0 + h(2), end=T0 + h(3), price_per_kwh=1.0, max_discharge_kw=5.0)
    kw = dict(start=T0, horizon="5h", step="15min", v2g_bids=[bid])
    kw["tariff"] = cp.Tariff(import_price_per_kwh=0.1)
    plans = {m: cp.optimize(site, [s], method=m, **kw) for m in ("lp", "milp")}
    milp = plans["milp"].kpis
    assert plans["milp"].power_kw["cp"].to_numpy()[8:12] == pytest.approx([-5.0] * 4, abs=0.07)
    assert milp["v2g_revenue"] == pytest.approx(5.0, abs=0.07)
    lp = plans["lp"]
    assert (lp.power_kw["cp"].to_numpy()[8:12] < -4.5).all()  # discharges in the bid's hour
    assert lp.kpis["v2g_revenue"] >= 0.95 * milp["v2g_revenue"]  # (was 0 before)
    assert lp.kpis["total_cost"] <= milp["total_cost"] + 0.1
    for plan in plans.values():
        assert plan.sessions.loc["s", "delivered_kwh"] >= 5.0 - 0.05


@pytest.mark.parametrize("arrives_min", [0, 5])
def test_a_bid_pays_only_for_discharge_inside_its_window(arrives_min):
    """Found by a bug hunt: a bid whose window covers 5 minutes of a 15-minute slot paid
    for the whole slot's discharge (2.76 instead of 0.92), and for an EV that arrived
    when the window closed (which the LP then discharged and bought back)."""
    t0 = pd.Timestamp("2024-06-03 18:00", tz="Europe/Amsterdam")
    site = cp.Site(
        nodes=[cp.Node("grid", limit_a=63)],
        evses=[cp.Evse("cp1", parent="grid", max_current_a=16, bidirectional=True)],
    )
    ev = cp.Session(
        "s1",
        evse="cp1",
        arrival=t0 + pd.Timedelta(minutes=arrives_min),
        departure=t0 + h(1),
        energy_kwh=0.0,
        v2g=True,
        battery_capacity_kwh=60,
        soc_now_pct=80,
        soc_min_pct=20,
        round_trip_efficiency=1.0,
    )
    bid = cp.V2GBid("b1", t0, t0 + pd.Timedelta("5min"), price_per_kwh=1.0, max_discharge_kw=100)
    kw = dict(start=t0, horizon="1h", step="15min", v2g_bids=[bid], method="lp")
    plan = cp.optimize(site, [ev], tariff=cp.Tariff(import_price_per_kwh=0.3), **kw)
    if arrives_min == 0:
        # 16 A x 3 x 230 V = 11.04 kW for the 5 paid minutes of slot 0
        assert plan.rate_kw[0, 0] == pytest.approx(-11.04)
        assert plan.kpis["v2g_revenue"] == pytest.approx(11.04 * 5 / 60)
    else:  # nothing can be paid: discharging would only cost the energy bought back
        assert (plan.rate_kw >= 0).all()
        assert plan.kpis["v2g_revenue"] == 0.0


def _split_remainder_case():
    """Three EVs on a 14 A node: the relaxation gives C 4 A in each slot (below 6 A).

    A (slot 0 only) and B (slot 1 only) each need 10 A for an hour, C (both slots) 8 A.
    Hand-solved optimum with the min-current rule: C charges 6-8 A in one slot and the
    EV sharing it gives way, so the node carries 14 A in that slot and 10 A in the
    other: 24 A-h = 16.56 kWh. Setting C's 4 A cells to 0 delivers only A and B (20 A-h,
    13.8 kWh): the 4 A left in each slot is below the minimum.
    """
    t0 = pd.Timestamp("2026-01-05 00:00", tz="UTC")
    hour = pd.Timedelta("1h")
    site = cp.Site(
        nodes=[cp.Node("grid", limit_a=14)],
        evses=[cp.Evse(e, parent="grid", max_current_a=16, phase_rotation="RST") for e in "abc"],
        voltage_v=230,
    )
    kwh_per_a = 3 * 230 / 1000  # one hour at 1 A on three phases
    sessions = [
        cp.Session("A", evse="a", arrival=t0, departure=t0 + hour, energy_kwh=10 * kwh_per_a),
        cp.Session(
            "B", evse="b", arrival=t0 + hour, departure=t0 + 2 * hour, energy_kwh=10 * kwh_per_a
        ),
        cp.Session("C", evse="c", arrival=t0, departure=t0 + 2 * hour, energy_kwh=8 * kwh_per_a),
    ]
    return site, sessions, dict(start=t0, horizon="2h", step="1h")


def test_lp_repair_raises_cells_to_the_minimum_where_zeroing_loses_energy():
    site, sessions, grid = _split_remainder_case()
    plan = cp.optimize(site, sessions, method="lp", **grid)
    assert plan.kpis["delivered_kwh"] == pytest.approx(24 * 0.69, abs=1e-6)
    assert plan.report.info["repair"].startswith("re-solve")
    assert plan.report.status == "repaired"
    a = plan.current_a
    assert ((a == 0) | (a >= 6 - 1e-9)).all().all()


def test_lp_repair_keeps_the_plain_repair_when_the_re_solve_fails(monkeypatch):
    site, sessions, grid = _split_remainder_case()

    def fail(*args, **kwargs):
        raise SolverError("HiGHS hit its time limit", status="time_limit")

    monkeypatch.setattr(lp_mod, "repair_by_resolving", fail)
    plan = cp.optimize(site, sessions, method="lp", **grid)
    assert plan.kpis["delivered_kwh"] == pytest.approx(20 * 0.69, abs=1e-6)
    assert plan.report.info["repair"].startswith("cells below the minimum set to 0")
    assert plan.report.info["repair_resolve"]["status"] == "time_limit"
