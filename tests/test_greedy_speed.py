"""The greedy's speed-ups keep its plans bit for bit.

``solve_greedy`` skips nodes that cannot bind (``_active_ranges``), reuses its work
buffers across passes, and computes orders and plan scores in numba. Here its plans are
compared with the plain construction from the public kernels (``greedy_fill``/
``improve_cost``, which check and book every node) and numpy scores and orders, and the
"cannot bind" marking is checked against loads recomputed in numpy.
"""

from types import SimpleNamespace
from unittest import mock

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings

import chargeplan as cp
from chargeplan.problem import LINE_ANGLES, build_problem
from chargeplan.solvers import greedy as g
from test_properties import HOURS, STEP_MIN, T0, scenarios


def _problem(scenario):
    site, sessions, prices, forecast = scenario
    tariff = cp.Tariff(import_price_per_kwh=prices)
    kw = dict(start=T0, horizon=f"{HOURS}h", step=f"{STEP_MIN}min", tariff=tariff)
    grid = cp.validate(site, sessions, forecast=forecast, **kw)
    return build_problem(site, sessions, grid, tariff, forecast)


def reference_orders(problem):
    """The EDF/LLF orders as numpy computed them before they moved to numba."""
    present = problem.present
    T = problem.n_slots
    any_present = present > 0.0
    last = np.where(any_present.any(axis=1), T - 1 - np.argmax(any_present[:, ::-1], axis=1), T)
    peak = problem.pmax_kw.max(axis=1)
    avail_h = present.sum(axis=1) * problem.grid.step_h
    with np.errstate(divide="ignore", invalid="ignore"):
        need_h = np.where(peak > 0.0, problem.energy_kwh / peak, np.inf)
    laxity = avail_h - need_h
    ids = np.arange(problem.n_sessions)
    neg_prio = -problem.priority
    return {
        "edf": np.lexsort((ids, laxity, last, neg_prio)),
        "llf": np.lexsort((ids, last, laxity, neg_prio)),
    }


def reference_solve(problem):
    """solve_greedy built from the public kernels: fresh arrays, every node checked.

    Problems of at most ``ORDERINGS_MAX_CELLS`` cells run all four orderings, improve
    each and keep the best. Larger ones skip LLF, drop the price-ordered EDF pass when it
    leaves more than ``_STOP_EXCESS_KWH`` above the floor (the solver stops that pass
    early there) and improve the plan kept only; those above ``IMPROVE_SWEEPS_MAX_CELLS``
    improve once.
    """
    sub_t, sub_kind = g._sub_slots(problem)
    T = problem.n_slots
    ph = g.PhasorState(problem)
    orders = reference_orders(problem)
    zeros = np.zeros((problem.n_sessions, T))
    asap = (np.arange(T, dtype=np.int64), np.ones(T, dtype=np.int64))
    passes = [
        ("edf", orders["edf"], sub_t, sub_kind),
        ("llf", orders["llf"], sub_t, sub_kind),
        ("edf_asap", orders["edf"], *asap),
        ("llf_asap", orders["llf"], *asap),
    ]
    own_max = (problem.pmax_kw * problem.present).sum(axis=1) * problem.grid.step_h
    floor_unmet = float((np.maximum(problem.energy_kwh - own_max, 0.0) * problem.priority).sum())
    thorough = problem.n_sessions * T <= g.ORDERINGS_MAX_CELLS
    cheap = np.minimum(problem.price_export_per_kwh, problem.price_import_per_kwh)
    small = problem.n_sessions * T <= g.IMPROVE_SWEEPS_MAX_CELLS

    def improve(p, order, cap, pz):
        usage = (p * problem.present).sum(axis=0)
        for _ in range(g.IMPROVE_SWEEPS if small else 1):
            price = np.where(
                problem.pv_surplus_kw - usage > 1e-9, cheap, problem.price_import_per_kwh
            )
            slots = np.lexsort((np.arange(T), price)).astype(np.int64)
            moved = g.improve_cost(
                order,
                slots,
                problem.price_import_per_kwh,
                cheap,
                problem.pv_surplus_kw,
                usage,
                problem.present,
                problem.pmax_kw,
                problem.pmin_kw,
                problem.coef,
                problem.path,
                cap,
                problem.phasor_line,
                ph.pidx,
                ph.plim,
                pz,
                problem.acoef,
                p,
            )
            if not moved:
                break

    best = None
    for name, order, st, sk in passes:
        if name in ("llf", "llf_asap") and not thorough:
            continue
        p, cap, pz = g.greedy_fill(
            order,
            st,
            sk,
            problem.present,
            problem.pmax_kw,
            problem.pmin_kw,
            problem.energy_kwh,
            problem.coef,
            problem.path,
            problem.cap,
            problem.pv_surplus_kw,
            problem.grid.step_h,
            zeros,
            problem.phasor_line,
            ph.pidx,
            ph.plim,
            ph.pz,
            problem.acoef,
        )
        unmet, cost = g._quality(problem, p)
        if name == "edf" and not thorough and unmet > floor_unmet + g._STOP_EXCESS_KWH:
            continue
        if thorough:
            improve(p, order, cap, pz)
            unmet, cost = g._quality(problem, p)
        if best is None or (round(unmet, 6), cost) < (round(best[1], 6), best[2]):
            best = (name, unmet, cost, p, order, cap, pz)
        if not thorough and unmet <= floor_unmet + 1e-6:
            break
    name, _, _, p, order, cap, pz = best
    if not thorough:
        improve(p, order, cap, pz)
    return p, name


