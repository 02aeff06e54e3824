"""Node rows that can never bind are left out of the LP: same model otherwise, same optimum."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import chargeplan as cp
from chargeplan.problem import build_problem
from chargeplan.solvers._formulation import SAFETY, cells, node_rows
from chargeplan.solvers.lp import _highs, _run, build_lp
from test_cvxpy import v2g_scenarios
from test_properties import HOURS, STEP_MIN, T0, scenarios

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def make_problem(site, sessions, tariff=None, forecast=None, bids=None):
    kw = dict(start=T0, horizon=f"{HOURS}h", step=f"{STEP_MIN}min")
    grid = cp.validate(
        site, sessions, **kw, tariff=tariff, forecast=forecast, v2g_bids=bids or None
    )
    return build_problem(site, sessions, grid, tariff, forecast, bids)


def scaled(site, factor):
    """The site with every node limit (A and kW) times ``factor``."""

    def scale(x):
        if x is None:
            return None
        if isinstance(x, pd.Series | pd.DataFrame):
            return x * factor
        if isinstance(x, tuple | list):
            return tuple(None if v is None else v * factor for v in x)
        return x * factor

    nodes = [replace(n, limit_a=scale(n.limit_a), limit_kw=scale(n.limit_kw)) for n in site.nodes]
    return replace(site, nodes=nodes)


def objective(model):
    h = _highs(model, None, None)
    _run(h)
    return h.getInfo().objective_function_value


def assert_pruned_is_a_subset(full, pruned):
    """Same columns and bounds; the pruned model's rows are rows of the full one."""
    np.testing.assert_array_equal(full.col_keys, pruned.col_keys)
    np.testing.assert_array_equal(full.cost, pruned.cost)
    np.testing.assert_array_equal(full.col_lower, pruned.col_lower)
    np.testing.assert_array_equal(full.col_upper, pruned.col_upper)
    pos = np.searchsorted(full.row_keys, pruned.row_keys, sorter=np.argsort(full.row_keys))
    pos = np.argsort(full.row_keys)[pos]
    np.testing.assert_array_equal(full.row_keys[pos], pruned.row_keys)
    np.testing.assert_array_equal(full.row_lower[pos], pruned.row_lower)
    np.testing.assert_array_equal(full.row_upper[pos], pruned.row_upper)
    a, b = full.matrix.tocsr()[pos], pruned.matrix.tocsr()
    assert (a != b).nnz == 0
    # every row left out holds for every plan within the column bounds
    gone = np.setdiff1d(np.arange(full.n_rows), pos)
    a = full.matrix.tocsr()[gone]
    hi = np.where(a.toarray() > 0, full.col_upper, full.col_lower) if len(gone) else None
    if len(gone):
        reach = (a.toarray() * hi).sum(axis=1)
        assert (reach <= full.row_upper[gone] - SAFETY + 1e-9).all()
        assert np.isneginf(full.row_lower[gone]).all()


def check(problem):
    full = build_lp(problem, prune_rows=False)
    pruned = build_lp(problem)
    assert_pruned_is_a_subset(full, pruned)
    cs, ct, ds, dtt, *_ = cells(problem)
    rows = node_rows(problem, cs, ct, ds, dtt, problem.round_step_kw)
    assert rows.pruned == full.n_rows - pruned.n_rows
    a, b = objective(full), objective(pruned)
    assert b == pytest.approx(a, rel=1e-9, abs=1e-9)
    return full, pruned


@SETTINGS
@given(scenarios(), st.sampled_from([1.0, 1.0, 2.0, 5.0]))
def test_pruning_keeps_the_optimum(scenario, factor):
    site, sessions, prices, forecast = scenario
    p = make_problem(
        scaled(site, factor), sessions, cp.Tariff(import_price_per_kwh=prices), forecast
    )
    check(p)


@SETTINGS
@given(v2g_scenarios(), st.sampled_from([1.0, 2.0, 5.0]))
def test_pruning_keeps_the_optimum_with_v2g(scenario, factor):
    site, sessions, tariff, forecast, bids = scenario
    check(make_problem(scaled(site, factor), sessions, tariff, forecast, bids))


# -- by hand --------------------------------------------------------------------------------
def ll_site(limit_a, phasor=True):
    """Line-to-line and 1-phase EVSEs under one limited root (a phasor-polygon line)."""
    return cp.Site(
        nodes=[cp.Node("grid", limit_a=limit_a)],
        evses=[
            cp.Evse("a", parent="grid", max_current_a=32, phases=1, phase="L1-L2"),
            cp.Evse("b", parent="grid", max_current_a=32, phases=1, phase="L1"),
            cp.Evse("c", parent="grid", max_current_a=16, phases=3),
        ],
        phasor_limits=phasor,
    )


def ll_sessions():
    h = pd.Timedelta("1h")
    return [
        cp.Session("s0", evse="a", arrival=T0, departure=T0 + 3 * h, energy_kwh=30),
        cp.Session("s1", evse="b", arrival=T0 + h, departure=T0 + 4 * h, energy_kwh=30),
        cp.Session("s2", evse="c", arrival=T0, departure=T0 + 2 * h, energy_kwh=40),
    ]


@pytest.mark.parametrize("phasor", [True, False])
def test_loose_root_rows_are_all_left_out(phasor):
    # the three EVSEs together draw at most 32 + 32 + 16 = 80 A on a line
    p = make_problem(ll_site(81, phasor), ll_sessions())
    full, pruned = check(p)
    node_kinds = (pruned.row_keys >> 52) >= 20
    assert not node_kinds.any()
    assert ((full.row_keys >> 52) >= 20).any()


@pytest.mark.parametrize("phasor", [True, False])
def test_rows_that_may_bind_are_kept(phasor):
    p = make_problem(ll_site(40, phasor), ll_sessions())
    full, pruned = check(p)
    assert ((pruned.row_keys >> 52) >= 20).any()
    # slots where one EVSE alone is on: at most 32 A < 40 A, so pruned there
    assert pruned.n_rows < full.n_rows
    plan = cp.optimize(
        ll_site(40, phasor), ll_sessions(), start=T0, horizon="4h", step="15min", method="lp"
    )
    assert plan.violations() == []


def test_a_row_at_its_reach_is_kept():
    # root limit equal to what the EVSEs can draw together: kept (within SAFETY)
    site = cp.Site(
        nodes=[cp.Node("grid", limit_a=48)],
        evses=[
            cp.Evse("a", parent="grid", max_current_a=32, phases=1, phase="L1"),
            cp.Evse("b", parent="grid", max_current_a=16, phases=1, phase="L1"),
        ],
    )
    h = pd.Timedelta("1h")
    sessions = [
        cp.Session("s0", evse="a", arrival=T0, departure=T0 + h, energy_kwh=30),
        cp.Session("s1", evse="b", arrival=T0, departure=T0 + h, energy_kwh=30),
    ]
    full, pruned = check(make_problem(site, sessions))
    assert pruned.n_rows == full.n_rows
