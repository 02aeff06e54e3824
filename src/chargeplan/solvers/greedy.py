"""Greedy planner in numba: price-aware filling under residual capacity of every node.

Algorithm
---------
Sessions are taken one at a time (higher priority first, then in deadline or laxity
order). Each fills its slots cheapest first: the slots are ranked once by effective
price, where a slot with PV surplus (PV above base load) is split into a "surplus"
part priced at the export price (the revenue given up by using it) and a "grid" part
at the import price; ties go to the earlier slot. In each slot the session takes as
much as its rate limit, the residual capacity of every row (L1, L2, L3 current and
total kW) of every node on its path to the root, and its remaining energy allow.

The min-current rule (rate 0 or >= the minimum) is kept exactly: a slot whose
capacity cannot carry the minimum is skipped; when only the last bit of energy is
left and it is below the minimum, the slot is filled at the minimum and the excess
is taken back from the session's most expensive slots (which stay at or above the
minimum); if that is impossible the small rest stays unmet and is reported.

The planner runs up to three orderings: earliest deadline first and least laxity
first (both price-ordered), and earliest deadline first filling the earliest slots
(the classic order for delivering the most energy on congested sites; skipped when
the first pass already delivers all that the EVs' own limits allow). It keeps the plan
with less priority-weighted unmet energy, then the cheaper one, and improves its cost
locally: energy moves from a session's most expensive slot to its cheapest slot with
room, keeping the min-current rule.
Everything is deterministic: the same input gives the same output bit for bit.

Cold start: the kernels are compiled with ``cache=True``. The first call in a fresh
environment compiles them (a few seconds); later processes load the cache (well
under a second). See ``benchmarks/README.md`` for measured figures.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..problem import LINE_ANGLES, ProblemArrays

__all__ = [
    "solve_greedy",
    "greedy_fill",
    "fill_from",
    "improve_cost",
    "residual",
    "PhasorState",
]

_TOL = 1e-9


@njit(cache=True)
def _session_rows(coef):
    """Rows (L1-L3 current, kW) each session loads: (S, 4) indices and (S,) counts."""
    S = coef.shape[0]
    rows = np.zeros((S, 4), dtype=np.int64)
    n_rows = np.zeros(S, dtype=np.int64)
    for s in range(S):
        m = 0
        for r in range(4):
            if coef[s, r] > 0.0:
                rows[s, m] = r
                m += 1
        n_rows[s] = m
    return rows, n_rows


@njit(cache=True)
def _windows(present):
    """First and last slot each session is present in: (S, 2) (``T, -1`` if never)."""
    S, T = present.shape
    out = np.empty((S, 2), dtype=np.int64)
    for s in range(S):
        lo = T
        hi = -1
        for t in range(T):
            if present[s, t] > 0.0:
                if t < lo:
                    lo = t
                hi = t
        out[s, 0] = lo
        out[s, 1] = hi
    return out


_BIG = 1e300  # "always binds" weight: finite, so that 0 x _BIG stays 0
_SLACK = 1e-7  # relative room a node keeps when it is marked as never binding


@njit(cache=True)
def _active_nodes(extra, coef, rows, n_rows, path, cap, phasor_line, pidx, plim, pz, acoef):
    """Which nodes must be checked and booked in which slot: (N, T) uint8.

    ``extra[s, t]`` bounds what session s may still add in slot t. A node is left out
    of slot t (0) when the sessions below it, all at their ``extra`` at once, keep every
    limited row at least ``_SLACK`` (relative) below its capacity: no check there can
    ever be the binding one, and its bookkeeping is never read. The bound is taken per
    node against the lowest capacity over the horizon (linear rows), and against the
    lowest phasor limit minus the largest phasor already there (phasor lines, with
    ``|sum z| <= sum |z|``), so it is conservative.
    """
    S, T = extra.shape
    N = cap.shape[0]
    D = path.shape[1]
    # per node and row: lowest capacity over the horizon
    dlin = np.full((N, 4), np.inf)
    for n in range(N):
        for r in range(4):
            if r < 3 and phasor_line[n, r]:
                continue
            m = np.inf
            for t in range(T):
                c = cap[n, r, t]
                if not (c >= m):  # also catches NaN
                    m = c
            dlin[n, r] = m
    dph = np.full((N, 3), np.inf)
    for n in range(N):
        k = pidx[n]
        if k < 0:
            continue
        for line in range(3):
            if not phasor_line[n, line]:
                continue
            m = np.inf
            for t in range(T):
                z0 = abs(pz[k, 0, line, t])
                z1 = abs(pz[k, 1, line, t])
                c = plim[k, line, t] - (z0 if z0 > z1 else z1)
                if not (c >= m):
                    m = c
            dph[n, line] = m
    # weight of each session on each node of its path, and a first time-free bound
    w = np.zeros((S, D))
    tot = np.zeros(N)
    for s in range(S):
        emax = 0.0
        for t in range(T):
            if extra[s, t] > emax:
                emax = extra[s, t]
        for d in range(D):
            n = path[s, d]
            if n < 0:
                break
            ws = 0.0
            for kk in range(n_rows[s]):
                r = rows[s, kk]
                if r < 3 and phasor_line[n, r]:
                    continue
                c = dlin[n, r]
                x = coef[s, r] / c if c > 0.0 else _BIG
                if not (x <= _BIG):
                    x = _BIG
                if x > ws:
                    ws = x
            for line in range(3):
                if not phasor_line[n, line]:
                    continue
                a = abs(acoef[s, line])
                if a == 0.0:
                    continue
                c = dph[n, line]
                x = a / c if c > 0.0 else _BIG
                if not (x <= _BIG):
                    x = _BIG
                if x > ws:
                    ws = x
            w[s, d] = ws
            tot[n] += ws * emax
    active = np.zeros((N, T), dtype=np.uint8)
    load = np.zeros((N, T))
    thr = 1.0 - _SLACK
    for s in range(S):
        for d in range(D):
            n = path[s, d]
            if n < 0:
                break
            if tot[n] <= thr:
                continue
            ws = w[s, d]
            if ws == 0.0:
                continue
            for t in range(T):
                e = extra[s, t]
                if e > 0.0:
                    load[n, t] += ws * e
    for n in range(N):
        if tot[n] <= thr:
            continue
        for t in range(T):
            if not (load[n, t] <= thr):
                active[n, t] = 1
    return active


@njit(cache=True, inline="always")
def _headroom(s, t, h, coef, rows, n_rows, path, cap, phasor_line, pidx, plim, pz, acoef, active):
    """Largest extra rate (kW) session s can add in slot t without overloading a node.

    Starts from ``h`` (the session's own room) and lowers it. Linear nodes: every row
    (L1-L3 current, kW) against its residual capacity. Phasor nodes: the exact
    line-current magnitude ``|P + x a| <= limit`` on every line (both base-load
    variants), plus the kW row. Nodes not ``active`` in slot t cannot bind and are
    skipped. The path is walked from the root down and the walk stops as soon as the
    result is ``<= _TOL`` (callers treat every such value alike).
    """
    for d in range(path.shape[1] - 1, -1, -1):
        n = path[s, d]
        if n < 0 or active[n, t] == 0:
            continue
        for k in range(n_rows[s]):
            r = rows[s, k]
            if r < 3 and phasor_line[n, r]:
                continue
            q = cap[n, r, t] / coef[s, r]
            if q < h:
                h = q
        k = pidx[n]
        if k >= 0:
            for line in range(3):
                if not phasor_line[n, line]:
                    continue
                a = acoef[s, line]
                aa = a.real * a.real + a.imag * a.imag
                if aa == 0.0:
                    continue
                lim = plim[k, line, t]
                for v in range(2):
                    z = pz[k, v, line, t]
                    if v == 1 and z == pz[k, 0, line, t]:
                        break  # same phasor as variant 0: same bound
                    zz = z.real * z.real + z.imag * z.imag
                    if zz > lim * lim:
                        return 0.0
                    b = z.real * a.real + z.imag * a.imag  # Re(z conj(a))
                    q = (-b + np.sqrt(max(b * b - aa * (zz - lim * lim), 0.0))) / aa
                    if q < h:
                        h = q
        if h <= _TOL:
            return h
    return h


@njit(cache=True, inline="always")
def _apply(s, t, x, coef, rows, n_rows, path, cap, phasor_line, pidx, pz, acoef, active):
    """Book rate x (kW, may be negative to release) of session s in slot t on its path."""
    for d in range(path.shape[1]):
        n = path[s, d]
        if n < 0:
            break
        if active[n, t] == 0:
            continue
        for k in range(n_rows[s]):
            r = rows[s, k]
            cap[n, r, t] -= coef[s, r] * x
        k = pidx[n]
        if k >= 0:
            for line in range(3):
                if phasor_line[n, line]:
                    for v in range(2):
                        pz[k, v, line, t] += x * acoef[s, line]


@njit(cache=True)
def _fill(
    order,
    sub_t,
    sub_kind,
    present,
    pmax,
    pmin,
    energy,
    coef,
    rows,
    n_rows,
    path,
    cap,
    surplus,
    dt_h,
    p,
    phasor_line,
    pidx,
    plim,
    pz,
    acoef,
    active,
    window,
):
    """Run one pass of :func:`greedy_fill` in place on ``p``, ``cap``, ``surplus``, ``pz``.

    ``rows``/``n_rows`` come from :func:`_session_rows`, ``active`` from
    :func:`_active_nodes` (with ``extra`` at least what each session can add),
    ``window`` from :func:`_windows`.
    """
    S = order.shape[0]
    K = sub_t.shape[0]
    for oi in range(S):
        s = order[oi]
        rem = energy[s]
        if rem <= _TOL:
            continue
        t_first = window[s, 0]
        t_last = window[s, 1]
        for k in range(K):
            if rem <= _TOL:
                break
            t = sub_t[k]
            if t < t_first or t > t_last:
                continue  # not present (saves touching the session's rows there)
            f = present[s, t]
            if f <= 0.0:
                continue
            room = pmax[s, t] - p[s, t]
            if room <= _TOL:
                continue
            kind = sub_kind[k]
            if kind == 0 and surplus[t] <= _TOL:
                continue
            h = _headroom(
                s,
                t,
                room,
                coef,
                rows,
                n_rows,
                path,
                cap,
                phasor_line,
                pidx,
                plim,
                pz,
                acoef,
                active,
            )
            if h <= _TOL:
                continue
            x = h
            if kind == 0 and x > surplus[t]:
                x = surplus[t]
            want = rem / (f * dt_h)
            if x > want:
                x = want
            if p[s, t] + x < pmin[s] - _TOL:
                need = pmin[s] - p[s, t]
                if kind == 0 or h < need or want >= need:
                    continue  # surplus part too small (grid part comes later) or no capacity
                # the last bit of energy is below the minimum rate: take the minimum here
                # and give the excess back from the most expensive slots of this session
                excess = (need - want) * f * dt_h
                avail = 0.0
                for kk in range(K - 1, -1, -1):
                    if sub_kind[kk] == 0:
                        continue  # each slot once (its grid part)
                    tt = sub_t[kk]
                    if tt != t and p[s, tt] > pmin[s] + _TOL:
                        avail += (p[s, tt] - pmin[s]) * present[s, tt] * dt_h
                if avail < excess - _TOL:
                    continue
                for kk in range(K - 1, -1, -1):
                    if excess <= _TOL:
                        break
                    if sub_kind[kk] == 0:
                        continue
                    tt = sub_t[kk]
                    if tt == t or p[s, tt] <= pmin[s] + _TOL:
                        continue
                    ft = present[s, tt] * dt_h
                    d = min(p[s, tt] - pmin[s], excess / ft)
                    p[s, tt] -= d
                    _apply(
                        s,
                        tt,
                        -d,
                        coef,
                        rows,
                        n_rows,
                        path,
                        cap,
                        phasor_line,
                        pidx,
                        pz,
                        acoef,
                        active,
                    )
                    excess -= d * ft
                    rem += d * ft
                x = need
            p[s, t] += x
            _apply(s, t, x, coef, rows, n_rows, path, cap, phasor_line, pidx, pz, acoef, active)
            used = x if x < surplus[t] else surplus[t]
            surplus[t] -= used
            rem -= x * f * dt_h


@njit(cache=True)
def greedy_fill(
    order,
    sub_t,
    sub_kind,
    present,
    pmax,
    pmin,
    energy,
    coef,
    path,
    cap0,
    surplus0,
    dt_h,
    p_init,
    phasor_line,
    pidx,
    plim,
    pz0,
    acoef,
):
    """One greedy pass on top of ``p_init``.

    Returns the rate matrix (S, T) in kW, and the capacity and line phasors it leaves.

    Parameters
    ----------
    order : (S,) int64
        Session order.
    sub_t, sub_kind : (K,) int64
        Sub-slots in increasing effective price: slot index and kind (0 = PV surplus
        part, 1 = grid part).
    present, pmax : (S, T) float64
    pmin, energy : (S,) float64
    coef : (S, 4) float64
    path : (S, D) int64
    cap0 : (N, 4, T) float64
        Row capacities (not modified).
    surplus0 : (T,) float64
        PV surplus in kW (not modified).
    dt_h : float
        Slot length in hours.
    p_init : (S, T) float64
        Rates already allocated (kept; not modified): ``cap0`` must be the capacity
        left by them, ``pz0`` include them, and ``energy`` be what each session still
        needs.
    phasor_line : (N, 3) bool
        Node lines limited on the exact line-current phasor.
    pidx : (N,) int64
        Row of each node in ``plim``/``pz0`` (-1: the node has no phasor line).
    plim : (K, 3, T) float64
        Line-current limits of phasor nodes.
    pz0 : (K, 2, 3, T) complex128
        Line-current phasors already on each node (base load at the root, at its
        highest and lowest in the slot); not modified.
    acoef : (S, 3) complex128
        Line-current phasor per kW of each session.
    """
    S, T = present.shape
    cap = cap0.copy()
    surplus = surplus0.copy()
    p = p_init.copy()
    pz = pz0.copy()
    rows, n_rows = _session_rows(coef)
    active = np.ones((cap.shape[0], T), dtype=np.uint8)  # book every node: cap is returned
    _fill(
        order,
        sub_t,
        sub_kind,
        present,
        pmax,
        pmin,
        energy,
        coef,
        rows,
        n_rows,
        path,
        cap,
        surplus,
        dt_h,
        p,
        phasor_line,
        pidx,
        plim,
        pz,
        acoef,
        active,
        _windows(present),
    )
    return p, cap, pz


@njit(cache=True)
def _improve(
    order,
    slots,
    price_imp,
    price_exp,
    surplus,
    usage,
    present,
    pmax,
    pmin,
    coef,
    rows,
    n_rows,
    path,
    cap,
    phasor_line,
    pidx,
    plim,
    pz,
    acoef,
    p,
    active,
):
    """:func:`improve_cost` with precomputed ``rows``/``n_rows`` and ``active`` nodes."""
    S, T = p.shape
    for oi in range(S):
        s = order[oi]
        lo = 0
        hi = T - 1
        while lo < hi:
            t_lo = slots[lo]
            t_hi = slots[hi]
            left = surplus[t_lo] - usage[t_lo]
            p_lo = price_exp[t_lo] if left > _TOL else price_imp[t_lo]
            from_grid = usage[t_hi] > surplus[t_hi] + _TOL
            p_hi = price_imp[t_hi] if from_grid else price_exp[t_hi]
            if p_lo >= p_hi - 1e-12:
                if not from_grid:
                    hi -= 1  # t_hi runs on PV surplus: nothing to gain there
                else:
                    lo += 1
                continue
            f_hi = present[s, t_hi]
            if f_hi <= 0.0 or p[s, t_hi] <= _TOL:
                hi -= 1
                continue
            f_lo = present[s, t_lo]
            room = pmax[s, t_lo] - p[s, t_lo]
            if f_lo <= 0.0 or room <= _TOL:
                lo += 1
                continue
            h = _headroom(
                s,
                t_lo,
                room,
                coef,
                rows,
                n_rows,
                path,
                cap,
                phasor_line,
                pidx,
                plim,
                pz,
                acoef,
                active,
            )
            if left > _TOL and h > left / f_lo:
                h = left / f_lo  # only the surplus left is cheap
            if h <= _TOL or (p[s, t_lo] <= _TOL and h < pmin[s] - _TOL):
                lo += 1
                continue
            # move everything from t_hi if it fits, else fill t_lo and keep t_hi >= pmin
            x = p[s, t_hi] * f_hi / f_lo
            if x <= h:
                dx = p[s, t_hi]
                if p[s, t_lo] <= _TOL and x < pmin[s] - _TOL:
                    hi -= 1
                    continue
                done_hi = True
            else:
                x = h
                dx = x * f_lo / f_hi
                if p[s, t_hi] - dx < pmin[s] - _TOL:
                    dx = p[s, t_hi] - pmin[s]
                    x = dx * f_hi / f_lo
                if dx <= _TOL or (p[s, t_lo] <= _TOL and x < pmin[s] - _TOL):
                    lo += 1
                    continue
                done_hi = False
            p[s, t_hi] -= dx
            if done_hi:
                p[s, t_hi] = 0.0
            _apply(
                s, t_hi, -dx, coef, rows, n_rows, path, cap, phasor_line, pidx, pz, acoef, active
            )
            p[s, t_lo] += x
            _apply(s, t_lo, x, coef, rows, n_rows, path, cap, phasor_line, pidx, pz, acoef, active)
            usage[t_hi] -= dx * f_hi
            usage[t_lo] += x * f_lo
            if done_hi:
                hi -= 1
            else:
                lo += 1


@njit(cache=True)
def improve_cost(
    order,
    slots,
    price_imp,
    price_exp,
    surplus,
    usage,
    present,
    pmax,
    pmin,
    coef,
    path,
    cap,
    phasor_line,
    pidx,
    plim,
    pz,
    acoef,
    p,
):
    """Local improvement, in place: move each session's energy to cheaper slots.

    For every session (in ``order``), energy is moved from its most expensive used slot
    to its cheapest slot with room (capacity on every node, rate limit), as long as the
    price drops; the energy of the session is unchanged and the min-current rule kept
    (a slot is emptied or stays at or above the minimum; a new slot starts at the
    minimum or more). ``cap`` and ``pz`` must hold what ``p`` leaves and are updated.

    Prices are marginal: adding energy in a slot costs the export price while PV
    surplus is left there (``surplus`` minus the EVs' ``usage``, mean kW), else the
    import price; taking energy away saves the import price where the EVs use more
    than the surplus, else the export price. ``slots`` gives the order the slots are
    scanned in (cheapest first); ``usage`` is updated.
    """
    rows, n_rows = _session_rows(coef)
    active = np.ones((cap.shape[0], p.shape[1]), dtype=np.uint8)  # book every node
    _improve(
        order,
        slots,
        price_imp,
        price_exp,
        surplus,
        usage,
        present,
        pmax,
        pmin,
        coef,
        rows,
        n_rows,
        path,
        cap,
        phasor_line,
        pidx,
        plim,
        pz,
        acoef,
        p,
        active,
    )


@njit(cache=True)
def _residual_kernel(rate, step_on, coef, path, ll_line, pidx, acoef, cap, plim, pz):
    """Subtract a plan's loads from ``cap``/``plim`` and add its phasors to ``pz``."""
    S, T = rate.shape
    for s in range(S):
        for d in range(path.shape[1]):
            n = path[s, d]
            if n < 0:
                break
            for r in range(4):
                c = coef[s, r]
                if c <= 0.0:
                    continue
                mag = r < 3 and ll_line[n, r]
                for t in range(T):
                    x = rate[s, t]
                    if x == 0.0:
                        continue
                    cap[n, r, t] -= c * (abs(x) if mag else x + step_on[s, t])
            k = pidx[n]
            if k < 0:
                continue
            for line in range(3):
                a = acoef[s, line]
                if a == 0.0:
                    continue
                m = abs(a)
                for t in range(T):
                    x = rate[s, t]
                    if x == 0.0:
                        continue
                    plim[k, line, t] -= m * step_on[s, t]
                    pz[k, 0, line, t] += x * a
                    pz[k, 1, line, t] += x * a


class PhasorState:
    """Line phasors and limits of the nodes with a phasor line, in compact arrays.

    Attributes
    ----------
    pidx : (N,) int64
        Row of each node (-1 when the node has no phasor line).
    plim : (K, 3, T) float64
        Line-current limits.
    pz : (K, 2, 3, T) complex128
        Line-current phasors: base load at the root (variant 0 at its highest in the
        slot, variant 1 at its lowest) plus what a plan puts there.
    """

    def __init__(self, problem: ProblemArrays) -> None:
        nodes = np.flatnonzero(problem.phasor_line.any(axis=1))
        self.pidx = np.full(len(problem.node_ids), -1, dtype=np.int64)
        self.pidx[nodes] = np.arange(len(nodes))
        T = problem.n_slots
        self.plim = problem.limit_a[nodes].copy()
        self.pz = np.zeros((len(nodes), 2, 3, T), dtype=np.complex128)
        k = self.pidx[problem.root]
        if k >= 0:
            unit = np.exp(1j * LINE_ANGLES)[:, None]
            amps_per_kw = 1000.0 / (3.0 * problem.voltage_v)
            self.pz[k, 0] = unit * (problem.net_base_kw * amps_per_kw)[None, :]
            self.pz[k, 1] = unit * (problem.net_base_low_kw * amps_per_kw)[None, :]


def residual(problem: ProblemArrays, p_init: np.ndarray, *, round_margin: bool = False):
    """Capacity a plan leaves: linear rows (N, 4, T) and the :class:`PhasorState`.

    Lines with non-collinear loads count magnitudes on the linear rows (a discharge
    frees nothing there; phasor lines are checked exactly). With ``round_margin``, room
    is kept for rounding discharges toward zero later (one step per discharging cell).
    """
    rate = np.ascontiguousarray(p_init, dtype=np.float64)
    if round_margin:
        step = problem.round_step_kw
        step_on = np.where(rate < 0.0, step[:, None], 0.0)
    else:
        step_on = np.zeros_like(rate)
    cap = problem.cap.copy()
    ph = PhasorState(problem)
    _residual_kernel(
        rate,
        step_on,
        problem.coef,
        problem.path,
        problem.ll_line,
        ph.pidx,
        problem.acoef,
        cap,
        ph.plim,
        ph.pz,
    )
    np.maximum(cap - 1e-9, 0.0, out=cap)
    np.maximum(ph.plim - 1e-9, 0.0, out=ph.plim)
    return cap, ph


def _sub_slots(problem: ProblemArrays) -> tuple[np.ndarray, np.ndarray]:
    """Sub-slots ranked by effective price, then time, then surplus before grid."""
    T = problem.n_slots
    t_all = np.arange(T, dtype=np.int64)
    has_surplus = problem.pv_surplus_kw > _TOL
    t_sur = t_all[has_surplus]
    sub_t = np.concatenate([t_sur, t_all])
    sub_kind = np.concatenate([np.zeros(len(t_sur), np.int64), np.ones(T, np.int64)])
    price = np.concatenate(
        [problem.price_export_per_kwh[has_surplus], problem.price_import_per_kwh]
    )
    idx = np.lexsort((sub_kind, sub_t, price))
    return np.ascontiguousarray(sub_t[idx]), np.ascontiguousarray(sub_kind[idx])


def session_orders(problem: ProblemArrays) -> dict[str, np.ndarray]:
    """Earliest-deadline-first and least-laxity-first orders (higher priority first)."""
    present = problem.present
    T = problem.n_slots
    dt_h = problem.grid.step_h
    any_present = present > 0.0
    # last slot with presence (deadline); sessions never present sort last
    last = np.where(any_present.any(axis=1), T - 1 - np.argmax(any_present[:, ::-1], axis=1), T)
    peak = problem.pmax_kw.max(axis=1)
    avail_h = present.sum(axis=1) * dt_h
    with np.errstate(divide="ignore", invalid="ignore"):
        need_h = np.where(peak > 0.0, problem.energy_kwh / peak, np.inf)
    laxity = avail_h - need_h
    ids = np.arange(problem.n_sessions)
    neg_prio = -problem.priority
    return {
        "edf": np.lexsort((ids, laxity, last, neg_prio)).astype(np.int64),
        "llf": np.lexsort((ids, last, laxity, neg_prio)).astype(np.int64),
    }


def delivered_kwh(problem: ProblemArrays, power_kw: np.ndarray) -> np.ndarray:
    """Energy per session in kWh for a rate matrix."""
    return (power_kw * problem.present).sum(axis=1) * problem.grid.step_h


def site_energy_cost(problem: ProblemArrays, power_kw: np.ndarray) -> float:
    """Import cost minus export revenue over the horizon for a rate matrix."""
    site_kw = problem.net_base_kw + (power_kw * problem.present).sum(axis=0)
    imp = np.maximum(site_kw, 0.0)
    exp = np.maximum(-site_kw, 0.0)
    dt_h = problem.grid.step_h
    return float(
        ((imp * problem.price_import_per_kwh) - exp * problem.price_export_per_kwh).sum() * dt_h
    )


def solve_greedy(problem: ProblemArrays) -> tuple[np.ndarray, dict]:
    """Plan with the greedy heuristic.

    Parameters
    ----------
    problem : ProblemArrays

    Returns
    -------
    power_kw : numpy.ndarray
        (S, T) rate in kW.
    info : dict
        ``ordering`` kept, and the weighted unmet energy and cost of each ordering tried.
    """
    sub_t, sub_kind = _sub_slots(problem)
    T = problem.n_slots
    S = problem.n_sessions
    info: dict = {"orderings": {}}
    ph = PhasorState(problem)
    orders = session_orders(problem)
    passes = [
        ("edf", orders["edf"], sub_t, sub_kind),
        ("llf", orders["llf"], sub_t, sub_kind),
        # earliest deadline, earliest slots first: the classic order for delivering the
        # most energy; its cost is then lowered by the improvement pass
        ("edf_asap", orders["edf"], np.arange(T, dtype=np.int64), np.ones(T, dtype=np.int64)),
    ]
    # unmet energy no plan can avoid: each EV alone at its own limits, no network
    own_max = (problem.pmax_kw * problem.present).sum(axis=1) * problem.grid.step_h
    floor_unmet = float((np.maximum(problem.energy_kwh - own_max, 0.0) * problem.priority).sum())
    rows, n_rows = _session_rows(problem.coef)
    window = _windows(problem.present)
    # nodes that can bind in each slot (every session at its maximum everywhere at once);
    # the fill and the improvement pass neither check nor book the others
    active = _active_nodes(
        problem.pmax_kw,
        problem.coef,
        rows,
        n_rows,
        problem.path,
        problem.cap,
        problem.phasor_line,
        ph.pidx,
        ph.plim,
        ph.pz,
        problem.acoef,
    )
    # work buffers, allocated once: the pass running and the best pass so far
    cur = (np.empty((S, T)), np.empty_like(problem.cap), np.empty_like(ph.pz))
    spare = (np.empty((S, T)), np.empty_like(problem.cap), np.empty_like(ph.pz))
    surplus = np.empty_like(problem.pv_surplus_kw)
    best = None
    for name, order, st, sk in passes:
        p, cap, pz = cur
        p.fill(0.0)
        np.copyto(cap, problem.cap)
        np.copyto(pz, ph.pz)
        np.copyto(surplus, problem.pv_surplus_kw)
        _fill(
            order,
            st,
            sk,
            problem.present,
            problem.pmax_kw,
            problem.pmin_kw,
            problem.energy_kwh,
            problem.coef,
            rows,
            n_rows,
            problem.path,
            cap,
            surplus,
            problem.grid.step_h,
            p,
            problem.phasor_line,
            ph.pidx,
            ph.plim,
            pz,
            problem.acoef,
            active,
            window,
        )
        unmet, cost = _quality(problem, p)
        info["orderings"][name] = {"weighted_unmet_kwh": unmet, "cost": cost}
        if best is None or (round(unmet, 6), cost) < (round(best[1], 6), best[2]):
            if best is not None:
                spare = best[3]
            best = (name, unmet, cost, cur, order)
            cur = spare
        if unmet <= floor_unmet + 1e-6:
            break  # no ordering can deliver more: keep this price-ordered pass
    assert best is not None
    name, _, _, (p, cap, pz), order = best
    # local improvement of the plan kept: move energy to cheaper slots with room (the
    # fill left exactly that capacity and those phasors on the active nodes)
    price = effective_price(problem, p)
    slots = np.lexsort((np.arange(T), price)).astype(np.int64)
    usage = (p * problem.present).sum(axis=0)
    _improve(
        order,
        slots,
        problem.price_import_per_kwh,
        np.minimum(problem.price_export_per_kwh, problem.price_import_per_kwh),
        problem.pv_surplus_kw,
        usage,
        problem.present,
        problem.pmax_kw,
        problem.pmin_kw,
        problem.coef,
        rows,
        n_rows,
        problem.path,
        cap,
        problem.phasor_line,
        ph.pidx,
        ph.plim,
        pz,
        problem.acoef,
        p,
        active,
    )
    info["ordering"] = name
    info["weighted_unmet_kwh"], info["cost"] = _quality(problem, p)
    info["floor_unmet_kwh"] = floor_unmet
    return p, info


def _quality(problem: ProblemArrays, p: np.ndarray) -> tuple[float, float]:
    unmet = np.maximum(problem.energy_kwh - delivered_kwh(problem, p), 0.0)
    return float((unmet * problem.priority).sum()), site_energy_cost(problem, p)


def effective_price(problem: ProblemArrays, rate_kw: np.ndarray) -> np.ndarray:
    """Price per kWh of more charging in each slot: export price where PV surplus is left."""
    left = problem.pv_surplus_kw - (rate_kw * problem.present).sum(axis=0)
    return np.where(
        left > _TOL,
        np.minimum(problem.price_export_per_kwh, problem.price_import_per_kwh),
        problem.price_import_per_kwh,
    )


def fill_from(problem: ProblemArrays, p_init: np.ndarray) -> np.ndarray:
    """Complete a plan greedily: add charging energy where capacity is left.

    Used after an LP relaxation was repaired for the min-current rule (cells below the
    minimum set to 0): the energy they carried is placed again, cheapest slots first,
    under the capacity ``p_init`` leaves, keeping the min-current rule. Discharging
    cells (negative rates) are left as they are, and room is kept on every row for
    rounding their magnitude down to the 0.1 A grid later.

    Parameters
    ----------
    problem : ProblemArrays
    p_init : numpy.ndarray
        (S, T) rates that keep every limit and the min-current rule.

    Returns
    -------
    numpy.ndarray
        (S, T) rates, ``>= p_init`` everywhere.
    """
    p_init = np.ascontiguousarray(p_init, dtype=np.float64)
    cap, ph = residual(problem, p_init, round_margin=True)
    e = p_init * problem.present * problem.grid.step_h
    battery = np.where(e < 0.0, e / problem.efficiency[:, None], e).sum(axis=1)
    left = np.maximum(problem.energy_kwh - battery, 0.0)
    sub_t, sub_kind = _sub_slots(problem)
    used = (p_init * problem.present).sum(axis=0)
    surplus = np.maximum(problem.pv_surplus_kw - np.maximum(used, 0.0), 0.0)
    pmax = np.where(p_init < 0.0, p_init, problem.pmax_kw)  # never charge a discharging cell
    order = session_orders(problem)["llf"]
    rows, n_rows = _session_rows(problem.coef)
    # what each session can still add bounds the load the fill can put on a node
    active = _active_nodes(
        pmax - p_init,
        problem.coef,
        rows,
        n_rows,
        problem.path,
        cap,
        problem.phasor_line,
        ph.pidx,
        ph.plim,
        ph.pz,
        problem.acoef,
    )
    p = p_init.copy()
    _fill(
        order,
        sub_t,
        sub_kind,
        problem.present,
        pmax,
        problem.pmin_kw,
        left,
        problem.coef,
        rows,
        n_rows,
        problem.path,
        cap,
        surplus,
        problem.grid.step_h,
        p,
        problem.phasor_line,
        ph.pidx,
        ph.plim,
        ph.pz,
        problem.acoef,
        active,
        _windows(problem.present),
    )
    return p
