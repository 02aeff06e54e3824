"""build_problem(): the one boundary where pandas inputs become numpy arrays.

Solvers see only :class:`ProblemArrays`. The decision variable everywhere is the
charging **rate in kW** of each session in each slot while the EV is present; the
energy of a slot is ``rate * present_fraction * step_h``.

Loads on the tree are expressed with 4 rows per node: the current on L1, L2, L3 (A)
and the total power (kW). ``coef[s, r]`` is how much one kW of session ``s`` adds to
row ``r`` of every node on its path to the root, and ``cap[n, r, t]`` is what row
``r`` of node ``n`` may carry in slot ``t`` (``inf`` when unlimited).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .model import PHASES, Evse, Forecast, Node, Session, Site, Tariff, V2GBid
from .timegrid import TimeGrid, align_series

__all__ = [
    "ProblemArrays",
    "build_problem",
    "evse_phase_weights",
    "floor_to_grid",
    "ceil_to_grid",
    "N_ROWS",
    "LINE_ANGLES",
    "line_phasors",
]

#: Rows per node: current on L1, L2, L3 (A) and total power (kW).
N_ROWS = 4
#: Phase angles of the line-to-neutral voltages of L1, L2, L3 (positive sequence), rad.
LINE_ANGLES = np.array([0.0, -2.0 * np.pi / 3.0, 2.0 * np.pi / 3.0])
#: Angles of the line-to-line voltages L1-L2, L2-L3, L3-L1, rad.
_LL_ANGLE = {(0, 1): np.pi / 6.0, (1, 2): -np.pi / 2.0, (2, 0): 5.0 * np.pi / 6.0}


def floor_to_grid(x: np.ndarray | float, grid: float = 0.1) -> np.ndarray:
    """Round down to a multiple of ``grid`` (within 1e-6 steps of a point = on it)."""
    return np.floor(np.asarray(x, dtype=np.float64) / grid + 1e-6) * grid


def ceil_to_grid(x: np.ndarray | float, grid: float = 0.1) -> np.ndarray:
    """Round up to a multiple of ``grid`` (within 1e-6 steps of a point = on it)."""
    return np.ceil(np.asarray(x, dtype=np.float64) / grid - 1e-6) * grid


def evse_phase_weights(
    evse: Evse, ev_phases: int | None, site_voltage_v: float
) -> tuple[np.ndarray, float]:
    """Site-phase current per A of conductor current, and kW per A, for an AC session.

    Parameters
    ----------
    evse : Evse
        An AC EVSE.
    ev_phases : int or None
        Phases the EV uses (default: all of the EVSE's).
    site_voltage_v : float
        Line-to-neutral voltage of the site.

    Returns
    -------
    weights : numpy.ndarray
        Shape (3,): current on site L1, L2, L3 per A drawn by the EV on each conductor.
    kw_per_a : float
        Power in kW per A of conductor current.
    """
    w = np.zeros(3)
    phases = evse.phases or 3
    if phases == 3:
        rotation = evse.phase_rotation or "RST"
        k = ev_phases or 3
        for letter in rotation[:k]:
            w["RST".index(letter)] = 1.0
        v = evse.voltage_v or site_voltage_v
        return w, k * v / 1000.0
    wiring = evse.phase or "L1"
    if "-" in wiring:
        a, b = wiring.split("-")
        w[PHASES.index(a)] = 1.0
        w[PHASES.index(b)] = 1.0
        v = evse.voltage_v or math.sqrt(3.0) * site_voltage_v
        return w, v / 1000.0
    w[PHASES.index(wiring)] = 1.0
    return w, (evse.voltage_v or site_voltage_v) / 1000.0


def line_phasors(evse: Evse, ev_phases: int | None, site_voltage_v: float) -> np.ndarray:
    """Line-current phasor (A) on site L1, L2, L3 per kW an EV on ``evse`` draws.

    Unity power factor and balanced voltages: a line-to-neutral load is in phase with
    its line, a line-to-line load L_j-L_k with ``V_j - V_k`` (out on L_j, back on L_k),
    a 3-phase or DC load with each line. The magnitudes equal the linear coefficients.
    """
    unit = np.exp(1j * LINE_ANGLES)
    if evse.dc:
        return 1000.0 / (3.0 * site_voltage_v) * unit
    w, kpa = evse_phase_weights(evse, ev_phases, site_voltage_v)
    return _ac_phasors(evse, w, kpa, unit)


@dataclass(frozen=True)
class ProblemArrays:
    """The planning problem as arrays (S sessions, T slots, N nodes).

    Attributes
    ----------
    grid : TimeGrid
    session_ids, evse_ids, node_ids : tuple of str
    session_evse : (S,) int, index into ``evse_ids``.
    present : (S, T) float, fraction of each slot the EV is plugged in.
    pmax_kw : (S, T) float, highest rate in kW (0 where absent).
    pmin_kw : (S,) float, lowest non-zero rate in kW (min current rule).
    energy_kwh : (S,) float, energy requested.
    priority : (S,) float.
    coef : (S, 4) float, row load per kW.
    path : (S, D) int, node indices from the EVSE's parent to the root, padded with -1.
    cap : (N, 4, T) float, row capacity (inf = none), net of base load and PV at the root.
    cap_export : (N, 4, T) float, the same in the export direction (discharging EVs).
    price_import_per_kwh, price_export_per_kwh : (T,) float.
    pv_surplus_kw : (T,) float, PV above base load (lowest PV, highest load in the slot).
    net_base_kw : (T,) float, base load minus PV at the root (for site import): highest
        base load and lowest PV within the slot.
    net_base_low_kw : (T,) float, the same with the lowest base load and highest PV (for
        limits in the export direction).
    net_base_mean_kw : (T,) float, base load minus PV at their means over each slot (what
        the plan reports: site import, energy cost, peak).
    kw_per_a : (S,) float, kW per A of conductor current (0 for DC).
    dc : (S,) bool.
    dmax_kw : (S, T) float, highest discharge rate in kW (0 where absent or no V2G).
    dmin_kw : (S,) float, lowest non-zero discharge rate in kW.
    depth_kwh : (S,) float, energy V2G may take below the arrival state of charge.
    efficiency : (S,) float, round-trip efficiency.
    degradation_per_kwh : (S,) float, wear cost per kWh discharged.
    demand_charge_per_kw, peak_already_kw : float, from the tariff.
    export_limit_kw : float, inf when none.
    bid_price_per_kwh, bid_max_kw, bid_committed_kw, bid_penalty_per_kwh : (B,) float.
    bid_window : (B, T) float, fraction of each slot inside the bid's window.
    bid_members : (B, S) bool, sessions each bid pays for.
    bid_overlap : (B, S, T) float, fraction of each slot in which the session is plugged
        in inside the bid's window (0 for sessions the bid does not pay for): the share
        of a discharge at a constant rate over the session's presence that the bid pays.
    bid_union : (S, T) float, the same inside any window of the bids paying for the
        session (a discharge is paid once, by whichever bid).
    acoef : (S, 3) complex, line-current phasor per kW (see :func:`line_phasors`).
    ll_line : (N, 3) bool, the loads on this node's line are not all collinear (a
        line-to-line load mixed with other angles): its current is a phasor sum.
    phasor_line : (N, 3) bool, ``ll_line`` limited on the exact phasor
        (``Site.phasor_limits``); the other ``ll_line`` lines use the sum of magnitudes.
    phasor_limits : bool, ``Site.phasor_limits``.
    limit_a : (N, 3, T) float, raw line-current limits (inf = none), no base load.
    root : int, index of the root node.
    voltage_v : float, site line-to-neutral voltage.
    """

    grid: TimeGrid
    session_ids: tuple[str, ...]
    evse_ids: tuple[str, ...]
    node_ids: tuple[str, ...]
    session_evse: np.ndarray
    present: np.ndarray
    pmax_kw: np.ndarray
    pmin_kw: np.ndarray
    energy_kwh: np.ndarray
    priority: np.ndarray
    coef: np.ndarray
    path: np.ndarray
    cap: np.ndarray
    cap_export: np.ndarray
    price_import_per_kwh: np.ndarray
    price_export_per_kwh: np.ndarray
    pv_surplus_kw: np.ndarray
    net_base_kw: np.ndarray
    net_base_low_kw: np.ndarray
    net_base_mean_kw: np.ndarray
    kw_per_a: np.ndarray
    dc: np.ndarray
    dmax_kw: np.ndarray
    dmin_kw: np.ndarray
    depth_kwh: np.ndarray
    efficiency: np.ndarray
    degradation_per_kwh: np.ndarray
    demand_charge_per_kw: float
    peak_already_kw: float
    export_limit_kw: float
    bid_price_per_kwh: np.ndarray
    bid_max_kw: np.ndarray
    bid_committed_kw: np.ndarray
    bid_penalty_per_kwh: np.ndarray
    bid_window: np.ndarray
    bid_members: np.ndarray
    bid_overlap: np.ndarray
    bid_union: np.ndarray
    acoef: np.ndarray
    ll_line: np.ndarray
    phasor_line: np.ndarray
    phasor_limits: bool
    limit_a: np.ndarray
    root: int
    voltage_v: float

    @property
    def round_step_kw(self) -> np.ndarray:
        """(S,) rate of one station-grid step per session: 0.1 A (AC) or 0.1 W (DC), in kW."""
        return np.where(self.dc, 1e-4, self.kw_per_a * 0.1)

    @property
    def has_v2g(self) -> bool:
        """True when some session may discharge."""
        return bool((self.dmax_kw > 0.0).any())

    @property
    def needs_lp(self) -> bool:
        """True when the problem has features only the LP prices (V2G, demand charge)."""
        return self.has_v2g or self.demand_charge_per_kw > 0.0 or len(self.bid_price_per_kwh) > 0

    @property
    def n_sessions(self) -> int:
        """Number of sessions S."""
        return len(self.session_ids)

    @property
    def n_slots(self) -> int:
        """Number of slots T."""
        return self.grid.n_slots


def _aligned(
    value: float | pd.Series | None, grid: TimeGrid, how: str, default: float
) -> np.ndarray:
    if value is None:
        return np.full(grid.n_slots, default)
    if isinstance(value, pd.Series):
        return align_series(value, grid, how)
    return np.full(grid.n_slots, float(value))


def _node_current_caps(node: Node, grid: TimeGrid, out: np.ndarray) -> None:
    """Write the (3, T) per-phase current limits of a node to ``out`` (inf where none)."""
    out[:] = np.inf
    lim = node.limit_a
    if lim is None:
        return
    if isinstance(lim, pd.DataFrame):
        for col in lim.columns:
            out[PHASES.index(col)] = align_series(lim[col], grid, "min")
    elif isinstance(lim, pd.Series):
        out[:] = align_series(lim, grid, "min")
    elif isinstance(lim, (tuple, list)):
        for k, v in enumerate(lim):
            if v is not None:
                out[k] = float(v)
    else:
        out[:] = float(lim)


def _fraction(
    edges: np.ndarray, start_ns: np.ndarray, end_ns: np.ndarray, step_s: int
) -> np.ndarray:
    """Fraction of each slot (``edges`` in ns) inside ``[start_ns, end_ns)``.

    ``start_ns`` and ``end_ns`` broadcast against the slots, e.g. (S, 1) for S windows.
    """
    lo = np.maximum(edges[:-1], start_ns)
    hi = np.minimum(edges[1:], end_ns)
    return np.clip((hi - lo) / (step_s * 1e9), 0.0, 1.0)


def _bid_overlaps(
    bids: Sequence[V2GBid],
    members: np.ndarray,
    edges: np.ndarray,
    arr_ns: np.ndarray,
    dep_ns: np.ndarray,
    step_s: int,
) -> tuple[np.ndarray, np.ndarray]:
    """``bid_overlap`` (B, S, T) and ``bid_union`` (S, T) of :class:`ProblemArrays`."""
    B, S = members.shape
    T = len(edges) - 1
    if B == 0:  # no bid: nothing paid anywhere (a read-only view, no (S, T) allocation)
        return np.zeros((0, S, T)), np.broadcast_to(np.float64(0.0), (S, T))
    overlap = np.zeros((B, S, T))
    union = np.zeros((S, T))
    windows = [(float(pd.Timestamp(b.start).value), float(pd.Timestamp(b.end).value)) for b in bids]
    for b, (w0, w1) in enumerate(windows):
        m = np.flatnonzero(members[b])
        lo = np.maximum(arr_ns[m], w0).reshape(-1, 1)
        hi = np.minimum(dep_ns[m], w1).reshape(-1, 1)
        overlap[b, m] = _fraction(edges, lo, hi, step_s)
    spans = sorted(windows)
    if all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False)):
        return overlap, overlap.sum(axis=0)  # disjoint windows: the union is the sum
    for s in np.flatnonzero(members.any(axis=0)):
        # the bids' windows merged into disjoint intervals, each within the presence
        merged: list[list[float]] = []
        for w0, w1 in sorted(windows[b] for b in np.flatnonzero(members[:, s])):
            if merged and w0 <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], w1)
            else:
                merged.append([w0, w1])
        for w0, w1 in merged:
            union[s] += _fraction(edges, max(arr_ns[s], w0), min(dep_ns[s], w1), step_s)
    return overlap, np.minimum(union, 1.0)


def _unless_none(value, default):
    """``value``, or ``default`` when it is not given (0 is a value: no discharge at all)."""
    return default if value is None else value


def _floor_grid(x: float) -> float:
    """Scalar :func:`floor_to_grid` (0.1 grid), the same float result without numpy."""
    return math.floor(x / 0.1 + 1e-6) * 0.1


def _ceil_grid(x: float) -> float:
    """Scalar :func:`ceil_to_grid` (0.1 grid), the same float result without numpy."""
    return math.ceil(x / 0.1 - 1e-6) * 0.1


def _ac_phasors(evse: Evse, w: np.ndarray, kpa: float, unit: np.ndarray) -> np.ndarray:
    """:func:`line_phasors` of an AC session from its phase weights and kW per A."""
    wiring = evse.phase or ""
    if (evse.phases or 3) == 1 and "-" in wiring:
        out = np.zeros(3, dtype=np.complex128)
        a, b = (PHASES.index(x) for x in wiring.split("-"))
        z = np.exp(1j * _LL_ANGLE[(a, b)]) / kpa
        out[a] = z
        out[b] = -z
        return out
    return w / kpa * unit


def build_problem(
    site: Site,
    sessions: Sequence[Session],
    grid: TimeGrid,
    tariff: Tariff | None = None,
    forecast: Forecast | None = None,
    v2g_bids: Sequence[V2GBid] | None = None,
) -> ProblemArrays:
    """Turn validated inputs into :class:`ProblemArrays`.

    Parameters
    ----------
    site, sessions, tariff, forecast, v2g_bids
        Validated inputs (see :func:`chargeplan.validate`).
    grid : TimeGrid
        The time axis.

    Returns
    -------
    ProblemArrays
    """
    T = grid.n_slots
    nodes = list(site.nodes)
    node_index = {n.id: i for i, n in enumerate(nodes)}
    evses = list(site.evses)
    evse_index = {e.id: i for i, e in enumerate(evses)}
    V = float(site.voltage_v)

    # node paths to the root
    parent_idx = [node_index[n.parent] if n.parent is not None else -1 for n in nodes]
    paths: list[list[int]] = []
    for i in range(len(nodes)):
        p, cur = [], i
        while cur != -1:
            p.append(cur)
            cur = parent_idx[cur]
        paths.append(p)
    depth = max((len(p) for p in paths), default=1)

    # forecasts at the root, conservative within a slot
    if forecast is not None:
        pv_min = _aligned(forecast.pv_kw, grid, "min", 0.0)
        base_max = _aligned(forecast.base_load_kw, grid, "max", 0.0)
        pv_max = _aligned(forecast.pv_kw, grid, "max", 0.0)
        base_min = _aligned(forecast.base_load_kw, grid, "min", 0.0)
    else:
        pv_min = base_max = pv_max = base_min = np.zeros(T)
    net_base = base_max - pv_min  # the most the site draws besides EVs within the slot
    net_base_low = base_min - pv_max  # the least (export direction)
    if forecast is not None:  # what it draws on average over the slot (for reporting)
        net_base_mean = _aligned(forecast.base_load_kw, grid, "mean", 0.0) - _aligned(
            forecast.pv_kw, grid, "mean", 0.0
        )
    else:
        net_base_mean = np.zeros(T)

    cap = np.full((len(nodes), 4, T), np.inf)
    root = next(i for i, n in enumerate(nodes) if n.parent is None)
    for i, n in enumerate(nodes):
        _node_current_caps(n, grid, cap[i, :3])
        if n.limit_kw is not None:
            cap[i, 3] = _aligned(n.limit_kw, grid, "min", np.inf)
    limit_a = cap[:, :3].copy()
    cap_export = cap.copy()  # what each row may carry in the export direction (V2G)
    cap[root, 3] -= net_base
    cap_export[root, 3] += net_base_low
    np.maximum(cap, 0.0, out=cap)
    np.maximum(cap_export, 0.0, out=cap_export)

    S = len(sessions)
    edges = grid.edges_ns().astype(np.float64)
    arr_ns = np.array([pd.Timestamp(x.arrival).value for x in sessions], dtype=np.float64)
    dep_ns = np.array([pd.Timestamp(x.departure).value for x in sessions], dtype=np.float64)
    present = _fraction(edges, arr_ns.reshape(S, 1), dep_ns.reshape(S, 1), grid.step_s)
    rate_max = np.zeros(S)
    d_rate_max = np.zeros(S)
    v2g = np.zeros(S, dtype=bool)
    pmin = np.zeros(S)
    energy = np.zeros(S)
    prio = np.ones(S)
    coef = np.zeros((S, 4))
    coef[:, 3] = 1.0
    path = np.full((S, depth), -1, dtype=np.int64)
    kw_per_a = np.zeros(S)
    dc = np.zeros(S, dtype=bool)
    sess_evse = np.zeros(S, dtype=np.int64)
    dmin = np.zeros(S)
    acoef = np.zeros((S, 3), dtype=np.complex128)
    reserve = np.zeros(S)
    eff = np.ones(S)
    deg = np.zeros(S)
    dc_amps = 1000.0 / (3.0 * V)
    unit = np.exp(1j * LINE_ANGLES)
    for s, sess in enumerate(sessions):
        e_i = evse_index[sess.evse]
        evse = evses[e_i]
        sess_evse[s] = e_i
        p = paths[node_index[evse.parent]]
        path[s, : len(p)] = p
        energy[s] = sess.requested_energy_kwh()
        prio[s] = float(sess.priority)
        limits_kw = [x for x in (evse.max_power_kw, sess.max_power_kw) if x is not None]
        if evse.dc:
            dc[s] = True
            coef[s, :3] = dc_amps
            acoef[s] = dc_amps * unit
            r_max = _floor_grid(min(limits_kw) * 1e4) / 1e4  # 0.1 W grid
            r_min = float(sess.min_power_kw or 0.0)
            d_max = min(
                x
                for x in (
                    _unless_none(evse.max_discharge_power_kw, evse.max_power_kw),
                    _unless_none(sess.max_discharge_power_kw, sess.max_power_kw),
                )
                if x is not None
            )
            d_max = _floor_grid(d_max * 1e4) / 1e4
        else:
            w, kpa = evse_phase_weights(evse, sess.phases, V)
            kw_per_a[s] = kpa
            coef[s, :3] = w / kpa
            acoef[s] = _ac_phasors(evse, w, kpa, unit)
            amps = [x for x in (evse.max_current_a, sess.max_current_a) if x is not None]
            amps += [x / kpa for x in limits_kw]
            i_max = _floor_grid(min(amps))
            i_min = _ceil_grid(max(evse.min_current_a, sess.min_current_a or 0.0))
            if sess.min_power_kw is not None:
                i_min = max(i_min, _ceil_grid(sess.min_power_kw / kpa))
            r_max = i_max * kpa
            r_min = i_min * kpa
            if i_min > i_max:
                r_max = 0.0  # cannot charge at all: min above max
            d_amps = [
                x
                for x in (
                    _unless_none(evse.max_discharge_current_a, evse.max_current_a),
                    _unless_none(sess.max_discharge_current_a, sess.max_current_a),
                )
                if x is not None
            ]
            d_kw = [
                x
                for x in (evse.max_discharge_power_kw, sess.max_discharge_power_kw)
                if x is not None
            ]
            d_amps += [x / kpa for x in d_kw] or [x / kpa for x in limits_kw]
            d_i_max = _floor_grid(min(d_amps))
            d_max = d_i_max * kpa if d_i_max >= i_min else 0.0
        pmin[s] = r_min
        rate_max[s] = r_max
        if sess.v2g and evse.bidirectional:
            v2g[s] = True
            d_rate_max[s] = d_max
            dmin[s] = r_min
            reserve[s] = sess.reserve_depth_kwh()
        eff[s] = float(sess.round_trip_efficiency)
        deg[s] = float(sess.degradation_cost_per_kwh)
    here = present > 0.0
    pmax = np.where(here, rate_max[:, None], 0.0)
    dmax = np.where(here & v2g[:, None], d_rate_max[:, None], 0.0)

    # Lines whose loads are not all collinear (line-to-line loads mixed with other
    # angles, base load included): their current is a phasor sum, and base load or PV
    # cannot be netted linearly. Angles are multiples of 30 degrees: bit k = k * 30 deg
    # modulo 180 degrees (a discharge is the opposite direction of the same line).
    seen = np.zeros((len(nodes), 3, 6), dtype=bool)  # node, line, angle sector
    sector = np.round(np.angle(acoef) / (np.pi / 6.0)).astype(np.int64) % 6  # (S, 3)
    s_idx, line_idx = np.nonzero(np.abs(acoef) > 0.0)  # the lines each session loads
    for d in range(path.shape[1]):
        n_d = path[s_idx, d]
        ok = n_d >= 0
        seen[n_d[ok], line_idx[ok], sector[s_idx[ok], line_idx[ok]]] = True
    has_base = bool(np.any(net_base != 0.0) or np.any(net_base_low != 0.0))
    if has_base:
        base_sector = np.round(LINE_ANGLES / (np.pi / 6.0)).astype(np.int64) % 6
        seen[root, np.arange(3), base_sector] = True
    ll_line = seen.sum(axis=2) > 1
    # base load at the root: netted linearly on collinear lines; on the others the
    # linear rows keep |base| free (safe: |I_ev + I_base| <= |I_ev| + |I_base|)
    amps = 1000.0 / (3.0 * V)
    worst = np.maximum(np.abs(net_base), np.abs(net_base_low)) * amps
    for line in range(3):
        if ll_line[root, line]:
            cap[root, line] -= worst
            cap_export[root, line] -= worst
        else:
            cap[root, line] -= net_base * amps
            cap_export[root, line] += net_base_low * amps
    cap[root, :3] = np.maximum(cap[root, :3], 0.0)
    cap_export[root, :3] = np.maximum(cap_export[root, :3], 0.0)

    price_imp = (
        _aligned(tariff.import_price_per_kwh, grid, "mean", 0.0)
        if tariff is not None
        else np.zeros(T)
    )
    price_exp = (
        _aligned(tariff.export_price_per_kwh, grid, "mean", 0.0)
        if tariff is not None and tariff.export_price_per_kwh is not None
        else np.zeros(T)
    )
    bids = [] if v2g_bids is None else list(v2g_bids)
    B = len(bids)
    sid_index = {x.id: i for i, x in enumerate(sessions)}
    bid_window = np.zeros((B, T))
    bid_members = np.zeros((B, S), dtype=bool)
    for b, bid in enumerate(bids):
        bid_window[b] = grid.fraction_present(pd.Timestamp(bid.start), pd.Timestamp(bid.end))
        if bid.sessions is None:
            bid_members[b] = dmax.max(axis=1, initial=0.0) > 0.0
        else:
            for sid in bid.sessions:
                bid_members[b, sid_index[sid]] = dmax[sid_index[sid]].max(initial=0.0) > 0.0
    bid_overlap, bid_union = _bid_overlaps(bids, bid_members, edges, arr_ns, dep_ns, grid.step_s)
    return ProblemArrays(
        grid=grid,
        session_ids=tuple(s.id for s in sessions),
        evse_ids=tuple(e.id for e in evses),
        node_ids=tuple(n.id for n in nodes),
        session_evse=sess_evse,
        present=present,
        pmax_kw=pmax,
        pmin_kw=pmin,
        energy_kwh=energy,
        priority=prio,
        coef=coef,
        path=path,
        cap=cap,
        cap_export=cap_export,
        price_import_per_kwh=price_imp,
        price_export_per_kwh=price_exp,
        pv_surplus_kw=np.maximum(-net_base, 0.0),
        net_base_kw=net_base,
        net_base_low_kw=net_base_low,
        net_base_mean_kw=net_base_mean,
        kw_per_a=kw_per_a,
        dc=dc,
        dmax_kw=dmax,
        dmin_kw=dmin,
        depth_kwh=reserve,
        efficiency=eff,
        degradation_per_kwh=deg,
        demand_charge_per_kw=float(tariff.demand_charge_per_kw) if tariff is not None else 0.0,
        peak_already_kw=float(tariff.peak_already_kw) if tariff is not None else 0.0,
        export_limit_kw=np.inf if site.export_limit_kw is None else float(site.export_limit_kw),
        bid_price_per_kwh=np.array([float(b.price_per_kwh) for b in bids]),
        bid_max_kw=np.array([float(b.max_discharge_kw) for b in bids]),
        bid_committed_kw=np.array([float(b.committed_kw) for b in bids]),
        bid_penalty_per_kwh=np.array([float(b.penalty_per_kwh) for b in bids]),
        bid_window=bid_window,
        bid_members=bid_members,
        bid_overlap=bid_overlap,
        bid_union=bid_union,
        acoef=acoef,
        ll_line=ll_line,
        phasor_line=ll_line & bool(site.phasor_limits),
        phasor_limits=bool(site.phasor_limits),
        limit_a=limit_a,
        root=int(root),
        voltage_v=V,
    )
