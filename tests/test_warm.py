"""LpSession: warm edits of the loaded HiGHS model give the cold optimum.

Rows and columns that disappear are retired, so a key that comes back (a session
added again under its old code, a node row that appears again) is loaded afresh
with every coefficient.
"""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

import chargeplan as cp
from chargeplan.problem import build_problem
from chargeplan.solvers.lp import build_lp, solve_lp
from chargeplan.solvers.warm import LpSession

T0 = pd.Timestamp("2024-05-06 06:00", tz="Europe/Amsterdam")
H = pd.Timedelta("1h")
GRID = dict(start=T0, horizon="8h", step="15min")


def site(f1_limit=None, root=200, n=4):
    return cp.Site(
        nodes=[
            cp.Node("grid", limit_a=root),
            cp.Node("f1", parent="grid", limit_a=f1_limit),
        ],
        evses=[cp.Evse(f"e{i}", parent="f1", max_current_a=32) for i in range(n)],
    )


def session(i, a, b, kwh=40.0):
    return cp.Session(
        f"s{i}", evse=f"e{i}", arrival=T0 + a * H, departure=T0 + b * H, energy_kwh=kwh
    )


# rising prices: every EV wants to charge early, where the rows bind
TARIFF = cp.Tariff(
    import_price_per_kwh=pd.Series(
        np.linspace(0.1, 0.4, 8), index=pd.date_range(T0, periods=8, freq="1h")
    )
)


def cold(site_, sessions):
    return cp.Replanner(site_, sessions, tariff=TARIFF, **GRID).plan()


def assert_same(warm, cold_plan):
    assert warm.violations() == [] and cold_plan.violations() == []
    assert warm.report.info["objective"] == pytest.approx(
        cold_plan.report.info["objective"], rel=1e-9, abs=1e-9
    )


def test_session_added_again_after_a_new_limit():
    # s2 stays all along, so that s0's retired columns never outnumber the live ones
    # (which would make the re-plan cold by design)
    s0, s1, s2 = session(0, 0, 6), session(1, 0, 3), session(2, 0, 8)
    rp = cp.Replanner(site(), [s0, s1, s2], tariff=TARIFF, **GRID)
    rp.plan()
    rp.remove_session("s0")
    assert rp.plan().report.info["warm"]
    # f1 gets a limit while s0 is away: its rows are new and s0's columns are retired
    tight = site(f1_limit=20)
    rp.set_site(tight)
    assert rp.plan().report.info["warm"]
    rp.add_session(s0)  # same id: same code, so the same column keys
    p = rp.plan()
    assert p.report.info["warm"]
    assert_same(p, cold(tight, [s1, s2, s0]))
    assert (p.node_current_a["f1"].to_numpy() <= 20 + 1e-9).all()


def test_rows_that_come_and_go():
    # f1 at 40 A: one EV (32 A) never reaches it, two may; node rows appear and go
    # (s4, a small request all day, keeps the retired columns below the live ones, which
    # would make a re-plan cold by design)
    s = [session(0, 0, 8), session(1, 1, 5), session(2, 2, 7), session(3, 0, 4)]
    s4 = session(4, 0, 8, kwh=5.0)
    tight = site(f1_limit=40, n=5)
    rp = cp.Replanner(tight, [s[0], s4], tariff=TARIFF, **GRID)
    rp.plan()
    steps = [("add", s[1]), ("remove", "s1"), ("add", s[2]), ("add", s[3]), ("remove", "s2")]
    now = [s[0], s4]
    for what, x in steps:
        if what == "add":
            rp.add_session(x)
            now = now + [x]
        else:
            rp.remove_session(x)
            now = [y for y in now if y.id != x]
        p = rp.plan()
        assert p.report.info["warm"], p.report.info["reason"]
        assert_same(p, cold(tight, now))
        assert (p.node_current_a["f1"].to_numpy() <= 40 + 1e-9).all()
    # s1 again, under its old code
    rp.add_session(s[1])
    p = rp.plan()
    assert_same(p, cold(tight, now + [s[1]]))


