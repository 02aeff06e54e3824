"""The independent checker catches every kind of violated limit."""

import numpy as np
import pandas as pd
import pytest

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
