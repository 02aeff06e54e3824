"""Cost-optimal planning as an LP/MILP on HiGHS (highspy), built directly with scipy.sparse.

Formulation (S sessions, T slots, rates in kW, energies in kWh, ``f`` = fraction of
the slot the EV is present, ``dt`` = slot length in hours)

Variables
    ``c[s,t] in [0, pmax]`` charge rate, ``d[s,t] in [0, dmax]`` discharge rate (V2G
    sessions only), ``u[s] in [0, E_s]`` unmet energy, ``imp[t], exp[t] >= 0`` mean
    site import/export, ``z >= 0`` peak import above the peak already reached,
    ``e[s,t] in [-depth_s, E_s]`` energy added to a V2G battery since arrival,
    ``w[b,t]`` discharge paid by bid ``b``, ``q[b,t]`` committed flexibility not given.
Constraints
    energy: ``sum_t (c - d / eta) f dt + u = E``;
    every node row (L1, L2, L3 current, total kW) and slot, both directions:
    ``sum coef (c - d) <= cap`` and ``sum coef (d - c) <= cap_export``; lines whose
    loads are not collinear (line-to-line loads) keep the exact line phasor inside an
    inner polygon of 48 sides (see :func:`._formulation.node_rows`); node rows that
    can never bind (their left-hand side stays below the bound with every rate at its
    upper bound) are left out, which leaves the optimum unchanged;
    site balance: ``imp - exp = base - pv + sum (c - d) f``; in a slot where the site
    can only import (base load >= PV, no discharge cell, no demand charge) ``imp``
    equals the right-hand side and ``exp`` is 0 at the optimum (``p_exp <= p_imp``),
    so ``imp`` is substituted: its price moves onto the charge cells and the constant
    into the objective offset (no row, no column);
    EVs never push export above ``max(export limit, PV export)``;
    ``imp - z <= peak_already``;
    V2G state: ``e[t] = e[t-1] + (c - d / eta) f dt``;
    bids: ``w[b,t] <= sum_{s in b} d f``, ``w <= max_kw``, ``w + q >= committed``;
    a cell never charges and discharges at once: ``c / pmax + d / dmax <= 1`` (the
    convex hull of the two modes; exact with the MILP's binaries).
Objective (tiers of design.md section 5)
    ``M * sum priority * u`` (above any cost) + ``sum dt (p_imp imp - p_exp exp)``
    + ``demand_charge * z`` + ``sum degradation d f dt`` - ``sum bid price w dt``
    + ``sum penalty q dt`` + a tie-break toward charging earlier (up to 1e-4 per kWh,
    growing with the slot index).

Min-current rule: ``method="milp"`` adds a binary per cell (``c = 0`` or
``pmin <= c <= pmax``, and never charging and discharging at once) and solves the MILP
exactly; ``method="lp"`` solves the relaxation, then repairs: cells below the minimum
are fixed to 0 (or raised to it, :func:`repair_by_resolving`) and the LP is re-solved
from the current basis, until no cell is below its minimum (a few rounds; each decides
more cells for good, and zeros are always feasible). Without V2G, the caller also
tries setting the cells to 0 and refilling greedily, and keeps the better plan
(:func:`chargeplan.solvers._run_lp`).
The auto policy (see :mod:`chargeplan.solvers`) uses the MILP for small problems.

Rounding margins: rates are later rounded toward zero to 0.1 A. Node rows keep
headroom for that: rounding a discharge down raises the import-direction load and
rounding a charge down raises the export-direction load, by at most one 0.1 A step
per session; the LP reserves exactly that (and forbids charging, or discharging,
where a row has no room for it). A V2G battery's reserve keeps back what rounding
its charges down could lose up to each slot.

When export pays more than import costs in a slot, export is valued at the import
price there (a site cannot import and export at once; this keeps the LP bounded).

Presolve: a model whose only rows are the energy rows (nothing couples the sessions:
no node row can bind, no PV export, no V2G, no demand charge) is separable, and HiGHS's
presolve only costs time there (loose N=1 000: 72 -> 21 ms with it off,
``benchmarks/lp.md``); :attr:`LpModel.presolve` says ``"off"`` for such LPs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..exceptions import SolverError
from ..problem import ProblemArrays
from ._formulation import SAFETY as _SAFETY
from ._formulation import TIE_BREAK_PER_KWH as _TIE_BREAK_PER_KWH
from ._formulation import cells, node_rows, paid_cells, penalty_weight, promote_cells

__all__ = ["solve_lp", "build_lp", "LpModel", "repair_by_resolving"]

#: Rounds of a promoting min-current repair (:func:`_repair`) in which cells at 0 stay
#: free. Measured on the congested benchmark site with 10-100 EVs and on real Caltech
#: days: 10 free rounds recover most of the energy the plain repair loses, and the
#: rounds shrink quickly (N = 1 000: 377 cells below the minimum, then 172, ... 13).
PROMOTE_FREE_ROUNDS = 10


@dataclass
class LpModel:
    """An LP in HiGHS's column-wise arrays, with the layout needed to read it back."""

    cost: np.ndarray
    col_lower: np.ndarray
    col_upper: np.ndarray
    row_lower: np.ndarray
    row_upper: np.ndarray
    matrix: sp.csc_matrix
    integrality: np.ndarray | None
    c_cells: tuple[np.ndarray, np.ndarray]
    d_cells: tuple[np.ndarray, np.ndarray]
    c_off: int
    d_off: int
    u_off: int
    y_off: int
    n_y_c: int
    col_keys: np.ndarray
    row_keys: np.ndarray
    #: constant part of the objective (import cost of the base load where substituted)
    offset: float = 0.0
    #: HiGHS ``presolve`` option for this model ("off" for separable LPs)
    presolve: str = "choose"

    @property
    def n_cols(self) -> int:
        """Number of columns."""
        return len(self.cost)

    @property
    def n_rows(self) -> int:
        """Number of rows."""
        return len(self.row_lower)