def reference_fill_from(problem, p_init):
    """fill_from built from the public greedy_fill (every node checked)."""
    cap, ph = g.residual(problem, p_init, round_margin=True)
    e = p_init * problem.present * problem.grid.step_h
    battery = np.where(e < 0.0, e / problem.efficiency[:, None], e).sum(axis=1)
    left = np.maximum(problem.energy_kwh - battery, 0.0)
    sub_t, sub_kind = g._sub_slots(problem)
    used = (p_init * problem.present).sum(axis=0)
    surplus = np.maximum(problem.pv_surplus_kw - np.maximum(used, 0.0), 0.0)
    pmax = np.where(p_init < 0.0, p_init, problem.pmax_kw)
    order = g.session_orders(problem)["llf"]
    return g.greedy_fill(
        order,
        sub_t,
        sub_kind,
        problem.present,
        pmax,
        problem.pmin_kw,
        left,
        problem.coef,
        problem.path,
        cap,
        surplus,
        problem.grid.step_h,
        p_init,
        problem.phasor_line,
        ph.pidx,
        ph.plim,
        ph.pz,
        problem.acoef,
        problem.has_v2g,
    )[0]


def active_mask(problem, extra):
    """(N, T) bool: the slots in which the solver checks and books each node."""
    rows, n_rows = g._session_rows(problem.coef)
    ph = g.PhasorState(problem)
    window, b0, C = g._windows(problem.present, np.zeros_like(extra))
    assert (extra[problem.present <= 0.0] <= 0.0).all()  # nothing outside the windows
    ragged = g._to_ragged(extra, window, b0, C)
    cap_min = problem.cap.min(axis=2)
    lo, hi, off, total = g._problem_ranges(problem, ph, ragged, window, b0, rows, n_rows, cap_min)
    t = np.arange(problem.n_slots)
    width = np.maximum(hi - lo + 1, 0)
    assert total == width.sum()
    assert (off == np.concatenate([[0], np.cumsum(width)[:-1]])).all()
    return (t[None, :] >= lo[:, None]) & (t[None, :] <= hi[:, None])


def test_numpy_sums_are_reproduced_bit_for_bit():
    rng = np.random.default_rng(7)
    for n in (0, 1, 7, 8, 95, 96, 128, 129, 1000, 8193, 10000, 54321):
        for _ in range(5):
            a = rng.standard_normal(n) * rng.uniform(0, 1e3, n)
            assert g._np_sum(a) == a.sum()


def _random_rows(rng, S, T):
    """(S, T) presence and rates that are 0 outside a window per session (or all 0)."""
    present = np.zeros((S, T))
    rate = np.zeros((S, T))
    for s in range(S):
        if rng.random() < 0.1:
            continue  # never present
        a = int(rng.integers(0, T))
        b = int(rng.integers(a, T))
        present[s, a : b + 1] = np.where(rng.random(b - a + 1) < 0.7, 1.0, rng.random(b - a + 1))
        present[s, [a, b]] = rng.uniform(1e-3, 1.0, 2)  # partial first and last slots
        rate[s, a : b + 1] = rng.random(b - a + 1) * 10.0 ** rng.integers(-3, 3, b - a + 1)
    return present, rate


