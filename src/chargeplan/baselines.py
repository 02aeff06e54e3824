"""Baseline charging strategies, for comparison with the planners in :func:`chargeplan.simulate`.

Every baseline has the call signature of :func:`chargeplan.optimize` (without
``method``) and returns a :class:`~chargeplan.Plan`, so it can be used wherever a
strategy is expected. Each is written from its textbook definition as a *rule*
applied slot by slot: in every slot of the horizon the rule shares the capacity of
that slot among the EVs present with energy left, then the energy delivered is
booked and the next slot follows (no future arrivals are assumed).

Baselines
---------
``uncontrolled``
    Every EV charges at its maximum rate from plug-in until its requested energy is
    delivered. Site limits are ignored, so the plan may break them: it is returned
    without the checker raising, and :func:`chargeplan.simulate` counts its
    violations.
``equal_share``
    Water-filling: all EVs present get the same current (per conductor; a DC EV its
    per-phase equivalent) raised together until an EV reaches its own limit or a node
    limit (on any phase or in kW) is reached; EVs under that node stop there and the
    others go on. If some EV's share is below its minimum current, the EV that arrived
    last among those is left out of the slot and the shares are recomputed.
``earliest_deadline_first``
    EVs sorted by (expected) departure; each in turn gets as much as its limits and
    the residual capacity of every node on its path allow.
``least_laxity_first``
    As EDF, sorted by laxity ``(departure - t) - remaining energy / max rate`` at the
    start of each slot.
``round_robin``
    ACN-Sim-style: EVs in arrival order, the queue rotated by one position per slot
    (counted in absolute time, so the rotation carries across re-plans). Each EV in
    turn first gets its minimum current if it fits; then, in rounds, each gets one
    more ``increment_a`` while that fits; an EV whose increment does not fit (or that
    reached its limit) leaves the queue.

Common rules of the limit-aware baselines (all but ``uncontrolled``): a rate is 0 or
at least the minimum current (6 A by default), on the station grid of 0.1 A (0.1 W
for DC), never above what the EV and EVSE allow nor above the energy left; and an EV
never leaves itself a remainder too small to deliver at the minimum current in its
next slot when that can be avoided. Their plans pass the independent checker; they
are verified before being returned, like :func:`chargeplan.optimize` does. Prices,
PV and session priorities play no part in any baseline (their definitions have
none); PV and base load only change the capacity left at the grid connection.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .exceptions import LimitViolationError
from .model import Forecast, Session, Site, Tariff
from .plan import Plan
from .problem import ProblemArrays, build_problem
from .rounding import round_rates
from .solvers import SolverReport
from .validation import session_list, validate

__all__ = [
    "uncontrolled",
    "equal_share",
    "earliest_deadline_first",
    "least_laxity_first",
    "round_robin",
    "BASELINES",
    "LIMIT_AWARE_BASELINES",
]

_TOL = 1e-9

Duration = str | pd.Timedelta | int


# -- slot state ---------------------------------------------------------------------------


class _Slot:
    """Residual capacity of every node row in one slot, with per-session load helpers."""

    def __init__(self, problem: ProblemArrays, t: int) -> None:
        self.p = problem
        self.resid = problem.cap[:, :, t].copy()

    def _rows(self, s: int) -> tuple[np.ndarray, np.ndarray]:
        path = self.p.path[s]
        nodes = path[path >= 0]
        rows = np.flatnonzero(self.p.coef[s] > 0.0)
        return nodes, rows

    def headroom_kw(self, s: int) -> float:
        """Largest extra rate (kW) session ``s`` can add without overloading a node row."""
        nodes, rows = self._rows(s)
        if len(nodes) == 0 or len(rows) == 0:
            return np.inf
        room = self.resid[np.ix_(nodes, rows)] / self.p.coef[s, rows]
        return float(room.min())

    def book(self, s: int, x_kw: float) -> None:
        """Add rate ``x_kw`` of session ``s`` to every node row on its path."""
        nodes, rows = self._rows(s)
        if len(nodes) and len(rows):
            self.resid[np.ix_(nodes, rows)] -= self.p.coef[s, rows] * x_kw


def _unit_kw(problem: ProblemArrays) -> np.ndarray:
    """Station grid step of every session in kW: 0.1 A (AC) or 0.1 W (DC)."""
    return problem.round_step_kw


def _kw_per_a_equivalent(problem: ProblemArrays) -> np.ndarray:
    """Return kW per A of conductor current (AC) or per-phase current equivalent (DC)."""
    with np.errstate(divide="ignore"):
        dc_kpa = np.where(problem.coef[:, 0] > 0.0, 1.0 / problem.coef[:, 0], 0.0)
    return np.where(problem.dc, dc_kpa, problem.kw_per_a)


def _floor_units(x_kw: np.ndarray | float, unit_kw: np.ndarray | float) -> np.ndarray:
    """Round down to the station grid (within 1e-6 of a grid point counts as on it)."""
    return np.floor(np.asarray(x_kw) / unit_kw + 1e-6) * unit_kw


# Allocation rules: given the slot state and the sessions that may charge (with their
# highest and lowest non-zero rate in kW), return the rate of each of them in kW. A rule
# may use ``slot`` freely (it is a scratch copy).
Rule = Callable[["_RuleInput"], np.ndarray]


class _RuleInput:
    def __init__(
        self,
        problem: ProblemArrays,
        slot: _Slot,
        t: int,
        active: np.ndarray,
        hi_kw: np.ndarray,
        lo_kw: np.ndarray,
        remaining_kwh: np.ndarray,
        sessions: Sequence[Session],
    ) -> None:
        self.problem = problem
        self.slot = slot
        self.t = t
        self.active = active
        self.hi_kw = hi_kw
        self.lo_kw = lo_kw
        self.remaining_kwh = remaining_kwh
        self.sessions = sessions


def _rollout(
    problem: ProblemArrays,
    sessions: Sequence[Session],
    rule: Rule,
    *,
    respect_limits: bool,
    reuse: bool,
) -> np.ndarray:
    """Apply ``rule`` slot by slot over the horizon; return the (S, T) rate in kW.

    With ``reuse``, a slot whose inputs (EVs, their rate bounds, node capacities) equal
    those of the previous slot gets the same allocation without calling the rule
    (only for rules that depend on nothing else).
    """
    S, T = problem.present.shape
    rate = np.zeros((S, T))
    if S == 0:
        return rate
    dt_h = problem.grid.step_h
    unit = _unit_kw(problem)
    remaining = problem.energy_kwh.astype(np.float64).copy()
    present = problem.present
    has_rate = (problem.pmax_kw > 0.0) & (present > 0.0)
    last_slot = np.where(has_rate.any(axis=1), T - 1 - np.argmax(has_rate[:, ::-1], axis=1), -1)
    cache: tuple[Any, ...] | None = None
    for t in range(T):
        alive = remaining > _TOL
        if not (alive & (last_slot >= t)).any():
            break
        f = present[:, t]
        cand = np.flatnonzero(alive & has_rate[:, t])
        if len(cand) == 0:
            continue
        hi = np.minimum(problem.pmax_kw[cand, t], remaining[cand] / (f[cand] * dt_h))
        hi = _floor_units(hi, unit[cand])
        lo = np.maximum(problem.pmin_kw[cand], unit[cand])
        ok = hi >= lo - 1e-9
        cand, hi, lo = cand[ok], hi[ok], lo[ok]
        if len(cand) == 0:
            continue
        key = (cand.tobytes(), hi.tobytes(), problem.cap[:, :, t].tobytes())
        if reuse and cache is not None and cache[0] == key and cache[1] == t - 1:
            x = cache[2]  # same inputs as the previous slot: same allocation
        else:
            slot = _Slot(problem, t)
            x = rule(_RuleInput(problem, slot, t, cand, hi, lo, remaining, sessions))
            x = np.where(x >= lo - 1e-9, _floor_units(np.minimum(x, hi), unit[cand]), 0.0)
        cache = (key, t, x)
        if respect_limits and t + 1 < T:
            x = _avoid_stranded_remainder(problem, cand, x, remaining, t, unit)
        rate[cand, t] = x
        remaining[cand] -= x * f[cand] * dt_h
        np.maximum(remaining, 0.0, out=remaining)
    return rate


def _avoid_stranded_remainder(
    problem: ProblemArrays,
    cand: np.ndarray,
    x: np.ndarray,
    remaining: np.ndarray,
    t: int,
    unit: np.ndarray,
) -> np.ndarray:
    """Lower a rate that would leave less than the minimum rate can deliver in slot t+1.

    Lowering a rate only frees capacity, so the slot stays feasible.
    """
    dt_h = problem.grid.step_h
    f = problem.present[cand, t]
    f_next = problem.present[cand, t + 1]
    need_next = problem.pmin_kw[cand] * f_next * dt_h
    left = remaining[cand] - x * f * dt_h
    bad = (x > 0.0) & (f_next > 0.0) & (left > 1e-9) & (left < need_next - 1e-9)
    if not bad.any():
        return x
    x = x.copy()
    alt = _floor_units((remaining[cand] - need_next) / (f * dt_h), unit[cand])
    use = bad & (alt >= problem.pmin_kw[cand] - 1e-9) & (alt < x)
    x[use] = alt[use]
    return x


# -- rules -------------------------------------------------------------------------------


def _rule_max(inp: _RuleInput) -> np.ndarray:
    return inp.hi_kw.copy()


def _rule_ordered(key: Callable[[_RuleInput], list[tuple[Any, ...]]]) -> Rule:
    def rule(inp: _RuleInput) -> np.ndarray:
        p, slot = inp.problem, inp.slot
        unit = _unit_kw(p)
        x = np.zeros(len(inp.active))
        keys = key(inp)
        for i in sorted(range(len(inp.active)), key=lambda i: keys[i]):
            s = int(inp.active[i])
            h = float(_floor_units(min(inp.hi_kw[i], slot.headroom_kw(s)), unit[s]))
            if h >= inp.lo_kw[i] - 1e-9 and h > 0.0:
                x[i] = h
                slot.book(s, h)
        return x

    return rule


def _departure_ns(inp: _RuleInput) -> np.ndarray:
    return np.array([pd.Timestamp(inp.sessions[s].departure).value for s in inp.active])


def _arrival_ns(inp: _RuleInput) -> np.ndarray:
    return np.array([pd.Timestamp(inp.sessions[s].arrival).value for s in inp.active])


def _edf_keys(inp: _RuleInput) -> list[tuple[Any, ...]]:
    dep, arr = _departure_ns(inp), _arrival_ns(inp)
    return [(int(dep[i]), int(arr[i]), int(s)) for i, s in enumerate(inp.active)]


def _llf_keys(inp: _RuleInput) -> list[tuple[Any, ...]]:
    p = inp.problem
    t0 = p.grid.start.value + inp.t * p.grid.step_s * 1_000_000_000
    dep = _departure_ns(inp)
    peak_kw = p.pmax_kw[inp.active].max(axis=1)
    need_h = inp.remaining_kwh[inp.active] / peak_kw
    laxity_h = (dep - t0) / 3.6e12 - need_h
    return [(float(laxity_h[i]), int(dep[i]), int(s)) for i, s in enumerate(inp.active)]


def _incidence(inp: _RuleInput) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Load of every finite node row per A(-equivalent) of each active session.

    Returns ``A`` (K, n) load per A, ``b`` (K,) residual capacity, and kW per A (n,).
    """
    p = inp.problem
    kpa = _kw_per_a_equivalent(p)[inp.active]
    resid = inp.slot.resid
    N = resid.shape[0]
    A = np.zeros((N * 4, len(inp.active)))
    for i, s in enumerate(inp.active):
        nodes = p.path[s][p.path[s] >= 0]
        for r in np.flatnonzero(p.coef[s] > 0.0):
            A[nodes * 4 + r, i] = p.coef[s, r] * kpa[i]
    b = resid.reshape(-1)
    finite = np.isfinite(b) & (A > 0.0).any(axis=1)
    return A[finite], b[finite], kpa