def key(kind: int, a, b) -> np.ndarray:
    """Stable int64 key of a row or column: its kind, an object code and a slot.

    Sessions are identified by a code that survives re-planning (see
    :class:`chargeplan.Replanner`), so a warm start can map the previous basis.
    """
    kind = np.asarray(kind, dtype=np.int64)
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    return (kind << np.int64(52)) + (a << np.int64(20)) + b


_NODE_BLOCK_KIND = {"node_import": 20, "node_export": 21, "node_magnitude": 22}


def _block_kind(name: str) -> int:
    """Row kind of a node block; a phasor row adds its polygon direction to it."""
    if name in _NODE_BLOCK_KIND:
        return _NODE_BLOCK_KIND[name]
    _, _, v = name.split("_")  # node_phasor_{v}
    return 100 + int(v) * 64


class _Builder:
    """Collects COO triplets and row bounds."""

    def __init__(self) -> None:
        self.rows: list[np.ndarray] = []
        self.cols: list[np.ndarray] = []
        self.vals: list[np.ndarray] = []
        self.lo: list[np.ndarray] = []
        self.hi: list[np.ndarray] = []
        self.keys: list[np.ndarray] = []
        self.n = 0

    def add_rows(self, lo: np.ndarray, hi: np.ndarray, kind: int, a, b) -> int:
        """Add rows with bounds and their stable keys (see :func:`key`)."""
        first = self.n
        self.lo.append(np.asarray(lo, dtype=np.float64))
        self.hi.append(np.asarray(hi, dtype=np.float64))
        n = len(self.lo[-1])
        self.keys.append(key(kind, np.broadcast_to(a, n), np.broadcast_to(b, n)))
        self.n += n
        return first

    def add(self, rows: np.ndarray, cols: np.ndarray, vals: np.ndarray) -> None:
        self.rows.append(np.asarray(rows, dtype=np.int64))
        self.cols.append(np.asarray(cols, dtype=np.int64))
        self.vals.append(np.broadcast_to(np.asarray(vals, dtype=np.float64), np.shape(rows)))


