"""Pieces of the planning LP shared by the HiGHS (lp.py) and cvxpy (custom.py) models.

Both solvers state the same optimisation problem; what they must agree on lives here
so it cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from ..problem import LINE_ANGLES, ProblemArrays

__all__ = [
    "TIE_BREAK_PER_KWH",
    "SAFETY",
    "POLYGON_DIRECTIONS",
    "cells",
    "penalty_weight",
    "paid_cells",
    "promote_cells",
    "node_rows",
    "NodeRows",
    "RowBlock",
]

#: Cost per kWh and slot index (scaled by 1/T) that makes the plan charge earlier on ties.
TIE_BREAK_PER_KWH = 1e-4
#: Headroom kept against solver tolerances (HiGHS's MIP feasibility tolerance is 1e-6):
#: on node rows (A or kW) and on the V2G reserve (kWh). Energy above the request by a
#: tolerance is taken back after rounding (see rounding._trim_net_energy).
SAFETY = 1e-5


def cells(p: ProblemArrays):
    """List the LP's cells: charge and discharge cells, V2G sessions and their rows.

    Returns
    -------
    cs, ct, ds, dt : numpy.ndarray
        Session and slot of every cell that may charge / discharge (row-major order).
    v2g : numpy.ndarray
        Sessions with a discharge cell.
    v_pos : numpy.ndarray
        (S,) position of each session in ``v2g`` (-1 if none).
    """
    cs, ct = np.nonzero(p.pmax_kw > 0.0)
    ds, dt = np.nonzero(p.dmax_kw > 0.0)
    v2g = np.unique(ds)
    v_pos = np.full(p.n_sessions, -1)
    v_pos[v2g] = np.arange(len(v2g))
    return cs, ct, ds, dt, v2g, v_pos


def paid_cells(p: ProblemArrays) -> np.ndarray | None:
    """(S, T): cells where a bid it belongs to pays for the session's discharge (None: no bid).

    That is, where the session is plugged in inside the bid's window.
    """
    if not len(p.bid_price_per_kwh):
        return None
    return p.bid_union > 0.0


def promote_cells(sess: np.ndarray, val: np.ndarray, cand: np.ndarray, pmin: np.ndarray, frac):
    """Cells (of ``cand``) to raise to the minimum so each session keeps its energy.

    Per session, candidate cells are taken largest rate first while, at the minimum
    rate, they carry no more than the energy all its candidates carried (more would
    exceed the request); the re-solve can raise them above the minimum.
    """
    out = np.zeros(len(val), dtype=bool)
    idx = np.flatnonzero(cand)
    if not len(idx):
        return out
    order = idx[np.lexsort((-val[idx], sess[idx]))]
    s = sess[order]
    need = np.bincount(s, weights=val[order] * frac[order])
    carry = pmin[order] * frac[order]
    before = np.cumsum(carry) - carry  # carried by earlier cells (all sessions)
    first = np.r_[0, np.flatnonzero(np.diff(s)) + 1]
    start = np.repeat(before[first], np.diff(np.r_[first, len(s)]))
    out[order[before - start + carry <= need[s] + 1e-9]] = True
    return out


def penalty_weight(p: ProblemArrays) -> float:
    """Price per kWh of unmet energy: above any cost the plan could save."""
    dt = p.grid.step_h
    worst = (
        np.abs(p.price_import_per_kwh).max(initial=0.0)
        + np.abs(p.price_export_per_kwh).max(initial=0.0)
        + p.degradation_per_kwh.max(initial=0.0)
        + np.abs(p.bid_price_per_kwh).max(initial=0.0)
        + p.bid_penalty_per_kwh.max(initial=0.0)
        + p.demand_charge_per_kw / dt
    )
    eta = p.efficiency.min(initial=1.0)
    return 10.0 * (1.0 + worst / eta)


#: Directions of the inner polygon that bounds a line-current phasor in the LP; the
#: limit is scaled by cos(pi / M), so the polygon lies inside the circle (M=48: within
#: 0.2 % of the exact limit).
POLYGON_DIRECTIONS = 48


@dataclass
class RowBlock:
    """Rows ``A_c @ c + A_d @ d <= upper`` over the charge and discharge cells.

    The matrices are kept as COO triplets (``c_rows, c_cells, c_vals`` and the same for
    discharge cells); :attr:`a_c` and :attr:`a_d` give them as ``scipy.sparse`` matrices.
    """

    name: str
    upper: np.ndarray
    keys: np.ndarray  # (rows,) int64: (node * 4 + row) * T + t of each row
    sub: np.ndarray  # (rows,) int64: polygon direction of a phasor row (0 for others)
    c_rows: np.ndarray
    c_cells: np.ndarray
    c_vals: np.ndarray
    d_rows: np.ndarray
    d_cells: np.ndarray
    d_vals: np.ndarray
    nc: int
    nd: int

    @property
    def n_rows(self) -> int:
        """Number of rows."""
        return len(self.upper)

    @property
    def a_c(self) -> sp.csr_matrix:
        """(rows, charge cells) coefficients."""
        return sp.csr_matrix((self.c_vals, (self.c_rows, self.c_cells)), (self.n_rows, self.nc))

    @property
    def a_d(self) -> sp.csr_matrix:
        """(rows, discharge cells) coefficients."""
        return sp.csr_matrix((self.d_vals, (self.d_rows, self.d_cells)), (self.n_rows, self.nd))


@dataclass
class NodeRows:
    """All node constraints of the LP, and the cells that must stay at 0.

    ``pruned`` counts the rows left out because they can never bind.
    """

    blocks: list[RowBlock]
    c_off: np.ndarray  # (nc,) bool
    d_off: np.ndarray  # (nd,) bool
    pruned: int = 0


class _Cells:
    """Charge (or discharge) cells as a dense (S, T) map, and the cells of each session.

    ``hi`` is the (S, T) rate limit: 0 wherever there is no cell when the cells are
    those of :func:`cells` (and otherwise an upper bound, which is all ``hi`` is used
    for); ``step`` is the (S,) rounding step of each session.
    """

    def __init__(self, s_idx, t_idx, rate_max, step_kw, S: int, T: int) -> None:
        self.s, self.t = s_idx, t_idx
        self.on = np.zeros((S, T))
        self.on[s_idx, t_idx] = 1.0
        self.hi, self.step = rate_max, step_kw
        self.count = np.bincount(s_idx, minlength=S)
        self.start = np.cumsum(self.count) - self.count

    @cached_property
    def order(self) -> np.ndarray:
        """Cells by session (``s_idx`` is sorted when it comes from :func:`cells`)."""
        if np.all(self.s[1:] >= self.s[:-1]):
            return np.arange(len(self.s))
        return np.argsort(self.s, kind="stable")

    def of(self, sess: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every cell of the sessions ``sess``: (position in ``sess``, cell)."""
        rep = self.count[sess]
        e = np.repeat(np.arange(len(sess)), rep)
        first = np.cumsum(rep) - rep
        return e, self.order[np.arange(len(e)) + np.repeat(self.start[sess] - first, rep)]


