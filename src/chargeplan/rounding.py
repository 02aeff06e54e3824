"""From solver rates to what stations can be told: round down, then top up.

Stations take AC limits in steps of 0.1 A (and the min-current rule) and power in
steps of 0.1 W. :func:`round_rates` rounds every rate *down* to that grid, so
rounding can never break a limit; the energy lost (up to one 0.1 A step per slot)
is then given back by :func:`top_up`, which raises rates one grid step at a time
where every node on the path, the rate limit and the request still allow it.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .problem import ProblemArrays

__all__ = ["round_rates", "top_up", "finalize_rates", "battery_energy_kwh"]


def round_rates(problem: ProblemArrays, rate_kw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Round rates toward zero to 0.1 A (AC, 0 below the minimum) or 0.1 W (DC).

    Negative rates (discharge) keep their sign; their magnitude is rounded down and
    set to 0 below the discharge minimum.

    Returns
    -------
    rate_kw : numpy.ndarray
        (S, T) rounded rate in kW.
    current_a : numpy.ndarray
        (S, T) conductor current in A, negative when discharging (NaN for DC sessions).
    """
    rate = np.ascontiguousarray(rate_kw, dtype=np.float64)
    out = np.empty_like(rate)
    current = np.empty_like(rate)
    _round_cells(rate, problem.dc, problem.kw_per_a, problem.pmin_kw, problem.dmin_kw, out, current)
    _trim_net_energy(problem, out, current)
    return out, current


@njit(cache=True)
def _round_cells(rate, dc, kw_per_a, pmin, dmin, out, current):
    """:func:`round_rates` cell by cell, before the net-energy trim.

    The arithmetic is numpy's, operation for operation (``floor_to_grid`` is
    ``floor(x / 0.1 + 1e-6) * 0.1``, ``np.round(x, d)`` is ``rint(x * 10**d) / 10**d``),
    so the result is the same bit for bit.
    """
    S, T = rate.shape
    for s in range(S):
        for t in range(T):
            x = rate[s, t]
            sign = -1.0 if x < 0.0 else 1.0
            mag = abs(x)
            low = dmin[s] if x < 0.0 else pmin[s]
            if dc[s]:
                kw = np.floor(mag * 1000.0 / 0.1 + 1e-6) * 0.1 / 1000.0
                out[s, t] = (0.0 if kw < low - 1e-9 else kw) * sign + 0.0
                current[s, t] = np.nan
            else:
                kpa = kw_per_a[s]
                amps = np.floor(mag / kpa / 0.1 + 1e-6) * 0.1
                i_min = np.rint(low / kpa * 1e6) / 1e6
                amps = np.rint((0.0 if amps < i_min - 1e-6 else amps) * 10.0) / 10.0 * sign
                current[s, t] = amps + 0.0  # no negative zeros
                out[s, t] = amps * kpa + 0.0


def battery_energy_kwh(problem: ProblemArrays, rate_kw: np.ndarray) -> np.ndarray:
    """(S, T) energy added to each battery per slot: discharge costs ``1/efficiency``."""
    e = rate_kw * problem.present * problem.grid.step_h
    return np.where(e < 0.0, e / problem.efficiency[:, None], e)


def _trim_net_energy(problem: ProblemArrays, rate: np.ndarray, current: np.ndarray) -> None:
    """Lower the last charging slots of sessions whose net energy exceeds the request.

    Rounding a discharge toward zero adds energy to the battery, and a solver may
    overshoot a request by its tolerance; taking it back from charging only lowers
    loads, so node limits stay kept. It raises the site's export, though: with an
    export limit, a slot's charging is lowered no further than the limit allows
    (``max(limit, PV export)``, as the checker reads it), and slots without that room
    are left for earlier ones.
    """
    net = battery_energy_kwh(problem, rate).sum(axis=1)
    over = np.flatnonzero(net > problem.energy_kwh + 1e-9)
    if not len(over):
        return
    dt_h = problem.grid.step_h
    room = np.full(problem.n_slots, np.inf)  # how far the EVs' mean kW may still drop
    if np.isfinite(problem.export_limit_kw):
        low = problem.net_base_low_kw
        allowed = np.maximum(problem.export_limit_kw, np.maximum(-low, 0.0)) + low
        room = (rate * problem.present).sum(axis=0) + allowed - 1e-9
    for s in over:
        excess = net[s] - problem.energy_kwh[s]
        for t in np.flatnonzero(rate[s] > 0.0)[::-1]:
            if excess <= 1e-12:
                break
            f = problem.present[s, t] * dt_h
            cut = excess / f  # kW to remove
            floor_kw = rate[s, t] - max(room[t], 0.0) / problem.present[s, t]
            if problem.dc[s]:
                new = float(np.floor((rate[s, t] - cut) * 1e4 + 1e-9) / 1e4)
                new = max(new, float(np.ceil(floor_kw * 1e4 - 1e-9) / 1e4))
                new = new if new >= problem.pmin_kw[s] - 1e-9 else 0.0
            else:
                kpa = problem.kw_per_a[s]
                amps = float(np.floor((rate[s, t] - cut) / kpa * 10.0 + 1e-9) / 10.0)
                amps = max(amps, float(np.ceil(floor_kw / kpa * 10.0 - 1e-9) / 10.0))
                amps = amps if amps >= problem.pmin_kw[s] / kpa - 1e-6 else 0.0
                new = max(amps, 0.0) * kpa
            new = max(new, 0.0)
            if new >= rate[s, t] or (rate[s, t] - new) * problem.present[s, t] > room[t]:
                continue  # no room here (0 below the minimum would drop too far)
            if not problem.dc[s]:
                current[s, t] = max(amps, 0.0)
            excess -= (rate[s, t] - new) * f
            room[t] -= (rate[s, t] - new) * problem.present[s, t]
            rate[s, t] = new


