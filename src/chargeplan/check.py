"""Independent feasibility checker.

Written from the constraint definitions in the input model, not from solver
internals: it does not use :mod:`chargeplan.problem` or any solver. It takes the
inputs and the planned rates and currents per session and slot, recomputes every
load on every node, phase and slot, and lists every violated limit.

Definitions checked (tolerance ``TOL`` = 1e-6 in A, kW and kWh):

* a session draws only in slots that overlap its ``[arrival, departure)`` window;
* AC: current per conductor is 0 or at least the larger of the EVSE's and the EV's
  minimum, at most the smaller of their maxima, on the 0.1 A grid, and consistent
  with the planned power; DC: power 0 or at least the EV minimum, at most the EVSE
  and EV maxima;
* a negative rate (discharge) only for a V2G session on a bidirectional EVSE, within
  the discharge limits (and the same minimum);
* energy added to the battery (charge, minus discharge divided by the round-trip
  efficiency) never exceeds the energy requested, and its running total never goes
  below the driver's reserve;
* every node, on every phase and in every slot, carries at most its current limit
  (the lowest value the limit takes in the slot) and at most its kW limit, in both
  directions. A session's load counts in every slot it is present in, even partly.
  At the root, the forecast base load minus PV is added, balanced over the phases,
  taken at its highest within the slot for the import direction and at its lowest
  for the export direction; where it alone exceeds a limit, the plan is only
  required to add nothing there;
* discharging EVs never push the site's export above ``max(Site.export_limit_kw,
  PV export)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .exceptions import Violation
from .model import Evse, Forecast, Node, Session, Site
from .timegrid import TimeGrid, align_series

__all__ = ["check_plan", "TOL"]

TOL = 1e-6
_PH = {"L1": 0, "L2": 1, "L3": 2}
_ROT = {"R": 0, "S": 1, "T": 2}


def _conductor_phases(evse: Evse, session: Session) -> tuple[list[int], float]:
    """Site phases the EV's conductors are on, and the voltage across each conductor."""
    if evse.phases == 1:
        wiring = evse.phase or "L1"
        if "-" in wiring:
            a, b = wiring.split("-")
            v = evse.voltage_v if evse.voltage_v else math.sqrt(3.0) * _SITE_V[0]
            # one conductor current flowing out on line a and back on line b
            return [_PH[a], _PH[b]], v
        return [_PH[wiring]], evse.voltage_v or _SITE_V[0]
    rotation = evse.phase_rotation or "RST"
    n = session.phases or 3
    return [_ROT[c] for c in rotation[:n]], evse.voltage_v or _SITE_V[0]


_SITE_V = [230.0]  # set per call (kept local to check_plan through a list)


def _series_or_const(value, grid: TimeGrid, how: str, default: float) -> np.ndarray:
    if value is None:
        return np.full(grid.n_slots, default)
    if isinstance(value, pd.Series):
        return align_series(value, grid, how)
    return np.full(grid.n_slots, float(value))


def _node_limits_a(node: Node, grid: TimeGrid) -> np.ndarray:
    lim = node.limit_a
    out = np.full((3, grid.n_slots), np.inf)
    if lim is None:
        return out
    if isinstance(lim, pd.DataFrame):
        for col in lim.columns:
            out[_PH[col]] = align_series(lim[col], grid, "min")
    elif isinstance(lim, pd.Series):
        out[:] = align_series(lim, grid, "min")[None, :]
    elif isinstance(lim, (tuple, list)):
        for k in range(3):
            if lim[k] is not None:
                out[k] = float(lim[k])
    else:
        out[:] = float(lim)
    return out