def build_lp(
    problem: ProblemArrays,
    *,
    integer: bool = False,
    session_codes: np.ndarray | None = None,
    prune_rows: bool = True,
) -> LpModel:
    """Build the LP (or MILP with ``integer=True``) of the module docstring.

    Parameters
    ----------
    problem : ProblemArrays
    integer : bool, default False
        Add binaries for the min-current rule.
    session_codes : (S,) int array, optional
        Stable code of each session for the row and column keys (default: its index).
    prune_rows : bool, default True
        Leave out node rows that can never bind (see :func:`._formulation.node_rows`);
        the optimum is the same either way.

    Returns
    -------
    LpModel
    """
    p = problem
    S, T = p.n_sessions, p.n_slots
    dt = p.grid.step_h
    f = p.present
    cs, ct, ds, dtt, v2g, v_pos = cells(p)
    nc, nd, nv = len(cs), len(ds), len(v2g)
    B = len(p.bid_price_per_kwh)
    has_z = p.demand_charge_per_kw > 0.0
    step_kw = p.round_step_kw

    # slots where the site can only import: imp substituted (module docstring)
    sub = (p.net_base_kw >= 0.0) & (not has_z)
    if nd:
        sub &= np.bincount(dtt, minlength=T) == 0
    kt = np.flatnonzero(~sub)  # slots with imp / exp columns and a balance row
    nk = len(kt)

    # column layout
    c_off = 0
    d_off = c_off + nc
    u_off = d_off + nd
    imp_off = u_off + S
    exp_off = imp_off + nk
    z_off = exp_off + nk
    e_off = z_off + int(has_z)
    w_off = e_off + nv * T
    q_off = w_off + B * T
    y_off = q_off + B * T
    if integer:
        # a binary where a minimum applies, and in every cell that can both charge and
        # discharge (so the MILP never does both at once)
        dual = np.isin(cs * T + ct, ds * T + dtt)
        yc_cells = np.nonzero((p.pmin_kw[cs] > 0.0) | dual)[0]
        yd_cells = np.nonzero((p.dmin_kw[ds] > 0.0) | np.isin(ds * T + dtt, cs * T + ct))[0]
    else:
        yc_cells = yd_cells = np.zeros(0, np.int64)
    n_y = len(yc_cells) + len(yd_cells)
    n_cols = y_off + n_y

    code = np.arange(S, dtype=np.int64) if session_codes is None else np.asarray(session_codes)
    t_all = np.arange(T)
    col_keys = np.concatenate(
        [
            key(1, code[cs], ct),
            key(2, code[ds], dtt),
            key(3, code, 0),
            key(4, 0, kt),
            key(5, 0, kt),
            key(6, 0, np.zeros(int(has_z), np.int64)),
            key(7, np.repeat(code[v2g], T), np.tile(t_all, nv)),
            key(8, np.repeat(np.arange(B), T), np.tile(t_all, B)),
            key(9, np.repeat(np.arange(B), T), np.tile(t_all, B)),
            key(10, code[cs[yc_cells]], ct[yc_cells]),
            key(11, code[ds[yd_cells]], dtt[yd_cells]),
        ]
    )
    cost = np.zeros(n_cols)
    lo = np.zeros(n_cols)
    hi = np.full(n_cols, np.inf)
    energy = p.energy_kwh
    # c
    fc, fd = f[cs, ct], f[ds, dtt]  # present fraction of each cell
    i_c, i_d = c_off + np.arange(nc), d_off + np.arange(nd)  # their columns
    cost[c_off:d_off] = _TIE_BREAK_PER_KWH * (ct + 1) / T * fc * dt
    hi[c_off:d_off] = p.pmax_kw[cs, ct]
    # d
    cost[d_off:u_off] = p.degradation_per_kwh[ds] * fd * dt
    hi[d_off:u_off] = p.dmax_kw[ds, dtt]
    # u
    cost[u_off:imp_off] = penalty_weight(p) * p.priority
    hi[u_off:imp_off] = energy
    # imp / exp
    p_imp = p.price_import_per_kwh
    p_exp = np.minimum(p.price_export_per_kwh, p_imp)
    cost[imp_off:exp_off] = p_imp[kt] * dt
    cost[exp_off:z_off] = -p_exp[kt] * dt
    on_sub = sub[ct]
    cost[c_off + np.flatnonzero(on_sub)] += p_imp[ct[on_sub]] * fc[on_sub] * dt
    offset = float((p_imp * p.net_base_kw)[sub].sum() * dt)
    if has_z:
        cost[z_off] = p.demand_charge_per_kw
    # e
    if nv:
        # Rounding each charge down (<= one step per slot) can lower the battery's
        # running energy below the LP's e; keep that much of the reserve unused, and
        # stop discharging once the possible loss reaches the reserve.
        loss = np.cumsum(step_kw[v2g, None] * f[v2g] * dt * (p.pmax_kw[v2g] > 0.0), axis=1)
        room = p.depth_kwh[v2g, None] - loss - _SAFETY
        lo[e_off:w_off] = -np.maximum(room, 0.0).ravel()
        hi[d_off + np.flatnonzero(room[v_pos[ds], dtt] <= 0.0)] = 0.0
        hi[e_off:w_off] = np.repeat(energy[v2g], T)
    # w, q
    if B:
        cost[w_off:q_off] = (-p.bid_price_per_kwh[:, None] * dt * np.ones((1, T))).ravel()
        hi[w_off:q_off] = (p.bid_max_kw[:, None] * p.bid_window).ravel()
        cost[q_off:y_off] = (p.bid_penalty_per_kwh[:, None] * dt * np.ones((1, T))).ravel()
        hi[q_off:y_off] = (p.bid_committed_kw[:, None] * p.bid_window).ravel()
    # y
    hi[y_off:] = 1.0

    b = _Builder()
    # energy rows
    r0 = b.add_rows(energy, energy, 1, code, 0)
    b.add(r0 + cs, i_c, fc * dt)
    b.add(r0 + ds, i_d, -fd * dt / p.efficiency[ds])
    b.add(r0 + np.arange(S), u_off + np.arange(S), 1.0)

    # node rows (linear, phasor polygon or sum of magnitudes; see _formulation.node_rows)
    rows = node_rows(p, cs, ct, ds, dtt, step_kw, prune=prune_rows)
    hi[c_off + np.flatnonzero(rows.c_off)] = 0.0
    hi[d_off + np.flatnonzero(rows.d_off)] = 0.0
    for block in rows.blocks:
        r = b.add_rows(
            np.full(block.n_rows, -np.inf),
            block.upper,
            _block_kind(block.name) + block.sub,
            block.keys // T,
            block.keys % T,
        )
        b.add(r + block.c_rows, c_off + block.c_cells, block.c_vals)
        b.add(r + block.d_rows, d_off + block.d_cells, block.d_vals)

    # convex hull of "charge or discharge" in every V2G cell: c / pmax + d / dmax <= 1
    if nd:
        key_c = cs * T + ct
        both, ic, id_ = np.intersect1d(key_c, ds * T + dtt, return_indices=True)
        if len(both):
            r_h = b.add_rows(
                np.full(len(both), -np.inf), np.ones(len(both)), 2, code[cs[ic]], ct[ic]
            )
            b.add(r_h + np.arange(len(both)), c_off + ic, 1.0 / p.pmax_kw[cs[ic], ct[ic]])
            b.add(r_h + np.arange(len(both)), d_off + id_, 1.0 / p.dmax_kw[ds[id_], dtt[id_]])

    # site balance, in the slots not substituted: imp - exp - sum c f + sum d f = net_base
    r_bal = b.add_rows(p.net_base_kw[kt], p.net_base_kw[kt], 3, 0, kt)
    k_all = np.arange(nk)
    b.add(r_bal + k_all, imp_off + k_all, 1.0)
    b.add(r_bal + k_all, exp_off + k_all, -1.0)
    pos = np.full(T, -1)
    pos[kt] = k_all
    m_c = ~on_sub
    b.add(r_bal + pos[ct[m_c]], i_c[m_c], -fc[m_c])
    b.add(r_bal + pos[dtt], i_d, fd)  # every slot with a discharge cell has its row
    if np.isfinite(p.export_limit_kw) and nd:
        # EVs may push export to max(limit, PV export) at most: sum (d - c) f <= X - margin
        low = p.net_base_low_kw
        x_cap = np.maximum(p.export_limit_kw, np.maximum(-low, 0.0)) + low
        c_margin = np.bincount(ct, weights=step_kw[cs] * fc, minlength=T)
        room = x_cap - c_margin - _SAFETY
        r_x = b.add_rows(np.full(T, -np.inf), np.maximum(room, 0.0), 4, 0, np.arange(T))
        hi[d_off + np.flatnonzero(room[dtt] < 0.0)] = 0.0
        b.add(r_x + ct, i_c, -fc)
        b.add(r_x + dtt, i_d, fd)
    if has_z:
        # (no slot is substituted with a demand charge: imp has a column in every slot)
        r_dem = b.add_rows(np.full(T, -np.inf), np.full(T, p.peak_already_kw), 5, 0, np.arange(T))
        b.add(r_dem + t_all, imp_off + t_all, 1.0)
        b.add(r_dem + t_all, np.full(T, z_off), -1.0)

    # V2G state of energy: e[t] - e[t-1] - (c - d/eta) f dt = 0
    if nv:
        r_e = b.add_rows(
            np.zeros(nv * T),
            np.zeros(nv * T),
            6,
            np.repeat(code[v2g], T),
            np.tile(np.arange(T), nv),
        )
        ev = np.arange(nv * T)
        b.add(r_e + ev, e_off + ev, 1.0)
        prev = ev[(ev % T) > 0]
        b.add(r_e + prev, e_off + prev - 1, -1.0)
        vc_mask = v_pos[cs] >= 0
        b.add(
            r_e + v_pos[cs[vc_mask]] * T + ct[vc_mask],
            c_off + np.nonzero(vc_mask)[0],
            -f[cs[vc_mask], ct[vc_mask]] * dt,
        )
        b.add(r_e + v_pos[ds] * T + dtt, i_d, fd * dt / p.efficiency[ds])

    # bids
    if B:
        r_w = b.add_rows(
            np.full(B * T, -np.inf),
            np.zeros(B * T),
            7,
            np.repeat(np.arange(B), T),
            np.tile(np.arange(T), B),
        )
        bt = np.arange(B * T)
        b.add(r_w + bt, w_off + bt, 1.0)
        # a bid pays for the discharge inside its window only (the rate is constant
        # while the EV is plugged in within the slot), each kWh once
        for k in range(B):
            g = p.bid_overlap[k, ds, dtt]
            m = g > 0.0
            b.add(r_w + k * T + dtt[m], d_off + np.nonzero(m)[0], -g[m])
        if B > 1:
            r_all = b.add_rows(np.full(T, -np.inf), np.zeros(T), 8, 0, np.arange(T))
            b.add(r_all + np.tile(t_all, B), w_off + bt, 1.0)
            g = p.bid_union[ds, dtt]
            m = g > 0.0
            b.add(r_all + dtt[m], d_off + np.nonzero(m)[0], -g[m])
        need = (p.bid_committed_kw[:, None] * p.bid_window).ravel()
        r_q = b.add_rows(
            need, np.full(B * T, np.inf), 9, np.repeat(np.arange(B), T), np.tile(np.arange(T), B)
        )
        b.add(r_q + bt, w_off + bt, 1.0)
        b.add(r_q + bt, q_off + bt, 1.0)

    integrality = None
    if n_y:
        integrality = np.zeros(n_cols, dtype=np.int32)
        integrality[y_off:] = 1
        yc = y_off + np.arange(len(yc_cells))
        yd = y_off + len(yc_cells) + np.arange(len(yd_cells))
        # c - pmax y <= 0 ; c - pmin y >= 0
        kc_a, kc_b = code[cs[yc_cells]], ct[yc_cells]
        kd_a, kd_b = code[ds[yd_cells]], dtt[yd_cells]
        r_y = b.add_rows(np.full(len(yc_cells), -np.inf), np.zeros(len(yc_cells)), 10, kc_a, kc_b)
        b.add(r_y + np.arange(len(yc_cells)), c_off + yc_cells, 1.0)
        b.add(r_y + np.arange(len(yc_cells)), yc, -p.pmax_kw[cs[yc_cells], ct[yc_cells]])
        r_y = b.add_rows(np.zeros(len(yc_cells)), np.full(len(yc_cells), np.inf), 11, kc_a, kc_b)
        b.add(r_y + np.arange(len(yc_cells)), c_off + yc_cells, 1.0)
        b.add(r_y + np.arange(len(yc_cells)), yc, -p.pmin_kw[cs[yc_cells]])
        r_y = b.add_rows(np.full(len(yd_cells), -np.inf), np.zeros(len(yd_cells)), 12, kd_a, kd_b)
        b.add(r_y + np.arange(len(yd_cells)), d_off + yd_cells, 1.0)
        b.add(r_y + np.arange(len(yd_cells)), yd, -p.dmax_kw[ds[yd_cells], dtt[yd_cells]])
        r_y = b.add_rows(np.zeros(len(yd_cells)), np.full(len(yd_cells), np.inf), 13, kd_a, kd_b)
        b.add(r_y + np.arange(len(yd_cells)), d_off + yd_cells, 1.0)
        b.add(r_y + np.arange(len(yd_cells)), yd, -p.dmin_kw[ds[yd_cells]])
        # never charge and discharge in one cell: yc + yd <= 1
        key_c = cs[yc_cells] * T + ct[yc_cells]
        key_d = ds[yd_cells] * T + dtt[yd_cells]
        both, ic, id_ = np.intersect1d(key_c, key_d, return_indices=True)
        if len(both):
            r_x = b.add_rows(
                np.full(len(both), -np.inf), np.ones(len(both)), 14, kc_a[ic], kc_b[ic]
            )
            b.add(r_x + np.arange(len(both)), yc[ic], 1.0)
            b.add(r_x + np.arange(len(both)), yd[id_], 1.0)

    rows = np.concatenate(b.rows) if b.rows else np.zeros(0, np.int64)
    cols = np.concatenate(b.cols) if b.cols else np.zeros(0, np.int64)
    vals = np.concatenate(b.vals) if b.vals else np.zeros(0)
    matrix = sp.csc_matrix((vals, (rows, cols)), shape=(b.n, n_cols))
    row_keys = np.concatenate(b.keys) if b.keys else np.zeros(0, np.int64)
    # separable (only energy rows, kind 1): presolve off (module docstring)
    separable = integrality is None and bool(((row_keys >> np.int64(52)) == 1).all())
    return LpModel(
        cost=cost,
        col_lower=lo,
        col_upper=hi,
        row_lower=np.concatenate(b.lo) if b.lo else np.zeros(0),
        row_upper=np.concatenate(b.hi) if b.hi else np.zeros(0),
        matrix=matrix,
        integrality=integrality,
        c_cells=(cs, ct),
        d_cells=(ds, dtt),
        c_off=c_off,
        d_off=d_off,
        u_off=u_off,
        y_off=y_off,
        n_y_c=len(yc_cells),
        col_keys=col_keys,
        row_keys=row_keys,
        offset=offset,
        presolve="off" if separable else "choose",
    )


