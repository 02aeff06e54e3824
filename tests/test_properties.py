"""Property tests over random sites and sessions: a plan never exceeds a limit.

Loads and limits are recomputed here from the inputs with their own small code,
independently of the library's problem builder and checker.
"""

import math

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import chargeplan as cp

T0 = pd.Timestamp("2024-06-01 06:00", tz="Europe/Amsterdam")
HOURS = 4
STEP_MIN = 15
N_SLOTS = HOURS * 60 // STEP_MIN
ROT = {"R": 0, "S": 1, "T": 2}


@st.composite
def scenarios(draw):
    rng_seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(rng_seed)
    depth = draw(st.integers(1, 3))  # chain of 1-3 levels, plus branches one level deeper
    n_nodes = draw(st.integers(depth, 8))
    nodes, levels = [], {}
    hourly_idx = pd.date_range(T0, periods=HOURS, freq="1h")
    for i in range(n_nodes):
        nid = f"n{i}"
        level = 0 if i == 0 else (i if i < depth else int(rng.integers(1, depth + 1)))
        parent = (
            None
            if i == 0
            else (
                f"n{i - 1}"
                if i < depth
                else rng.choice([n for n, lv in levels.items() if lv == level - 1])
            )
        )
        levels[nid] = level
        kind = rng.integers(0, 5)
        if kind == 0:
            limit_a = None
        elif kind == 1:
            limit_a = float(rng.integers(0, 120))
        elif kind == 2:
            limit_a = tuple(float(x) for x in rng.integers(0, 80, 3))
        elif kind == 3:
            limit_a = pd.Series(rng.integers(0, 100, HOURS).astype(float), index=hourly_idx)
        else:
            limit_a = pd.DataFrame(
                {p: rng.integers(0, 100, HOURS).astype(float) for p in ("L1", "L2", "L3")},
                index=hourly_idx,
            )
        limit_kw = float(rng.integers(5, 150)) if rng.random() < 0.3 else None
        nodes.append(
            cp.Node(
                nid,
                parent=None if parent is None else str(parent),
                limit_a=limit_a,
                limit_kw=limit_kw,
            )
        )
    n_evse = draw(st.integers(1, 10))
    evses = []
    for j in range(n_evse):
        parent = nodes[int(rng.integers(0, n_nodes))].id
        kind = int(rng.integers(0, 4))
        if kind == 0:
            e = cp.Evse(
                f"e{j}",
                parent=parent,
                max_current_a=float(rng.integers(6, 64)),
                phase_rotation=str(rng.choice(["RST", "STR", "TRS", "RTS"])),
            )
        elif kind == 1:
            e = cp.Evse(
                f"e{j}",
                parent=parent,
                max_current_a=float(rng.integers(6, 40)),
                phases=1,
                phase=str(rng.choice(["L1", "L2", "L3"])),
            )
        elif kind == 2:
            e = cp.Evse(
                f"e{j}",
                parent=parent,
                max_current_a=32.0,
                phases=1,
                phase=str(rng.choice(["L1-L2", "L2-L3", "L3-L1"])),
            )
        else:
            e = cp.Evse(f"e{j}", parent=parent, max_power_kw=float(rng.integers(10, 150)), dc=True)
        evses.append(e)
    sessions = []
    for j, e in enumerate(evses):
        t = 0.0
        for k in range(int(rng.integers(0, 3))):
            arr = t + float(rng.uniform(-1 if k == 0 else 0.01, 2))
            dep = arr + float(rng.uniform(0.1, 4))
            t = dep
            kw = {}
            if not e.dc:
                if rng.random() < 0.5:
                    kw["max_current_a"] = float(rng.integers(6, 40))
                if e.phases != 1 and rng.random() < 0.5:
                    kw["phases"] = int(rng.integers(1, 4))
                if rng.random() < 0.2:
                    hi = min(10.0, kw.get("max_current_a", 10.0))
                    kw["min_current_a"] = float(rng.integers(6, hi + 1))
            else:
                if rng.random() < 0.5:
                    kw["max_power_kw"] = float(rng.integers(5, 100))
                if rng.random() < 0.3:
                    kw["min_power_kw"] = float(rng.integers(0, 5))
            sessions.append(
                cp.Session(
                    f"s{j}_{k}",
                    evse=e.id,
                    arrival=T0 + pd.Timedelta(hours=arr),
                    departure=T0 + pd.Timedelta(hours=dep),
                    energy_kwh=float(rng.uniform(0, 60)),
                    priority=float(rng.choice([1.0, 1.0, 2.0])),
                    **kw,
                )
            )
    prices = pd.Series(rng.uniform(-0.05, 0.5, HOURS), index=hourly_idx)
    forecast = None
    if rng.random() < 0.5:
        forecast = cp.Forecast(
            pv_kw=pd.Series(rng.uniform(0, 30, HOURS), index=hourly_idx),
            base_load_kw=float(rng.uniform(0, 10)),
        )
    voltage = float(rng.choice([230.0, 120.0]))
    phasor = bool(rng.random() < 0.6)
    site = cp.Site(nodes=nodes, evses=evses, voltage_v=voltage, phasor_limits=phasor)
    return site, sessions, prices, forecast


