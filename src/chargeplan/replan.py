"""Re-planning on events with a warm HiGHS model (for CSMS backends).

:class:`Replanner` holds the inputs of one site on a fixed time grid and re-plans
after each event (arrival, departure, new energy request, new limits, new prices),
reusing the loaded HiGHS model and its basis (see :mod:`chargeplan.solvers.warm`).
Every plan goes through the same rounding and independent checker as
:func:`chargeplan.optimize`.

When the grid moves on (a new ``start``), build a new Replanner: the time axis is
part of the model.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import numpy as np

from .exceptions import InputError, Problem
from .model import Forecast, Session, Site, Tariff
from .plan import Plan
from .problem import build_problem
from .solvers import SolverReport, repair_min_current, with_delay_cost
from .timegrid import TimeGrid
from .validation import check_session, session_list, validate

__all__ = ["Replanner"]


class Replanner:
    """Plan one site again and again on a fixed grid, warm-starting HiGHS.

    Parameters
    ----------
    site : Site
    sessions : iterable of Session, optional
        Sessions known now.
    start, horizon, step
        The time grid, as for :func:`chargeplan.optimize`; fixed for this object.
    tariff : Tariff, optional
    forecast : Forecast, optional
    time_limit_s : float, optional
        HiGHS time limit per run.
    delay_cost_per_kwh_h : float, default 0
        Objective cost of charging later, as for :func:`chargeplan.optimize`; counted
        from ``start``, the fixed start of this object's grid.

    Notes
    -----
    The warm path solves the LP relaxation and repairs the min-current rule greedily
    (as ``method="lp"`` without V2G). Problems with V2G sessions are planned cold
    with ``optimize(method="lp")``.

    Examples
    --------
    >>> rp = Replanner(site, sessions, start=t0, horizon="24h", step="15min",
    ...                tariff=tariff)                                    # doctest: +SKIP
    >>> plan = rp.plan()                                                 # doctest: +SKIP
    >>> rp.add_session(new_session); plan = rp.plan()    # warm re-solve # doctest: +SKIP
    """

    def __init__(
        self,
        site: Site,
        sessions: Iterable[Session] = (),
        *,
        start: Any,
        horizon: Any = "24h",
        step: Any = "15min",
        tariff: Tariff | None = None,
        forecast: Forecast | None = None,
        time_limit_s: float | None = None,
        delay_cost_per_kwh_h: float = 0.0,
    ) -> None:
        from .api import delay_cost_problems, time_limit_problems
        from .solvers.warm import LpSession

        self.site = site
        self.start, self.horizon, self.step = start, horizon, step
        self.tariff = tariff
        self.forecast = forecast
        self._sessions: dict[str, Session] = {}
        self._codes: dict[str, int] = {}
        self._code_counter = -1
        bad = time_limit_problems(time_limit_s, "Replanner")
        bad += delay_cost_problems(delay_cost_per_kwh_h, "Replanner")
        initial = session_list(sessions, "Replanner")
        try:
            self.grid = validate(
                site,
                initial,
                start=start,
                horizon=horizon,
                step=step,
                tariff=tariff,
                forecast=forecast,
            )
        except InputError as e:
            raise InputError(e.problems + bad) from None
        if bad:
            raise InputError(bad)
        self.delay_cost_per_kwh_h = float(delay_cost_per_kwh_h)
        self._lp = LpSession(time_limit_s)
        self._prices_changed = False
        self._site_changed = False
        for s in initial:  # valid: distinct ids
            self._sessions[s.id] = s
            self._codes[s.id] = self._next_code()

    # -- events ------------------------------------------------------------------------
    @property
    def sessions(self) -> list[Session]:
        """Sessions currently planned, in the order they were added."""
        return list(self._sessions.values())

    def add_session(self, session: Session) -> None:
        """Add a session: an EV arrived (or a session was announced).

        Raises
        ------
        InputError
            If the session is not valid on this site (see
            :func:`~chargeplan.validation.check_session`) or is already planned; the
            Replanner is then left as it was.
        """
        check_session(self.site, session, self.sessions)
        if session.id in self._sessions:
            raise InputError(
                [
                    Problem(
                        "session.id",
                        f"Session {session.id!r} is already planned; use update_session.",
                        session.id,
                    )
                ]
            )
        self._sessions[session.id] = session
        # always a new code: under an id removed since the last plan, the loaded model
        # may still hold the old session's columns, with its EVSE's coefficients
        self._codes[session.id] = self._next_code()

    def update_session(self, session: Session) -> None:
        """Replace a session with new information (energy, departure, EV limits).

        Raises
        ------
        InputError
            As :meth:`add_session`, or if no session has its id.
        """
        check_session(self.site, session, self.sessions)
        if session.id not in self._sessions:
            raise InputError(
                [Problem("session.id", f"Unknown session {session.id!r}.", session.id)]
            )
        self._sessions[session.id] = session
        # a new code: the old columns are relaxed and new ones added (coefficients of a
        # session never change under one code, so the warm start needs no check)
        self._codes[session.id] = self._next_code()

    def _next_code(self) -> int:
        self._code_counter += 1
        return self._code_counter

    def remove_session(self, session_id: str) -> None:
        """Remove a session: the EV left."""
        if not isinstance(session_id, str) or self._sessions.pop(session_id, None) is None:
            raise InputError(
                [Problem("session_id", f"Unknown session {session_id!r}.", session_id)]
            )

    def set_tariff(self, tariff: Tariff) -> None:
        """Set new prices; the next plan is solved cold (a hot start after it is slow)."""
        self._validate(tariff=tariff)
        self.tariff = tariff
        self._prices_changed = True

    def set_site(self, site: Site) -> None:
        """Set a new site: typically new limits; EVSEs in use must stay.

        Changes beyond the limits (voltage, wiring, phase rotation, parents) are allowed
        too: the next plan compares the loaded LP's coefficients with the new ones and
        solves cold where they changed.
        """
        self._validate(site=site)
        self.site = site
        self._site_changed = True

    def set_forecast(self, forecast: Forecast | None) -> None:
        """Set a new PV / base load forecast."""
        self._validate(forecast=forecast)
        self.forecast = forecast

    def _validate(self, **changed: Any) -> TimeGrid:
        """:func:`validate` the inputs with ``changed`` in place (InputError if bad)."""
        kw = dict(site=self.site, tariff=self.tariff, forecast=self.forecast) | changed
        return validate(
            kw.pop("site"),
            self.sessions,
            start=self.start,
            horizon=self.horizon,
            step=self.step,
            **kw,
        )

    # -- planning ----------------------------------------------------------------------
    def plan(self) -> Plan:
        """Plan with the current inputs; warm-start HiGHS from the previous plan.

        Returns
        -------
        Plan
            Verified by the independent checker; ``plan.report.info["warm"]`` tells
            whether the solve was warm and why not.

        Raises
        ------
        InputError, LimitViolationError, SolverError
            As :func:`chargeplan.optimize`.
        """
        from .api import optimize, verified_plan

        sessions = self.sessions
        t0 = time.perf_counter()
        grid = self._validate()
        problem = build_problem(self.site, sessions, grid, self.tariff, self.forecast)
        if problem.has_v2g:
            return optimize(
                self.site,
                sessions,
                start=self.start,
                horizon=self.horizon,
                step=self.step,
                tariff=self.tariff,
                forecast=self.forecast,
                method="lp",
                time_limit_s=self._lp.time_limit_s,
                delay_cost_per_kwh_h=self.delay_cost_per_kwh_h,
            )
        t_build = time.perf_counter() - t0
        codes = np.array([self._codes[s.id] for s in sessions], dtype=np.int64)
        t1 = time.perf_counter()
        # the solver sees the delay cost in its prices; the plan reports the tariff's
        priced = with_delay_cost(problem, self.delay_cost_per_kwh_h)
        # a session's coefficients never change under one code, unless the site did
        rate, info = self._lp.solve(
            priced, codes, prices_changed=self._prices_changed, verify=self._site_changed
        )
        self._prices_changed = False
        self._site_changed = False
        rate, info["repaired_cells"] = repair_min_current(priced, rate)
        report = SolverReport(
            method="lp",
            requested="lp",
            status="repaired" if info["repaired_cells"] else "optimal",
            reason=f"Replanner: {info['reason']}",
            solve_time_s=time.perf_counter() - t1,
            info=info,
        )
        return verified_plan(
            self.site,
            sessions,
            grid,
            problem,
            rate,
            report,
            tariff=self.tariff,
            forecast=self.forecast,
            build_time_s=t_build,
        )
