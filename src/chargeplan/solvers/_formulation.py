"""Pieces of the planning LP shared by the HiGHS (lp.py) and cvxpy (custom.py) models.

Both solvers state the same optimisation problem; what they must agree on lives here
so it cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..problem import LINE_ANGLES, ProblemArrays

__all__ = [
    "TIE_BREAK_PER_KWH",
    "SAFETY",
    "POLYGON_DIRECTIONS",
    "cells",
    "penalty_weight",
    "node_incidence",
    "lookup",
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


def node_incidence(
    p: ProblemArrays, s_idx: np.ndarray, t_idx: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Triplets (row key, cell number, coef) of cells on the node rows of their path.

    The row key of node ``n``, row ``r`` (L1, L2, L3, kW) and slot ``t`` is
    ``(n * 4 + r) * T + t``.
    """
    keys, cells, coefs = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], [np.zeros(0)]
    T = p.n_slots
    cell = np.arange(len(s_idx))
    for k in range(p.path.shape[1]):
        node = p.path[s_idx, k]
        ok = node >= 0
        for r in range(p.coef.shape[1]):
            co = p.coef[s_idx, r]
            m = ok & (co > 0.0)
            keys.append((node[m] * p.coef.shape[1] + r) * T + t_idx[m])
            cells.append(cell[m])
            coefs.append(co[m])
    return np.concatenate(keys), np.concatenate(cells), np.concatenate(coefs)