def _highs(model: LpModel, time_limit_s: float | None, options: dict | None):
    import highspy

    # highspy.Highs prints a copyright banner (at C level) on first creation; its base
    # class does not. Fall back to the public class if the layout ever changes.
    core = getattr(getattr(highspy, "_core", None), "_Highs", None)
    h = core() if core is not None else highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("presolve", model.presolve)
    if time_limit_s is not None:
        h.setOptionValue("time_limit", float(time_limit_s))
    for k, v in (options or {}).items():
        h.setOptionValue(k, v)
    m = model.matrix
    inf = highspy.kHighsInf
    args = [
        model.n_cols,
        model.n_rows,
        m.nnz,
        1,
        1,
        model.offset,
        model.cost,
        model.col_lower,
        np.where(np.isinf(model.col_upper), inf, model.col_upper),
        np.where(np.isinf(model.row_lower), -inf, model.row_lower),
        np.where(np.isinf(model.row_upper), inf, model.row_upper),
        m.indptr.astype(np.int32),
        m.indices.astype(np.int32),
        m.data,
    ]
    integrality = model.integrality
    if integrality is None:
        integrality = np.zeros(model.n_cols, dtype=np.int32)
    args.append(integrality)
    status = h.passModel(*args)
    if status == highspy.HighsStatus.kError:
        raise SolverError("HiGHS rejected the model", status="error")
    return h


