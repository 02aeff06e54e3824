"""The auto policy's cost polish on small problems and the delay cost of optimize."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import chargeplan as cp
from chargeplan import datasets
from chargeplan.exceptions import InputError
from chargeplan.solvers import with_delay_cost

T0 = pd.Timestamp("2024-03-05 00:00", tz="Europe/Amsterdam")


def _one_ev_site() -> cp.Site:
    return cp.Site(
        nodes=[cp.Node("grid", limit_a=32)],
        evses=[cp.Evse("e1", parent="grid", max_current_a=16, phases=1)],
        voltage_v=230.0,
    )


def _prices(values: list[float], step: str = "1h") -> cp.Tariff:
    idx = pd.date_range(T0, periods=len(values), freq=step)
    return cp.Tariff(import_price_per_kwh=pd.Series(values, index=idx))


# -- delay cost: hand-solved ------------------------------------------------------------
# One 1-phase 16 A EV (3.68 kW) needs 3.68 kWh: exactly one of three hourly slots.
# Prices 0.20, 0.30, 0.19: the last hour is cheapest (0.01 less than the first).
# Delay cost c adds c * 0.5 h, c * 1.5 h, c * 2.5 h: the last hour becomes dearer than the
# first when 2 c > 0.01, i.e. c > 0.005 EUR/kWh/h.
KW = 16 * 230 / 1000


@pytest.mark.parametrize("method", ["greedy", "lp", "milp", "auto"])
@pytest.mark.parametrize(("delay", "slot"), [(0.0, 2), (0.004, 2), (0.006, 0), (0.05, 0)])
def test_delay_cost_moves_energy_earlier(method: str, delay: float, slot: int) -> None:
    ev = cp.Session("s1", "e1", T0, T0 + pd.Timedelta("3h"), energy_kwh=KW)
    plan = cp.optimize(
        _one_ev_site(),
        [ev],
        start=T0,
        horizon="3h",
        step="1h",
        tariff=_prices([0.20, 0.30, 0.19]),
        method=method,
        delay_cost_per_kwh_h=delay,
    )
    p = plan.power_kw["e1"].to_numpy()
    expected = np.zeros(3)
    expected[slot] = KW
    np.testing.assert_allclose(p, expected, atol=1e-3)
    # the reported cost is the tariff's, never the delay cost
    price = [0.20, 0.30, 0.19][slot]
    assert plan.sessions.loc["s1", "energy_cost"] == pytest.approx(KW * price, abs=1e-3)


def test_delay_cost_leaves_caller_problem_unchanged() -> None:
    ev = cp.Session("s1", "e1", T0, T0 + pd.Timedelta("3h"), energy_kwh=KW)
    site = _one_ev_site()
    grid = cp.validate(site, [ev], start=T0, horizon="3h", step="1h")
    from chargeplan.problem import build_problem

    problem = build_problem(site, [ev], grid, _prices([0.2, 0.3, 0.19]), None, [])
    before = problem.price_import_per_kwh.copy()
    tilted = with_delay_cost(problem, 0.1)
    np.testing.assert_array_equal(problem.price_import_per_kwh, before)
    np.testing.assert_allclose(tilted.price_import_per_kwh - before, [0.05, 0.15, 0.25])
    np.testing.assert_allclose(
        tilted.price_export_per_kwh - problem.price_export_per_kwh, [0.05, 0.15, 0.25]
    )
    assert with_delay_cost(problem, 0.0) is problem


@pytest.mark.parametrize("bad", [-0.01, math.nan, math.inf, "0.1", True])
def test_delay_cost_rejected_with_field_name(bad: object) -> None:
    ev = cp.Session("s1", "e1", T0, T0 + pd.Timedelta("3h"), energy_kwh=1.0)
    with pytest.raises(InputError) as err:
        cp.optimize(
            _one_ev_site(), [ev], start=T0, horizon="3h", step="1h", delay_cost_per_kwh_h=bad
        )  # type: ignore[arg-type]
    assert err.value.problems[0].path == "optimize.delay_cost_per_kwh_h"


# -- auto: cost polish on small problems -------------------------------------------------
def _real_day(day: str, cap_kw: float = 50.0):
    tz = "America/Los_Angeles"
    start = pd.Timestamp(day, tz=tz)
    site = datasets.caltech_site(transformer_cap_kw=cap_kw)
    rows = datasets.load_acn_sessions(start, start + pd.Timedelta(days=1))
    sessions = datasets.acn_to_sessions(rows, site)
    source = pd.Timestamp(pd.Timestamp(day) + pd.Timedelta(weeks=209), tz="Europe/Amsterdam")
    end = start + pd.Timedelta("30h")
    prices = datasets.load_nl_day_ahead_prices(start, end, source_start=source)
    return site, sessions, start, cp.Tariff(import_price_per_kwh=prices)


def test_auto_takes_the_cheaper_lp_plan_on_a_small_real_day() -> None:
    """2019-09-10 on a 50 kW Caltech site: greedy serves everything, but not at least cost.

    36 sessions x 96 slots (below AUTO_LP_MAX_CELLS): auto must return the LP plan,
    deliver as much as greedy (up to the 0.1 A rounding of the profiles) and cost less.
    Measured when written: greedy 28.437 EUR, auto (LP) 28.375 EUR, 269.0 kWh each.
    """
    site, sessions, start, tariff = _real_day("2019-09-10")
    kw = dict(start=start, horizon="24h", step="15min", tariff=tariff)
    greedy = cp.optimize(site, sessions, method="greedy", **kw)
    auto = cp.optimize(site, sessions, method="auto", **kw)
    assert auto.report.method == "lp", auto.report.reason
    assert "small problem" in auto.report.reason
    g, a = greedy.kpis, auto.kpis
    assert a["delivered_kwh"] >= g["delivered_kwh"] - 0.05
    assert a["energy_cost"] < g["energy_cost"] - 0.03
    assert auto.violations() == []


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(1, 6),
    delay=st.sampled_from([0.0, 0.02]),
)
def test_auto_never_worse_than_greedy(seed: int, n: int, delay: float) -> None:
    """Auto keeps greedy's energy and never costs more at the same energy (verified plans)."""
    rng = np.random.default_rng(seed)
    site = cp.Site(
        nodes=[cp.Node("grid", limit_a=float(rng.choice([16, 32, 63])))],
        evses=[
            cp.Evse(f"e{i}", parent="grid", max_current_a=float(rng.choice([16, 32])), phases=3)
            for i in range(n)
        ],
    )
    sessions = []
    for i in range(n):
        a = int(rng.integers(0, 8))
        d = int(rng.integers(a + 1, 13))
        sessions.append(
            cp.Session(
                f"s{i}",
                f"e{i}",
                T0 + pd.Timedelta(minutes=60 * a),
                T0 + pd.Timedelta(minutes=60 * d),
                energy_kwh=float(rng.uniform(1, 40)),
            )
        )
    tariff = _prices(list(rng.uniform(0.05, 0.4, 12)))
    kw = dict(start=T0, horizon="12h", step="1h", tariff=tariff, delay_cost_per_kwh_h=delay)
    greedy = cp.optimize(site, sessions, method="greedy", **kw)
    auto = cp.optimize(site, sessions, method="auto", **kw)
    assert auto.violations() == []
    g, a = greedy.kpis, auto.kpis
    # auto compares the solvers' plans; rounding each current down to the stations' 0.1 A
    # grid afterwards loses at most one 0.1 A step per charging cell (then partly given
    # back), and an LP spreads current over more cells than greedy does
    step_kwh = 0.1 * 3 * 230.0 / 1000.0 * 1.0  # 0.1 A on 3 phases for one 1 h slot
    cells = int((auto.power_kw.to_numpy() > 0).sum() + (greedy.power_kw.to_numpy() > 0).sum())
    tol_kwh = 1e-3 + step_kwh * cells
    assert a["delivered_kwh"] >= g["delivered_kwh"] - tol_kwh
    same_kwh = 0.01 * n
    if delay == 0.0 and abs(a["delivered_kwh"] - g["delivered_kwh"]) <= same_kwh:
        assert a["energy_cost"] <= g["energy_cost"] + 0.4 * same_kwh