class _Incidence:
    """Node rows (numbered ``0 .. n - 1``) each session loads, with the load per kW."""

    def __init__(self, sess, row, coef, n: int, S: int) -> None:
        self.sess, self.row, self.coef, self.n, self.S = sess, row, coef, n, S

    def take(self, mask: np.ndarray) -> _Incidence:
        return _Incidence(self.sess[mask], self.row[mask], self.coef[mask], self.n, self.S)

    @cached_property
    def load(self) -> sp.csr_matrix:
        """(n, S) sparse matrix of the load per kW."""
        return sp.csr_matrix((self.coef, (self.row, self.sess)), shape=(self.n, self.S))

    @cached_property
    def member(self) -> sp.csr_matrix:
        """(n, S) sparse matrix: 1 where a session loads a row."""
        ones = np.ones(len(self.row))
        return sp.csr_matrix((ones, (self.row, self.sess)), shape=(self.n, self.S))

    def on(self, cells: _Cells) -> np.ndarray:
        """(n, T) bool: some cell loads the row in the slot."""
        if not len(self.row) or not len(cells.s):
            return np.zeros((self.n, cells.on.shape[1]), dtype=bool)
        return (self.member @ cells.on) > 0.0

    def sum(self, w: np.ndarray) -> np.ndarray:
        """(n, T) sums of ``coef * w[s, t]`` over the sessions on each row."""
        return np.asarray(self.load @ w)

    def margin(self, cells: _Cells) -> np.ndarray:
        """(n, T) sums of ``coef * step[s]`` over the cells on each row and slot."""
        if not len(self.row) or not len(cells.s):
            return np.zeros((self.n, cells.on.shape[1]))
        m = sp.csr_matrix(
            (self.coef * cells.step[self.sess], (self.row, self.sess)), shape=(self.n, self.S)
        )
        return np.asarray(m @ cells.on)

    def cells_on(self, bad: np.ndarray, cells: _Cells) -> np.ndarray:
        """Cells (bool per cell) on a row and slot marked in ``bad`` ((n, T) bool)."""
        hit = self.member.T @ bad.astype(np.float64)
        return np.asarray(hit)[cells.s, cells.t] > 0.0

    def entries(self, cells: _Cells, keep: np.ndarray):
        """(session entry, cell) of every cell on a row and slot marked in ``keep``."""
        j = np.flatnonzero(keep[self.row].any(axis=1))
        e, cell = cells.of(self.sess[j])
        j = j[e]
        ok = keep[self.row[j], cells.t[cell]]
        return j[ok], cell[ok]


