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

On problems of at most ``ORDERINGS_MAX_CELLS`` session-slot cells the planner runs
four orderings: earliest deadline first and least laxity first, each filling the
cheapest slots first and each filling the earliest slots first (the classic order for
delivering the most energy on congested sites). It improves the cost of each plan
locally: energy moves from a session's most expensive slot to its cheapest slot with
room, keeping the min-current rule; that sweep over the sessions is repeated (up to
``IMPROVE_SWEEPS`` times, until one moves nothing) on problems of at most
``IMPROVE_SWEEPS_MAX_CELLS`` cells. It keeps the plan with less priority-weighted
unmet energy, then the cheaper one. (Improving every plan before comparing them cut
greedy's cost gap to the exact MILP on seven real Caltech days from 2.29 % to 1.95 %
mean; least laxity filling the earliest slots is kept on 4 of the 7.)
Above ``ORDERINGS_MAX_CELLS`` cells, only earliest deadline first runs: the
price-ordered pass is stopped as soon as it falls short of what the EVs could take
alone, and then the earliest-slots pass runs; only the plan kept is improved, with one
sweep above ``IMPROVE_SWEEPS_MAX_CELLS`` cells.
Everything is deterministic: the same input gives the same output bit for bit.

Layout: each session's checks (the node rows it loads, and its phasor nodes) are
flat arrays laid out in the order the passes take the sessions; nodes and slots that
cannot bind are left out (:func:`_active_ranges`, :func:`_node_checks`). The plan is
held only over each session's presence window, windows laid end to end. Slots where
the root was found to leave no room for a kind of wiring are remembered until the
root's load there changes, so later sessions wired alike skip them (:func:`_root_memo`).

Cold start: the kernels are compiled with ``cache=True``. The first call in a fresh
environment compiles them (about 25 s on a 2-core machine); later processes load the
cache (about 0.3 s). See ``benchmarks/README.md`` for measured figures.
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


@njit(cache=True, inline="always")
def _u(i):
    """Return an index (always >= 0) as unsigned, for the hot loops' subscripts.

    numba handles a negative signed index as counting from the end, a compare and
    select on every subscript; with an unsigned one it skips that (numba PR #929). Those
    selects cost 12 % of a congested N = 1 000 solve (interleaved A/B). Every index
    given here is >= 0 (a negative one would read far out of the array: numba checks no
    bounds); loop variables of ``range(n)``, known >= 0, are left as they are.
    """
    return np.uint64(i)


#: Most improvement sweeps (each a pass over every session; stops early when one moves
#: nothing) on problems of at most IMPROVE_SWEEPS_MAX_CELLS session-slot cells (S x T).
#: On 7 real Caltech days (about 43 EVs x 400 slots) 4 sweeps cut the mean cost gap to
#: the LP from 2.03 % to 1.63 %; on 1 000 x 96 they made a congested solve 1.5x slower.
IMPROVE_SWEEPS = 4
IMPROVE_SWEEPS_MAX_CELLS = 50_000

#: Problems of at most this many session-slot cells (S x T) try all four orderings,
#: improve each plan and keep the best. Larger ones run the price-ordered EDF pass, stop
#: it as soon as its sessions fall short of the energy they could take alone (by more
#: than ``_STOP_EXCESS_KWH``, priority-weighted: a later session never changes an
#: earlier one's energy, so the pass could not reach that floor any more), and then run
#: only EDF filling the earliest slots, which delivers the most on a congested site (on
#: the 1 000 x 96 congested benchmark the three orderings of then took 3 x 2 ms).
ORDERINGS_MAX_CELLS = 50_000
_STOP_EXCESS_KWH = 1e-5


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
def _windows(present, p_init):
    """Each session's window: first and last slot present or with a rate in ``p_init``.

    Returns ``window`` (S, 2) (``T, -1`` when empty), ``b0`` (S,) and the number of
    cells C: the cells of the windows laid end to end, session after session, put cell
    (s, t) at ``b0[s] + t`` of a ragged (C,) array (see :func:`_to_ragged`).
    """
    S, T = present.shape
    window = np.empty((S, 2), dtype=np.int64)
    b0 = np.empty(S, dtype=np.int64)
    base = 0
    for s in range(S):
        lo = T
        hi = -1
        for t in range(T):
            if present[s, t] > 0.0 or p_init[s, t] != 0.0:
                if t < lo:
                    lo = t
                hi = t
        window[s, 0] = lo
        window[s, 1] = hi
        b0[s] = base - lo
        if hi >= lo:
            base += hi - lo + 1
    return window, b0, base


@njit(cache=True)
def _full_windows(S, T):
    """Windows covering every slot: the ragged layout is the (S, T) matrix, flattened."""
    window = np.empty((S, 2), dtype=np.int64)
    window[:, 0] = 0
    window[:, 1] = T - 1
    return window, np.arange(S) * T, S * T


@njit(cache=True)
def _to_ragged(a, window, b0, C):
    """Gather the window cells of an (S, T) matrix into a ragged (C,) array."""
    out = np.empty(C)
    for s in range(a.shape[0]):
        for t in range(window[s, 0], window[s, 1] + 1):
            out[_u(b0[s] + t)] = a[s, _u(t)]
    return out


@njit(cache=True)
def _from_ragged(c, window, b0, T):
    """Scatter ragged window cells into an (S, T) matrix (0 outside the windows)."""
    S = window.shape[0]
    out = np.empty((S, T))
    for s in range(S):
        lo = window[s, 0]
        hi = window[s, 1]
        if hi < lo:
            lo = T
            hi = T - 1
        for t in range(lo):
            out[s, t] = 0.0
        for t in range(lo, hi + 1):
            out[s, t] = c[_u(b0[s] + t)]
        for t in range(hi + 1, T):
            out[s, t] = 0.0
    return out


_BIG = 1e300  # "always binds" weight: finite, so that 0 x _BIG stays 0
_SLACK = 1e-7  # relative room a node keeps when it is marked as never binding


@njit(cache=True)
def _active_ranges(
    extra, window, b0, coef, rows, n_rows, path, cap_min, phasor_line, pidx, plim, pz, acoef
):
    """Slots in which each node must be checked and booked, and a compact capacity layout.

    ``extra`` (ragged, see :func:`_windows`; nothing outside the windows) bounds what
    each session may still add in each slot. A node can be left
    out of slot t when the sessions below it, all at their ``extra`` at once, keep every
    limited row at least ``_SLACK`` (relative) below its capacity: no check there can
    ever be the binding one, and its bookkeeping is never read. The bound is taken per
    node against the lowest capacity over the horizon (linear rows), and against the
    lowest phasor limit minus the largest phasor already there (phasor lines, with
    ``|sum z| <= sum |z|``), so it is conservative. ``cap_min`` (N, 4) is the capacity
    (N, 4, T) at its lowest over the slots (:func:`_cap_min`).

    Returns ``lo, hi, off, total``: node n is checked in slots ``lo[n]..hi[n]`` (the
    hull of the slots where it may bind; empty when ``lo > hi``), and its capacity in
    slot t sits at row ``off[n] + t - lo[n]`` of a ``(total, 4)`` array (see
    :func:`_gather_cap`).
    """
    S = window.shape[0]
    N = cap_min.shape[0]
    T = plim.shape[2]
    D = path.shape[1]
    dlin = cap_min  # per node and row: lowest capacity over the horizon (NaN: binds)
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
                z = pz[_u(k), 0, line, t]
                z0 = abs(z) if z != 0.0 else 0.0  # most nodes carry no base load
                z = pz[_u(k), pz.shape[1] - 1, line, t]
                z1 = abs(z) if z != 0.0 else 0.0
                c = plim[_u(k), line, t] - (z0 if z0 > z1 else z1)
                if not (c >= m):
                    m = c
            dph[n, line] = m
    # weight of each session on each node of its path, and a first time-free bound
    w = np.zeros((S, D))
    tot = np.zeros(N)
    amag = np.empty(3)
    for s in range(S):
        for line in range(3):
            a = acoef[s, line]
            # |a| for a bound with slack (_SLACK): a plain square root (1 ulp at most
            # from hypot, which abs() calls and which took 1 % of a solve)
            amag[line] = np.sqrt(a.real * a.real + a.imag * a.imag)
        emax = 0.0
        for t in range(window[s, 0], window[s, 1] + 1):
            e = extra[_u(b0[s] + t)]
            if e > emax:
                emax = e
        for d in range(D):
            n = path[s, d]
            if n < 0:
                break
            ws = 0.0
            for kk in range(n_rows[s]):
                r = rows[s, kk]
                if r < 3 and phasor_line[n, _u(r)]:
                    continue
                c = dlin[n, _u(r)]
                x = coef[s, _u(r)] / c if c > 0.0 else _BIG
                if not (x <= _BIG):
                    x = _BIG
                if x > ws:
                    ws = x
            for line in range(3):
                if not phasor_line[n, line]:
                    continue
                a = amag[line]
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
    # per slot, only for the nodes the time-free bound does not settle
    thr = 1.0 - _SLACK
    row_of = np.full(N, -1, dtype=np.int64)
    m = 0
    for n in range(N):
        if tot[n] > thr:
            row_of[n] = m
            m += 1
    load = np.zeros((m, T))
    for s in range(S):
        for d in range(D):
            n = path[s, d]
            if n < 0:
                break
            i = row_of[n]
            ws = w[s, d]
            if i < 0 or ws == 0.0:
                continue
            lo = window[s, 0]
            L = window[s, 1] + 1 - lo
            if L <= 0:
                continue
            # views, and a loop index from 0: no negative-index handling, so the loop
            # vectorises (a third faster). Adding ws * 0 is the same as skipping.
            row = load[i, lo:]
            ext = extra[b0[s] + lo :]
            for j in range(L):
                e = ext[j]
                row[j] += ws * (e if e > 0.0 else 0.0)
    lo_n = np.full(N, T, dtype=np.int64)
    hi_n = np.full(N, -1, dtype=np.int64)
    off = np.zeros(N, dtype=np.int64)
    total = 0
    for n in range(N):
        i = row_of[n]
        if i >= 0:
            # the first and the last slot over thr: 8 slots at a time while none is (most
            # rows have none), as in _session_stats
            t0 = 0
            while t0 + 8 <= T:
                hit = False
                for j in range(8):
                    hit |= not (load[_u(i), _u(t0 + j)] <= thr)
                if hit:
                    break
                t0 += 8
            for t in range(t0, T):
                if not (load[_u(i), _u(t)] <= thr):
                    lo_n[n] = t
                    break
            for t in range(T - 1, lo_n[n] - 1, -1):
                if not (load[_u(i), _u(t)] <= thr):
                    hi_n[n] = t
                    break
        off[n] = total
        if hi_n[n] >= lo_n[n]:
            total += hi_n[n] - lo_n[n] + 1
    return lo_n, hi_n, off, total