def test_window_sums_equal_numpy_row_sums_bit_for_bit():
    # _session_stats and _plan_quality sum each session's window only (with numpy's 8
    # partial sums for 8 <= T <= 128, whole rows otherwise): the results must be the
    # numpy row sums of the (S, T) matrices bit for bit, for every T
    rng = np.random.default_rng(3)
    dt_h = 0.25
    for T in (1, 5, 7, 8, 9, 16, 95, 96, 100, 127, 128, 129, 200, 400):
        for _ in range(20):
            S = int(rng.integers(1, 8))
            present, pmax = _random_rows(rng, S, T)
            energy = rng.uniform(0.0, 60.0, S)
            prio = rng.choice([1.0, 2.0], S)
            window, b0, C, pres_c, _, avail_h, peak, floor, floor_total = g._session_stats(
                present, pmax, energy, prio, dt_h
            )
            assert np.array_equal(avail_h, present.sum(axis=1) * dt_h)
            own = (pmax * present).sum(axis=1) * dt_h
            want_floor = np.maximum(energy - own, 0.0) * prio
            assert np.array_equal(floor, want_floor) and floor_total == want_floor.sum()
            assert np.array_equal(peak, pmax.max(axis=1))
            _, p = _random_rows(rng, S, T)
            p[present <= 0.0] = 0.0
            base = rng.normal(0.0, 5.0, T)
            imp, exp = rng.random(T), rng.random(T) * 0.5
            usage = np.empty(T)
            unmet, cost = g._plan_quality(
                g._to_ragged(p, window, b0, C), pres_c, window, b0, energy, prio, base, imp,
                exp, dt_h, usage,
            )  # fmt: skip
            delivered = (p * present).sum(axis=1) * dt_h
            assert unmet == (np.maximum(energy - delivered, 0.0) * prio).sum()
            assert np.array_equal(usage, (p * present).sum(axis=0))
            site = base + usage
            want = (np.maximum(site, 0) * imp - np.maximum(-site, 0) * exp).sum() * dt_h
            assert cost == want


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_sub_slots_and_phasor_state_equal_their_numpy_expressions(scenario):
    problem = _problem(scenario)
    T = problem.n_slots
    # sub-slots: PV surplus parts at the export price, grid parts at the import price,
    # ranked by price, then time, then surplus before grid (np.lexsort)
    has = problem.pv_surplus_kw > 1e-9
    t_all = np.arange(T)
    sub_t = np.concatenate([t_all[has], t_all])
    kind = np.concatenate([np.zeros(has.sum(), np.int64), np.ones(T, np.int64)])
    price = np.concatenate([problem.price_export_per_kwh[has], problem.price_import_per_kwh])
    idx = np.lexsort((kind, sub_t, price))
    got_t, got_kind = g._sub_slots(problem)
    assert np.array_equal(got_t, sub_t[idx]) and np.array_equal(got_kind, kind[idx])
    # the improvement pass's slot order
    usage = np.random.default_rng(0).uniform(0.0, 40.0, T)
    cheap = np.minimum(problem.price_export_per_kwh, problem.price_import_per_kwh)
    eff = np.where(problem.pv_surplus_kw - usage > 1e-9, cheap, problem.price_import_per_kwh)
    got = g._slot_order(problem.pv_surplus_kw, usage, cheap, problem.price_import_per_kwh)
    assert np.array_equal(got, np.lexsort((t_all, eff)))
    # phasor state: limits of the nodes with a phasor line, base load at the root
    ph = g.PhasorState(problem)
    nodes = np.flatnonzero(problem.phasor_line.any(axis=1))
    assert np.array_equal(ph.pidx[nodes], np.arange(len(nodes)))
    assert (np.delete(ph.pidx, nodes) == -1).all()
    assert np.array_equal(ph.plim, problem.limit_a[nodes])
    per_kw = 1000.0 / (3.0 * problem.voltage_v)

    def numpy_pz(base, low):
        pz = np.zeros((len(nodes), 2, 3, T), dtype=np.complex128)
        k = ph.pidx[problem.root]
        if k >= 0:
            unit = np.exp(1j * LINE_ANGLES)[:, None]
            pz[k, 0] = unit * (base * per_kw)[None, :]
            pz[k, 1] = unit * (low * per_kw)[None, :]
        return pz

    assert np.array_equal(ph.pz, numpy_pz(problem.net_base_kw, problem.net_base_low_kw))
    # the two base-load variants differ when the base load varies within a slot
    base = np.random.default_rng(1).normal(0.0, 30.0, (2, T))
    args = (problem.phasor_line, problem.limit_a, problem.root, *base, per_kw, g._UNIT)
    assert np.array_equal(g._phasor_state(*args)[2], numpy_pz(*base))
    # the solver's one variant where they are equal everywhere, two where they are not
    assert np.array_equal(g._phasor_state(*args, True)[2], numpy_pz(*base))
    same = (problem.phasor_line, problem.limit_a, problem.root, base[0], base[0], per_kw, g._UNIT)
    assert np.array_equal(g._phasor_state(*same, True)[2], numpy_pz(base[0], base[0])[:, :1])