def _linear_block(name, inc, keep, upper, keys, c, d, sign_c, sign_d, nc, nd):
    """Rows ``keep`` ((n, T) bool) of ``sign_c coef c + sign_d coef d <= upper``."""
    if not keep.any():
        return None
    row_of = np.cumsum(keep).reshape(keep.shape) - 1
    parts = []
    for cells, sign in ((c, sign_c), (d, sign_d)):
        j, cell = inc.entries(cells, keep)
        parts.append((row_of[inc.row[j], cells.t[cell]], cell, sign * inc.coef[j]))
    return RowBlock(
        name,
        upper[keep],
        keys[keep],
        np.zeros(int(keep.sum()), np.int64),
        *parts[0],
        *parts[1],
        nc,
        nd,
    )


def _can_bind(reach: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Rows whose largest possible left-hand side ``reach`` may exceed ``upper``.

    ``reach`` adds up every cell's largest contribution to the row (its upper bound
    times the coefficient where that is positive), so a row with ``reach <= upper``
    holds for every plan within the column bounds and is redundant. Rows within
    ``SAFETY`` of that are kept (against solver tolerances on the column bounds).
    """
    return reach > upper - SAFETY


def node_rows(
    p: ProblemArrays,
    cs: np.ndarray,
    ct: np.ndarray,
    ds: np.ndarray,
    dtt: np.ndarray,
    step_kw: np.ndarray,
    *,
    prune: bool = True,
) -> NodeRows:
    """Node limits as LP rows over charge cells ``(cs, ct)`` and discharge cells ``(ds, dtt)``.

    * kW rows and the line-current rows of lines whose loads are all collinear (in
      phase or opposite with one another, base load included): signed linear rows,
      ``sum coef (c - d) <= cap`` (import) and ``sum coef (d - c) <= cap_export``;
    * other lines (line-to-line loads mixed with other angles) with
      ``Site.phasor_limits``: the line phasor within an inner polygon of
      ``POLYGON_DIRECTIONS`` sides, ``Re((P_ev + P_base) e^{-i phi}) <= L cos(pi/M)``;
    * such lines without it: sum of magnitudes, ``sum |a| (c + d) <= cap``.

    Every row keeps room for rounding rates toward zero later (one step per cell
    where it could raise the row), and cells on rows without that room stay at 0.

    With ``prune`` (the default), rows that can never bind are left out: those whose
    left-hand side stays below the bound (less ``SAFETY``) even with every cell at its
    largest rate (``pmax_kw`` / ``dmax_kw``) wherever that raises the row. The feasible
    set, hence the optimum, is the same; ``NodeRows.pruned`` counts the rows left out.
    Row keys do not depend on pruning (a row, when there, always has the same key).

    Row sums (margins, reach) are taken per node row and slot from (S, T) maps, so
    the work per cell is spent only on the rows that are kept.
    """
    nc, nd = len(cs), len(ds)
    S, T = p.n_sessions, p.n_slots
    N = p.cap.shape[0]
    c_off = np.zeros(nc, dtype=bool)
    d_off = np.zeros(nd, dtype=bool)
    blocks: list[RowBlock] = []
    pruned = 0
    # node rows with a limit in some slot, numbered i = 0 .. n - 1 (node row limited[i]
    # = node * 4 + row); the LP key of row i in slot t is limited[i] * T + t
    limited = np.flatnonzero(np.isfinite(p.cap.reshape(N * 4, T)).any(axis=1))
    n = len(limited)
    row_index = np.full(N * 4, -1, np.int64)
    row_index[limited] = np.arange(n)
    cap = p.cap.reshape(N * 4, T)[limited]  # (n, T)
    cap_x = p.cap_export.reshape(N * 4, T)[limited]
    finite = np.isfinite(cap)
    keys = limited[:, None] * T + np.arange(T)[None, :]  # (n, T)
    row_r, row_n = limited % 4, limited // 4
    special = (row_r < 3) & p.ll_line[row_n, np.minimum(row_r, 2)]
    # the node rows of every session (on its path, with a load there)
    D = p.path.shape[1]
    node = np.repeat(p.path, 4, axis=1).ravel()  # (S, D, 4)
    j_row = node * 4 + np.tile(np.arange(4), S * D)
    j_coef = np.repeat(p.coef[:, None, :], D, axis=1).ravel()
    ok = (node >= 0) & (j_coef > 0.0)
    j_row[ok] = row_index[j_row[ok]]
    ok &= j_row >= 0
    j = np.flatnonzero(ok)
    inc = _Incidence(j // (D * 4), j_row[j], j_coef[j], n, S)
    c = _Cells(cs, ct, p.pmax_kw, step_kw, S, T)
    d = _Cells(ds, dtt, p.dmax_kw, step_kw, S, T)

    # signed linear rows (collinear lines and kW rows)
    lin = inc.take(~special[inc.row])
    on_c, on_d = lin.on(c), lin.on(d)
    there = (on_c | on_d) & finite
    if there.any():
        room = cap - lin.margin(d) - SAFETY
        c_off |= lin.cells_on(there & (room < 0.0), c)
        upper = np.maximum(room, 0.0)
        keep = there
        if prune:
            keep = there & _can_bind(lin.sum(c.hi), upper)
            pruned += int((there & ~keep).sum())
        block = _linear_block("node_import", lin, keep, upper, keys, c, d, 1.0, -1.0, nc, nd)
        if block is not None:
            blocks.append(block)
    if nd:
        there = on_d & finite
        if there.any():
            room = cap_x - lin.margin(c) - SAFETY
            d_off |= lin.cells_on(there & (room < 0.0), d)
            upper = np.maximum(room, 0.0)
            keep = there
            if prune:
                keep = there & _can_bind(lin.sum(d.hi), upper)
                pruned += int((there & ~keep).sum())
            block = _linear_block("node_export", lin, keep, upper, keys, c, d, -1.0, 1.0, nc, nd)
            if block is not None:
                blocks.append(block)

    if not special.any():
        return NodeRows(blocks, c_off, d_off, pruned)
    spc = inc.take(special[inc.row])
    on_d = spc.on(d)
    there = (spc.on(c) | on_d) & finite
    if not there.any():
        return NodeRows(blocks, c_off, d_off, pruned)
    if not p.phasor_limits:
        # sum of magnitudes: every term only grows the row, rounding toward zero is safe
        upper = np.maximum(cap - SAFETY, 0.0)
        keep = there
        if prune:
            reach = spc.sum(c.hi) + (spc.sum(d.hi) if nd else 0.0)
            keep = there & _can_bind(reach, upper)
            pruned += int((there & ~keep).sum())
        block = _linear_block("node_magnitude", spc, keep, upper, keys, c, d, 1.0, 1.0, nc, nd)
        if block is not None:
            blocks.append(block)
        return NodeRows(blocks, c_off, d_off, pruned)

    # inner polygon on the exact line phasor (limit_a is finite where cap is); a "line"
    # below is a node line and slot with a load and a limit
    M = POLYGON_DIRECTIONS
    phi = 2.0 * np.pi * np.arange(M) / M
    rot = np.exp(-1j * phi)  # (M,)
    i_of, t_of = np.nonzero(there)  # lines in key order
    L = len(i_of)
    line_of = np.full((n, T), -1, np.int64)
    line_of[i_of, t_of] = np.arange(L)
    n_of, l_of = row_n[i_of], row_r[i_of]
    limit = p.limit_a[n_of, l_of, t_of]
    unit = np.exp(1j * LINE_ANGLES[l_of])
    amps_per_kw = 1000.0 / (3.0 * p.voltage_v)
    is_root = n_of == p.root
    variants = [p.net_base_kw]
    if not np.allclose(p.net_base_kw, p.net_base_low_kw):
        variants.append(p.net_base_low_kw)
    # Charging loads on a line lie within 30 degrees of its voltage (line-to-neutral,
    # 3-phase and DC loads on it, line-to-line loads at +-30 degrees). Where nothing on a
    # line-slot can point elsewhere (no discharge there, no negative base load), its
    # phasor stays in that cone and only the directions within the cone, widened by
    # half a sector, can bind: the others are left out.
    neg_base = is_root & (np.minimum(p.net_base_kw, p.net_base_low_kw)[t_of] < 0.0)
    in_cone = ~on_d[i_of, t_of] & ~neg_base
    off = np.angle(np.exp(1j * (phi[:, None] - LINE_ANGLES[None, :])))  # (M, 3)
    cone = np.abs(off) <= np.pi / 6.0 + np.pi / M + 1e-9
    needed = ~in_cone[None, :] | cone[:, l_of]  # (M, L)

    # The line phasor per kW of a session on a line takes few distinct values (G), so
    # per line and direction the rounding margin (rounding c down moves the row by
    # -proj_c * step, d toward zero by -proj_d * step) and the reach are (line, G) sums
    # of (S, T) maps times (G, M) projections of the distinct values.
    values, inv = np.unique(p.acoef.reshape(-1), return_inverse=True)
    G = len(values)
    group = inv.reshape(S, 3)[spc.sess, row_r[spc.row]]
    proj = (values[:, None] * rot[None, :]).real  # (G, M): charge; discharge is -proj
    pos_p, neg_p = np.maximum(proj, 0.0), np.maximum(-proj, 0.0)
    pair, pair_inv = np.unique(spc.row * G + group, return_inverse=True)
    sp_of = np.cumsum(special) - 1  # number of each special row among them

    def per_line(weight: np.ndarray, w: np.ndarray, table: np.ndarray) -> np.ndarray:
        """(M, L): sums of ``weight[s] * w[s, t]`` by row, slot and value, times ``table``."""
        by_pair = sp.csr_matrix((weight[spc.sess], (pair_inv, spc.sess)), shape=(len(pair), S))
        s = np.zeros((int(special.sum()), T, G))
        s[sp_of[pair // G], :, pair % G] = np.asarray(by_pair @ w)
        return (s[sp_of[i_of], t_of] @ table).T

    ones = np.ones(S)
    margin = per_line(c.step, c.on, neg_p) + (per_line(d.step, d.on, pos_p) if nd else 0.0)
    reach = None
    if prune:
        reach = per_line(ones, c.hi, pos_p) + (per_line(ones, d.hi, neg_p) if nd else 0.0)
    for v, net in enumerate(variants):
        base = np.where(is_root, net[t_of] * amps_per_kw, 0.0) * unit  # (L,) complex
        # base alone at or above the polygon: nothing may be added on that line and slot
        full = np.zeros((n, T), bool)
        full[i_of, t_of] = np.abs(base) >= limit * np.cos(np.pi / M) - SAFETY
        if full.any():
            c_off |= spc.cells_on(full, c)
            if nd:
                d_off |= spc.cells_on(full, d)
        upper = np.maximum(
            limit[None, :] * np.cos(np.pi / M)
            - (base[None, :] * rot[:, None]).real
            - margin
            - SAFETY,
            0.0,
        )  # (M, L)
        keep = needed
        if prune:
            keep = needed & _can_bind(reach, upper)
            pruned += int((needed & ~keep).sum())
        if not keep.any():
            continue
        # rows in (direction, line) order
        row_m, row_l = np.nonzero(keep)
        row_of = np.zeros((M, L), np.int64)
        row_of[row_m, row_l] = np.arange(len(row_m))
        # the kept rows of every line, line by line
        by_l, by_m = np.nonzero(keep.T)
        by_row = row_of[by_m, by_l]
        count = keep.sum(axis=0)
        first = np.cumsum(count) - count
        any_kept = np.zeros((n, T), bool)
        any_kept[i_of, t_of] = count > 0
        parts = []
        for cells, table in ((c, proj), (d, -proj)):
            j, cell = spc.entries(cells, any_kept)
            line = line_of[spc.row[j], cells.t[cell]]
            rep = count[line]
            k = np.arange(rep.sum()) + np.repeat(first[line] - (np.cumsum(rep) - rep), rep)
            coef = table.ravel()[np.repeat(group[j] * M, rep) + by_m[k]]
            parts.append((by_row[k], np.repeat(cell, rep), coef))
        blocks.append(
            RowBlock(
                f"node_phasor_{v}",
                upper[row_m, row_l],
                keys[i_of, t_of][row_l],
                row_m.astype(np.int64),
                *parts[0],
                *parts[1],
                nc,
                nd,
            )
        )
    return NodeRows(blocks, c_off, d_off, pruned)