# -- the Replanner takes the delay cost too ---------------------------------------------
@pytest.mark.parametrize(("delay", "slot"), [(0.0, 2), (0.006, 0)])
def test_replanner_delay_cost_matches_optimize(delay: float, slot: int) -> None:
    from chargeplan.replan import Replanner

    ev = cp.Session("s1", "e1", T0, T0 + pd.Timedelta("3h"), energy_kwh=KW)
    tariff = _prices([0.20, 0.30, 0.19])
    rp = Replanner(
        _one_ev_site(),
        [ev],
        start=T0,
        horizon="3h",
        step="1h",
        tariff=tariff,
        delay_cost_per_kwh_h=delay,
    )
    plan = rp.plan()
    expected = np.zeros(3)
    expected[slot] = KW
    np.testing.assert_allclose(plan.power_kw["e1"].to_numpy(), expected, atol=1e-3)
    assert plan.sessions.loc["s1", "energy_cost"] == pytest.approx(
        KW * [0.20, 0.30, 0.19][slot], abs=1e-3
    )
    with pytest.raises(InputError) as err:
        Replanner(_one_ev_site(), [ev], start=T0, horizon="3h", step="1h", delay_cost_per_kwh_h=-1)
    assert err.value.problems[0].path == "Replanner.delay_cost_per_kwh_h"


# -- auto when HiGHS fails ----------------------------------------------------------------
def _broken_highs(monkeypatch):
    from chargeplan.exceptions import SolverError
    from chargeplan.solvers import lp as lp_mod

    def broken(h, **kw):
        raise SolverError("HiGHS hit its time limit", status="time_limit")

    monkeypatch.setattr(lp_mod, "_run", broken)