def _run(h, allow_incumbent: bool = False) -> str:
    """Run HiGHS; map its model status to ours (raise unless optimal).

    With ``allow_incumbent`` (a MILP), a run stopped by its time limit with a feasible
    solution returns ``"feasible"`` (not proven optimal) instead of raising.

    The model is feasible by construction (no charging, every request unmet, is a
    solution), so "infeasible" is a numerical artefact: seen from HiGHS's MIP presolve
    on small V2G instances. So is "unknown": seen once in the real-day simulations
    (``tests/data/lp_status_unknown.json``), where the clean-up after postsolve
    stopped with a primal infeasibility; one more run from its basis solves it. Both
    are retried once, with presolve off.
    """
    import highspy

    h.run()
    ms = h.getModelStatus()
    if ms in (
        highspy.HighsModelStatus.kInfeasible,
        highspy.HighsModelStatus.kUnboundedOrInfeasible,
        highspy.HighsModelStatus.kUnknown,
    ):
        presolve = h.getOptionValue("presolve")
        if isinstance(presolve, tuple):  # highspy returns (status, value)
            presolve = presolve[-1]
        h.setOptionValue("presolve", "off")
        h.run()
        h.setOptionValue("presolve", presolve)
        ms = h.getModelStatus()
    if ms == highspy.HighsModelStatus.kOptimal:
        return "optimal"
    if ms == highspy.HighsModelStatus.kModelEmpty:
        # no column (no session may charge; imp substituted everywhere): nothing to decide
        return "optimal"
    if ms == highspy.HighsModelStatus.kTimeLimit:
        feasible = highspy.SolutionStatus.kSolutionStatusFeasible
        if allow_incumbent and h.getInfo().primal_solution_status == feasible:
            return "feasible"
        raise SolverError("HiGHS hit its time limit", status="time_limit")
    raise SolverError(f"HiGHS ended with status {h.modelStatusToString(ms)}", status="error")


