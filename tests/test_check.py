"""The independent checker catches every kind of violated limit."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import chargeplan as cp
from chargeplan.plan import Plan

T0 = pd.Timestamp("2024-03-04 08:00", tz="UTC")
H = pd.Timedelta("1h")


def base_plan(**site_kw):
    site = cp.Site(
        nodes=[cp.Node("grid", limit_a=50, limit_kw=30), cp.Node("f", parent="grid", limit_a=32)],
        evses=[
            cp.Evse("a", parent="f", max_current_a=32),
            cp.Evse("b", parent="f", max_current_a=16, phases=1, phase="L2"),
            cp.Evse("dc", parent="grid", max_power_kw=20, dc=True),
        ],
        **site_kw,
    )
    ss = [
        cp.Session("sa", evse="a", arrival=T0, departure=T0 + H, energy_kwh=5),
        cp.Session("sb", evse="b", arrival=T0 + H, departure=T0 + 2 * H, energy_kwh=3),
        cp.Session(
            "sdc", evse="dc", arrival=T0, departure=T0 + 2 * H, energy_kwh=10, min_power_kw=5
        ),
    ]
    plan = cp.optimize(site, ss, start=T0, horizon="2h", step="30min")
    return site, ss, plan


def tampered(plan, s, t, rate=None, current=None):
    r = plan.rate_kw.copy()
    c = plan.current_a_array.copy()
    if current is not None:
        c[s, t] = current
        kpa = plan.problem.kw_per_a[s]
        r[s, t] = current * kpa
    if rate is not None:
        r[s, t] = rate
    return Plan(
        site=plan.site,
        sessions=plan.session_inputs,
        grid=plan.grid,
        problem=plan.problem,
        rate_kw=r,
        current_a=c,
        report=plan.report,
        forecast=plan.forecast,
    )


def kinds(plan):
    return {v.kind for v in plan.violations()}


def test_valid_plan_passes():
    _, _, plan = base_plan()
    assert plan.violations() == []
    assert plan.check() is plan


def test_over_evse_max_current():
    _, _, plan = base_plan()
    bad = tampered(plan, 0, 0, current=40.0)
    assert "max_current" in kinds(bad)
    with pytest.raises(cp.LimitViolationError) as e:
        bad.check()
    assert any(v.kind == "max_current" and v.slot == 0 for v in e.value.violations)


def test_below_min_current():
    _, _, plan = base_plan()
    assert "min_current" in kinds(tampered(plan, 0, 0, current=3.0))


def test_off_the_tenth_amp_grid():
    _, _, plan = base_plan()
    assert "current_grid_0.1A" in kinds(tampered(plan, 0, 1, current=10.05))


def test_charging_outside_window():
    _, _, plan = base_plan()
    assert "availability" in kinds(tampered(plan, 1, 0, current=10.0))


def test_energy_above_request():
    _, _, plan = base_plan()
    # 32 A on 3 phases for the whole hour is 22.08 kWh > 5 kWh requested
    bad = tampered(tampered(plan, 0, 0, current=32.0), 0, 1, current=32.0)
    assert "energy" in kinds(bad)


def test_node_phase_limit():
    site = cp.Site(
        nodes=[cp.Node("f", limit_a=(40, 20, 40))],
        evses=[
            cp.Evse("a", parent="f", max_current_a=32),
            cp.Evse("b", parent="f", max_current_a=16, phases=1, phase="L2"),
        ],
    )
    ss = [cp.Session(x, evse=x, arrival=T0, departure=T0 + H, energy_kwh=1) for x in "ab"]
    plan = cp.optimize(site, ss, start=T0, horizon="1h", step="30min")
    assert plan.violations() == []
    bad = tampered(tampered(plan, 0, 1, current=12.0), 1, 1, current=10.0)  # L2: 22 A > 20 A
    v = bad.violations()
    assert [(x.kind, x.where, x.slot) for x in v if x.kind == "node_current"] == [
        ("node_current", "node 'f' L2", 1)
    ]


def test_node_kw_limit_and_dc():
    _, _, plan = base_plan()
    bad = tampered(plan, 2, 0, rate=25.0)
    k = kinds(bad)
    assert "max_power" in k  # DC EVSE max 20 kW
    bad2 = tampered(plan, 2, 0, rate=2.0)
    assert "min_power" in kinds(bad2)


def test_grid_kw_limit():
    _, _, plan = base_plan()
    bad = tampered(plan, 2, 0, rate=20.0)
    bad = tampered(bad, 0, 0, current=32.0)  # 22.08 + 20 kW > 30 kW at grid
    v = bad.violations()
    assert any(x.kind == "node_power" and "'grid'" in x.where for x in v)


def test_power_current_mismatch():
    _, _, plan = base_plan()
    bad = tampered(plan, 0, 0, current=10.0, rate=None)
    r = bad.rate_kw.copy()
    r[0, 0] = 10.0  # 10 A on 3 phases is 6.9 kW, not 10 kW
    bad = Plan(
        site=plan.site,
        sessions=plan.session_inputs,
        grid=plan.grid,
        problem=plan.problem,
        rate_kw=r,
        current_a=bad.current_a_array.copy(),
        report=plan.report,
    )
    assert "power_current_mismatch" in kinds(bad)


def test_base_load_counts_at_root():
    site, ss, plan = base_plan()
    # 20 kW base load at the grid: 50 A - 20000/(3*230) = 21.0 A left per phase
    fc = cp.Forecast(base_load_kw=20.0)
    p2 = cp.optimize(site, ss, start=T0, horizon="2h", step="30min", forecast=fc)
    assert p2.violations() == []
    assert (p2.node_current_a["grid"].to_numpy() <= 50 - 20000 / 690 + 1e-6).all()
    # the unconstrained plan would break it
    with_fc = Plan(
        site=site,
        sessions=ss,
        grid=plan.grid,
        problem=plan.problem,
        rate_kw=plan.rate_kw.copy(),
        current_a=plan.current_a_array.copy(),
        report=plan.report,
        forecast=fc,
    )
    assert "node_current" in kinds(with_fc) or "node_power" in kinds(with_fc)


@pytest.mark.parametrize("pv_first", [True, False])
def test_pv_varying_within_a_slot_is_checked_at_its_lowest(pv_first):
    """Found by a bug hunt: the root's allowance came from PV at its highest in the slot
    (38 kW, 5 minutes of 15) while the load was checked with PV at its lowest (5 kW):
    a 26 kW charge against 20 A passed, though it draws 30.4 A for 10 minutes."""
    from chargeplan.check import check_plan

    t0 = pd.Timestamp("2024-06-01 07:00", tz="UTC")
    site = cp.Site(
        nodes=[cp.Node("grid", limit_a=20.0)],
        evses=[cp.Evse("dc1", parent="grid", max_power_kw=26.0, dc=True)],
    )
    pv_kw = [38.0, 5.0, 5.0] if pv_first else [5.0, 5.0, 38.0]
    fc = cp.Forecast(pv_kw=pd.Series(pv_kw, index=pd.date_range(t0, periods=3, freq="5min")))
    ev = cp.Session("s1", evse="dc1", arrival=t0, departure=t0 + H, energy_kwh=6.5)
    grid = cp.validate(site, [ev], start=t0, horizon="15min", step="15min", forecast=fc)
    found = check_plan(site, [ev], grid, np.array([[26.0]]), np.zeros((1, 1)), fc)
    over = (26.0 - 5.0) * 1000 / (3 * 230)  # 30.43 A on each line
    assert [(v.kind, v.where) for v in found] == [
        ("node_current", f"node 'grid' L{k}") for k in (1, 2, 3)
    ]
    assert all(v.value == pytest.approx(over) and v.limit == 20.0 for v in found)
    # the planner keeps to the lowest PV: 20 A + 5 kW
    plan = cp.optimize(site, [ev], start=t0, horizon="15min", step="15min", forecast=fc)
    assert plan.rate_kw[0, 0] <= 20 * 3 * 0.23 + 5.0 + 1e-9


def test_sessions_checked_in_blocks_give_the_same_list(monkeypatch):
    """The checker takes sessions in blocks: one block or many, the same violations."""
    from chargeplan import check

    rng = np.random.default_rng(3)
    n = 30
    site = cp.Site(
        nodes=[cp.Node("grid", limit_a=100, limit_kw=60)]
        + [cp.Node(f"f{k}", parent="grid", limit_a=40) for k in range(3)],
        evses=[
            cp.Evse(f"e{i}", parent=f"f{i % 3}", max_current_a=32, phases=1 + 2 * (i % 2))
            for i in range(n)
        ],
    )
    sessions = [
        cp.Session(f"s{i}", f"e{i}", T0 + (i % 4) * H, T0 + (4 + i % 3) * H, energy_kwh=8.0)
        for i in range(n)
    ]
    grid = cp.validate(site, sessions, start=T0, horizon="8h", step="1h")
    # random currents, some off the grid, below the minimum or above every limit
    current = np.round(rng.uniform(-2.0, 40.0, (n, grid.n_slots)), 1)
    current[rng.random(current.shape) < 0.1] += 0.05
    kpa = np.array([0.23 * (1 + 2 * (i % 2)) for i in range(n)])
    rate = current * kpa[:, None]
    lists = []
    for cells in (grid.n_slots, 7 * grid.n_slots, 10**9):  # 1, 7 and all sessions a block
        monkeypatch.setattr(check, "_BLOCK_CELLS", cells)
        lists.append(check.check_plan(site, sessions, grid, rate, current))
    kinds_seen = {v.kind for v in lists[0]}
    assert {"max_current", "min_current", "current_grid_0.1A", "availability"} <= kinds_seen
    assert {"node_current", "node_power", "energy", "negative_rate"} <= kinds_seen
    for other in lists[1:]:
        assert [(v.kind, v.where, v.slot) for v in other] == [
            (v.kind, v.where, v.slot) for v in lists[0]
        ]
        assert [v.value for v in other] == pytest.approx([v.value for v in lists[0]], rel=1e-12)
        assert [v.limit for v in other] == pytest.approx([v.limit for v in lists[0]], rel=1e-12)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pv=st.lists(st.floats(0.0, 40.0), min_size=12, max_size=12),
    base=st.lists(st.floats(0.0, 15.0), min_size=12, max_size=12),
    n_dc=st.integers(0, 2),
    n_ac=st.integers(0, 2),
    method=st.sampled_from(["greedy", "lp"]),
)
def test_plans_keep_the_root_limit_in_every_part_of_a_slot(pv, base, n_dc, n_ac, method):
    """PV and base load at 5-minute resolution, 15-minute slots: in every 5 minutes the
    balanced load at the root (EVs + base - PV) keeps within the limit, or within what
    base load and PV alone draw there."""
    t0 = pd.Timestamp("2024-06-01 07:00", tz="UTC")
    idx = pd.date_range(t0, periods=12, freq="5min")
    evses = [cp.Evse(f"d{i}", parent="grid", max_power_kw=30.0, dc=True) for i in range(n_dc)]
    evses += [cp.Evse(f"a{i}", parent="grid", max_current_a=32.0) for i in range(n_ac)]
    site = cp.Site(nodes=[cp.Node("grid", limit_a=25.0)], evses=evses)
    fc = cp.Forecast(pv_kw=pd.Series(pv, index=idx), base_load_kw=pd.Series(base, index=idx))
    evs = [cp.Session(f"s{e.id}", e.id, t0, t0 + H, energy_kwh=40.0) for e in evses]
    plan = cp.optimize(site, evs, start=t0, horizon="1h", step="15min", forecast=fc, method=method)
    ev_kw = np.repeat(plan.rate_kw.sum(axis=0), 3)  # per 5 minutes
    net = np.array(base) - np.array(pv)
    line_a = np.abs(ev_kw + net) * 1000 / (3 * 230)  # balanced: the same on each line
    assert (line_a <= np.maximum(25.0, np.abs(net) * 1000 / (3 * 230)) + 1e-6).all()


def test_site_figures_use_the_mean_forecast_of_each_slot():
    """Found by a bug hunt: the site import (and with it cost, peak and demand charge)
    used base load at its highest and PV at its lowest in each slot, the bound the
    limits are planned against: 25 kW reported where 2.5 kW is expected."""
    t0 = pd.Timestamp("2024-06-03 07:00", tz="Europe/Amsterdam")
    site = cp.Site(
        nodes=[cp.Node("grid", limit_a=100)],
        evses=[cp.Evse("cp1", parent="grid", max_current_a=16)],
    )
    idx = pd.date_range(t0, periods=8, freq="15min")
    fc = cp.Forecast(
        pv_kw=pd.Series([0.0, 10, 10, 10] * 2, index=idx),  # mean 7.5 kW per hour
        base_load_kw=pd.Series([5.0, 5, 5, 25] * 2, index=idx),  # mean 10 kW per hour
    )
    tariff = cp.Tariff(import_price_per_kwh=0.3, export_price_per_kwh=0.05, demand_charge_per_kw=10)
    ev = cp.Session("s1", "cp1", t0, t0 + 2 * H, energy_kwh=0.0)
    plan = cp.optimize(site, [ev], start=t0, horizon="2h", step="1h", tariff=tariff, forecast=fc)
    np.testing.assert_allclose(plan.site_import_kw.to_numpy(), [2.5, 2.5])
    k = plan.kpis
    assert k["peak_import_kw"] == pytest.approx(2.5)
    assert k["demand_charge"] == pytest.approx(25.0)
    assert k["energy_cost"] == pytest.approx(2 * 2.5 * 0.3)