@njit(cache=True)
def _gather_cap_into(out, cap, lo, hi, off):
    """Write the capacity of the checked (node, slot) pairs to ``out`` (total, 4)."""
    for n in range(cap.shape[0]):
        o = off[n] - lo[n]
        for t in range(lo[n], hi[n] + 1):  # out row by row: 3-7x faster than r outermost
            out[_u(o + t), 0] = cap[n, 0, _u(t)]
            out[_u(o + t), 1] = cap[n, 1, _u(t)]
            out[_u(o + t), 2] = cap[n, 2, _u(t)]
            out[_u(o + t), 3] = cap[n, 3, _u(t)]


@njit(cache=True)
def _gather_cap(cap, lo, hi, off, total):
    """Capacity of the checked (node, slot) pairs: ``(total, 4)``, see :func:`_active_ranges`."""
    out = np.empty((total, 4))
    _gather_cap_into(out, cap, lo, hi, off)
    return out


@njit(cache=True)
def _full_ranges(N, T):
    """Ranges that check every node in every slot (row ``n * T + t``)."""
    lo = np.zeros(N, dtype=np.int64)
    hi = np.full(N, T - 1, dtype=np.int64)
    off = np.arange(N) * T
    return lo, hi, off, N * T


@njit(cache=True)
def _node_checks(
    coef, rows, n_rows, path, phasor_line, pidx, acoef, nlo, nhi, noff, open_row, seq, book_all=True
):
    """Each session's node rows, laid out flat for the hot loops (``chk``).

    Session s has entries ``cs[s]..ce[s]``, for the nodes of its path that are
    checked somewhere (``nlo <= nhi``), root first, each valid in the node's slots
    ``clo..chi``; the sessions' entries are laid out in the order ``seq`` (the order
    the passes take them in, so that they read memory front to back):

    * ``cs[s]..cm[s]``: the rows it loads (coefficient ``ccoef > 0``) that are checked
      linearly; the capacity of slot t sits at ``cbase + 4 t`` of the flattened
      compact capacity layout (:func:`_gather_cap`);
    * ``cm[s]..cp[s]``: the current rows of phasor lines, booked but not checked
      (their limit is checked on the exact phasor); only with ``book_all``, for callers
      that return the capacity left (no pass reads these rows);
    * ``cp[s]..ce[s]``: the phasor nodes: row ``cbase`` of the phasor arrays
      (:class:`PhasorState`), and in ``pa`` (m, 3) the session's line-current phasor
      per kW on each phasor line of the node (0 on the others).

    ``cnr`` (m, 2) gives each entry's node and row (-1 for phasor entries).

    Rows whose capacity is +inf in every slot (``open_row``, (N, 4) bool) are left
    out: they can neither bind nor change. ``srange`` (S, 2) is the hull of the slots
    in which some node of the path is checked (``lo > hi`` when none).
    """
    S, D = path.shape
    cs = np.empty(S, dtype=np.int64)
    ce = np.empty(S, dtype=np.int64)
    m = 0
    for j in range(S):
        s = seq[j]
        cs[s] = m
        for d in range(D):
            n = path[s, d]
            if n < 0:
                break
            if nlo[_u(n)] <= nhi[_u(n)]:
                for k in range(n_rows[s]):
                    r = rows[s, k]
                    if not open_row[_u(n), _u(r)] and (
                        book_all or not (r < 3 and phasor_line[_u(n), _u(r)])
                    ):
                        m += 1
                if pidx[_u(n)] >= 0:
                    m += 1
        ce[s] = m
    cm = np.empty(S, dtype=np.int64)
    cp = np.empty(S, dtype=np.int64)
    clo = np.empty(m, dtype=np.int64)
    chi = np.empty(m, dtype=np.int64)
    cbase = np.empty(m, dtype=np.int64)
    ccoef = np.empty(m)
    pa = np.empty((m, 3), dtype=np.complex128)  # read (and written) for phasor entries only
    cnr = np.empty((m, 2), dtype=np.int64)
    srange = np.empty((S, 2), dtype=np.int64)
    for s in range(S):
        i = cs[s]
        lo = 1 << 30
        hi = -1
        for part in range(3):
            if part == 1:
                cm[s] = i
                if not book_all:
                    continue
            elif part == 2:
                cp[s] = i
            for d in range(D - 1, -1, -1):
                n = path[s, d]
                if n < 0 or nlo[_u(n)] > nhi[_u(n)]:
                    continue
                lo = min(lo, nlo[_u(n)])
                hi = max(hi, nhi[_u(n)])
                if part == 2:
                    if pidx[_u(n)] >= 0:
                        clo[_u(i)] = nlo[_u(n)]
                        chi[_u(i)] = nhi[_u(n)]
                        cbase[_u(i)] = pidx[_u(n)]
                        ccoef[_u(i)] = 0.0
                        cnr[_u(i), 0] = n
                        cnr[_u(i), 1] = -1
                        for line in range(3):
                            pa[_u(i), line] = acoef[s, line] if phasor_line[_u(n), line] else 0.0
                        i += 1
                    continue
                for k in range(n_rows[s]):
                    r = rows[s, k]
                    if open_row[_u(n), _u(r)] or (r < 3 and phasor_line[_u(n), _u(r)]) != (
                        part == 1
                    ):
                        continue
                    clo[_u(i)] = nlo[_u(n)]
                    chi[_u(i)] = nhi[_u(n)]
                    cbase[_u(i)] = (noff[_u(n)] - nlo[_u(n)]) * 4 + r
                    ccoef[_u(i)] = coef[s, _u(r)]
                    cnr[_u(i), 0] = n
                    cnr[_u(i), 1] = r
                    i += 1
        srange[s, 0] = lo
        srange[s, 1] = hi
    return cs, ce, cm, cp, clo, chi, cbase, ccoef, pa, srange, cnr


# How much session s can add in slot t without overloading a node is computed inline in
# the kernels (_fill, _improve), starting from h, the session's own room: every row of
# its entries (see _node_checks) against its residual capacity, then, if a phasor node
# is on the path, on every phasor line of those nodes (both base-load variants, or the
# one where they coincide: :func:`_phasor_state`), the largest x with |z + x a| <= limit,
# where z is the line's phasor and a the session's per kW (0 when a line is already
# above its limit; :func:`_line_room`). As soon as
# that leaves no room, the cell is skipped, and noted in the root memo when the root
# (the first phasor entry) alone leaves no room. Booking (:func:`_apply`) is written out
# in the hot loops too. (Passing the arrays to an inlined helper makes numba count
# references on every call: atomic increments and decrements that cost a third of the
# fill's time at first, and 7 % of a congested solve for the phasor bound and booking,
# measured with perf.) The current rows of phasor lines are not checked
# (booked only by the public kernels, which return the capacity): they do not bound the
# phasor once a row was clipped at 0 (base load or an LP plan above the
# sum-of-magnitudes bound) and capacity is then given back.


@njit(cache=True, inline="always")
def _apply(s, t, x, cs, ce, cp, clo, chi, cbase, ccoef, pa, cap, pz):
    """Book rate x (kW, may be negative to release) of session s in slot t on its path."""
    for i in range(cs[s], cp[s]):
        if clo[i] <= t and t <= chi[i]:
            cap[cbase[i] + 4 * t] -= ccoef[i] * x
    for i in range(cp[s], ce[s]):
        if clo[i] <= t and t <= chi[i]:
            k = cbase[i]
            for line in range(3):
                a = pa[i, line]
                if a != 0.0:
                    for v in range(pz.shape[1]):
                        pz[k, v, line, t] += x * a


# The root memo: most cells the passes find without room are blocked at the root, on
# its phasor (the root is at its limit in over half of the slots of a congested site,
# and every session's path ends there). The root's bound for a session depends only on
# the root's phasors and limits in the slot and on the session's phasor per kW there,
# which many sessions share (same line(s) and kind of wiring: their "class"). When
# that bound is found to leave no room (<= _TOL), the slot's booking count is noted
# for the class; until something is booked on the root in that slot again, cells of
# that class skip the whole headroom computation. The skip is exact: such a cell is
# skipped by the full computation too (its headroom is at most the root's bound).
#
# Where adding load can only raise the root's line currents, only taking load back
# (capacity given back, a move's source slot) ends the notes of a slot ("monotone"
# root). That holds when every two phasors that can add up on a root line, those per kW
# of the sessions (their classes) and the base load's, are at most 90 degrees apart
# (Re(conj(u) w) >= 0): for a state z and a class phasor a, every z + y a is then a sum
# of such phasors, and adding w to it gives |z + w + y a|^2 = |z + y a|^2 +
# 2 Re(conj(z + y a) w) + |w|^2 >= |z + y a|^2, so a y the root did not allow stays not
# allowed. Charging loads are within 30 degrees of their line's voltage (wired
# line-to-neutral, three-phase or line-to-line), so this fails only where the base load
# turns negative (export). The passes book load as x > 0 (a give-back or a move's
# source is negative and ends the slot's notes). On the congested benchmark (N = 1 000)
# the full computations that end at the root went 657 -> 232 in the fill: 2.5 % of a
# solve.