def problem(site_, sessions):
    grid = cp.validate(site_, sessions, tariff=TARIFF, **GRID)
    return build_problem(site_, sessions, grid, TARIFF)


def test_lp_session_matches_cold_and_relaxes_what_left():
    s = [session(i, i * 0.5, 4 + i) for i in range(4)]
    tight = site(f1_limit=50)
    lp = LpSession()
    codes = np.arange(4)
    lp.solve(problem(tight, s[:3]), codes[:3])
    rate, info = lp.solve(problem(tight, s[1:]), codes[1:])
    assert info["warm"] and "+" in info["reason"] and "relaxed" in info["reason"]
    _, ref = solve_lp(problem(tight, s[1:]), repair=False)
    assert info["objective"] == pytest.approx(ref["objective"], rel=1e-9)
    assert (lp.col_keys < 0).any() and (lp.row_keys < 0).any()  # retired
    # the loaded model still holds the retired entries; the plan has the new sessions
    assert rate.shape == (3, problem(tight, s[1:]).n_slots)


def test_verify_catches_changed_coefficients():
    s = [session(0, 0, 4), session(1, 1, 5)]
    lp = LpSession()
    lp.solve(problem(site(30), s), np.arange(2))
    # same codes, but s1 now leaves within a slot: its energy-row coefficient changes
    moved = [s[0], replace(s[1], departure=T0 + 4.9 * H)]
    _, info = lp.solve(problem(site(30), moved), np.arange(2))
    assert not info["warm"] and "coefficients" in info["reason"]
    _, ref = solve_lp(problem(site(30), moved), repair=False)
    assert info["objective"] == pytest.approx(ref["objective"], rel=1e-9)


def test_many_departures_reload_cold():
    # 11 of 12 EVs leave: most of the loaded model is retired
    s = [session(i, 0, 8) for i in range(12)]
    lp = LpSession()
    lp.solve(problem(site(50, n=12), s), np.arange(12))
    _, info = lp.solve(problem(site(50, n=12), s[11:]), np.arange(11, 12))
    assert not info["warm"] and "relaxed" in info["reason"]
    _, ref = solve_lp(problem(site(50, n=12), s[11:]), repair=False)
    assert info["objective"] == pytest.approx(ref["objective"], rel=1e-9)
    assert (lp.col_keys >= 0).all()


def test_warm_model_is_the_cold_model():
    # after edits, the live part of the loaded model equals build_lp's model
    s = [session(i, i * 0.7, 3 + i) for i in range(4)]
    tight = site(f1_limit=45)
    lp = LpSession()
    lp.solve(problem(tight, s[:2]), np.arange(2))
    lp.solve(problem(tight, s[1:]), np.arange(1, 4))
    p = problem(tight, s[1:])
    m = build_lp(p, session_codes=np.arange(1, 4))
    lm = lp.h.getLp()
    a = lm.a_matrix_
    loaded = np.zeros((lm.num_row_, lm.num_col_))
    for j in range(lm.num_col_):
        for k in range(a.start_[j], a.start_[j + 1]):
            loaded[a.index_[k], j] = a.value_[k]
    cols = {k: i for i, k in enumerate(lp.col_keys)}
    rows = {k: i for i, k in enumerate(lp.row_keys)}
    ci = np.array([cols[k] for k in m.col_keys])
    ri = np.array([rows[k] for k in m.row_keys])
    np.testing.assert_array_equal(loaded[np.ix_(ri, ci)], m.matrix.toarray())
    np.testing.assert_array_equal(np.asarray(lm.col_cost_)[ci], m.cost)
    np.testing.assert_array_equal(np.asarray(lm.col_upper_)[ci], m.col_upper)
    np.testing.assert_array_equal(np.asarray(lm.row_upper_)[ri], np.minimum(m.row_upper, 1e30))
    # retired columns are fixed at 0
    dead = lp.col_keys < 0
    assert (np.asarray(lm.col_upper_)[dead] == 0).all()