def check_plan(
    site: Site,
    sessions: Sequence[Session],
    grid: TimeGrid,
    rate_kw: np.ndarray,
    current_a: np.ndarray,
    forecast: Forecast | None = None,
) -> list[Violation]:
    """Every violated limit of a plan.

    Parameters
    ----------
    site, sessions, forecast
        The validated inputs the plan was made for.
    grid : TimeGrid
        The plan's time axis.
    rate_kw : numpy.ndarray
        (S, T) charging rate in kW of each session (in ``sessions`` order) in each slot.
    current_a : numpy.ndarray
        (S, T) conductor current in A (NaN for DC sessions).

    Returns
    -------
    list of Violation
        Empty when the plan keeps every limit.
    """
    _SITE_V[0] = float(site.voltage_v)
    V = float(site.voltage_v)
    T = grid.n_slots
    dt_h = grid.step_s / 3600.0
    edges_ns = grid.start.value + np.arange(T + 1, dtype=np.int64) * (grid.step_s * 1_000_000_000)
    evses = {e.id: e for e in site.evses}
    parent = {n.id: n.parent for n in site.nodes}
    out: list[Violation] = []
    load_a: dict[str, np.ndarray] = {n.id: np.zeros((3, T)) for n in site.nodes}
    load_kw: dict[str, np.ndarray] = {n.id: np.zeros(T) for n in site.nodes}
    ev_kw = np.zeros(T)  # mean EV power of the site per slot

    for s, sess in enumerate(sessions):
        evse = evses[sess.evse]
        rate = np.asarray(rate_kw[s], dtype=np.float64)
        lo = np.maximum(edges_ns[:-1], pd.Timestamp(sess.arrival).value)
        hi = np.minimum(edges_ns[1:], pd.Timestamp(sess.departure).value)
        overlap = np.maximum(hi - lo, 0) / (grid.step_s * 1e9)  # fraction of slot present
        who = f"session {sess.id!r} on EVSE {evse.id!r}"
        may_discharge = bool(sess.v2g and evse.bidirectional)
        if not may_discharge:
            for k in np.flatnonzero(rate < -TOL):
                out.append(Violation("negative_rate", who, int(k), float(rate[k]), 0.0))
        dis_kw = min(
            [
                x
                for x in (
                    evse.max_discharge_power_kw or evse.max_power_kw,
                    sess.max_discharge_power_kw or sess.max_power_kw,
                )
                if x is not None
            ],
            default=np.inf,
        )
        for k in np.flatnonzero(-rate > dis_kw + TOL):
            out.append(Violation("max_discharge_power", who, int(k), float(-rate[k]), dis_kw))
        for k in np.flatnonzero((rate > TOL) & (overlap <= 0.0)):
            out.append(Violation("availability", who, int(k), float(rate[k]), 0.0))
        max_kw = min(
            [x for x in (evse.max_power_kw, sess.max_power_kw) if x is not None], default=np.inf
        )
        for k in np.flatnonzero(rate > max_kw + TOL):
            out.append(Violation("max_power", who, int(k), float(rate[k]), float(max_kw)))
        phase_a = np.zeros((3, T))
        if evse.dc:
            min_kw = sess.min_power_kw or 0.0
            mag = np.abs(rate)
            for k in np.flatnonzero((mag > TOL) & (mag < min_kw - TOL)):
                out.append(Violation("min_power", who, int(k), float(mag[k]), float(min_kw)))
            phase_a[:] = rate * 1000.0 / (3.0 * V)
        else:
            cur = np.asarray(current_a[s], dtype=np.float64)
            phases, v_cond = _conductor_phases(evse, sess)
            n_cond = 1 if evse.phases == 1 else len(phases)
            expect_kw = cur * v_cond * n_cond / 1000.0
            for k in np.flatnonzero(np.abs(expect_kw - rate) > 1e-6 + 1e-9 * np.abs(rate)):
                out.append(
                    Violation(
                        "power_current_mismatch", who, int(k), float(rate[k]), float(expect_kw[k])
                    )
                )
            max_a = min(
                [x for x in (evse.max_current_a, sess.max_current_a) if x is not None],
                default=np.inf,
            )
            min_a = max(evse.min_current_a, sess.min_current_a or 0.0)
            dis_a = min(
                [
                    x
                    for x in (
                        evse.max_discharge_current_a or evse.max_current_a,
                        sess.max_discharge_current_a or sess.max_current_a,
                    )
                    if x is not None
                ],
                default=np.inf,
            )
            for k in np.flatnonzero(cur > max_a + TOL):
                out.append(Violation("max_current", who, int(k), float(cur[k]), float(max_a)))
            for k in np.flatnonzero(-cur > dis_a + TOL):
                out.append(Violation("max_discharge_current", who, int(k), float(-cur[k]), dis_a))
            mag = np.abs(cur)
            for k in np.flatnonzero((mag > TOL) & (mag < min_a - TOL)):
                out.append(Violation("min_current", who, int(k), float(mag[k]), float(min_a)))
            off_grid = np.abs(cur * 10.0 - np.round(cur * 10.0)) > 1e-6
            for k in np.flatnonzero(off_grid):
                out.append(
                    Violation(
                        "current_grid_0.1A",
                        who,
                        int(k),
                        float(cur[k]),
                        float(np.floor(cur[k] * 10.0) / 10.0),
                    )
                )
            for ph in phases:
                phase_a[ph] += cur
        step_e = rate * overlap * dt_h
        step_e = np.where(step_e < 0.0, step_e / sess.round_trip_efficiency, step_e)
        running = np.cumsum(step_e)
        energy = float(running[-1]) if T else 0.0
        requested = sess.requested_energy_kwh()
        if energy > requested + TOL:
            out.append(Violation("energy", who, None, energy, requested))
        depth = sess.reserve_depth_kwh()
        for k in np.flatnonzero(running < -depth - TOL):
            out.append(Violation("reserve", who, int(k), float(-running[k]), float(depth)))
        ev_kw += rate * overlap
        node = evse.parent
        while node is not None:
            load_a[node] += phase_a
            load_kw[node] += rate
            node = parent[node]

    if forecast is not None:
        base = _series_or_const(forecast.base_load_kw, grid, "max", 0.0)
        pv = _series_or_const(forecast.pv_kw, grid, "min", 0.0)
        net_kw = base - pv
    else:
        net_kw = np.zeros(T)
    for node in site.nodes:
        lim_a = _node_limits_a(node, grid)
        lim_kw = _series_or_const(node.limit_kw, grid, "min", np.inf)
        if node.parent is None:
            lim_a = np.maximum(lim_a - net_kw * 1000.0 / (3.0 * V), 0.0)
            lim_kw = np.maximum(lim_kw - net_kw, 0.0)
        la = load_a[node.id]
        for ph in range(3):
            bad = la[ph] > lim_a[ph] + TOL + 1e-9 * lim_a[ph]
            for k in np.flatnonzero(bad):
                out.append(
                    Violation(
                        "node_current",
                        f"node {node.id!r} L{ph + 1}",
                        int(k),
                        float(la[ph, k]),
                        float(lim_a[ph, k]),
                    )
                )
        lk = load_kw[node.id]
        for k in np.flatnonzero(lk > lim_kw + TOL + 1e-9 * lim_kw):
            out.append(
                Violation("node_power", f"node {node.id!r}", int(k), float(lk[k]), float(lim_kw[k]))
            )
    return out