def test_round6_is_cpython_round():
    # the passes are compared on round(unmet, 6) inside the kernel; numba's own round
    # differs from CPython's (in about 15 % of random values), _round6 must not
    rng = np.random.default_rng(2)
    xs = np.concatenate(
        [
            rng.uniform(0.0, 1e4, 20000),
            np.round(rng.uniform(0.0, 1e4, 20000), 6) + 5e-7,  # near the ties
            (rng.integers(0, 10**10, 20000) + 0.5) / 1e6,
            rng.uniform(0.0, 1e-5, 5000),
            -rng.uniform(0.0, 1e3, 5000),
            [0.0, -0.0, 0.5e-6, 1.5e-6, 2.5e-6, 1e9, 5e8 + 0.5e-6, 2e9 + 0.25, np.inf, -np.inf],
        ]
    )
    for x in xs:
        assert g._round6(x) == round(float(x), 6), x
    assert np.isnan(g._round6(np.nan))


def test_line_room_shortcut_gives_the_exact_bound_bit_for_bit():
    # _line_room skips the square root where |z + h a|^2 <= lim^2 (1 - 1e-12): the exact
    # bound must then not lower h either, so h is what the exact formula gives, bit for
    # bit, also with h a hair above or below the bound and z (nearly) along a
    rng = np.random.default_rng(11)
    skipped = 0
    for _ in range(20000):
        lim = rng.uniform(1.0, 500.0)
        a = complex(*rng.normal(size=2)) * rng.uniform(0.01, 5.0)
        if rng.random() < 0.3:  # z along a: the bound's formula cancels most there
            z = a / abs(a) * lim * rng.uniform(0.9, 1.0)
        else:
            z = complex(*rng.normal(size=2)) * lim * rng.uniform(0.0, 0.7)
        aa = a.real * a.real + a.imag * a.imag
        zz = z.real * z.real + z.imag * z.imag
        ll = lim * lim
        b = z.real * a.real + z.imag * a.imag
        q = (-b + np.sqrt(max(b * b - aa * (zz - ll), 0.0))) / aa
        h = q * (1.0 + rng.choice([-1e-9, -1e-12, -1e-15, 0.0, 1e-15, 1e-12, 1e-9, -0.5, 2.0]))
        want = q if q < h else h
        assert g._line_room(z, a, aa, zz, ll, h) == want
        wr, wi = z.real + h * a.real, z.imag + h * a.imag
        skipped += wr * wr + wi * wi <= ll * g._FITS
    assert skipped > 5000  # the shortcut was taken often enough to be tested


def test_cap_min_equals_numpy_min():
    rng = np.random.default_rng(5)
    cap = rng.uniform(-5.0, 300.0, (40, 4, 96))
    cap[3] = np.inf  # a node without limits
    cap[4, 1, 50] = -0.0
    cap[5, 2, 7] = np.nan  # NaN propagates, as in numpy
    cap[6, 0, :] = np.nan
    cap[7, 3, 95] = -np.inf
    got, want = g._cap_min(cap), cap.min(axis=2)
    assert np.array_equal(got, want, equal_nan=True)
    assert np.isnan(got[5, 2]) and not np.isnan(got[5, 1])


def test_lexorder_equals_numpy_lexsort():
    rng = np.random.default_rng(11)
    for n in (0, 1, 2, 50, 999, 5000):
        k1 = -rng.choice([1.0, 2.0, 1.5], n)
        k2 = rng.integers(0, 97, n).astype(float)
        k3 = np.round(rng.standard_normal(n) * 10, int(rng.integers(0, 3)))
        m = rng.random(n)
        k3[m < 0.05] = -np.inf
        k3[(m >= 0.05) & (m < 0.08)] = np.inf
        k3[(m >= 0.08) & (m < 0.1)] = -0.0
        k3[(m >= 0.1) & (m < 0.12)] = np.nan
        k3[(m >= 0.12) & (m < 0.13)] = -np.nan
        ids = np.arange(n)
        assert np.array_equal(g._lexorder(k1, k2, k3), np.lexsort((ids, k3, k2, k1)))
        assert np.array_equal(g._lexorder(k1, k3, k2), np.lexsort((ids, k2, k3, k1)))