def _run_feasible(h) -> bool:
    """Run HiGHS on a model that may be infeasible: True if optimal, False if infeasible.

    Any other outcome raises as :func:`_run` does.
    """
    import highspy

    h.run()
    ms = h.getModelStatus()
    if ms == highspy.HighsModelStatus.kOptimal:
        return True
    if ms in (
        highspy.HighsModelStatus.kInfeasible,
        highspy.HighsModelStatus.kUnboundedOrInfeasible,
    ):
        return False
    return _run(h) == "optimal"


def _rates(p: ProblemArrays, model: LpModel, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    cs, ct = model.c_cells
    ds, dtt = model.d_cells
    c = np.zeros((p.n_sessions, p.n_slots))
    d = np.zeros_like(c)
    c[cs, ct] = np.maximum(x[model.c_off : model.c_off + len(cs)], 0.0)
    d[ds, dtt] = np.maximum(x[model.d_off : model.d_off + len(ds)], 0.0)
    return c, d


def solve_lp(
    problem: ProblemArrays,
    *,
    integer: bool = False,
    time_limit_s: float | None = None,
    highs_options: dict | None = None,
    repair: bool = True,
    accept_incumbent: bool = False,
) -> tuple[np.ndarray, dict]:
    """Solve the planning LP (``integer=False``: LP + repair) or MILP on HiGHS.

    Parameters
    ----------
    problem : ProblemArrays
    integer : bool, default False
        Solve the min-current rule exactly as a MILP.
    time_limit_s : float, optional
        HiGHS time limit per run.
    highs_options : dict, optional
        Extra HiGHS options (e.g. ``{"solver": "ipm", "run_crossover": "off"}``).
    repair : bool, default True
        LP only: enforce the min-current rule by re-solving (see ``_repair``). With
        ``False`` the relaxation is returned as is (cells may be below the minimum).
    accept_incumbent : bool, default False
        MILP only: when the time limit stops HiGHS with a feasible solution, return it
        (``info["status"] == "feasible"``, its relative gap in ``info["mip_gap"]``)
        instead of raising.

    Returns
    -------
    rate_kw : numpy.ndarray
        (S, T) net rate in kW (negative = discharge).
    info : dict
        Objective, status, model size, repair statistics.

    Raises
    ------
    SolverError
        HiGHS failed, hit the time limit (without a solution to accept), or the repair
        LP was infeasible.
    """
    import time

    p = problem
    t0 = time.perf_counter()
    model = build_lp(p, integer=integer)
    t_build = time.perf_counter() - t0
    h = _highs(model, time_limit_s, highs_options)
    status = _run(h, allow_incumbent=integer and accept_incumbent)
    x = np.asarray(h.getSolution().col_value)
    c, d = _rates(p, model, x)
    info = {
        "build_time_s": t_build,
        "n_cols": model.n_cols,
        "n_rows": model.n_rows,
        "nnz": int(model.matrix.nnz),
        "integer": integer,
        "status": status,
        "repaired_cells": 0,
    }
    if status == "feasible":
        info["mip_gap"] = float(h.getInfo().mip_gap)
    info["relaxation_objective"] = float(h.getInfo().objective_function_value)
    objective = info["relaxation_objective"]
    if not integer and repair:
        c, d, objective, n_fixed = _repair_best(p, model, h, c, d)
        info["repaired_cells"] = n_fixed
    info["objective"] = objective
    info["simplex_iterations"] = int(h.getInfo().simplex_iteration_count)
    info["highs"] = h
    info["model"] = model
    return c - d, info


def _repair_best(p: ProblemArrays, model: LpModel, h, c: np.ndarray, d: np.ndarray):
    """Repair the relaxation (:func:`_repair`); with bids, also the other way, keep the best.

    A bid pays for discharge, and the relaxation can meet it by charging and
    discharging one cell at once (its convex hull allows both). Where the charge is
    the larger side, the repair keeps it and the bid is lost. So when such a cell lies
    in a paid window, the repair is run a second time, from the relaxation, keeping
    the discharge in those cells; the plan with the lower objective is returned (the
    objective prices unmet energy above any cost, so neither delivers less).

    Returns ``(c, d, objective, cells fixed)``.
    """
    tol = 1e-7
    paid = paid_cells(p)
    c_a, d_a, n_a = _repair(p, model, h, c, d)
    obj_a = float(h.getInfo().objective_function_value)
    if paid is None or not ((c > tol) & (d > tol) & paid & (c >= d)).any():
        return c_a, d_a, obj_a, n_a
    # back to the relaxation's bounds, then repair keeping discharge where a bid pays
    nc, nd = len(model.c_cells[0]), len(model.d_cells[0])
    for off, n in ((model.c_off, nc), (model.d_off, nd)):
        idx = (off + np.arange(n)).astype(np.int32)
        h.changeColsBounds(n, idx, model.col_lower[off : off + n], model.col_upper[off : off + n])
    try:
        c_b, d_b, n_b = _repair(p, model, h, c, d, keep_discharge=paid)
    except SolverError:
        return c_a, d_a, obj_a, n_a
    obj_b = float(h.getInfo().objective_function_value)
    if obj_b < obj_a - 1e-9 * (1.0 + abs(obj_a)):
        return c_b, d_b, obj_b, n_b
    return c_a, d_a, obj_a, n_a


def _repair(
    p: ProblemArrays,
    model: LpModel,
    h,
    c: np.ndarray,
    d: np.ndarray,
    max_rounds: int = 25,
    keep_discharge: np.ndarray | None = None,
    promote: bool = False,
):
    """Make the LP relaxation keep the min-current rule by fixing cells and re-solving.

    Each round fixes to 0 every cell with a minimum whose rate is below it, zeros
    included (so no new cell can turn up below its minimum later; not in the first
    round with ``keep_discharge``), and, where a cell both charges and discharges, the
    smaller side (the charge where ``keep_discharge`` is True); then re-solves from
    the current basis. The set of free cells only shrinks, and fixing cells to 0 keeps
    the LP feasible (a plan of zeros is one), so this ends with a plan that keeps the
    rule.

    With ``promote``, charging cells below the minimum are first *raised* to it where
    that keeps their session's energy (:func:`._formulation.promote_cells`: per
    session, largest first, at most the energy they carried): their lower bound
    becomes the minimum, the others are fixed to 0. A round whose raised cells make
    the LP infeasible (a node cannot carry them) fixes them to 0 instead. For the
    first ``PROMOTE_FREE_ROUNDS`` rounds cells at 0 are not fixed, so the energy can
    move to cells the relaxation did not use; every round still decides at least one
    cell for good, so the rounds after those end as above.
    """
    tol = 1e-7
    cs, ct = model.c_cells
    ds, dtt = model.d_cells
    key_c = cs * p.n_slots + ct
    key_d = ds * p.n_slots + dtt
    idx_c = (model.c_off + np.arange(len(cs))).astype(np.int32)
    idx_d = (model.d_off + np.arange(len(ds))).astype(np.int32)
    pmin_c, pmin_d = p.pmin_kw[cs], p.dmin_kw[ds]
    fixed_c = np.zeros(len(cs), dtype=bool)
    fixed_d = np.zeros(len(ds), dtype=bool)
    upper_c = model.col_upper[model.c_off : model.c_off + len(cs)]
    frac_c = p.present[cs, ct] * p.grid.step_h
    free_rounds = PROMOTE_FREE_ROUNDS if promote else 0
    n_small = 0
    for round_no in range(max_rounds + free_rounds):  # (free rounds decide cells too)
        cv, dv = c[cs, ct], d[ds, dtt]
        small_c = (cv > tol) & (cv < pmin_c - tol)
        small_d = (dv > tol) & (dv < pmin_d - tol)
        mixed_c = np.zeros(len(cs), dtype=bool)
        both = ((c > tol) & (d > tol)).ravel()
        if both.any():
            flat_c, flat_d = c.ravel(), d.ravel()
            drop_c = flat_c < flat_d  # keep the larger side ...
            if keep_discharge is not None:
                drop_c |= keep_discharge.ravel()  # ... or the discharge where told
            mixed_c = np.isin(key_c, np.flatnonzero(both & drop_c))
            small_c |= mixed_c
            small_d |= np.isin(key_d, np.flatnonzero(both & ~drop_c))
        if not (small_c.any() or small_d.any()):
            return c, d, n_small
        n_small += int(small_c.sum() + small_d.sum())
        up = np.zeros(len(cs), dtype=bool)
        if promote:
            up = promote_cells(
                cs, cv, small_c & ~mixed_c & ~fixed_c & (upper_c >= pmin_c), pmin_c, frac_c
            )
        # zeros too, but not in the first round of a keep_discharge repair (the energy
        # the fixed charge carried must be able to move to other cells), nor in the
        # free rounds of a promoting repair
        zeros = (keep_discharge is None or round_no > 0) and round_no >= free_rounds
        new_c = ~fixed_c & (small_c | (zeros & (cv <= tol) & (pmin_c > 0.0)))
        new_d = ~fixed_d & (small_d | (zeros & (dv <= tol) & (pmin_d > 0.0)))
        fixed_c |= new_c
        fixed_d |= new_d
        for idx, new in ((idx_c, new_c & ~up), (idx_d, new_d)):
            if new.any():
                i = idx[new]
                h.changeColsBounds(len(i), i, np.zeros(len(i)), np.zeros(len(i)))
        try:
            if up.any():
                i = idx_c[up]
                h.changeColsBounds(len(i), i, pmin_c[up], upper_c[up])
                if not _run_feasible(h):  # a node cannot carry them: off instead
                    h.changeColsBounds(len(i), i, np.zeros(len(i)), np.zeros(len(i)))
                    _run(h)
            else:
                _run(h)
        except SolverError as e:
            raise SolverError(f"min-current repair failed: {e}", status=e.status) from e
        c, d = _rates(p, model, np.asarray(h.getSolution().col_value))
    raise SolverError(
        f"min-current repair did not settle in {max_rounds + free_rounds} rounds",
        status="repair_failed",
    )


def repair_by_resolving(
    p: ProblemArrays, model: LpModel, h, rate_kw: np.ndarray
) -> tuple[np.ndarray, int]:
    """Make a relaxation solved by :func:`solve_lp` (``repair=False``) keep the min-current rule.

    Re-solves with cells below the minimum raised to it or fixed to 0 (the promoting
    repair of :func:`_repair`), from the loaded model ``h`` of ``model``.

    Returns
    -------
    rate_kw : numpy.ndarray
        (S, T) rates that keep the rule (not rounded; energy may be left to refill).
    repaired : int
        Cells that were below their minimum, over all rounds.

    Raises
    ------
    SolverError
        If HiGHS fails on a re-solve or the rounds do not settle.
    """
    c, d, n = _repair(
        p, model, h, np.maximum(rate_kw, 0.0), np.maximum(-rate_kw, 0.0), promote=True
    )
    return c - d, n