@njit(cache=True)
def _top_up(
    order,
    slots,
    rate,
    amps,
    present,
    pmax,
    energy,
    eff,
    coef,
    path,
    cap,
    step_kw,
    quantum,
    site_room,
    dt_h,
    ll_line,
):
    S, T = rate.shape
    resid = cap.copy()
    for s in range(S):
        for d in range(path.shape[1]):
            n = path[s, d]
            if n < 0:
                break
            for r in range(4):
                if coef[s, r] > 0.0:
                    # lines with non-collinear loads: sum of magnitudes (a safe bound on
                    # the phasor sum), so a discharge does not free capacity there
                    mag = r < 3 and ll_line[n, r]
                    for t in range(T):
                        x = abs(rate[s, t]) if mag else rate[s, t]
                        resid[n, r, t] -= coef[s, r] * x
    for oi in range(S):
        s = order[oi]
        rem = energy[s]
        for t in range(T):
            e = rate[s, t] * present[s, t] * dt_h
            rem -= e if e >= 0.0 else e / eff[s]
        # one quantum per slot and pass, so the energy given back is spread over the
        # slots in use instead of piling up in the cheapest (which would raise peaks)
        progress = True
        while progress and rem > 1e-9:
            progress = False
            for k in range(T):
                t = slots[k]
                if rem <= 1e-9:
                    break
                if rate[s, t] <= 0.0 or present[s, t] <= 0.0:
                    continue  # only raise slots already in use (keeps the min-current rule)
                h = pmax[s, t] - rate[s, t]
                for d in range(path.shape[1]):
                    n = path[s, d]
                    if n < 0:
                        break
                    for r in range(4):
                        c = coef[s, r]
                        if c > 0.0:
                            q = resid[n, r, t] / c
                            if q < h:
                                h = q
                want = rem / (present[s, t] * dt_h)
                if want < h:
                    h = want
                if quantum[s] < h:
                    h = quantum[s]
                if site_room[t] / present[s, t] < h:
                    h = site_room[t] / present[s, t]
                steps = np.floor(h / step_kw[s] + 1e-9)
                if steps < 1.0:
                    continue
                x = steps * step_kw[s]
                rate[s, t] += x
                if amps[s, t] == amps[s, t]:  # AC (not NaN)
                    amps[s, t] = np.round(amps[s, t] + steps * 0.1, 1)
                    rate[s, t] = amps[s, t] * step_kw[s] * 10.0
                for d in range(path.shape[1]):
                    n = path[s, d]
                    if n < 0:
                        break
                    for r in range(4):
                        if coef[s, r] > 0.0:
                            resid[n, r, t] -= coef[s, r] * x
                rem -= x * present[s, t] * dt_h
                site_room[t] -= x * present[s, t]
                progress = True


def top_up(problem: ProblemArrays, rate_kw: np.ndarray, current_a: np.ndarray) -> None:
    """Give back energy lost to rounding, in place, one grid step at a time.

    Sessions are visited by priority (then input order) and slots cheapest first, one
    step per slot and pass; only slots a session already uses are raised, so the
    min-current rule holds. With a demand charge, site import is never raised above
    the plan's peak. Lines with line-to-line loads are checked with the sum of
    magnitudes (a safe bound on their phasor sum). A small safety margin (1e-9) is
    kept against every capacity.
    """
    S = problem.n_sessions
    if S == 0:
        return
    step_kw = problem.round_step_kw
    order = np.lexsort((np.arange(S), -problem.priority)).astype(np.int64)
    slots = np.lexsort((np.arange(problem.n_slots), problem.price_import_per_kwh)).astype(np.int64)
    cap = problem.cap - 1e-9
    site_room = np.full(problem.n_slots, np.inf)
    if problem.demand_charge_per_kw > 0.0:
        # never raise the billed peak: keep site import under the peak already planned
        site_kw = problem.net_base_kw + (rate_kw * problem.present).sum(axis=0)
        peak = max(float(site_kw.max(initial=0.0)), problem.peak_already_kw)
        site_room = np.maximum(peak - site_kw, 0.0) - 1e-9
    _top_up(
        order,
        slots,
        rate_kw,
        current_a,
        problem.present,
        problem.pmax_kw,
        problem.energy_kwh,
        problem.efficiency,
        problem.coef,
        problem.path,
        cap,
        step_kw,
        np.where(problem.dc, 0.1, step_kw),  # at most 0.1 A (AC) or 0.1 kW (DC) per pass
        site_room,
        problem.grid.step_h,
        problem.ll_line,
    )


def finalize_rates(
    problem: ProblemArrays, rate_kw: np.ndarray, *, give_back: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Round solver rates down to the station grid, then top up; see the module docstring.

    ``give_back=False`` skips giving back the rounding loss (used for plans with a user's
    own constraints, which topping up could break).
    """
    rate, current = round_rates(problem, rate_kw)
    if give_back:
        top_up(problem, rate, current)
    return rate, current
