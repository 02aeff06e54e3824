"""optimize(): the one-call wrapper from inputs to a verified :class:`~chargeplan.plan.Plan`."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from .exceptions import InputError, LimitViolationError, Problem
from .model import Forecast, Session, Site, Tariff, V2GBid
from .plan import Plan
from .problem import ProblemArrays, build_problem
from .rounding import finalize_rates
from .solvers import METHODS, SolverReport, solve
from .timegrid import TimeGrid
from .validation import session_list, validate

__all__ = ["optimize", "verified_plan"]


def optimize(
    site: Site,
    sessions: Sequence[Session],
    *,
    start: pd.Timestamp | str,
    horizon: str | pd.Timedelta | int = "24h",
    step: str | pd.Timedelta | int = "15min",
    tariff: Tariff | None = None,
    forecast: Forecast | None = None,
    v2g_bids: Sequence[V2GBid] | None = None,
    method: str = "auto",
    time_limit_s: float | None = None,
    customize: Callable[[Any], Any] | None = None,
    cvxpy_options: dict[str, Any] | None = None,
    delay_cost_per_kwh_h: float = 0.0,
) -> Plan:
    """Plan charging for every session on a site; the plan is verified before it is returned.

    Parameters
    ----------
    site : Site
        The electrical tree and its EVSEs.
    sessions : sequence of Session
        EVs plugged in or expected. Sessions outside the horizon get no energy.
    start : pandas.Timestamp or str
        Start of the first slot; must be time-zone aware.
    horizon : str, pandas.Timedelta or int, default "24h"
        Length of the plan (int = seconds); a whole number of steps.
    step : str, pandas.Timedelta or int, default "15min"
        Slot length (int = seconds); a whole number of seconds.
    tariff : Tariff, optional
        Import/export prices; without one every slot costs the same and the planner
        charges as early as capacity allows.
    forecast : Forecast, optional
        PV generation and base load at the grid connection.
    v2g_bids : sequence of V2GBid, optional
        Offers paying for discharge from V2G sessions.
    method : {"auto", "greedy", "lp", "milp", "cvxpy"}, default "auto"
        Solver; see :mod:`chargeplan.solvers` for the ``"auto"`` policy.
    time_limit_s : float, optional
        Time limit for each HiGHS run; on timeout ``"auto"`` falls back to greedy.
    customize : callable, optional
        ``customize(model)`` receives the :class:`~chargeplan.solvers.custom.CvxpyModel`
        and may add objective terms (``model.objective += ...``) and constraints
        (``model.constraints.append(...)``); implies ``method="cvxpy"`` (optional
        extra ``chargeplan[cvxpy]``). Energy lost to rounding is then not topped up,
        so the user's constraints on charging keep holding (rounding a discharge toward
        zero can raise the site import by up to 0.1 A per discharging EV).
    cvxpy_options : dict, optional
        Passed to :func:`chargeplan.solvers.custom.solve_cvxpy` (e.g. ``solver``).
    delay_cost_per_kwh_h : float, default 0
        Objective cost (currency per kWh per hour) of charging later: each kWh charged
        ``h`` hours after ``start`` counts ``h * delay_cost_per_kwh_h`` more in what the
        solver minimises, never in the reported costs. Use a small value (e.g. 0.01-0.03
        EUR/kWh/h) when departures are the drivers' estimates: energy delivered earlier
        is not lost when an EV leaves early. 0 = pure cost minimisation.

    Returns
    -------
    Plan
        A plan that has passed the independent checker.

    Raises
    ------
    InputError
        Listing every problem in the input, each with its field path.
    LimitViolationError
        If a solver produced a plan that breaks a limit (a bug; never returned).

    Examples
    --------
    >>> import pandas as pd, chargeplan as cp
    >>> t0 = pd.Timestamp("2024-01-01 08:00", tz="Europe/Amsterdam")
    >>> site = cp.Site(nodes=[cp.Node("grid", limit_a=32)],
    ...                evses=[cp.Evse("cp1", parent="grid", max_current_a=32)])
    >>> s = cp.Session("s1", evse="cp1", arrival=t0, departure=t0 + pd.Timedelta("4h"),
    ...                energy_kwh=10)
    >>> plan = cp.optimize(site, [s], start=t0, horizon="4h", step="15min")
    >>> round(plan.sessions.loc["s1", "delivered_kwh"], 3)
    10.0
    """
    if method not in METHODS:
        raise InputError(
            [
                Problem(
                    "optimize.method",
                    f"The 'method' parameter of optimize must be "
                    f"one of {METHODS}. Got {method!r} instead.",
                    method,
                )
            ]
        )
    t0 = time.perf_counter()
    sessions = session_list(sessions)
    # parameter problems are reported together with the inputs' (one InputError)
    bad = time_limit_problems(time_limit_s, "optimize")
    bad += delay_cost_problems(delay_cost_per_kwh_h, "optimize")
    try:
        grid = validate(
            site,
            sessions,
            start=start,
            horizon=horizon,
            step=step,
            tariff=tariff,
            forecast=forecast,
            v2g_bids=v2g_bids,
        )
    except InputError as e:
        raise InputError(e.problems + bad) from None
    if bad:
        raise InputError(bad)
    bids = [] if v2g_bids is None else list(v2g_bids)
    problem = build_problem(site, sessions, grid, tariff, forecast, bids)
    t_build = time.perf_counter() - t0
    rate, report = solve(
        problem,
        method,
        time_limit_s=time_limit_s,
        customize=customize,
        cvxpy_options=cvxpy_options,
        delay_cost_per_kwh_h=float(delay_cost_per_kwh_h),
    )
    return verified_plan(
        site,
        sessions,
        grid,
        problem,
        rate,
        report,
        tariff=tariff,
        forecast=forecast,
        v2g_bids=bids,
        give_back=customize is None,
        build_time_s=t_build,
    )


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def time_limit_problems(value: Any, caller: str) -> list[Problem]:
    """Problems with a ``time_limit_s`` parameter (None, or a number > 0; inf = none)."""
    if value is None or (_is_real(value) and value > 0):
        return []
    return [
        Problem(
            f"{caller}.time_limit_s",
            f"The 'time_limit_s' parameter of {caller} must be > 0. Got {value!r} instead.",
            value,
        )
    ]


def delay_cost_problems(value: Any, caller: str) -> list[Problem]:
    """Problems with a ``delay_cost_per_kwh_h`` parameter (a finite number >= 0)."""
    if _is_real(value) and math.isfinite(value) and value >= 0:
        return []
    return [
        Problem(
            f"{caller}.delay_cost_per_kwh_h",
            f"The 'delay_cost_per_kwh_h' parameter of {caller} must be a finite "
            f"number >= 0. Got {value!r} instead.",
            value,
        )
    ]


def verified_plan(
    site: Site,
    sessions: Sequence[Session],
    grid: TimeGrid,
    problem: ProblemArrays,
    rate_kw: np.ndarray,
    report: SolverReport,
    *,
    tariff: Tariff | None = None,
    forecast: Forecast | None = None,
    v2g_bids: Sequence[V2GBid] = (),
    give_back: bool = True,
    build_time_s: float = 0.0,
) -> Plan:
    """Round solver rates, build the :class:`Plan` and run the independent checker.

    Raises
    ------
    LimitViolationError
        If the plan breaks a limit: it is never returned.
    """
    rate, current = finalize_rates(problem, rate_kw, give_back=give_back)
    t1 = time.perf_counter()
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
        v2g_bids=v2g_bids,
    )
    violations = plan.violations()
    plan.report = replace(report, build_time_s=build_time_s, check_time_s=time.perf_counter() - t1)
    if violations:
        raise LimitViolationError(violations)
    return plan