@njit(cache=True)
def _root_memo(chk, root, pidx, T, unit, base_kw, base_low_kw, max_classes=32):
    """Fresh root memo ``(rcls, rstamp, rver, mono)`` for :func:`_fill`/:func:`_improve`.

    ``rcls`` (S,): each session's class (sessions whose first phasor entry is the root,
    with the same phasor per kW on each of its lines), -1 for none (no root phasor
    entry, or more than ``max_classes`` classes); ``rstamp`` (classes, T): the booking
    count of the slot when the root was found to leave no room for the class (-1: not
    known); ``rver`` (T,): bookings so far on the root per slot (only those that take
    load back when ``mono``); ``mono``: the root is monotone (see above), with ``unit``
    the line-voltage phasors and ``base_kw``, ``base_low_kw`` the root's base-load
    variants (the phasors of :func:`_phasor_state`).
    """
    cs, ce, cm, cp, clo, chi, cbase, ccoef, pa, srange, cnr = chk
    S = cs.shape[0]
    rcls = np.full(S, -1, dtype=np.int64)
    reps = np.empty((max_classes, 3), dtype=np.complex128)
    n_cls = 0
    if pidx[_u(root)] >= 0:
        for s in range(S):
            i = cp[s]
            if i >= ce[s] or cnr[_u(i), 0] != root:
                continue
            if pa[_u(i), 0] == 0.0 and pa[_u(i), 1] == 0.0 and pa[_u(i), 2] == 0.0:
                continue
            c = -1
            for j in range(n_cls):
                if (
                    reps[j, 0] == pa[_u(i), 0]
                    and reps[j, 1] == pa[_u(i), 1]
                    and reps[j, 2] == pa[_u(i), 2]
                ):
                    c = j
                    break
            if c < 0:
                if n_cls == max_classes:
                    rcls[:] = -1
                    n_cls = 0
                    break
                c = n_cls
                for line in range(3):
                    reps[_u(c), line] = pa[_u(i), line]
                n_cls += 1
            rcls[s] = c
    # monotone: every two phasors on a root line at most 90 degrees apart (see above);
    # the base load's are unit[line] times a real of either sign
    mono = n_cls > 0
    pos = False
    neg = False
    for t in range(T):
        for x in (base_kw[t], base_low_kw[t]):
            pos |= x > 0.0
            neg |= x < 0.0
    dirs = np.empty(n_cls + 2, dtype=np.complex128)
    for line in range(3):
        m = 0
        for c in range(n_cls):
            if reps[_u(c), line] != 0.0:
                dirs[_u(m)] = reps[_u(c), line]
                m += 1
        if pos:
            dirs[_u(m)] = unit[line]
            m += 1
        if neg:
            dirs[_u(m)] = -unit[line]
            m += 1
        for i in range(m):
            for j in range(i):
                u = dirs[_u(i)]
                w = dirs[_u(j)]
                if not (u.real * w.real + u.imag * w.imag >= 0.0):
                    mono = False
    return (
        rcls,
        np.full((max(n_cls, 1), T), -1, dtype=np.int64),
        np.zeros(T, dtype=np.int64),
        mono,
    )


@njit(cache=True)
def _no_memo(S, T):
    """Return a root memo that never skips (for callers without the passes' buffers)."""
    return (
        np.full(S, -1, dtype=np.int64),
        np.full((1, T), -1, dtype=np.int64),
        np.zeros(T, dtype=np.int64),
        False,
    )


# A row or line that leaves clearly more than h (by a relative 1e-12, far above the
# rounding of the exact bound) cannot lower h: its exact bound (a division; for a phasor
# line a square root and a division) is skipped then, and h is bit for bit what the
# exact bound gives. Most rows and lines do not bind; those latencies were a quarter of
# the fill's time (perf).
_MAYBIND = 1.0 + 1e-12
_FITS = 1.0 - 1e-12


@njit(cache=True, inline="always")
def _line_room(z, a, aa, zz, ll, h):
    """``h`` lowered to the largest x with ``|z + x a|^2 <= ll`` (``zz = |z|^2 <= ll``)."""
    wr = z.real + h * a.real
    wi = z.imag + h * a.imag
    if wr * wr + wi * wi <= ll * _FITS:
        return h  # |z + h a| is within the limit: the bound is above h
    b = z.real * a.real + z.imag * a.imag  # Re(z conj(a))
    q = (-b + np.sqrt(max(b * b - aa * (zz - ll), 0.0))) / aa
    return q if q < h else h


@njit(cache=True)
def _cap_min(cap):
    """Lowest capacity of each row over the slots: ``cap.min(axis=2)`` of (N, 4, T).

    A third faster than numpy's reduction over the short last axis (it vectorises; with
    a select and a boolean flag a quarter faster again than with ``min()`` and an integer
    flag). A row with a NaN gives NaN, as in numpy.
    """
    N, R, T = cap.shape
    out = np.empty((N, R))
    for n in range(N):
        for r in range(R):
            m = np.inf
            nan = False  # the select skips a NaN: flag it apart (without a branch)
            for t in range(T):
                x = cap[n, r, t]
                m = x if x < m else m
                nan |= x != x
            out[n, r] = m if not nan else np.nan
    return out


@njit(cache=True, inline="always")
def _window_slots(loc, sub_t, in_time_order, t_first, t_last):
    """Positions k of ``sub_t`` whose slot lies in ``t_first..t_last``, in order.

    Written to ``loc``; returns their number. ``in_time_order``: ``sub_t`` is
    ``0..T-1`` (then the positions are the slots themselves).
    """
    if in_time_order:
        m = 0
        for t in range(t_first, t_last + 1):
            loc[_u(m)] = t
            m += 1
        return m
    m = 0
    for k in range(sub_t.shape[0]):
        t = sub_t[k]
        loc[_u(m)] = k
        m += np.int64((t >= t_first) & (t <= t_last))  # branch-free compaction
    return m


@njit(cache=True)
def _fill(
    order,
    sub_t,
    sub_kind,
    in_time_order,
    present,
    pmax,
    pmin,
    energy,
    chk,
    cap,
    surplus,
    dt_h,
    p,
    p_keep,
    plim,
    pz,
    window,
    b0,
    floor_s,
    priority,
    stop_excess,
    blk,
):
    """Run one pass of :func:`greedy_fill` in place on ``p``, ``cap``, ``surplus``, ``pz``.

    ``present``, ``pmax``, ``p`` and ``p_keep`` are ragged (the cells of each session's
    ``window``, at ``b0[s] + t``, see :func:`_windows`; ``p`` is 0 outside the
    windows). ``p_keep`` holds the rates the pass must keep (``p_init`` of
    :func:`greedy_fill`): giving energy back for the min-current rule never lowers a
    cell below it (a lower charge would raise the site's export); empty for none.
    ``chk`` comes from :func:`_node_checks` with the node ranges of
    :func:`_active_ranges` (with ``extra`` at least what each session can add), and
    ``cap`` is in their compact layout (:func:`_gather_cap`).

    The pass stops early once the sessions filled leave more than ``stop_excess``
    weighted kWh unmet beyond ``floor_s`` (the weighted unmet energy each could not
    avoid even alone; ``priority`` weighs): a later session cannot change an earlier
    one's energy, so the pass can then no longer reach the floor. Returns the number of
    sessions of ``order`` it filled then (:func:`_undo_pass` takes them back), or -1
    when it ran to the end.
    """
    S = order.shape[0]
    K = sub_t.shape[0]
    loc = np.empty(K, dtype=np.int64)
    cs, ce, cm, cp, clo, chi, cbase, ccoef, pa, srange, cnr = chk
    rcls, rstamp, rver, mono = blk
    cap = cap.reshape(-1)  # a view: (total, 4) C-contiguous
    two = pz.shape[1] == 2  # else one phasor variant (see _phasor_state)
    keep = p_keep.shape[0] > 0
    excess_total = 0.0
    for oi in range(S):
        s = order[oi]
        rem = energy[_u(s)]
        if rem <= _TOL:
            continue
        t_first = window[_u(s), 0]
        t_last = window[_u(s), 1]
        i0 = b0[_u(s)]
        c_lo = srange[_u(s), 0]
        c_hi = srange[_u(s), 1]
        m = _window_slots(loc, sub_t, in_time_order, t_first, t_last)
        for kk in range(m):
            if rem <= _TOL:
                break
            k = loc[kk]
            t = sub_t[_u(k)]
            f = present[_u(i0 + t)]
            if f <= 0.0:
                continue
            room = pmax[_u(i0 + t)] - p[_u(i0 + t)]
            if room <= _TOL:
                continue
            kind = sub_kind[_u(k)]
            if kind == 0 and surplus[_u(t)] <= _TOL:
                continue
            h = room
            if c_lo <= t <= c_hi:
                c = rcls[_u(s)]
                if c >= 0 and rstamp[_u(c), _u(t)] == rver[_u(t)]:
                    continue  # the root has no room for this session's phasor (memo)
                for i in range(cs[_u(s)], cm[_u(s)]):
                    if clo[_u(i)] <= t and t <= chi[_u(i)]:
                        q = cap[_u(cbase[_u(i)] + 4 * t)]
                        if q < h * ccoef[_u(i)] * _MAYBIND:  # else the row leaves more than h
                            q /= ccoef[_u(i)]
                            if q < h:
                                h = q
                # phasor nodes: not needed where the rows already leave less than the
                # minimum the cell needs (it is skipped then: the bound only lowers h)
                if h > _TOL and h >= pmin[_u(s)] - p[_u(i0 + t)] - _TOL and cp[_u(s)] < ce[_u(s)]:
                    for i in range(cp[_u(s)], ce[_u(s)]):
                        if t < clo[_u(i)] or t > chi[_u(i)]:
                            continue
                        k = cbase[_u(i)]
                        for line in range(3):
                            a = pa[_u(i), line]
                            aa = a.real * a.real + a.imag * a.imag
                            if aa == 0.0:
                                continue
                            lim = plim[_u(k), line, _u(t)]
                            ll = lim * lim
                            z = pz[_u(k), 0, line, _u(t)]
                            zz = z.real * z.real + z.imag * z.imag
                            if zz > ll:
                                h = 0.0
                                continue
                            h = _line_room(z, a, aa, zz, ll, h)
                            if two:  # the low base-load variant, unless it is the same phasor
                                z1 = pz[_u(k), 1, line, _u(t)]
                                if z1 != z:
                                    zz = z1.real * z1.real + z1.imag * z1.imag
                                    if zz > ll:
                                        h = 0.0
                                        continue
                                    h = _line_room(z1, a, aa, zz, ll, h)
                        if h <= _TOL:
                            # h was above _TOL before: if this is the root (the first
                            # entry), its own bound leaves no room
                            if i == cp[_u(s)] and c >= 0:
                                rstamp[_u(c), _u(t)] = rver[_u(t)]
                            break
            if h <= _TOL:
                continue
            x = h
            if kind == 0 and x > surplus[_u(t)]:
                x = surplus[_u(t)]
            want = rem / (f * dt_h)
            if x > want:
                x = want
            if p[_u(i0 + t)] + x < pmin[_u(s)] - _TOL:
                need = pmin[_u(s)] - p[_u(i0 + t)]
                if kind == 0 or h < need or want >= need:
                    continue  # surplus part too small (grid part comes later) or no capacity
                # the last bit of energy is below the minimum rate: take the minimum here
                # and give the excess back from the most expensive slots of this session
                # (never below the minimum, nor below the rates the pass started from)
                excess = (need - want) * f * dt_h
                avail = 0.0
                for j in range(m - 1, -1, -1):
                    kj = loc[_u(j)]
                    if sub_kind[_u(kj)] == 0:
                        continue  # each slot once (its grid part)
                    tt = sub_t[_u(kj)]
                    low = max(pmin[_u(s)], p_keep[_u(i0 + tt)] if keep else 0.0)
                    if tt != t and p[_u(i0 + tt)] > low + _TOL:
                        avail += (p[_u(i0 + tt)] - low) * present[_u(i0 + tt)] * dt_h
                if avail < excess - _TOL:
                    continue
                for j in range(m - 1, -1, -1):
                    if excess <= _TOL:
                        break
                    kj = loc[_u(j)]
                    if sub_kind[_u(kj)] == 0:
                        continue
                    tt = sub_t[_u(kj)]
                    low = max(pmin[_u(s)], p_keep[_u(i0 + tt)] if keep else 0.0)
                    if tt == t or p[_u(i0 + tt)] <= low + _TOL:
                        continue
                    ft = present[_u(i0 + tt)] * dt_h
                    d = min(p[_u(i0 + tt)] - low, excess / ft)
                    p[_u(i0 + tt)] -= d
                    if c_lo <= tt <= c_hi:
                        _apply(s, tt, -d, cs, ce, cp, clo, chi, cbase, ccoef, pa, cap, pz)
                        rver[_u(tt)] += 1
                    excess -= d * ft
                    rem += d * ft
                x = need
            p[_u(i0 + t)] += x
            if c_lo <= t <= c_hi:
                for i in range(cs[_u(s)], cp[_u(s)]):
                    if clo[_u(i)] <= t and t <= chi[_u(i)]:
                        cap[_u(cbase[_u(i)] + 4 * t)] -= ccoef[_u(i)] * x
                for i in range(cp[_u(s)], ce[_u(s)]):
                    if clo[_u(i)] <= t and t <= chi[_u(i)]:
                        k = cbase[_u(i)]
                        for line in range(3):
                            a = pa[_u(i), line]
                            if a != 0.0:
                                pz[_u(k), 0, line, _u(t)] += x * a
                                if two:
                                    pz[_u(k), 1, line, _u(t)] += x * a
                if not mono:  # x > 0: on a monotone root the notes stay true
                    rver[_u(t)] += 1
            used = x if x < surplus[_u(t)] else surplus[_u(t)]
            surplus[_u(t)] -= used
            rem -= x * f * dt_h
        if rem > _TOL:
            excess_total += rem * priority[_u(s)] - floor_s[_u(s)]
            if excess_total > stop_excess:
                return oi + 1
    return -1