def inactive_is_sound(problem, active, extra):
    """Every node left out of a slot keeps room even with all sessions at ``extra``.

    (Or nobody can add load on that row or line there: then an overload by the base
    load alone does not matter, the plain kernel does not check it either.)
    """
    extra = np.maximum(extra, 0.0)
    ph = g.PhasorState(problem)
    for n in range(len(problem.node_ids)):
        below = (problem.path == n).any(axis=1)
        off = ~active[n]
        if not off.any():
            continue
        for r in range(4):
            if r < 3 and problem.phasor_line[n, r]:
                continue
            load = (problem.coef[below, r][:, None] * extra[below]).sum(axis=0)
            cap = problem.cap[n, r]
            ok = (load <= cap) | ~np.isfinite(cap) | (load == 0)
            assert ok[off].all(), (n, r)
        k = ph.pidx[n]
        for line in range(3):
            if not problem.phasor_line[n, line]:
                continue
            mag = (np.abs(problem.acoef[below, line])[:, None] * extra[below]).sum(axis=0)
            worst = np.maximum(np.abs(ph.pz[k, 0, line]), np.abs(ph.pz[k, 1, line])) + mag
            lim = ph.plim[k, line]
            assert ((worst <= lim) | ~np.isfinite(lim) | (mag == 0))[off].all(), (n, line)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_fast_solve_equals_plain_kernels(scenario):
    problem = _problem(scenario)
    p, info = g.solve_greedy(problem)
    ref, name = reference_solve(problem)
    assert info["ordering"] == name
    assert np.array_equal(p, ref)
    # scores summed in numba exactly as numpy sums them
    assert (info["weighted_unmet_kwh"], info["cost"]) == g._quality(problem, p)
    orders = g.session_orders(problem)
    for key, order in reference_orders(problem).items():
        assert np.array_equal(orders[key], order)
    active = active_mask(problem, problem.pmax_kw)
    inactive_is_sound(problem, active, problem.pmax_kw)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_fast_fill_from_equals_plain_kernel(scenario):
    problem = _problem(scenario)
    p, _ = g.solve_greedy(problem)
    half = p * 0.6
    half[half < problem.pmin_kw[:, None] - 1e-9] = 0.0
    assert np.array_equal(g.fill_from(problem, half), reference_fill_from(problem, half))


def _twelve_hours(site, rng, arrive_h, leave_h, kwh):
    """Problem of one session per EVSE over 12 h of 15-min slots, random hourly prices.

    EV j arrives in the first ``arrive_h`` hours, leaves after ``leave_h`` hours (before
    the end) and asks 10 to ``kwh`` kWh.
    """
    start = pd.Timestamp("2024-03-04 00:00", tz="Europe/Amsterdam")
    sessions = [
        cp.Session(
            f"s{j}",
            evse=evse.id,
            arrival=start + pd.Timedelta(hours=float(rng.uniform(0, arrive_h))),
            departure=start + pd.Timedelta(hours=float(rng.uniform(leave_h, 12))),
            energy_kwh=float(rng.uniform(10, kwh)),
        )
        for j, evse in enumerate(site.evses)
    ]
    prices = pd.Series(rng.uniform(0.1, 0.4, 12), index=pd.date_range(start, periods=12, freq="1h"))
    tariff = cp.Tariff(import_price_per_kwh=prices)
    grid = cp.validate(site, sessions, start=start, horizon="12h", step="15min", tariff=tariff)
    return build_problem(site, sessions, grid, tariff)


def test_congested_site_skips_most_chargers_and_keeps_the_plan():
    # 40 EVSEs in pairs behind 20 chargers, 2 of them tight; a root that binds
    chargers = [
        cp.Node(f"c{i}", parent="grid", limit_a=16.0 if i < 2 else 200.0) for i in range(20)
    ]
    site = cp.Site(
        nodes=[cp.Node("grid", limit_a=150.0), *chargers],
        evses=[cp.Evse(f"e{j}", parent=f"c{j // 2}", max_current_a=32.0) for j in range(40)],
    )
    problem = _twelve_hours(site, np.random.default_rng(3), arrive_h=6, leave_h=8, kwh=60)
    active = active_mask(problem, problem.pmax_kw)
    idx = {n: i for i, n in enumerate(problem.node_ids)}
    assert active[idx["grid"]].any()  # the root binds
    assert active[idx["c0"]].any()  # 2 x 32 A behind 16 A
    assert not active[[idx[f"c{i}"] for i in range(2, 20)]].any()  # 2 x 32 A behind 200 A
    inactive_is_sound(problem, active, problem.pmax_kw)
    p, info = g.solve_greedy(problem)
    ref, _ = reference_solve(problem)
    assert np.array_equal(p, ref)
    assert (info["weighted_unmet_kwh"], info["cost"]) == g._quality(problem, p)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_large_problem_path_equals_plain_kernels(scenario):
    """With every problem treated as large: LLF skipped, EDF stopped once short, one sweep."""
    problem = _problem(scenario)
    with (
        mock.patch.object(g, "ORDERINGS_MAX_CELLS", 0),
        mock.patch.object(g, "IMPROVE_SWEEPS_MAX_CELLS", 0),
    ):
        p, info = g.solve_greedy(problem)
        ref, name = reference_solve(problem)
    if problem.n_sessions * problem.n_slots > 0:  # an empty problem is not large
        assert "llf" not in info["orderings"] and "llf_asap" not in info["orderings"]
    assert info["ordering"] == name
    assert np.array_equal(p, ref)
    if info["orderings"]["edf"].get("stopped"):
        assert name == "edf_asap"
    assert (info["weighted_unmet_kwh"], info["cost"]) == g._quality(problem, p)