def _water_fill(A: np.ndarray, b: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Progressive filling: the max-min fair levels ``y`` with ``A @ y <= b``, ``y <= hi``."""
    n = len(hi)
    y = np.zeros(n)
    free = hi > 0.0
    for _ in range(n + len(b) + 1):
        if not free.any():
            break
        slope = A[:, free].sum(axis=1)
        slack = b - A @ y
        grow = slope > 0.0
        d_rows = np.min(slack[grow] / slope[grow]) if grow.any() else np.inf
        d = max(min(d_rows, float(np.min(hi[free] - y[free]))), 0.0)
        y[free] += d
        # freeze EVs at their limit and EVs under a saturated node row
        free &= y < hi - 1e-9
        full = grow & (slack - d * slope <= 1e-9 * np.maximum(1.0, np.abs(b)))
        if full.any():
            free &= ~(A[full] > 0.0).any(axis=0)
    return y


def _rule_equal_share(inp: _RuleInput) -> np.ndarray:
    A, b, kpa = _incidence(inp)
    unit = _unit_kw(inp.problem)[inp.active]
    hi = inp.hi_kw / kpa
    arrival = _arrival_ns(inp)
    keep = np.ones(len(inp.active), dtype=bool)
    while True:
        y = np.where(keep, _water_fill(A * keep, b, np.where(keep, hi, 0.0)), 0.0)
        x = _floor_units(y * kpa, unit)
        short = keep & (x < inp.lo_kw - 1e-9)
        if not short.any():
            return np.where(keep, x, 0.0)
        # leave out the EV that arrived last among those below their minimum
        cand = np.flatnonzero(short)
        drop = cand[np.lexsort((inp.active[cand], arrival[cand]))[-1]]
        keep[drop] = False


def _round_robin_rule(increment_a: float) -> Rule:
    def rule(inp: _RuleInput) -> np.ndarray:
        p = inp.problem
        A, b, kpa = _incidence(inp)
        n = len(inp.active)
        hi = inp.hi_kw / kpa
        lo = inp.lo_kw / kpa
        arrival = _arrival_ns(inp)
        order = list(np.lexsort((inp.active, arrival)))
        slot_index = (p.grid.start.value // 1_000_000_000) // p.grid.step_s + inp.t
        k = int(slot_index % n)
        order = order[k:] + order[:k]
        y = np.zeros(n)
        load = np.zeros(len(b))
        queue: list[int] = []
        for i in order:  # minimum current first, in queue order
            if np.all(load + A[:, i] * lo[i] <= b + 1e-9):
                y[i] = lo[i]
                load += A[:, i] * lo[i]
                queue.append(i)
        while queue:
            q = np.array(queue)
            # whole rounds in which every EV in the queue gets its increment
            steps_ev = np.floor((hi[q] - y[q]) / increment_a + 1e-9)
            slope = A[:, q].sum(axis=1) * increment_a
            grow = slope > 0.0
            steps_rows = np.floor((b[grow] - load[grow]) / slope[grow] + 1e-9) if grow.any() else []
            m = int(min(steps_ev.min(), np.min(steps_rows) if len(steps_rows) else np.inf))
            if m > 0:
                y[q] += m * increment_a
                load += slope * m
            # then one round EV by EV: an EV whose increment does not fit leaves the queue
            nxt = []
            for i in queue:
                inc = min(increment_a, hi[i] - y[i])
                if inc > 1e-9 and np.all(load + A[:, i] * inc <= b + 1e-9):
                    y[i] += inc
                    load += A[:, i] * inc
                    nxt.append(i)
            queue = nxt
        return _floor_units(y * kpa, _unit_kw(p)[inp.active])

    return rule


# -- plan assembly ----------------------------------------------------------------------


def _baseline_plan(
    name: str,
    rule: Rule,
    site: Site,
    sessions: Sequence[Session],
    *,
    start: pd.Timestamp | str,
    horizon: Duration,
    step: Duration,
    tariff: Tariff | None,
    forecast: Forecast | None,
    respect_limits: bool,
    check: bool,
    reuse: bool = True,
) -> Plan:
    t0 = time.perf_counter()
    sessions = session_list(sessions, name)
    grid = validate(
        site, sessions, start=start, horizon=horizon, step=step, tariff=tariff, forecast=forecast
    )
    problem = build_problem(site, sessions, grid, tariff, forecast)
    t1 = time.perf_counter()
    rate = _rollout(problem, sessions, rule, respect_limits=respect_limits, reuse=reuse)
    rate, current = round_rates(problem, rate)
    t2 = time.perf_counter()
    report = SolverReport(
        method=name,
        requested=name,
        status="heuristic",
        reason="baseline" + ("" if respect_limits else " (ignores site limits)"),
        solve_time_s=t2 - t1,
        build_time_s=t1 - t0,
    )
    plan = Plan(
        site=site,
        sessions=sessions,
        grid=grid,
        problem=problem,
        rate_kw=rate,
        current_a=current,
        report=report,
        tariff=tariff,
        forecast=forecast,
    )
    if check:
        violations = plan.violations()
        plan.report = SolverReport(
            method=name,
            requested=name,
            status="heuristic",
            reason=report.reason,
            solve_time_s=report.solve_time_s,
            build_time_s=report.build_time_s,
            check_time_s=time.perf_counter() - t2,
        )
        if violations:
            raise LimitViolationError(violations)
    return plan


def uncontrolled(
    site: Site,
    sessions: Sequence[Session],
    *,
    start: pd.Timestamp | str,
    horizon: Duration = "24h",
    step: Duration = "15min",
    tariff: Tariff | None = None,
    forecast: Forecast | None = None,
) -> Plan:
    """Charge every EV at its maximum rate from plug-in until its request is delivered.

    Node limits are ignored, so the plan may break them; it is **not** checked (the
    checker would raise). Call :meth:`Plan.violations` to list what it breaks.

    Parameters
    ----------
    site, sessions, start, horizon, step, tariff, forecast
        As for :func:`chargeplan.optimize`.

    Returns
    -------
    Plan
        Rates at each EV's maximum (0.1 A grid), the last slot reduced to the energy left.
    """
    return _baseline_plan(
        "uncontrolled",
        _rule_max,
        site,
        sessions,
        start=start,
        horizon=horizon,
        step=step,
        tariff=tariff,
        forecast=forecast,
        respect_limits=False,
        check=False,
    )


def equal_share(
    site: Site,
    sessions: Sequence[Session],
    *,
    start: pd.Timestamp | str,
    horizon: Duration = "24h",
    step: Duration = "15min",
    tariff: Tariff | None = None,
    forecast: Forecast | None = None,
    check: bool = True,
) -> Plan:
    """Share capacity equally (water-filling) among the EVs present, slot by slot.

    Parameters
    ----------
    site, sessions, start, horizon, step, tariff, forecast
        As for :func:`chargeplan.optimize`.
    check : bool, default True
        Verify the plan with the independent checker (raise if it breaks a limit).

    Returns
    -------
    Plan

    Raises
    ------
    LimitViolationError
        If ``check`` and the plan breaks a limit (a bug).

    Examples
    --------
    Three EVs behind a 32 A feeder get 32/3 = 10.67 A each, rounded down to 10.6 A:

    >>> import pandas as pd, chargeplan as cp
    >>> from chargeplan.baselines import equal_share
    >>> t0 = pd.Timestamp("2024-01-01 08:00", tz="UTC")
    >>> site = cp.Site(nodes=[cp.Node("grid", limit_a=32)],
    ...                evses=[cp.Evse(f"cp{i}", parent="grid", max_current_a=32, phases=1)
    ...                       for i in range(3)])
    >>> evs = [cp.Session(f"s{i}", evse=f"cp{i}", arrival=t0, departure=t0 + pd.Timedelta("8h"),
    ...                   energy_kwh=20) for i in range(3)]
    >>> plan = equal_share(site, evs, start=t0, horizon="1h", step="15min")
    >>> plan.current_a.iloc[0].tolist()
    [10.6, 10.6, 10.6]
    """
    return _baseline_plan(
        "equal_share",
        _rule_equal_share,
        site,
        sessions,
        start=start,
        horizon=horizon,
        step=step,
        tariff=tariff,
        forecast=forecast,
        respect_limits=True,
        check=check,
    )


def earliest_deadline_first(
    site: Site,
    sessions: Sequence[Session],
    *,
    start: pd.Timestamp | str,
    horizon: Duration = "24h",
    step: Duration = "15min",
    tariff: Tariff | None = None,
    forecast: Forecast | None = None,
    check: bool = True,
) -> Plan:
    """Serve EVs in order of departure, each as much as limits allow, slot by slot.

    Ties go to the earlier arrival, then to the input order.

    Parameters
    ----------
    site, sessions, start, horizon, step, tariff, forecast
        As for :func:`chargeplan.optimize`.
    check : bool, default True
        Verify the plan with the independent checker (raise if it breaks a limit).

    Returns
    -------
    Plan

    Raises
    ------
    LimitViolationError
        If ``check`` and the plan breaks a limit (a bug).
    """
    return _baseline_plan(
        "edf",
        _rule_ordered(_edf_keys),
        site,
        sessions,
        start=start,
        horizon=horizon,
        step=step,
        tariff=tariff,
        forecast=forecast,
        respect_limits=True,
        check=check,
    )


def least_laxity_first(
    site: Site,
    sessions: Sequence[Session],
    *,
    start: pd.Timestamp | str,
    horizon: Duration = "24h",
    step: Duration = "15min",
    tariff: Tariff | None = None,
    forecast: Forecast | None = None,
    check: bool = True,
) -> Plan:
    """Serve EVs in order of laxity, each as much as limits allow, slot by slot.

    Laxity at the start of a slot is the time left until departure minus the time
    the remaining energy needs at the EV's maximum rate (in hours). Ties go to the
    earlier departure, then to the input order.

    Parameters
    ----------
    site, sessions, start, horizon, step, tariff, forecast
        As for :func:`chargeplan.optimize`.
    check : bool, default True
        Verify the plan with the independent checker (raise if it breaks a limit).

    Returns
    -------
    Plan

    Raises
    ------
    LimitViolationError
        If ``check`` and the plan breaks a limit (a bug).
    """
    return _baseline_plan(
        "llf",
        _rule_ordered(_llf_keys),
        site,
        sessions,
        start=start,
        horizon=horizon,
        step=step,
        tariff=tariff,
        forecast=forecast,
        respect_limits=True,
        check=check,
        reuse=False,  # laxity changes as energy is delivered
    )


def round_robin(
    site: Site,
    sessions: Sequence[Session],
    *,
    start: pd.Timestamp | str,
    horizon: Duration = "24h",
    step: Duration = "15min",
    tariff: Tariff | None = None,
    forecast: Forecast | None = None,
    increment_a: float = 1.0,
    check: bool = True,
) -> Plan:
    """Give EVs current one increment at a time, in a queue rotating every slot.

    Parameters
    ----------
    site, sessions, start, horizon, step, tariff, forecast
        As for :func:`chargeplan.optimize`.
    increment_a : float, default 1.0
        Current added per turn, in A (a DC EV gets the same per-phase equivalent).
    check : bool, default True
        Verify the plan with the independent checker (raise if it breaks a limit).

    Returns
    -------
    Plan

    Raises
    ------
    LimitViolationError
        If ``check`` and the plan breaks a limit (a bug).
    ValueError
        If ``increment_a`` is not positive.
    """
    if not increment_a > 0:
        raise ValueError(
            f"The 'increment_a' parameter of round_robin must be > 0. Got {increment_a!r} instead."
        )
    return _baseline_plan(
        "round_robin",
        _round_robin_rule(float(increment_a)),
        site,
        sessions,
        start=start,
        horizon=horizon,
        step=step,
        tariff=tariff,
        forecast=forecast,
        respect_limits=True,
        check=check,
        reuse=False,  # the queue rotates every slot
    )


#: Baselines by name, as accepted by ``simulate(strategy=...)``.
BASELINES: dict[str, Callable[..., Plan]] = {
    "uncontrolled": uncontrolled,
    "equal_share": equal_share,
    "edf": earliest_deadline_first,
    "llf": least_laxity_first,
    "round_robin": round_robin,
}

#: Names of the baselines that keep every limit (0 violations).
LIMIT_AWARE_BASELINES: tuple[str, ...] = ("equal_share", "edf", "llf", "round_robin")