@njit(cache=True)
def _undo_pass(order, n_done, window, b0, p, cap, cap_src, chk, pz, pz_src):
    """Take back what :func:`_fill` did for the first ``n_done`` sessions of ``order``.

    Their cells of ``p`` go back to 0, and the capacity and phasors they booked to the
    values of ``cap_src`` (N, 4, T) and ``pz_src``: exactly the state the pass started
    from, without copying the rest. The pass must have started from ``p`` = 0: then the
    cells it booked are those it left above 0 (it books x > 0, and gives back only down
    to the minimum rate, > 0), and only their slots are restored (a cell of
    ``cap_src`` is mostly a read from outside the cache: 2.5x fewer of them).
    """
    cs, ce, cm, cp, clo, chi, cbase, ccoef, pa, srange, cnr = chk
    capf = cap.reshape(-1)
    for oi in range(n_done):
        s = order[oi]
        i0 = b0[_u(s)]
        for t in range(window[_u(s), 0], window[_u(s), 1] + 1):
            if p[_u(i0 + t)] == 0.0:
                continue
            p[_u(i0 + t)] = 0.0
            for i in range(cs[_u(s)], ce[_u(s)]):
                if t < clo[_u(i)] or t > chi[_u(i)]:
                    continue
                r = cnr[_u(i), 1]
                if r >= 0:
                    capf[_u(cbase[_u(i)] + 4 * t)] = cap_src[_u(cnr[_u(i), 0]), _u(r), _u(t)]
                else:
                    k = cbase[_u(i)]
                    for v in range(pz.shape[1]):
                        for line in range(3):
                            pz[_u(k), v, line, _u(t)] = pz_src[_u(k), v, line, _u(t)]