def test_stopped_pass_on_a_congested_site():
    """Two EVs that one 16 A feeder cannot both serve: the price-ordered pass stops short.

    Each asks 15 kWh and could take 22 alone (16 A x 3 x 230 V = 11.04 kW for 2 h); the
    feeder carries one EV at full rate. The first EV in EDF order takes the cheap hour
    and the rest of its energy in the dear one, leaving the second short, so on a large
    problem that pass is stopped and the delivery-first pass is kept.
    """
    site = cp.Site(
        nodes=[cp.Node("grid", limit_a=16.0)],
        evses=[cp.Evse(f"e{i}", parent="grid", max_current_a=16.0) for i in range(2)],
    )
    t0 = pd.Timestamp("2024-06-01 10:00", tz="Europe/Amsterdam")
    sessions = [
        cp.Session(
            f"s{i}", evse=f"e{i}", arrival=t0, departure=t0 + pd.Timedelta("2h"), energy_kwh=15.0
        )
        for i in range(2)
    ]
    prices = pd.Series([0.3, 0.1], index=pd.date_range(t0, periods=2, freq="1h"))
    tariff = cp.Tariff(import_price_per_kwh=prices)
    grid = cp.validate(site, sessions, start=t0, horizon="2h", step="1h", tariff=tariff)
    problem = build_problem(site, sessions, grid, tariff)
    p, info = g.solve_greedy(problem, orderings_max_cells=0)
    assert info["orderings"]["edf"] == {"stopped": True}
    assert set(info["orderings"]) == {"edf", "edf_asap"}
    assert info["ordering"] == "edf_asap"
    p_small, small = g.solve_greedy(problem)  # small: all four orderings compared
    assert set(small["orderings"]) == {"edf", "llf", "edf_asap", "llf_asap"}
    assert small["orderings"]["edf"]["weighted_unmet_kwh"] >= small["weighted_unmet_kwh"]
    # the price-ordered pass delivers no more than the delivery-first one (here the
    # same), which after the improvement is no dearer: both paths keep it
    assert small["ordering"] == "edf_asap"
    assert np.array_equal(p, p_small)


def _memo_site_problem(seed, n=12):
    """A root at its limit most of the time, with line-to-line EVSEs: a phasor root."""
    kinds = [dict(), dict(phases=1, phase="L1"), dict(phases=1, phase="L1-L2")]
    site = cp.Site(
        nodes=[cp.Node("grid", limit_a=60.0), cp.Node("f1", parent="grid", limit_a=40.0)],
        evses=[
            cp.Evse(f"e{j}", parent="f1" if j % 2 else "grid", max_current_a=32.0, **kinds[j % 3])
            for j in range(n)
        ],
    )
    return _twelve_hours(site, np.random.default_rng(seed), arrive_h=5, leave_h=7, kwh=40)