def slot_values(value, n_phase_rows=False):
    """Limit per slot for hourly series / scalars (slots are 15 min inside whole hours)."""
    if value is None:
        return np.full(N_SLOTS, np.inf)
    if isinstance(value, pd.Series):
        return np.repeat(value.to_numpy(dtype=float), 60 // STEP_MIN)
    return np.full(N_SLOTS, float(value))


ANGLE = np.array([0.0, -2 * np.pi / 3, 2 * np.pi / 3])
LL_ANGLE = {(0, 1): np.pi / 6, (1, 2): -np.pi / 2, (2, 0): 5 * np.pi / 6}


def independent_loads(site, sessions, plan):
    """Per node: (3, T) line-current phasors, (3, T) sum-of-magnitudes currents, (T,) kW."""
    V = site.voltage_v
    evses = {e.id: e for e in site.evses}
    parent = {n.id: n.parent for n in site.nodes}
    phasor = {n.id: np.zeros((3, N_SLOTS), dtype=complex) for n in site.nodes}
    linear = {n.id: np.zeros((3, N_SLOTS)) for n in site.nodes}
    kws = {n.id: np.zeros(N_SLOTS) for n in site.nodes}
    for s, sess in enumerate(sessions):
        e = evses[sess.evse]
        rate = plan.rate_kw[s]
        z = np.zeros((3, N_SLOTS), dtype=complex)
        lin = np.zeros((3, N_SLOTS))
        if e.dc:
            for k in range(3):
                z[k] = rate * 1000 / (3 * V) * np.exp(1j * ANGLE[k])
                lin[k] = rate * 1000 / (3 * V)
        else:
            i = plan.current_a_array[s]
            if e.phases == 1 and "-" in e.phase:
                a, b = (int(x[1]) - 1 for x in e.phase.split("-"))
                u = np.exp(1j * LL_ANGLE[(a, b)])
                z[a] += i * u
                z[b] -= i * u
                lin[a] += i
                lin[b] += i
            else:
                lines = (
                    [int(e.phase[1]) - 1]
                    if e.phases == 1
                    else [ROT[c] for c in e.phase_rotation[: (sess.phases or 3)]]
                )
                for k in lines:
                    z[k] += i * np.exp(1j * ANGLE[k])
                    lin[k] += i
        n = e.parent
        while n is not None:
            phasor[n] += z
            linear[n] += lin
            kws[n] += rate
            n = parent[n]
    return phasor, linear, kws


def node_limits(node):
    lim = node.limit_a
    out = np.full((3, N_SLOTS), np.inf)
    if isinstance(lim, pd.DataFrame):
        for k, p in enumerate(("L1", "L2", "L3")):
            out[k] = slot_values(lim[p])
    elif isinstance(lim, tuple):
        for k in range(3):
            out[k] = lim[k]
    elif lim is not None:
        out[:] = slot_values(lim)
    return out


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_plan_never_exceeds_a_limit(scenario):
    site, sessions, prices, forecast = scenario
    plan = cp.optimize(
        site,
        sessions,
        start=T0,
        horizon=f"{HOURS}h",
        step=f"{STEP_MIN}min",
        tariff=cp.Tariff(import_price_per_kwh=prices),
        forecast=forecast,
        method="greedy",
    )
    assert plan.violations() == []
    phasor, linear, kws = independent_loads(site, sessions, plan)
    V = site.voltage_v
    net = np.zeros(N_SLOTS)
    if forecast is not None:
        net = forecast.base_load_kw - slot_values(forecast.pv_kw)
    for node in site.nodes:
        lim = node_limits(node)
        lim_kw = slot_values(node.limit_kw)
        z = phasor[node.id]
        if node.parent is None:
            base = net * 1000 / (3 * V)
            z = z + base[None, :] * np.exp(1j * ANGLE)[:, None]
            lim = np.maximum(lim, np.abs(base)[None, :])
            lim_kw = np.maximum(lim_kw - net, 0)
        # exact line currents always hold
        assert (np.abs(z) <= lim + 1e-6).all(), node.id
        assert (kws[node.id] <= lim_kw + 1e-6).all(), node.id
        if not site.phasor_limits and node.parent is not None:
            # the sum-of-magnitudes bound holds when asked for
            assert (linear[node.id] <= lim + 1e-6).all(), node.id
    evses = {e.id: e for e in site.evses}
    edges = pd.date_range(T0, periods=N_SLOTS + 1, freq=f"{STEP_MIN}min")
    for s, sess in enumerate(sessions):
        e = evses[sess.evse]
        rate = plan.rate_kw[s]
        assert (rate >= 0).all()
        present = np.array(
            [
                (min(edges[k + 1], sess.departure) - max(edges[k], sess.arrival)).total_seconds()
                > 0
                for k in range(N_SLOTS)
            ]
        )
        assert (rate[~present] == 0).all()
        if e.dc:
            assert (rate <= min(e.max_power_kw, sess.max_power_kw or math.inf) + 1e-9).all()
        else:
            i = plan.current_a_array[s]
            i_max = min(e.max_current_a, sess.max_current_a or math.inf)
            i_min = max(6.0, sess.min_current_a or 0)
            assert (i <= i_max + 1e-9).all()
            assert not ((i > 0) & (i < i_min - 1e-9)).any()
            assert np.allclose(i * 10, np.round(i * 10))
    delivered = plan.sessions["delivered_kwh"].to_numpy()
    requested = np.array([s.requested_energy_kwh() for s in sessions])
    assert (delivered <= requested + 1e-6).all()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_plans_are_reproducible(scenario):
    site, sessions, prices, forecast = scenario
    kw = dict(
        start=T0,
        horizon=f"{HOURS}h",
        step=f"{STEP_MIN}min",
        tariff=cp.Tariff(import_price_per_kwh=prices),
        forecast=forecast,
    )
    a = cp.optimize(site, sessions, **kw)
    b = cp.optimize(site, list(sessions), **kw)
    assert np.array_equal(a.rate_kw, b.rate_kw)
    assert np.array_equal(a.current_a_array, b.current_a_array, equal_nan=True)