@njit(cache=True)
def _full_checks(cap, coef, path, phasor_line, pidx, acoef, order):
    """Compact capacity and session entries that check and book every node in every slot.

    For the public kernels (:func:`greedy_fill`, :func:`improve_cost`), which return the
    capacity left: row ``n * T + t`` of the compact capacity is node n in slot t.
    """
    N, _, T = cap.shape
    rows, n_rows = _session_rows(coef)
    nlo, nhi, noff, total = _full_ranges(N, T)
    chk = _node_checks(
        coef,
        rows,
        n_rows,
        path,
        phasor_line,
        pidx,
        acoef,
        nlo,
        nhi,
        noff,
        _cap_min(cap) == np.inf,
        order,
    )
    return _gather_cap(cap, nlo, nhi, noff, total), chk


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
    keep_init=False,
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
        Rates already allocated (not modified): ``cap0`` must be the capacity left by
        them, ``pz0`` include them, and ``energy`` be what each session still needs.
        The min-current rule may give energy back from them, down to the minimum,
        unless ``keep_init``.
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
    keep_init : bool, default False
        Never lower a rate of ``p_init``. Needed where EVs discharge: a lower charge
        then raises the site's export and the current a discharge puts on a node.
    """
    S, T = present.shape
    cap = cap0.copy()
    surplus = surplus0.copy()
    pz = pz0.copy()
    N = cap.shape[0]
    capc, chk = _full_checks(cap, coef, path, phasor_line, pidx, acoef, order)
    window, b0, C = _full_windows(S, T)
    p = _to_ragged(p_init, window, b0, C)
    _fill(
        order,
        sub_t,
        sub_kind,
        False,
        _to_ragged(present, window, b0, C),
        _to_ragged(pmax, window, b0, C),
        pmin,
        energy,
        chk,
        capc,
        surplus,
        dt_h,
        p,
        p.copy() if keep_init else np.zeros(C),
        plim,
        pz,
        window,
        b0,
        np.zeros(S),
        np.ones(S),
        np.inf,
        _no_memo(S, T),
    )
    for n in range(N):
        for t in range(T):
            for r in range(4):
                cap[n, r, t] = capc[n * T + t, r]
    return _from_ragged(p, window, b0, T), cap, pz


_DEBRUIJN = np.uint64(0x03F79D71B4CB0A89)
_DEBRUIJN_POS = np.array(
    [
        0, 1, 48, 2, 57, 49, 28, 3, 61, 58, 50, 42, 38, 29, 17, 4,
        62, 55, 59, 36, 53, 51, 43, 22, 45, 39, 33, 30, 24, 18, 12, 5,
        63, 47, 56, 27, 60, 41, 37, 16, 54, 35, 52, 21, 44, 32, 23, 11,
        46, 26, 40, 15, 34, 20, 31, 10, 25, 14, 19, 9, 13, 8, 7, 6,
    ],
    dtype=np.int64,
)  # fmt: skip


@njit(cache=True, inline="always")
def _lowest_bit(low):
    """Position of the single bit set in the uint64 ``low`` (de Bruijn multiplication)."""
    return _DEBRUIJN_POS[_u((low * _DEBRUIJN) >> np.uint64(58))]


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
    chk,
    cap,
    plim,
    pz,
    p,
    window,
    b0,
    blk,
):
    """Run :func:`improve_cost` with precomputed node checks, ranges and windows.

    Returns the number of moves made.

    ``present``, ``pmax``, ``p`` are ragged and ``cap`` compact, and ``blk`` the root's
    memo, as for :func:`_fill`.
    """
    S = order.shape[0]
    T = slots.shape[0]
    loc = np.empty(T, dtype=np.int64)
    cs, ce, cm, cp, clo, chi, cbase, ccoef, pa, srange, cnr = chk
    rcls, rstamp, rver, mono = blk
    cap = cap.reshape(-1)  # a view: (total, 4) C-contiguous
    two = pz.shape[1] == 2  # else one phasor variant (see _phasor_state)
    # Each session's slots in the order of ``slots``: a bit per rank, set for the slots
    # of its window, then read lowest first (a pass over the window instead of over all
    # the slots; _lowest_bit).
    rank = np.empty(T, dtype=np.int64)
    for k in range(T):
        rank[_u(slots[k])] = k
    n_words = (T + 63) // 64
    bits = np.zeros(n_words, dtype=np.uint64)
    one = np.uint64(1)
    moves = 0
    for oi in range(S):
        s = order[oi]
        t_first = window[_u(s), 0]
        t_last = window[_u(s), 1]
        i0 = b0[_u(s)]
        c_lo = srange[_u(s), 0]
        c_hi = srange[_u(s), 1]
        # A move needs a slot with energy priced above a slot with room. If even the
        # cheapest slot with room is no cheaper than the dearest slot with energy, the
        # walk below only moves its pointers (prices stay as they are): skip it.
        # Slots the root memo marks as blocked for the session have no room either.
        # (Written without branches on the cell's values, which do not predict: every
        # value is loaded and the updates are selects; 11 % less time in the pass.)
        c = rcls[_u(s)]
        c0 = c if c >= 0 else 0  # a row to read when the session has no class
        lo_min = np.inf
        hi_max = -np.inf
        for t in range(t_first, t_last + 1):
            f = present[_u(i0 + t)]
            r = rank[_u(t)]
            bits[_u(r >> 6)] |= np.uint64(f > 0.0) << np.uint64(r & 63)
            pt = p[_u(i0 + t)]
            ut = usage[_u(t)]
            st = surplus[_u(t)]
            ph_ = price_imp[_u(t)] if ut > st + _TOL else price_exp[_u(t)]  # energy there
            if f > 0.0 and pt > _TOL and not (ph_ <= hi_max):  # NaN sticks: no skip then
                hi_max = ph_
            pl_ = price_exp[_u(t)] if st - ut > _TOL else price_imp[_u(t)]  # more there
            blocked = c >= 0 and rstamp[_u(c0), _u(t)] == rver[_u(t)]
            if f > 0.0 and pmax[_u(i0 + t)] - pt > _TOL and not blocked and not (pl_ >= lo_min):
                lo_min = pl_
        if lo_min >= hi_max - 1e-12:
            for w in range(n_words):
                bits[w] = 0  # clear for the next session
            continue
        # the session's slots present, cheapest first (``slots`` restricted to them)
        m = 0
        for w in range(n_words):
            x = bits[w]
            bits[w] = 0
            while x:
                low = x & (~x + one)  # the lowest bit set
                loc[_u(m)] = slots[_u(64 * w + _lowest_bit(low))]
                m += 1
                x ^= low
        lo = 0
        hi = m - 1
        while lo < hi:
            t_lo = loc[_u(lo)]
            t_hi = loc[_u(hi)]
            left = surplus[_u(t_lo)] - usage[_u(t_lo)]
            p_lo = price_exp[_u(t_lo)] if left > _TOL else price_imp[_u(t_lo)]
            from_grid = usage[_u(t_hi)] > surplus[_u(t_hi)] + _TOL
            p_hi = price_imp[_u(t_hi)] if from_grid else price_exp[_u(t_hi)]
            if p_lo >= p_hi - 1e-12:
                if not from_grid:
                    hi -= 1  # t_hi runs on PV surplus: nothing to gain there
                else:
                    lo += 1
                continue
            f_hi = present[_u(i0 + t_hi)]
            if p[_u(i0 + t_hi)] <= _TOL:
                hi -= 1
                continue
            f_lo = present[_u(i0 + t_lo)]
            room = pmax[_u(i0 + t_lo)] - p[_u(i0 + t_lo)]
            if room <= _TOL:
                lo += 1
                continue
            h = room
            if c_lo <= t_lo <= c_hi:
                if c >= 0 and rstamp[_u(c), _u(t_lo)] == rver[_u(t_lo)]:
                    lo += 1  # the root has no room for this session's phasor (memo)
                    continue
                for i in range(cs[_u(s)], cm[_u(s)]):
                    if clo[_u(i)] <= t_lo and t_lo <= chi[_u(i)]:
                        q = cap[_u(cbase[_u(i)] + 4 * t_lo)]
                        if q < h * ccoef[_u(i)] * _MAYBIND:  # else the row leaves more than h
                            q /= ccoef[_u(i)]
                            if q < h:
                                h = q
                if (
                    h > _TOL
                    and (p[_u(i0 + t_lo)] > _TOL or h >= pmin[_u(s)] - _TOL)
                    and cp[_u(s)] < ce[_u(s)]
                ):
                    for i in range(cp[_u(s)], ce[_u(s)]):
                        if t_lo < clo[_u(i)] or t_lo > chi[_u(i)]:
                            continue
                        k = cbase[_u(i)]
                        for line in range(3):
                            a = pa[_u(i), line]
                            aa = a.real * a.real + a.imag * a.imag
                            if aa == 0.0:
                                continue
                            lim = plim[k, line, _u(t_lo)]
                            ll = lim * lim
                            z = pz[k, 0, line, _u(t_lo)]
                            zz = z.real * z.real + z.imag * z.imag
                            if zz > ll:
                                h = 0.0
                                continue
                            h = _line_room(z, a, aa, zz, ll, h)
                            if two:  # the low base-load variant, unless it is the same phasor
                                z1 = pz[k, 1, line, _u(t_lo)]
                                if z1 != z:
                                    zz = z1.real * z1.real + z1.imag * z1.imag
                                    if zz > ll:
                                        h = 0.0
                                        continue
                                    h = _line_room(z1, a, aa, zz, ll, h)
                        if h <= _TOL:
                            # h was above _TOL before: if this is the root (the first
                            # entry), its own bound leaves no room
                            if i == cp[_u(s)] and c >= 0:
                                rstamp[_u(c), _u(t_lo)] = rver[_u(t_lo)]
                            break
            if left > _TOL and h > left / f_lo:
                h = left / f_lo  # only the surplus left is cheap
            if h <= _TOL or (p[_u(i0 + t_lo)] <= _TOL and h < pmin[_u(s)] - _TOL):
                lo += 1
                continue
            # move everything from t_hi if it fits, else fill t_lo and keep t_hi >= pmin
            x = p[_u(i0 + t_hi)] * f_hi / f_lo
            if x <= h:
                dx = p[_u(i0 + t_hi)]
                if p[_u(i0 + t_lo)] <= _TOL and x < pmin[_u(s)] - _TOL:
                    hi -= 1
                    continue
                done_hi = True
            else:
                x = h
                dx = x * f_lo / f_hi
                if p[_u(i0 + t_hi)] - dx < pmin[_u(s)] - _TOL:
                    dx = p[_u(i0 + t_hi)] - pmin[_u(s)]
                    x = dx * f_hi / f_lo
                if dx <= _TOL or (p[_u(i0 + t_lo)] <= _TOL and x < pmin[_u(s)] - _TOL):
                    lo += 1
                    continue
                done_hi = False
            p[_u(i0 + t_hi)] -= dx
            if done_hi:
                p[_u(i0 + t_hi)] = 0.0
            p[_u(i0 + t_lo)] += x
            for tb, xb in ((t_hi, -dx), (t_lo, x)):  # book both cells (written out)
                if c_lo <= tb <= c_hi:
                    for i in range(cs[_u(s)], cp[_u(s)]):
                        if clo[_u(i)] <= tb and tb <= chi[_u(i)]:
                            cap[_u(cbase[_u(i)] + 4 * tb)] -= ccoef[_u(i)] * xb
                    for i in range(cp[_u(s)], ce[_u(s)]):
                        if clo[_u(i)] <= tb and tb <= chi[_u(i)]:
                            k = cbase[_u(i)]
                            for line in range(3):
                                a = pa[_u(i), line]
                                if a != 0.0:
                                    pz[k, 0, line, _u(tb)] += xb * a
                                    if two:
                                        pz[k, 1, line, _u(tb)] += xb * a
                    if xb < 0.0 or not mono:  # adding load keeps a monotone root's notes
                        rver[_u(tb)] += 1
            usage[_u(t_hi)] -= dx * f_hi
            usage[_u(t_lo)] += x * f_lo
            moves += 1
            if done_hi:
                hi -= 1
            else:
                lo += 1
    return moves


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
    scanned in (cheapest first); ``usage`` is updated. Returns the number of moves.
    """
    N = cap.shape[0]
    T = p.shape[1]
    capc, chk = _full_checks(cap, coef, path, phasor_line, pidx, acoef, order)
    window, b0, C = _full_windows(p.shape[0], T)
    pc = _to_ragged(p, window, b0, C)
    moves = _improve(
        order,
        slots,
        price_imp,
        price_exp,
        surplus,
        usage,
        _to_ragged(present, window, b0, C),
        _to_ragged(pmax, window, b0, C),
        pmin,
        chk,
        capc,
        plim,
        pz,
        pc,
        window,
        b0,
        _no_memo(p.shape[0], T),
    )
    for n in range(N):
        for t in range(T):
            for r in range(4):
                cap[n, r, t] = capc[n * T + t, r]
    p[:, :] = _from_ragged(pc, window, b0, T)
    return moves


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
        self.pidx, self.plim, self.pz = _phasor_state(*_phasor_inputs(problem))


_UNIT = np.exp(1j * LINE_ANGLES)  # line-voltage phasors of unit size (a constant)


def _phasor_inputs(problem: ProblemArrays) -> tuple:
    """Return the arguments of :func:`_phasor_state` for a problem (``_solve`` takes them too)."""
    return (
        problem.phasor_line,
        problem.limit_a,
        problem.root,
        problem.net_base_kw,
        problem.net_base_low_kw,
        1000.0 / (3.0 * problem.voltage_v),  # A per line per kW of a balanced 3-phase load
        _UNIT,
    )


@njit(cache=True)
def _phasor_state(
    phasor_line, limit_a, root, base_kw, base_low_kw, amps_per_kw, unit, one_if_equal=False
):
    """Arrays of :class:`PhasorState`: ``pidx``, ``plim``, ``pz``.

    As the numpy expressions ``limit_a[nodes]`` and ``unit * (base_kw * amps_per_kw)``
    compute them (a complex times a real: ``(u.real * x - u.imag * 0.0, ...)``).

    With ``one_if_equal``, ``pz`` is (K, 1, 3, T) when the two base-load variants are
    equal in every slot: they are then the same phasors everywhere (only the root
    carries base load), and a plan adds the same to both. With one variant the passes
    book and check each phasor once (6 % of a congested fill, 4 % of the improvement
    pass at N = 1 000, same plans). :func:`_fill`, :func:`_improve`,
    :func:`_undo_pass`, :func:`_apply` and :func:`_active_ranges` take either shape;
    the public kernels get two variants.
    """
    N = phasor_line.shape[0]
    T = limit_a.shape[2]
    pidx = np.full(N, -1, dtype=np.int64)
    K = 0
    for n in range(N):
        if phasor_line[n, 0] or phasor_line[n, 1] or phasor_line[n, 2]:
            pidx[n] = K
            K += 1
    plim = np.empty((K, 3, T))
    for n in range(N):
        k = pidx[n]
        if k >= 0:
            for line in range(3):  # loops, not slice copies: numba compiles an error
                for t in range(T):  # message for every shape check (seconds of compile)
                    plim[k, line, t] = limit_a[n, line, t]
    V = 2
    if one_if_equal:
        V = 1
        for t in range(T):
            if base_kw[t] != base_low_kw[t]:  # (a NaN, never equal, keeps two)
                V = 2
                break
    pz = np.zeros((K, V, 3, T), dtype=np.complex128)
    k = pidx[root]
    if k >= 0:
        for line in range(3):
            u = unit[line]
            for t in range(T):
                for v in range(V):
                    x = (base_kw[t] if v == 0 else base_low_kw[t]) * amps_per_kw
                    re = u.real * x - u.imag * 0.0
                    pz[k, v, line, t] = complex(re, u.real * 0.0 + u.imag * x)
    return pidx, plim, pz


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
    return _sub_slots_kernel(
        problem.pv_surplus_kw, problem.price_export_per_kwh, problem.price_import_per_kwh
    )