def lookup(keys: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Position of each ``k`` in sorted ``keys`` and whether it is there."""
    pos = np.searchsorted(keys, k)
    ok = (pos < len(keys)) & (keys[np.minimum(pos, max(len(keys) - 1, 0))] == k)
    return pos, ok


#: Directions of the inner polygon that bounds a line-current phasor in the LP; the
#: limit is scaled by cos(pi / M), so the polygon lies inside the circle (M=48: within
#: 0.2 % of the exact limit).
POLYGON_DIRECTIONS = 48


@dataclass
class RowBlock:
    """Rows ``A_c @ c + A_d @ d <= upper`` over the charge and discharge cells."""

    name: str
    a_c: sp.csr_matrix
    a_d: sp.csr_matrix
    upper: np.ndarray
    keys: np.ndarray  # (rows,) int64: (node * 4 + row) * T + t of each row


@dataclass
class NodeRows:
    """All node constraints of the LP, and the cells that must stay at 0."""

    blocks: list[RowBlock]
    c_off: np.ndarray  # (nc,) bool
    d_off: np.ndarray  # (nd,) bool


def _block(name, rows, c_cells, c_vals, d_cells, d_vals, keys, nc, nd, upper) -> RowBlock:
    n_rows = len(keys)
    a_c = sp.csr_matrix((c_vals, (rows[0], c_cells)), shape=(n_rows, nc))
    a_d = sp.csr_matrix((d_vals, (rows[1], d_cells)), shape=(n_rows, nd))
    return RowBlock(name, a_c, a_d, upper, keys)


def node_rows(
    p: ProblemArrays,
    cs: np.ndarray,
    ct: np.ndarray,
    ds: np.ndarray,
    dtt: np.ndarray,
    step_kw: np.ndarray,
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
    """
    nc, nd = len(cs), len(ds)
    T = p.n_slots
    c_off = np.zeros(nc, dtype=bool)
    d_off = np.zeros(nd, dtype=bool)
    blocks: list[RowBlock] = []
    kc, cc, vc = node_incidence(p, cs, ct)
    kd, cd, vd = node_incidence(p, ds, dtt)
    # row key -> (node, row): key = (n * 4 + r) * T + t
    rc, rd = (kc // T) % 4, (kd // T) % 4
    nc_node, nd_node = kc // (4 * T), kd // (4 * T)
    special_c = (rc < 3) & p.ll_line[nc_node, np.minimum(rc, 2)]
    special_d = (rd < 3) & p.ll_line[nd_node, np.minimum(rd, 2)]
    step_c, step_d = step_kw[cs[cc]], step_kw[ds[cd]]

    # signed linear rows (collinear lines and kW rows)
    cap, cap_x = p.cap.reshape(-1), p.cap_export.reshape(-1)
    lc, ld = ~special_c, ~special_d
    keys = np.unique(np.concatenate([kc[lc], kd[ld]]))
    keys = keys[np.isfinite(cap[keys])]
    if len(keys):
        pc, okc = lookup(keys, kc)
        pd_, okd = lookup(keys, kd)
        okc &= lc
        okd &= ld
        margin = np.bincount(pd_[okd], weights=vd[okd] * step_d[okd], minlength=len(keys))
        room = cap[keys] - margin - SAFETY
        c_off[cc[okc & (room[np.minimum(pc, len(keys) - 1)] < 0.0)]] = True
        blocks.append(
            _block(
                "node_import",
                (pc[okc], pd_[okd]),
                cc[okc],
                vc[okc],
                cd[okd],
                -vd[okd],
                keys,
                nc,
                nd,
                np.maximum(room, 0.0),
            )
        )
    if nd:
        keys = np.unique(kd[ld])
        keys = keys[np.isfinite(cap_x[keys])]
        if len(keys):
            pc, okc = lookup(keys, kc)
            pd_, okd = lookup(keys, kd)
            okc &= lc
            okd &= ld
            margin = np.bincount(pc[okc], weights=vc[okc] * step_c[okc], minlength=len(keys))
            room = cap_x[keys] - margin - SAFETY
            d_off[cd[okd & (room[np.minimum(pd_, len(keys) - 1)] < 0.0)]] = True
            blocks.append(
                _block(
                    "node_export",
                    (pc[okc], pd_[okd]),
                    cc[okc],
                    -vc[okc],
                    cd[okd],
                    vd[okd],
                    keys,
                    nc,
                    nd,
                    np.maximum(room, 0.0),
                )
            )

    if not (special_c.any() or special_d.any()):
        return NodeRows(blocks, c_off, d_off)
    if not p.phasor_limits:
        # sum of magnitudes: every term only grows the row, rounding toward zero is safe
        keys = np.unique(np.concatenate([kc[special_c], kd[special_d]]))
        keys = keys[np.isfinite(cap[keys])]
        if len(keys):
            pc, okc = lookup(keys, kc)
            pd_, okd = lookup(keys, kd)
            okc &= special_c
            okd &= special_d
            blocks.append(
                _block(
                    "node_magnitude",
                    (pc[okc], pd_[okd]),
                    cc[okc],
                    vc[okc],
                    cd[okd],
                    vd[okd],
                    keys,
                    nc,
                    nd,
                    np.maximum(cap[keys] - SAFETY, 0.0),
                )
            )
        return NodeRows(blocks, c_off, d_off)

    # inner polygon on the exact line phasor
    M = POLYGON_DIRECTIONS
    phi = 2.0 * np.pi * np.arange(M) / M
    rot = np.exp(-1j * phi)  # (M,)
    lines = np.unique(np.concatenate([kc[special_c], kd[special_d]]))  # keys (n, line, t)
    lines = lines[
        np.isfinite(
            p.limit_a.reshape(-1)[(lines // (4 * T)) * 3 * T + ((lines // T) % 4) * T + lines % T]
        )
    ]
    if not len(lines):
        return NodeRows(blocks, c_off, d_off)
    n_of, l_of, t_of = lines // (4 * T), (lines // T) % 4, lines % T
    limit = p.limit_a[n_of, l_of, t_of]
    unit = np.exp(1j * LINE_ANGLES[l_of])
    amps_per_kw = 1000.0 / (3.0 * p.voltage_v)
    is_root = n_of == p.root
    variants = [p.net_base_kw]
    if not np.allclose(p.net_base_kw, p.net_base_low_kw):
        variants.append(p.net_base_low_kw)
    pc, okc = lookup(lines, kc)
    pd_, okd = lookup(lines, kd)
    okc &= special_c
    okd &= special_d
    a_c = p.acoef[cs[cc[okc]], rc[okc]]
    a_d = p.acoef[ds[cd[okd]], rd[okd]]
    # Charging loads on a line lie within 30 degrees of its voltage (line-to-neutral,
    # 3-phase and DC loads on it, line-to-line loads at +-30 degrees). Where nothing on a
    # line-slot can point elsewhere (no discharge there, no negative base load), its
    # phasor stays in that cone and only the directions within the cone, widened by
    # half a sector, can bind: the others are left out.
    has_d = np.zeros(len(lines), dtype=bool)
    has_d[pd_[okd]] = True
    neg_base = is_root & (np.minimum(p.net_base_kw, p.net_base_low_kw)[t_of] < 0.0)
    in_cone = ~has_d & ~neg_base
    off = np.angle(np.exp(1j * (phi[:, None] - LINE_ANGLES[l_of][None, :])))  # (M, L)
    needed = ~in_cone[None, :] | (np.abs(off) <= np.pi / 6.0 + np.pi / M + 1e-9)
    for v, net in enumerate(variants):
        base = np.where(is_root, net[t_of] * amps_per_kw, 0.0) * unit  # (L,) complex
        # base alone at or above the polygon: nothing may be added on that line and slot
        full = np.abs(base) >= limit * np.cos(np.pi / M) - SAFETY
        c_off[cc[okc][full[pc[okc]]]] = True
        d_off[cd[okd][full[pd_[okd]]]] = True
        for m in range(M):
            proj_c = (a_c * rot[m]).real
            proj_d = -(a_d * rot[m]).real
            # rounding c down moves the row by -proj_c*step, d toward zero by -proj_d*step
            margin = np.bincount(
                pc[okc], weights=np.maximum(-proj_c, 0) * step_c[okc], minlength=len(lines)
            )
            margin += np.bincount(
                pd_[okd], weights=np.maximum(-proj_d, 0) * step_d[okd], minlength=len(lines)
            )
            upper = limit * np.cos(np.pi / M) - (base * rot[m]).real - margin - SAFETY
            keep = needed[m]
            if not keep.any():
                continue
            new_row = np.cumsum(keep) - 1  # row of each kept line-slot in this block
            kc_ = keep[pc[okc]]
            kd_ = keep[pd_[okd]]
            blocks.append(
                _block(
                    f"node_phasor_{v}_{m}",
                    (new_row[pc[okc][kc_]], new_row[pd_[okd][kd_]]),
                    cc[okc][kc_],
                    proj_c[kc_],
                    cd[okd][kd_],
                    proj_d[kd_],
                    lines[keep],
                    nc,
                    nd,
                    np.maximum(upper[keep], 0.0),
                )
            )
    return NodeRows(blocks, c_off, d_off)