def test_auto_keeps_greedy_with_a_warning_when_the_lp_check_fails(monkeypatch):
    """Greedy leaves energy unmet (two EVs, room for one): auto asks the LP, which fails."""
    from chargeplan.exceptions import SolverFallbackWarning

    end = T0 + pd.Timedelta("2h")
    evs = [cp.Session(f"s{i}", f"e{i}", T0, end, energy_kwh=2 * KW) for i in (1, 2)]
    site = cp.Site(
        nodes=[cp.Node("grid", limit_a=16)],
        evses=[cp.Evse(e, parent="grid", max_current_a=16, phases=1) for e in ("e1", "e2")],
    )
    _broken_highs(monkeypatch)
    with pytest.warns(SolverFallbackWarning, match="time_limit"):
        plan = cp.optimize(site, evs, start=T0, horizon="2h", step="1h")
    assert plan.report.method == "greedy"
    assert "the LP check failed (time_limit): kept greedy" in plan.report.reason
    assert plan.report.info["fallback_from"]["status"] == "time_limit"
    assert plan.sessions["delivered_kwh"].sum() == pytest.approx(2 * KW, abs=1e-3)


def test_auto_keeps_greedy_quietly_when_the_cost_polish_fails(monkeypatch):
    """Greedy serves everyone on a small problem: the LP only polishes cost; its failure is
    noted in the report, without a warning."""
    import warnings

    ev = cp.Session("s1", "e1", T0, T0 + pd.Timedelta("3h"), energy_kwh=KW)
    _broken_highs(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plan = cp.optimize(_one_ev_site(), [ev], start=T0, horizon="3h", step="1h")
    assert plan.report.method == "greedy"
    assert plan.report.reason.endswith("; the LP failed (time_limit)")
    assert plan.report.info["lp"]["status"] == "time_limit"


# -- auto's MILP is time-boxed ------------------------------------------------------------
def _slow_milp_inputs() -> dict:
    """One V2G EV with a demand charge: HiGHS finds its best plan in well under a second
    but took 76 s to prove it optimal (48 binaries; found by a bug hunt)."""
    tz = "Europe/Amsterdam"
    t0 = pd.Timestamp("2024-06-01 08:09:18", tz=tz)
    site = cp.Site(
        nodes=[
            cp.Node("n0", limit_a=(None, 46.0, None)),
            cp.Node("n1", parent="n0", limit_kw=24.0),
        ],
        evses=[
            cp.Evse(
                "e1", parent="n1", max_current_a=33.0, phases=1, phase="L2-L3", bidirectional=True
            )
        ],
    )
    ev = cp.Session(
        "s1",
        evse="e1",
        arrival=t0,
        departure=pd.Timestamp("2024-06-01 12:12:40", tz=tz),
        energy_kwh=2.934090578121391,
        battery_capacity_kwh=60.0,
        soc_now_pct=74.81179035124552,
        max_current_a=18.0,
        max_power_kw=5.0,
        priority=2.0,
        v2g=True,
        soc_min_pct=31.87143398880578,
        round_trip_efficiency=0.9790180057544617,
        degradation_cost_per_kwh=0.020703328742583366,
    )
    idx = pd.date_range("2024-06-01 06:00", periods=7, freq="1h", tz=tz)
    prices = pd.Series([0.3, 0.2, 0.2, 0.5, 0.1, 0.5, 0.4], index=idx)
    tariff = cp.Tariff(import_price_per_kwh=prices, demand_charge_per_kw=5.0)
    return dict(site=site, sessions=[ev], start=t0, horizon="2h", step="5min", tariff=tariff)


def test_auto_keeps_the_milps_best_plan_at_its_time_budget():
    plan = cp.optimize(**_slow_milp_inputs())  # checked, as every plan
    assert (plan.report.method, plan.report.status) == ("milp", "feasible")
    assert f"stopped at its {cp.solvers.AUTO_MILP_TIME_LIMIT_S:g} s budget" in plan.report.reason
    assert 0 < plan.report.info["mip_gap"] < 0.5
    # the exact min-current rule of the MILP: 0 or at least 6 A in every cell
    cur = np.abs(plan.current_a_array)
    assert not ((cur > 0) & (cur < 6.0 - 1e-9)).any()


def test_auto_runs_lp_and_repair_when_the_milp_has_no_plan_in_time(monkeypatch):
    from chargeplan.exceptions import SolverError
    from chargeplan.solvers import lp as lp_mod

    solve_lp = lp_mod.solve_lp

    def no_milp_plan(problem, *, integer=False, **kw):
        if integer:
            raise SolverError("HiGHS hit its time limit", status="time_limit")
        return solve_lp(problem, integer=integer, **kw)

    monkeypatch.setattr(lp_mod, "solve_lp", no_milp_plan)
    plan = cp.optimize(**_slow_milp_inputs())
    assert plan.report.method == "lp"
    assert "the MILP found no plan in 2 s -> LP + repair" in plan.report.reason