@njit(cache=True)
def _sub_slots_kernel(pv_surplus, price_exp, price_imp):
    """:func:`_sub_slots`: ``sub_t, sub_kind`` (0 surplus part, 1 grid part)."""
    T = pv_surplus.shape[0]
    n_sur = 0
    for t in range(T):
        if pv_surplus[t] > _TOL:
            n_sur += 1
    K = n_sur + T
    st = np.empty(K)
    kind = np.empty(K)
    price = np.empty(K)
    i = 0
    for t in range(T):
        if pv_surplus[t] > _TOL:
            st[i] = t
            kind[i] = 0.0
            price[i] = price_exp[t]
            i += 1
    for t in range(T):
        st[n_sur + t] = t
        kind[n_sur + t] = 1.0
        price[n_sur + t] = price_imp[t]
    idx = _lexorder(price, st, kind)
    sub_t = np.empty(K, dtype=np.int64)
    sub_kind = np.empty(K, dtype=np.int64)
    for j in range(K):
        sub_t[j] = np.int64(st[idx[j]])
        sub_kind[j] = np.int64(kind[idx[j]])
    return sub_t, sub_kind


@njit(cache=True)
def _slot_order(pv_surplus, usage, cheap, price_imp):
    """Slots by effective price (``cheap`` where PV surplus is left), then time."""
    T = usage.shape[0]
    price = np.empty(T)
    t_f = np.empty(T)
    for t in range(T):
        price[t] = cheap[t] if pv_surplus[t] - usage[t] > _TOL else price_imp[t]
        t_f[t] = t
    return _lexorder(price, t_f, t_f)


@njit(cache=True)
def _pairwise_block(a, lo, n):
    """Sum ``a[lo:lo + n]`` for ``n <= 128`` as numpy does (one block, no split)."""
    if n < 8:
        res = 0.0
        for i in range(lo, lo + n):
            res += a[i]
        return res
    r0 = a[lo]
    r1 = a[lo + 1]
    r2 = a[lo + 2]
    r3 = a[lo + 3]
    r4 = a[lo + 4]
    r5 = a[lo + 5]
    r6 = a[lo + 6]
    r7 = a[lo + 7]
    m = n - n % 8
    i = 8
    while i < m:
        j = lo + i
        r0 += a[j]
        r1 += a[j + 1]
        r2 += a[j + 2]
        r3 += a[j + 3]
        r4 += a[j + 4]
        r5 += a[j + 5]
        r6 += a[j + 6]
        r7 += a[j + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@njit(cache=True)
def _pairwise_sum(a, lo, n):
    """Sum of ``a[lo:lo + n]`` exactly as numpy sums a contiguous float64 array.

    numpy's pairwise summation (``pairwise_sum`` in its umath loops): sequential below
    8 items, 8 interleaved partial sums up to 128, halves (at a multiple of 8) above.
    Keeping numpy's rounding keeps the plans' scores, and so the plan chosen, bit for
    bit what the numpy code computed. The halving is done with an explicit stack (numba
    does not cache recursive functions reliably).
    """
    if n <= 128:
        return _pairwise_block(a, lo, n)
    # post-order walk of the halving tree: (lo, n, state) frames, partial sums stacked
    f_lo = np.empty(64, dtype=np.int64)
    f_n = np.empty(64, dtype=np.int64)
    f_st = np.empty(64, dtype=np.int64)
    vals = np.empty(64)
    top = 0
    nv = 0
    f_lo[0] = lo
    f_n[0] = n
    f_st[0] = 0
    top = 1
    while top > 0:
        i = top - 1
        cl = f_lo[i]
        cn = f_n[i]
        if cn <= 128:
            vals[nv] = _pairwise_block(a, cl, cn)
            nv += 1
            top -= 1
            continue
        n2 = cn // 2
        n2 -= n2 % 8
        st = f_st[i]
        if st == 0:
            f_st[i] = 1
            f_lo[top] = cl
            f_n[top] = n2
            f_st[top] = 0
            top += 1
        elif st == 1:
            f_st[i] = 2
            f_lo[top] = cl + n2
            f_n[top] = cn - n2
            f_st[top] = 0
            top += 1
        else:
            vals[nv - 2] = vals[nv - 2] + vals[nv - 1]
            nv -= 1
            top -= 1
    return vals[0]


@njit(cache=True)
def _np_sum(a):
    """``a.sum()`` of a contiguous 1-d float64 array, bit for bit."""
    return 0.0 + _pairwise_sum(a, 0, a.shape[0])


@njit(cache=True, inline="always")
def _block_total(acc):
    """Total of numpy's 8 partial sums of a block (``pairwise_sum``, n <= 128)."""
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))


# numpy sums a row of 8 <= T <= 128 items (one block) with 8 partial sums, item t going
# to sum t % 8 up to the last multiple of 8 (m8), and then adds the rest one by one. The
# items outside a session's window are exact zeros and change no partial sum, so the
# window alone gives the row's sum bit for bit: the kernels below sum windows that way
# (1.4-2x faster than summing whole rows), and whole rows when T is outside that range.


@njit(cache=True)
def _session_stats(present, pmax, energy, priority, dt_h):
    """One sweep over the sessions' rows for what the solver needs per session.

    Returns the presence windows and ragged layout (``window, b0, C`` as
    :func:`_windows` with no ``p_init``), ``present`` and ``pmax`` as ragged arrays, the
    hours present, the peak rate, and the weighted unmet energy no plan can avoid (each
    EV alone at its own limits), per session and in total, as the numpy expressions of
    :func:`session_orders` and :func:`solve_greedy` would compute them.
    """
    S, T = present.shape
    window = np.empty((S, 2), dtype=np.int64)
    b0 = np.empty(S, dtype=np.int64)
    avail_h = np.empty(S)
    peak = np.empty(S)
    floor = np.empty(S)
    # a first pass for the layout: each row scanned for its first and last slot present,
    # 8 slots at a time while none is (a branch per 8 slots: 14 % faster)
    base = 0
    # (``present[s, t]``, not a view of the row: a view per session costs a reference
    # count increment and decrement, 6 % of this kernel)
    for s in range(S):
        t0 = 0
        while t0 + 8 <= T:
            hit = False
            for j in range(8):
                hit |= present[s, _u(t0 + j)] > 0.0
            if hit:
                break
            t0 += 8
        lo = T
        for t in range(t0, T):
            if present[s, _u(t)] > 0.0:
                lo = t
                break
        t1 = T
        while t1 - 8 > lo:
            hit = False
            for j in range(8):
                hit |= present[s, _u(t1 - 8 + j)] > 0.0
            if hit:
                break
            t1 -= 8
        hi = -1
        for t in range(t1 - 1, lo - 1, -1):
            if present[s, _u(t)] > 0.0:
                hi = t
                break
        window[s, 0] = lo
        window[s, 1] = hi
        b0[s] = base - lo
        if hi >= lo:
            base += hi - lo + 1
    pres_c = np.empty(base)
    pmax_c = np.empty(base)
    blocked = 8 <= T <= 128
    m8 = T - T % 8
    row = np.zeros(T)
    acc_p = np.zeros(8)
    acc_o = np.zeros(8)
    for s in range(S):
        lo = window[s, 0]
        hi = window[s, 1]
        i0 = b0[s]
        # outside the window the EV is absent: present and pmax are 0 there (see
        # ProblemArrays)
        m = 0.0 if lo > 0 or hi < T - 1 else -np.inf
        acc_p[:] = 0.0
        acc_o[:] = 0.0
        for t in range(lo, hi + 1):
            f = present[s, t]
            x = pmax[s, t]
            if x > m or x != x:
                m = x  # np.max propagates NaN
            pres_c[_u(i0 + t)] = f
            pmax_c[_u(i0 + t)] = x
            if blocked:
                if t < m8:
                    acc_p[_u(t & 7)] += f
                    acc_o[_u(t & 7)] += x * f
            else:
                row[t] = x * f
        peak[s] = m
        if blocked:
            tot_p = _block_total(acc_p)
            tot_o = _block_total(acc_o)
            for t in range(max(lo, m8), hi + 1):  # the rest, one by one
                tot_p += present[s, t]
                tot_o += pmax[s, t] * present[s, t]
            own_max = (0.0 + tot_o) * dt_h
            avail_h[s] = (0.0 + tot_p) * dt_h
        else:
            own_max = _np_sum(row) * dt_h
            avail_h[s] = _np_sum(present[s]) * dt_h
            for t in range(lo, hi + 1):
                row[t] = 0.0
        u = energy[s] - own_max
        floor[s] = (u if u > 0.0 or u != u else 0.0) * priority[s]
    return window, b0, base, pres_c, pmax_c, avail_h, peak, floor, _np_sum(floor)