@pytest.mark.parametrize("pv_kw", [0.0, 70.0])
@pytest.mark.parametrize("large", [False, True])
def test_base_load_varying_within_slots_equals_plain_kernels(pv_kw, large):
    """Two base-load variants at the root (the load moves within each slot): same plans.

    A 5-minute base load under 15-minute slots makes the highest and the lowest in a
    slot differ, so ``_solve`` keeps two phasor variants. With PV far above the base
    load, the export alone takes the root near its limit in the low variant, which then
    binds (dropping it changes the plans: checked), and the root is not monotone. Both
    paths must plan as the public kernels, which check both variants with no memo.
    """
    kinds = [dict(), dict(phases=1, phase="L1"), dict(phases=1, phase="L1-L2")]
    site = cp.Site(
        nodes=[cp.Node("grid", limit_a=60.0), cp.Node("f1", parent="grid", limit_a=40.0)],
        evses=[
            cp.Evse(f"e{j}", parent="f1" if j % 2 else "grid", max_current_a=32.0, **kinds[j % 3])
            for j in range(12)
        ],
    )
    rng = np.random.default_rng(3)
    start = pd.Timestamp("2024-03-04 00:00", tz="Europe/Amsterdam")
    sessions = [
        cp.Session(
            f"s{j}",
            evse=evse.id,
            arrival=start + pd.Timedelta(hours=float(rng.uniform(0, 5))),
            departure=start + pd.Timedelta(hours=float(rng.uniform(7, 12))),
            energy_kwh=float(rng.uniform(10, 40)),
        )
        for j, evse in enumerate(site.evses)
    ]
    prices = pd.Series(rng.uniform(0.1, 0.4, 12), index=pd.date_range(start, periods=12, freq="1h"))
    tariff = cp.Tariff(import_price_per_kwh=prices)
    five_min = pd.date_range(start, periods=12 * 12, freq="5min")
    forecast = cp.Forecast(
        base_load_kw=pd.Series(rng.uniform(5.0, 25.0, len(five_min)), five_min),
        pv_kw=pd.Series(rng.uniform(0.0, pv_kw, len(five_min)), five_min),
    )
    kw = dict(start=start, horizon="12h", step="15min", tariff=tariff)
    grid = cp.validate(site, sessions, forecast=forecast, **kw)
    problem = build_problem(site, sessions, grid, tariff, forecast)
    assert (problem.net_base_kw != problem.net_base_low_kw).all()
    x = _pass_inputs(problem)
    assert x.memo[3] == (problem.net_base_low_kw >= 0.0).all()  # an export breaks it
    assert x.memo[3] == (pv_kw == 0.0)
    cells = 0 if large else g.ORDERINGS_MAX_CELLS
    with (
        mock.patch.object(g, "ORDERINGS_MAX_CELLS", cells),
        mock.patch.object(g, "IMPROVE_SWEEPS_MAX_CELLS", cells),
    ):
        p, info = g.solve_greedy(problem)
        ref, name = reference_solve(problem)
    assert info["ordering"] == name
    assert np.array_equal(p, ref)


def _pass_inputs(problem):
    """What ``_solve`` gives the passes, built step by step from the public pieces."""
    T = problem.n_slots
    ph = g.PhasorState(problem)
    window, b0, C, present, pmax, avail_h, peak, floor_s, _ = g._session_stats(
        problem.present, problem.pmax_kw, problem.energy_kwh, problem.priority, problem.grid.step_h
    )
    edf, _ = g._orders(window, avail_h, peak, problem.energy_kwh, problem.priority, T, False)
    rows, n_rows = g._session_rows(problem.coef)
    cap_min = problem.cap.min(axis=2)
    nlo, nhi, noff, total = g._problem_ranges(problem, ph, pmax, window, b0, rows, n_rows, cap_min)
    chk = g._problem_checks(problem, ph, rows, n_rows, nlo, nhi, noff, cap_min == np.inf, edf)
    memo = g._root_memo(
        chk, problem.root, ph.pidx, T, g._UNIT, problem.net_base_kw, problem.net_base_low_kw
    )
    return SimpleNamespace(
        T=T, ph=ph, window=window, b0=b0, C=C, present=present, pmax=pmax, floor_s=floor_s,
        edf=edf, ranges=(nlo, nhi, noff, total), chk=chk, memo=memo,
    )  # fmt: skip


def test_root_is_monotone_unless_phasors_on_a_line_are_over_90_degrees_apart():
    """The root memo's ``mono`` flag against the pairwise angles, computed here.

    Charging loads (line-to-neutral, line-to-line, three-phase) are within 30 degrees
    of their line, so any two at most 60 degrees apart; base load adds the line's own
    direction, an export (negative base load) the opposite one.
    """
    problem = _memo_site_problem(6)
    x = _pass_inputs(problem)
    T, ph, chk = x.T, x.ph, x.chk
    assert (chk[10][chk[3], 0] == problem.root).all()  # each session's first phasor entry
    root_pa = chk[8][chk[3]]
    load = np.ones(T)

    def mono(base, base_low):
        return g._root_memo(chk, problem.root, ph.pidx, T, g._UNIT, base, base_low)[3]

    def pairwise_ok(extra):
        for line in range(3):
            d = [a for a in root_pa[:, line] if a != 0] + [e * g._UNIT[line] for e in extra]
            if any((np.conj(u) * w).real < 0 for u in d for w in d):
                return False
        return True

    assert mono(0 * load, 0 * load) and pairwise_ok([])
    assert mono(load, 0.5 * load) and pairwise_ok([1.0])
    assert not mono(load, -load) and not pairwise_ok([1.0, -1.0])
    assert not mono(0 * load, -load) and not pairwise_ok([-1.0])  # against charging
    # a load that flows against the line (a discharging class) breaks it too
    flipped = (chk[0], chk[1], chk[2], chk[3], chk[4], chk[5], chk[6], chk[7],
               chk[8].copy(), chk[9], chk[10])  # fmt: skip
    flipped[8][chk[3][0]] *= -1.0
    assert not g._root_memo(flipped, problem.root, ph.pidx, T, g._UNIT, 0 * load, 0 * load)[3]