@njit(cache=True)
def _sortable(a):
    """uint64 keys that sort as numpy sorts float64 (``-0.0 == 0.0``, NaN last)."""
    n = a.shape[0]
    c = np.empty(n)
    for i in range(n):
        x = a[i]
        if x != x:
            x = np.nan  # one positive NaN: above +inf
        elif x == 0.0:
            x = 0.0
        c[i] = x
    u = c.view(np.uint64)
    top = np.uint64(1) << np.uint64(63)
    for i in range(n):
        b = u[i]
        u[i] = ~b if b & top else b | top
    return u


@njit(cache=True)
def _radix_pass(keys, idx, out, shift, count):
    """Stable counting sort of ``idx`` into ``out`` by one byte of ``keys``.

    Returns False (and leaves ``out`` alone) when every key has the same byte there.
    """
    n = idx.shape[0]
    count[:] = 0
    for i in range(n):
        count[_u((keys[_u(idx[i])] >> shift) & np.uint64(255))] += 1
    for c in range(256):
        if count[c] == n:
            return False
    pos = 0
    for c in range(256):
        k = count[c]
        count[c] = pos
        pos += k
    for i in range(n):
        j = idx[i]
        b = (keys[_u(j)] >> shift) & np.uint64(255)
        out[_u(count[_u(b)])] = j
        count[_u(b)] += 1
    return True


@njit(cache=True)
def _lexorder(k1, k2, k3):
    """``np.lexsort((ids, k3, k2, k1))``: indices by k1, then k2, then k3, then index.

    LSD radix sort (stable, a byte at a time, least significant key first) on keys
    ordered as numpy orders floats; bytes all keys share are skipped.
    """
    n = k1.shape[0]
    idx = np.arange(n)
    tmp = np.empty(n, dtype=np.int64)
    count = np.empty(256, dtype=np.int64)
    for key in (k3, k2, k1):
        u = _sortable(key)
        # the bits in which some key differs from the first: a byte without any is the
        # same in every key and needs no pass (one sweep instead of a count per byte)
        diff = np.uint64(0)
        if n > 0:
            u0 = u[0]
            for i in range(n):
                diff |= u[i] ^ u0
        for byte in range(8):
            shift = np.uint64(8 * byte)
            if (diff >> shift) & np.uint64(255) == np.uint64(0):
                continue
            if _radix_pass(u, idx, tmp, shift, count):
                idx, tmp = tmp, idx
    return idx


@njit(cache=True)
def _orders(window, avail_h, peak, energy, priority, T, with_llf=True):
    """EDF and LLF orders from :func:`_session_stats` (see :func:`session_orders`).

    Without ``with_llf`` the LLF order is left empty.
    """
    S = energy.shape[0]
    last = np.empty(S)
    laxity = np.empty(S)
    neg_prio = np.empty(S)
    for s in range(S):
        last[s] = window[s, 1] if window[s, 1] >= 0 else T
        need_h = energy[s] / peak[s] if peak[s] > 0.0 else np.inf
        laxity[s] = avail_h[s] - need_h
        neg_prio[s] = -priority[s]
    edf = _lexorder(neg_prio, last, laxity)
    if not with_llf:
        return edf, np.empty(0, dtype=np.int64)
    return edf, _lexorder(neg_prio, laxity, last)


@njit(cache=True)
def _plan_quality(
    p, present, window, b0, energy, priority, net_base, price_imp, price_exp, dt_h, usage
):
    """Weighted unmet energy and site cost of a ragged plan, as :func:`_quality` computes.

    Also writes the EVs' mean power per slot (``(p * present).sum(axis=0)``) to
    ``usage``. One sweep over the plan, no (S, T) temporaries; sums rounded as numpy
    rounds them (cells outside the windows are 0 and add exact zeros).
    """
    S = window.shape[0]
    T = usage.shape[0]
    row = np.zeros(T)
    unmet = np.empty(S)
    usage[:] = 0.0
    blocked = 8 <= T <= 128  # sums over the windows (see _session_stats)
    m8 = T - T % 8
    acc = np.zeros(8)
    for s in range(S):
        lo = window[s, 0]
        hi = window[s, 1]
        i0 = b0[s]
        if blocked:
            acc[:] = 0.0
            for t in range(lo, min(hi + 1, m8)):
                x = p[_u(i0 + t)] * present[_u(i0 + t)]
                usage[t] += x
                acc[_u(t & 7)] += x
            tot = _block_total(acc)
            for t in range(max(lo, m8), hi + 1):  # the rest, one by one
                x = p[_u(i0 + t)] * present[_u(i0 + t)]
                usage[t] += x
                tot += x
            delivered = (0.0 + tot) * dt_h
        else:
            for t in range(lo, hi + 1):
                x = p[_u(i0 + t)] * present[_u(i0 + t)]
                row[t] = x
                usage[t] += x
            delivered = _np_sum(row) * dt_h
            for t in range(lo, hi + 1):
                row[t] = 0.0
        u = energy[s] - delivered
        unmet[s] = (u if u > 0.0 or u != u else 0.0) * priority[s]
    for t in range(T):
        site = net_base[t] + usage[t]
        imp = site if site > 0.0 or site != site else 0.0
        ex = -site if -site > 0.0 or site != site else 0.0
        row[t] = imp * price_imp[t] - ex * price_exp[t]
    return _np_sum(unmet), _np_sum(row) * dt_h


def session_orders(problem: ProblemArrays) -> dict[str, np.ndarray]:
    """Earliest-deadline-first and least-laxity-first orders (higher priority first).

    EDF: by priority (higher first), last slot present, laxity (hours present minus
    hours needed at the peak rate), index. LLF: by priority, laxity, last slot, index.
    """
    window, _, _, _, _, avail_h, peak, _, _ = _session_stats(
        problem.present,
        problem.pmax_kw,
        problem.energy_kwh,
        problem.priority,
        problem.grid.step_h,
    )
    edf, llf = _orders(window, avail_h, peak, problem.energy_kwh, problem.priority, problem.n_slots)
    return {"edf": edf, "llf": llf}


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


def _problem_ranges(problem, ph, extra, window, b0, rows, n_rows, cap_min):
    """:func:`_active_ranges` for a problem and its :class:`PhasorState`."""
    return _active_ranges(
        extra,
        window,
        b0,
        problem.coef,
        rows,
        n_rows,
        problem.path,
        cap_min,
        problem.phasor_line,
        ph.pidx,
        ph.plim,
        ph.pz,
        problem.acoef,
    )


def _problem_checks(problem, ph, rows, n_rows, nlo, nhi, noff, open_row, order):
    """:func:`_node_checks` for a problem and its :class:`PhasorState`, for the passes only.

    The current rows of phasor lines are left out: the passes check those lines on the
    exact phasor and never read the rows, and the capacity is not returned.
    """
    return _node_checks(
        problem.coef,
        rows,
        n_rows,
        problem.path,
        problem.phasor_line,
        ph.pidx,
        problem.acoef,
        nlo,
        nhi,
        noff,
        open_row,
        order,
        False,  # the passes never read the unchecked rows, nor return the capacity
    )


@njit(cache=True)
def _copy_into(dst, src):
    """``dst[:] = src`` for 1-d arrays of one length, as a loop.

    (A slice copy makes numba compile a shape-mismatch error message with string
    formatting: seconds of cold start per shape.)
    """
    for i in range(dst.shape[0]):
        dst[i] = src[i]


_PASS_NAMES = ("edf", "llf", "edf_asap", "llf_asap")