@pytest.mark.parametrize("seed", [6, 7])
def test_undo_of_a_stopped_pass_restores_the_start_state_exactly(seed):
    """``_undo_pass`` restores only the slots the pass left above 0, and that is all.

    A price-ordered pass on a site whose root is at its limit most of the time is
    stopped at the first session left short; taking it back must give the capacity,
    phasors and plan the pass started from, bit for bit.
    """
    problem = _memo_site_problem(seed)
    x = _pass_inputs(problem)
    ph, chk, memo, edf, window, b0 = x.ph, x.chk, x.memo, x.edf, x.window, x.b0
    present, pmax, floor_s, C = x.present, x.pmax, x.floor_s, x.C
    nlo, nhi, noff, total = x.ranges
    sub_t, sub_kind = g._sub_slots(problem)
    p = np.zeros(C)
    cap0 = g._gather_cap(problem.cap, nlo, nhi, noff, total)
    cap = cap0.copy()
    pz = ph.pz.copy()
    n_done = g._fill(
        edf, sub_t, sub_kind, False, present, pmax, problem.pmin_kw, problem.energy_kwh,
        chk, cap, problem.pv_surplus_kw.copy(), problem.grid.step_h, p, np.zeros(0),
        ph.plim, pz, window, b0, floor_s, problem.priority, -1.0, memo,
    )  # fmt: skip
    assert n_done >= 2 and (p > 0).sum() > 0  # stopped after some sessions were filled
    assert not np.array_equal(cap, cap0)
    g._undo_pass(edf, n_done, window, b0, p, cap, problem.cap, chk, pz, ph.pz)
    assert (p == 0.0).all()
    assert np.array_equal(cap, cap0)
    assert np.array_equal(pz, ph.pz)


@pytest.mark.parametrize("seed", [6, 7])
def test_root_memo_skips_only_cells_without_room(seed):
    """The root memo changes no rate of the fill or the improvement pass, and is used.

    Both kernels run twice from the same state, with the memo and with one that never
    skips (``_no_memo``); the memo must have noted blocked slots (else this test would
    not exercise it) and the plans must be equal bit for bit. On these seeds a memo
    that ignored later bookings (a stamp kept after capacity was given back) would
    change the improvement pass's moves.
    """
    problem = _memo_site_problem(seed)
    x = _pass_inputs(problem)
    T, ph, chk, memo, edf, window, b0 = x.T, x.ph, x.chk, x.memo, x.edf, x.window, x.b0
    present, pmax, floor_s, C = x.present, x.pmax, x.floor_s, x.C
    nlo, nhi, noff, total = x.ranges
    assert ph.pidx[problem.root] >= 0  # the root is checked on its phasors
    assert sorted(set(memo[0])) == [0, 1, 2]  # three wirings: three classes
    assert memo[3]  # charging loads only: booking load keeps the notes (monotone root)
    S = problem.n_sessions
    cheap = np.minimum(problem.price_export_per_kwh, problem.price_import_per_kwh)
    slots = np.argsort(problem.price_import_per_kwh, kind="stable").astype(np.int64)
    plans = []
    for blk in (memo, g._no_memo(S, T)):
        p = np.zeros(C)
        cap = g._gather_cap(problem.cap, nlo, nhi, noff, total)
        pz = ph.pz.copy()
        in_time = np.arange(T, dtype=np.int64)
        g._fill(
            edf, in_time, np.ones(T, dtype=np.int64), True, present, pmax, problem.pmin_kw,
            problem.energy_kwh, chk, cap, problem.pv_surplus_kw.copy(), problem.grid.step_h,
            p, np.zeros(C), ph.plim, pz, window, b0, floor_s, problem.priority, np.inf, blk,
        )  # fmt: skip
        filled = p.copy()
        stamped_by_fill = (blk[1] >= 0).sum()
        usage = (g._from_ragged(p, window, b0, T) * problem.present).sum(axis=0)
        moves = 0
        for _ in range(g.IMPROVE_SWEEPS):  # later sweeps use slots earlier ones freed
            moved = g._improve(
                edf, slots, problem.price_import_per_kwh, cheap, problem.pv_surplus_kw, usage,
                present, pmax, problem.pmin_kw, chk, cap, ph.plim, pz, p, window, b0, blk,
            )  # fmt: skip
            moves += moved
        plans.append((filled, p, moves, stamped_by_fill, (blk[1] >= 0).sum()))
    (fill_a, p_a, moves_a, by_fill, by_both), (fill_b, p_b, moves_b, _, none) = plans
    assert by_fill > 0 and by_both > by_fill and none == 0
    assert moves_a == moves_b > 0
    assert np.array_equal(fill_a, fill_b) and np.array_equal(p_a, p_b)