@njit(cache=True)
def _two_product(a, b):
    """Return ``a * b`` as an unevaluated sum ``hi + lo``, exactly (Dekker, no FMA)."""
    hi = a * b
    split = 134217729.0  # 2**27 + 1 (Veltkamp)
    ca = split * a
    a_hi = ca - (ca - a)
    a_lo = a - a_hi
    cb = split * b
    b_hi = cb - (cb - b)
    b_lo = b - b_hi
    lo = ((a_hi * b_hi - hi) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo
    return hi, lo


@njit(cache=True)
def _round6(x):
    """``round(x, 6)`` as CPython computes it (numba's ``round`` differs).

    CPython rounds the exact binary value half to even at the 6th decimal and returns the
    float nearest that decimal: here the exact ``x * 10**6`` (``hi + lo``) is rounded
    half to even, and the integer divided by ``10**6`` (a correctly rounded division).
    """
    if not (abs(x) < 1e9):  # NaN, inf, and values far above any energy here
        return x
    hi, lo = _two_product(x, 1e6)
    r = np.rint(hi)  # half to even on hi; the exact value may lie past a tie
    frac = hi - r  # exact
    if frac == 0.5 and lo > 0.0:
        r += 1.0
    elif frac == -0.5 and lo < 0.0:
        r -= 1.0
    return r / 1e6


@njit(cache=True)
def _improve_sweeps(
    order, sweeps, price_imp, cheap, pv_surplus, usage, present, pmax, pmin, chk, cap, plim,
    pz, p, window, b0, memo,
):  # fmt: skip
    """Improvement sweeps (each ranks the slots anew); returns the moves and sweeps run.

    Repeated sweeps find moves the previous one opened up (energy another session moved
    away frees a cheap slot); they stop when one moves nothing.
    """
    moves = 0
    swept = 0
    for _ in range(sweeps):
        swept += 1
        slots = _slot_order(pv_surplus, usage, cheap, price_imp)
        moved = _improve(
            order, slots, price_imp, cheap, pv_surplus, usage, present, pmax, pmin, chk,
            cap, plim, pz, p, window, b0, memo,
        )  # fmt: skip
        moves += moved
        if moved == 0:
            break
    return moves, swept


@njit(cache=True)
def _pass_buffers(C, total, pz0, n_cls, T):
    """Work buffers of one pass: plan, capacity, phasors, site use, root memo stamps."""
    return (
        np.empty(C),
        np.empty((total, 4)),
        np.empty_like(pz0),
        np.empty(T),
        np.empty((n_cls, T), dtype=np.int64),
        np.empty(T, dtype=np.int64),
    )


@njit(cache=True)
def _solve(
    present, pmax_kw, pmin, energy, priority, coef, path, cap, phasor_line, limit_a, root,
    net_base, net_base_low, amps_per_kw, unit, acoef, pv_surplus, price_imp, price_exp,
    dt_h, orderings_max_cells, improve_sweeps, improve_sweeps_max_cells, stop_excess,
):  # fmt: skip
    """:func:`solve_greedy` in one kernel (the Python glue was 6 % of a 1 000 x 96 solve).

    Returns the plan (S, T), ``res`` (4, 3): per pass of ``_PASS_NAMES`` its status (-1
    not run, 0 run, 1 stopped), weighted unmet energy and cost; the pass kept, its
    improvement sweeps, its weighted unmet energy and cost, and the floor.
    """
    S, T = present.shape
    sub_t, sub_kind = _sub_slots_kernel(pv_surplus, price_exp, price_imp)
    pidx, plim, pz0 = _phasor_state(
        phasor_line, limit_a, root, net_base, net_base_low, amps_per_kw, unit, True
    )
    # one sweep over the sessions: presence windows and the ragged layout of their cells,
    # orders, and the unmet energy no plan can avoid (each EV alone at its own limits)
    window, b0, C, pres_c, pmax_c, avail_h, peak, floor_s, floor_unmet = _session_stats(
        present, pmax_kw, energy, priority, dt_h
    )
    # On large problems only the price-ordered EDF pass runs, stopped as soon as it
    # falls short of the floor, and then the delivery-first pass (LLF is skipped).
    thorough = S * T <= orderings_max_cells
    edf, llf = _orders(window, avail_h, peak, energy, priority, T, thorough)
    rows, n_rows = _session_rows(coef)
    cap_min = _cap_min(cap)
    # nodes that can bind in each slot (every session at its maximum everywhere at once);
    # the fill and the improvement pass neither check nor book the others
    nlo, nhi, noff, total = _active_ranges(
        pmax_c, window, b0, coef, rows, n_rows, path, cap_min, phasor_line, pidx, plim,
        pz0, acoef,
    )  # fmt: skip
    # the passes never read the unchecked rows, nor return the capacity (see
    # _node_checks): the current rows of phasor lines are left out
    chk = _node_checks(
        coef, rows, n_rows, path, phasor_line, pidx, acoef, nlo, nhi, noff,
        cap_min == np.inf, edf, False,
    )  # fmt: skip
    # each buffer set gets its own stamps
    rcls, rstamp0, _, mono = _root_memo(chk, root, pidx, T, unit, net_base, net_base_low)
    n_cls = rstamp0.shape[0]
    t_all = np.arange(T)
    ones = np.ones(T, dtype=np.int64)
    cheap = np.minimum(price_exp, price_imp)
    surplus = np.empty(T)
    keep0 = np.zeros(0)  # the passes start from nothing (no rates to keep)
    # Up to improve_sweeps sweeps on small problems, where a sweep costs well under a
    # millisecond; one sweep on large ones, to stay fast.
    sweeps = improve_sweeps if S * T <= improve_sweeps_max_cells else 1
    res = np.full((4, 3), np.nan)
    res[:, 0] = -1.0
    # work buffers, allocated when needed: the pass running and the best pass so far
    cur = _pass_buffers(C, total, pz0, n_cls, T)
    cur_ok = True
    fresh = False  # cur holds the state a pass starts from
    best = cur
    have_best = False
    best_k = -1
    best_unmet = 0.0
    best_cost = 0.0
    best_swept = 0
    best_order = edf
    for k in range(4):
        is_llf = k == 1 or k == 3
        if is_llf and not thorough:
            continue
        order = llf if is_llf else edf
        asap = k >= 2
        if not cur_ok:
            cur = _pass_buffers(C, total, pz0, n_cls, T)
            cur_ok = True
        p, capb, pzb, usage, rstamp, rver = cur
        if not fresh:
            p[:] = 0.0
            _gather_cap_into(capb, cap, nlo, nhi, noff)
            _copy_into(pzb.reshape(-1), pz0.reshape(-1))
        fresh = False
        rstamp[:] = -1  # the memo holds for the state it was taken on only
        rver[:] = 0
        _copy_into(surplus, pv_surplus)
        memo = (rcls, rstamp, rver, mono)
        n_done = _fill(
            order, t_all if asap else sub_t, ones if asap else sub_kind, asap, pres_c,
            pmax_c, pmin, energy, chk, capb, surplus, dt_h, p, keep0, plim, pzb, window,
            b0, floor_s, priority, np.inf if thorough or k != 0 else stop_excess, memo,
        )  # fmt: skip
        if n_done >= 0:
            res[k, 0] = 1.0
            # the next pass reuses the buffers: take back the little this one did
            _undo_pass(order, n_done, window, b0, p, capb, cap, chk, pzb, pz0)
            fresh = True
            continue
        unmet, cost = _plan_quality(
            p, pres_c, window, b0, energy, priority, net_base, price_imp, price_exp, dt_h,
            usage,
        )  # fmt: skip
        swept = 0
        if thorough:  # small problems: every ordering is improved before they are compared
            moves, swept = _improve_sweeps(
                order, sweeps, price_imp, cheap, pv_surplus, usage, pres_c, pmax_c, pmin,
                chk, capb, plim, pzb, p, window, b0, memo,
            )  # fmt: skip
            if moves:
                unmet, cost = _plan_quality(
                    p, pres_c, window, b0, energy, priority, net_base, price_imp,
                    price_exp, dt_h, usage,
                )  # fmt: skip
        res[k, 0] = 0.0
        res[k, 1] = unmet
        res[k, 2] = cost
        # less weighted unmet energy (to 6 decimals), then cheaper
        ru = _round6(unmet)
        rb = _round6(best_unmet)
        if not have_best or (cost < best_cost if ru == rb else ru < rb):
            old = best
            best = cur
            best_k = k
            best_unmet = unmet
            best_cost = cost
            best_swept = swept
            best_order = order
            if have_best:
                cur = old
            else:
                cur_ok = False
            have_best = True
        if not thorough and unmet <= floor_unmet + 1e-6:
            break  # no ordering can deliver more: keep this price-ordered pass
    p, capb, pzb, usage, rstamp, rver = best
    if not thorough:  # large problems improve the plan kept only
        moves, best_swept = _improve_sweeps(
            best_order, sweeps, price_imp, cheap, pv_surplus, usage, pres_c, pmax_c, pmin,
            chk, capb, plim, pzb, p, window, b0, (rcls, rstamp, rver, mono),
        )  # fmt: skip
        if moves:  # else the plan is the pass's, and so are its scores
            best_unmet, best_cost = _plan_quality(
                p, pres_c, window, b0, energy, priority, net_base, price_imp, price_exp,
                dt_h, np.empty(T),
            )  # fmt: skip
    plan = _from_ragged(p, window, b0, T)
    return plan, res, best_k, best_swept, best_unmet, best_cost, floor_unmet


def solve_greedy(
    problem: ProblemArrays, *, orderings_max_cells: int | None = None
) -> tuple[np.ndarray, dict]:
    """Plan with the greedy heuristic.

    Parameters
    ----------
    problem : ProblemArrays
    orderings_max_cells : int, optional
        Problems of at most this many session-slot cells try all four orderings;
        larger ones run the large-problem passes (see the module docstring). Default
        ``ORDERINGS_MAX_CELLS``.

    Returns
    -------
    power_kw : numpy.ndarray
        (S, T) rate in kW.
    info : dict
        ``ordering`` kept, and the weighted unmet energy and cost of each ordering tried
        (after its improvement on problems of at most ``orderings_max_cells`` cells).
    """
    if orderings_max_cells is None:
        orderings_max_cells = ORDERINGS_MAX_CELLS
    plan, res, kept, swept, unmet, cost, floor_unmet = _solve(
        problem.present,
        problem.pmax_kw,
        problem.pmin_kw,
        problem.energy_kwh,
        problem.priority,
        problem.coef,
        problem.path,
        problem.cap,
        *_phasor_inputs(problem),
        problem.acoef,
        problem.pv_surplus_kw,
        problem.price_import_per_kwh,
        problem.price_export_per_kwh,
        problem.grid.step_h,
        orderings_max_cells,
        IMPROVE_SWEEPS,
        IMPROVE_SWEEPS_MAX_CELLS,
        _STOP_EXCESS_KWH,
    )
    orderings: dict = {}
    for k, name in enumerate(_PASS_NAMES):
        if res[k, 0] == 1.0:
            orderings[name] = {"stopped": True}
        elif res[k, 0] == 0.0:
            orderings[name] = {"weighted_unmet_kwh": float(res[k, 1]), "cost": float(res[k, 2])}
    info = {
        "orderings": orderings,
        "improve_sweeps": swept,
        "ordering": _PASS_NAMES[kept],
        "weighted_unmet_kwh": unmet,
        "cost": cost,
        "floor_unmet_kwh": floor_unmet,
    }
    return plan, info


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
    rounding their magnitude down to the 0.1 A grid later. Where EVs may discharge, no
    rate of ``p_init`` is lowered (the min-current rule would otherwise take energy
    back from them: a lower charge raises the site's export).

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
    T = problem.n_slots
    # windows also cover the cells p_init uses, so the plan is 0 outside them
    window, b0, C = _windows(problem.present, p_init)
    cap_min = _cap_min(cap)
    # what each session can still add bounds the load the fill can put on a node
    extra = _to_ragged(pmax - p_init, window, b0, C)
    nlo, nhi, noff, total = _problem_ranges(problem, ph, extra, window, b0, rows, n_rows, cap_min)
    capc = _gather_cap(cap, nlo, nhi, noff, total)
    chk = _problem_checks(problem, ph, rows, n_rows, nlo, nhi, noff, cap_min == np.inf, order)
    p = _to_ragged(p_init, window, b0, C)
    S = problem.n_sessions
    _fill(
        order,
        sub_t,
        sub_kind,
        False,
        _to_ragged(problem.present, window, b0, C),
        _to_ragged(pmax, window, b0, C),
        problem.pmin_kw,
        left,
        chk,
        capc,
        surplus,
        problem.grid.step_h,
        p,
        # where EVs may discharge, a lower charge could raise export: keep p_init
        p.copy() if problem.has_v2g else np.zeros(C),
        ph.plim,
        ph.pz,
        window,
        b0,
        np.zeros(S),
        np.ones(S),
        np.inf,
        _no_memo(S, T),
    )
    return _from_ragged(p, window, b0, T)
