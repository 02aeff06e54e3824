"""Receding-horizon simulation: replay sessions on a site as a CSMS would, and score strategies.

:func:`simulate` walks through time from ``start`` to ``end``. At every *decision
time* it calls the strategy with only what a charging station management system
knows then, applies the resulting plan until the next decision time, and lets each EV
draw what it physically can. Decision times are:

* ``start``, and every ``replan_every`` after it;
* an arrival (plug-in) and a departure (plug-out), at their true times;
* the expected departure of an EV still plugged in (the CSMS scheduled the end of its
  profile then);
* an EV stopping to draw because its battery is full (``observe_full=True``: the
  station reports it, as OCPP's ``SuspendedEV`` does).

What the strategy is told (``knowledge``)
    Only the EVs plugged in at that moment (no future arrivals). With
    ``"estimated"`` (default) each comes with the driver's expected departure and
    requested energy, minus what it has received so far; with ``"perfect"`` with its
    true departure and its true (physical) remaining demand. An EV still plugged in
    after its expected departure is announced as leaving ``replan_every`` from now (or
    one ``step`` when re-planning only on events). EVs with nothing left to receive
    (request met, or seen full) are not announced, except V2G sessions that describe
    their battery: they are announced with their state of charge moved by what they
    received (net of what they gave back) while they hold energy above the driver's
    reserve, so a plan can still discharge them (``v2g_bids``, export prices). A
    remaining request smaller than what the EV's minimum current gives in one slot is
    announced as that amount: a station cannot be told less, and the EV stops by
    itself when full (so an EV may receive up to that much more than its driver asked
    for). Prices and forecasts are passed as given (perfect price and PV forecasts).

What the EV does (the physical truth)
    In each slot it draws the rate the plan allows, until its own demand
    (:attr:`SimSession.demand_kwh`) is met; then it draws nothing even if allowed. So
    capacity allocated to a full EV is wasted (reported as
    ``unused_allocation_kwh``). An EV leaves at its true departure, whatever it was
    announced as.

Accounting
    Energy is integrated exactly over the piecewise-constant draws: each applied piece
    records its allowed and drawn power. Site import is base load minus PV plus EV
    power (the forecast is taken as the actual). Limit violations are found by the
    independent checker (:func:`chargeplan.check.check_plan`) on the slots of every
    plan that were actually applied; they are counted, never raised, so a strategy
    that ignores limits (the ``"uncontrolled"`` baseline) can be scored too. (Energy
    above the request on the applied slots counts only if the whole plan ends above
    it: a V2G session may hold more mid-plan, to give it back later.) V2G bids pay
    for the discharge the EVs really gave (``v2g_revenue``). A session's delivered
    energy is what its battery received: a discharge takes ``1 / round_trip_efficiency``
    times its energy at the meter out of it, as the planner counts it.
"""

from __future__ import annotations

import functools
import math
import time
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from .baselines import BASELINES
from .check import TOL, check_plan
from .exceptions import InputError, Problem
from .model import Forecast, Session, Site, Tariff, V2GBid
from .plan import SERVED_TOL_KWH, Plan
from .problem import evse_phase_weights
from .timegrid import TimeGrid, align_series, series_coverage, to_timedelta
from .validation import MAX_CELLS, _is_number, session_list, validate

__all__ = [
    "SimSession",
    "SimulationResult",
    "Strategy",
    "simulate",
    "compare",
    "kpi_table",
    "acn_sim_sessions",
    "KPI_COLUMNS",
    "KNOWLEDGE",
    "MAX_SIM_STEPS",
]

#: A strategy: called like :func:`chargeplan.optimize` (without ``method``), returns a Plan.
Strategy = Callable[..., Plan]

#: Accepted values of ``simulate(knowledge=...)``.
KNOWLEDGE: tuple[str, ...] = ("estimated", "perfect")

#: Columns of :attr:`SimulationResult.kpis` / :func:`kpi_table`, in order.
KPI_COLUMNS: tuple[str, ...] = (
    "sessions",
    "requested_kwh",
    "demand_kwh",
    "delivered_kwh",
    "share_delivered_vs_requested",
    "share_delivered_vs_demand",
    "share_sessions_served",
    "energy_cost",
    "demand_charge",
    "total_cost",
    "peak_import_kw",
    "limit_violations",
    "violation_time_h",
    "unused_allocation_kwh",
    "replans",
    "latency_median_ms",
    "latency_p95_ms",
    "latency_max_ms",
    "v2g_discharged_kwh",
    "v2g_revenue",
)

#: Most steps of one simulated period, ``(end - start) / step`` (a year at 1 min is
#: 525 600), and most periodic re-plans, ``(end - start) / replan_every``.
MAX_SIM_STEPS = 1_000_000

_NS_PER_H = 3.6e12
_NS_PER_S = 1_000_000_000
_TOL_KWH = 1e-9


@dataclass(frozen=True)
class SimSession:
    """A session to replay: what the CSMS is told, and what the EV really does.

    Parameters
    ----------
    session : Session
        What the strategy is told: EVSE, arrival (known at plug-in), EV limits, the
        driver's *expected* departure as ``departure`` and the driver's *requested*
        energy. The expected departure may be before the arrival (bad driver input):
        the simulator then treats the EV as leaving soon (see :func:`simulate`).
    departure_actual : pandas.Timestamp, optional
        When the EV really leaves (default: ``session.departure``).
    demand_kwh : float, optional
        Energy the EV physically takes before it stops drawing (battery full), in kWh
        (default: the session's requested energy). In ACN-Data this is the
        ``delivered_energy_kwh`` of the session.

    Examples
    --------
    >>> import pandas as pd, chargeplan as cp
    >>> from chargeplan.simulate import SimSession
    >>> t0 = pd.Timestamp("2024-01-01 08:00", tz="UTC")
    >>> told = cp.Session("s1", evse="cp1", arrival=t0, departure=t0 + pd.Timedelta("8h"),
    ...                   energy_kwh=30)
    >>> ev = SimSession(told, departure_actual=t0 + pd.Timedelta("6h"), demand_kwh=12.5)
    >>> ev.departure_true, ev.demand_true_kwh
    (Timestamp('2024-01-01 14:00:00+0000', tz='UTC'), 12.5)
    """

    session: Session
    departure_actual: pd.Timestamp | None = None
    demand_kwh: float | None = None

    @property
    def id(self) -> str:
        """Session id."""
        return self.session.id

    @property
    def departure_true(self) -> pd.Timestamp:
        """True departure (``departure_actual``, else the announced one)."""
        dep = self.departure_actual if self.departure_actual is not None else self.session.departure
        return pd.Timestamp(dep)

    @property
    def demand_true_kwh(self) -> float:
        """Physical demand in kWh (``demand_kwh``, else the requested energy)."""
        if self.demand_kwh is not None:
            return float(self.demand_kwh)
        return self.session.requested_energy_kwh()


def acn_sim_sessions(df: pd.DataFrame, site: Site | None = None) -> list[SimSession]:
    """Turn ACN-Data rows into :class:`SimSession` objects for :func:`simulate`.

    The strategy is told the driver's input (``estimated_departure``,
    ``requested_energy_kwh``); the truth is the real departure and the energy the EV
    took (``delivered_energy_kwh``, its physical demand).

    Parameters
    ----------
    df : pandas.DataFrame
        Rows of :func:`chargeplan.datasets.load_acn_sessions`.
    site : Site, optional
        Sessions at stations that are not EVSEs of this site are dropped (default:
        :func:`chargeplan.datasets.caltech_site`).

    Returns
    -------
    list of SimSession
        In arrival order. As in :func:`chargeplan.datasets.acn_to_sessions`, a session
        overlapping an earlier one on the same EVSE starts at that one's departure (one
        left empty is dropped), and ``transaction_id`` is a CRC-32 of the session id.
    """
    if site is None:
        from .datasets import caltech_site

        site = caltech_site()
    known = {e.id for e in site.evses}
    busy_until: dict[str, pd.Timestamp] = {}
    out: list[SimSession] = []
    for row in df.sort_values("arrival").itertuples(index=False):
        if row.station_id not in known:
            continue
        arr = pd.Timestamp(row.arrival)
        dep = pd.Timestamp(row.departure)
        arr = max(arr, busy_until.get(row.station_id, arr))
        if dep <= arr:
            continue
        busy_until[row.station_id] = dep
        sid = str(row.session_id)
        told = Session(
            sid,
            evse=row.station_id,
            arrival=arr,
            departure=pd.Timestamp(row.estimated_departure),
            energy_kwh=float(row.requested_energy_kwh),
            transaction_id=zlib.crc32(sid.encode()) & 0x7FFFFFFF,
        )
        out.append(
            SimSession(told, departure_actual=dep, demand_kwh=float(row.delivered_energy_kwh))
        )
    return out


# -- step functions of time ------------------------------------------------------------------


class _Step:
    """A scalar or a step series as a function of int64 ns time, with its integral."""

    def __init__(self, value: float | pd.Series | None, default: float = 0.0) -> None:
        if isinstance(value, pd.Series):
            idx = pd.DatetimeIndex(value.index)
            self.t = idx.as_unit("ns").asi8
            self.v = np.asarray(value.to_numpy(), dtype=np.float64)
            seg = np.diff(self.t).astype(np.float64) * self.v[:-1] / _NS_PER_H
            self.cum = np.concatenate([[0.0], np.cumsum(seg)])  # integral up to t[i], in h
            self.scalar: float | None = None
        else:
            self.scalar = float(default if value is None else value)

    def points(self) -> np.ndarray:
        """Change points (ns)."""
        return np.zeros(0, dtype=np.int64) if self.scalar is not None else self.t

    def at(self, t_ns: np.ndarray) -> np.ndarray:
        """Value in force at each time."""
        t_ns = np.asarray(t_ns, dtype=np.int64)
        if self.scalar is not None:
            return np.full(t_ns.shape, self.scalar)
        i = np.clip(np.searchsorted(self.t, t_ns, side="right") - 1, 0, len(self.t) - 1)
        return self.v[i]

    def integral_h(self, a_ns: np.ndarray, b_ns: np.ndarray) -> np.ndarray:
        """Integral over ``[a, b)`` with time in hours (value x h)."""
        return self._cum(np.asarray(b_ns)) - self._cum(np.asarray(a_ns))

    def _cum(self, t_ns: np.ndarray) -> np.ndarray:
        if self.scalar is not None:
            return self.scalar * t_ns.astype(np.float64) / _NS_PER_H
        t_ns = t_ns.astype(np.int64)
        i = np.clip(np.searchsorted(self.t, t_ns, side="right") - 1, 0, len(self.t) - 1)
        return self.cum[i] + self.v[i] * (t_ns - self.t[i]).astype(np.float64) / _NS_PER_H


# -- result ------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SimulationResult:
    """What :func:`simulate` produced: per-session outcomes, applied power, decisions, KPIs.

    Attributes
    ----------
    strategy : str
        Name of the strategy.
    site : Site
    start, end : pandas.Timestamp
        Simulated period ``[start, end)``.
    step_s : int
        Slot length of the plans and of the regular-grid views, in seconds.
    knowledge : str
        ``"estimated"`` or ``"perfect"``.
    sessions : pandas.DataFrame
        One row per session (index: session id): ``evse``, ``arrival``,
        ``departure`` (true), ``departure_expected`` (announced), ``requested_kwh``,
        ``demand_kwh``, ``delivered_kwh`` (net energy into the battery),
        ``unmet_requested_kwh``, ``unmet_demand_kwh``, ``served`` (bool: delivered at
        least the smaller of request and demand, within ``SERVED_TOL_KWH``) and
        ``energy_cost`` (the session's energy at the import price when drawn).
    intervals : pandas.DataFrame
        One row per applied piece and session: ``start``, ``end``, ``session``,
        ``evse``, ``allowed_kw`` (the plan's rate), ``power_kw`` (mean power drawn),
        ``energy_kwh``.
    decisions : pandas.DataFrame
        One row per strategy call: ``time``, ``trigger`` (why: ``start``,
        ``arrival``, ``departure``, ``expected_departure``, ``ev_full``, ``replan``;
        several joined by ``+``), ``sessions`` announced, ``latency_ms``, ``method``
        (from the plan's report), ``applied_slots`` and ``violations``.
    violations : pandas.DataFrame
        One row per limit broken in an applied slot: ``decision_time``,
        ``slot_start``, ``kind``, ``where``, ``value``, ``limit``.
    site_import_kw : pandas.Series
        Mean site import per slot of ``step_s`` (base load - PV + EVs).
    power_kw : pandas.DataFrame
        Mean EV power per slot and EVSE (columns: EVSE ids).
    price_import_per_kwh : pandas.Series
        Mean import price per slot (0 without a tariff).
    capacity_kw : pandas.Series
        Capacity of the grid connection per slot in kW: the smaller of its kW limit and
        ``3 x voltage x`` its lowest phase limit (``inf`` when unlimited).
    energy_cost, demand_charge, v2g_revenue : float
        Site energy cost (import at import price minus export at export price, exact
        integral), demand charge and V2G revenue over the run.
    currency : str
    """

    strategy: str
    site: Site
    start: pd.Timestamp
    end: pd.Timestamp
    step_s: int
    knowledge: str
    sessions: pd.DataFrame
    intervals: pd.DataFrame
    decisions: pd.DataFrame
    violations: pd.DataFrame
    site_import_kw: pd.Series
    power_kw: pd.DataFrame
    price_import_per_kwh: pd.Series
    capacity_kw: pd.Series
    energy_cost: float
    demand_charge: float
    v2g_revenue: float
    currency: str = "EUR"

    def __repr__(self) -> str:
        k = self.kpis
        return (
            f"<SimulationResult {self.strategy!r} {self.start} .. {self.end}: "
            f"{int(k['sessions'])} sessions, delivered {k['delivered_kwh']:.2f} kWh "
            f"({k['share_delivered_vs_demand']:.1%} of demand), cost {k['total_cost']:.2f} "
            f"{self.currency}, {int(k['limit_violations'])} violations>"
        )

    @cached_property
    def kpis(self) -> pd.Series:
        """Headline numbers of the run (see :data:`KPI_COLUMNS`), named by the strategy.

        * ``share_delivered_vs_requested`` / ``_vs_demand``: total delivered over total
          requested by drivers / over total physical demand;
        * ``share_sessions_served``: share of sessions with ``served``;
        * ``energy_cost``, ``demand_charge`` and ``total_cost`` (their sum minus V2G
          revenue), in the tariff's currency;
        * ``peak_import_kw``: highest mean site import over a slot of ``step_s``;
        * ``limit_violations``: limits broken in applied slots (0 for a safe strategy),
          ``violation_time_h``: time during which at least one was broken;
        * ``unused_allocation_kwh``: energy allowed by the plans but not drawn;
        * ``replans`` and latency of the strategy calls (median, 95th percentile,
          max, in ms);
        * ``v2g_discharged_kwh`` and ``v2g_revenue``.
        """
        s = self.sessions
        iv = self.intervals
        req = float(s["requested_kwh"].sum())
        dem = float(s["demand_kwh"].sum())
        done = float(s["delivered_kwh"].sum())
        lat = self.decisions["latency_ms"].to_numpy(dtype=np.float64)
        dur_h = (iv["end"] - iv["start"]).dt.total_seconds().to_numpy() / 3600.0
        allowed = iv["allowed_kw"].to_numpy(dtype=np.float64)
        drawn = iv["power_kw"].to_numpy(dtype=np.float64)
        unused = float((np.maximum(allowed, 0.0) - np.maximum(drawn, 0.0)).clip(0.0) @ dur_h)
        discharged = float(np.maximum(-drawn, 0.0) @ dur_h)
        if len(self.violations):
            vt = self.violations.drop_duplicates(["decision_time", "slot_start"])
            viol_h = float(vt["duration_s"].sum()) / 3600.0
        else:
            viol_h = 0.0
        values = {
            "sessions": float(len(s)),
            "requested_kwh": req,
            "demand_kwh": dem,
            "delivered_kwh": done,
            "share_delivered_vs_requested": done / req if req > 0 else 1.0,
            "share_delivered_vs_demand": done / dem if dem > 0 else 1.0,
            "share_sessions_served": float(s["served"].mean()) if len(s) else 1.0,
            "energy_cost": self.energy_cost,
            "demand_charge": self.demand_charge,
            "total_cost": self.energy_cost + self.demand_charge - self.v2g_revenue,
            "peak_import_kw": float(self.site_import_kw.max()) if len(self.site_import_kw) else 0.0,
            "limit_violations": float(len(self.violations)),
            "violation_time_h": viol_h,
            "unused_allocation_kwh": unused,
            "replans": float(len(lat)),
            "latency_median_ms": float(np.median(lat)) if len(lat) else 0.0,
            "latency_p95_ms": float(np.percentile(lat, 95)) if len(lat) else 0.0,
            "latency_max_ms": float(lat.max()) if len(lat) else 0.0,
            "v2g_discharged_kwh": discharged,
            "v2g_revenue": self.v2g_revenue,
        }
        return pd.Series(values, name=self.strategy)[list(KPI_COLUMNS)]


def kpi_table(results: Iterable[SimulationResult]) -> pd.DataFrame:
    """KPIs of several runs as one DataFrame, one row per strategy.

    Parameters
    ----------
    results : iterable of SimulationResult

    Returns
    -------
    pandas.DataFrame
        Index: strategy name; columns: :data:`KPI_COLUMNS`.
    """
    rows = [r.kpis for r in results]
    table = pd.DataFrame(rows, columns=list(KPI_COLUMNS))
    table.index.name = "strategy"
    for col in ("sessions", "limit_violations", "replans"):
        table[col] = table[col].astype(np.int64)
    return table


# -- input handling ------------------------------------------------------------------


def _resolve_strategy(strategy: str | Strategy) -> tuple[str, Strategy]:
    if callable(strategy):
        return getattr(strategy, "__name__", type(strategy).__name__), strategy
    from .api import optimize
    from .solvers import METHODS

    if isinstance(strategy, str):
        if strategy in BASELINES:
            return strategy, BASELINES[strategy]
        if strategy in METHODS:
            return strategy, functools.partial(optimize, method=strategy)
    choices = tuple(METHODS) + tuple(BASELINES)
    raise InputError(
        [
            Problem(
                "simulate.strategy",
                f"The 'strategy' parameter of simulate must be one of {choices} or a "
                f"callable. Got {strategy!r} instead.",
                strategy,
            )
        ]
    )


def _param_error(name: str, constraint: str, value: Any) -> InputError:
    return InputError(
        [
            Problem(
                f"simulate.{name}",
                f"The '{name}' parameter of simulate must be {constraint}. Got {value!r} instead.",
                value,
            )
        ]
    )


def _series_in(
    site: Site, tariff: Tariff | None, forecast: Forecast | None
) -> list[pd.Series | pd.DataFrame]:
    out: list[Any] = []
    if tariff is not None:
        out += [tariff.import_price_per_kwh, tariff.export_price_per_kwh]
    if forecast is not None:
        out += [forecast.pv_kw, forecast.base_load_kw]
    for node in site.nodes:
        out += [node.limit_a, node.limit_kw]
    return [x for x in out if isinstance(x, (pd.Series, pd.DataFrame))]


def _coverage_end_ns(series: Sequence[pd.Series | pd.DataFrame]) -> float:
    end = math.inf
    for s in series:
        cov = series_coverage(s)  # type: ignore[arg-type]
        if cov is not None:
            end = min(end, float(cov[1].value))
    return end


# -- the simulator ---------------------------------------------------------------------


def simulate(
    site: Site,
    sessions: Sequence[Session | SimSession],
    *,
    start: pd.Timestamp | str,
    end: pd.Timestamp | str,
    strategy: str | Strategy = "greedy",
    step: str | pd.Timedelta | int = "5min",
    horizon: str | pd.Timedelta | int = "24h",
    replan_every: str | pd.Timedelta | int | None = "15min",
    tariff: Tariff | None = None,
    forecast: Forecast | None = None,
    v2g_bids: Sequence[V2GBid] | None = None,
    knowledge: str = "estimated",
    observe_full: bool = True,
    name: str | None = None,
    progress: bool = False,
) -> SimulationResult:
    """Replay sessions on a site, re-planning with a strategy as a CSMS would.

    See the module docstring for what the strategy is told, what the EVs do and how
    the run is accounted.

    Parameters
    ----------
    site : Site
        The site; its limits are what violations are counted against.
    sessions : sequence of SimSession or Session
        The EVs to replay. A plain :class:`~chargeplan.Session` is its own truth
        (departs when announced, takes what it requests). Sessions not overlapping
        ``[start, end)`` are ignored; an EV plugged in before ``start`` starts empty
        then.
    start, end : pandas.Timestamp or str
        Simulated period ``[start, end)`` (tz-aware). EVs still plugged in at ``end``
        are scored on what they received until then. At most ``MAX_SIM_STEPS``
        (1 000 000) steps long, and 20 million steps x EVSEs (``MAX_CELLS``).
    strategy : str or callable, default "greedy"
        A method of :func:`chargeplan.optimize` (``"greedy"``, ``"auto"``, ...), a
        baseline of :mod:`chargeplan.baselines` (``"uncontrolled"``,
        ``"equal_share"``, ``"edf"``, ``"llf"``, ``"round_robin"``), or a callable
        with the signature of ``optimize`` (``site, sessions, *, start, horizon, step,
        tariff, forecast``) returning a :class:`~chargeplan.Plan`.
    step : str, pandas.Timedelta or int, default "5min"
        Slot length of every plan and of the result's time series.
    horizon : str, pandas.Timedelta or int, default "24h"
        Planning horizon of every call, in whole steps (shortened near the end of the
        tariff, forecast or limit series when they end earlier).
    replan_every : str, pandas.Timedelta, int or None, default "15min"
        Periodic re-plan interval from ``start`` (at most ``MAX_SIM_STEPS`` re-plans
        in the period); ``None`` re-plans on events only.
    tariff, forecast : optional
        Passed to the strategy, and used to account cost and site import. Series must
        cover ``[start, end + step)``.
    v2g_bids : sequence of V2GBid, optional
        Offers to pay for discharge. At each decision the bids whose window overlaps
        the plan are passed to the strategy (``v2g_bids=``; a bid naming sessions keeps
        those announced then, and is left out when none is); the baselines never
        discharge and are not given them. The discharge the EVs really gave is paid as
        in :attr:`chargeplan.Plan.kpis`: within each bid's window, up to its
        ``max_discharge_kw``, highest price first (``v2g_revenue``).
    knowledge : {"estimated", "perfect"}, default "estimated"
        Whether the strategy is told the drivers' estimates or the truth.
    observe_full : bool, default True
        Re-plan when an EV stops drawing because it is full, and stop announcing it.
    name : str, optional
        Name of the run (default: the strategy name).
    progress : bool, default False
        Show a progress bar over simulated time (needs ``tqdm``).

    Returns
    -------
    SimulationResult

    Raises
    ------
    InputError
        For invalid parameters, sessions or site (every problem listed).
    ImportError
        If ``progress`` and ``tqdm`` is not installed.

    Examples
    --------
    >>> import pandas as pd, chargeplan as cp
    >>> from chargeplan.simulate import simulate
    >>> t0 = pd.Timestamp("2024-01-01 08:00", tz="UTC")
    >>> site = cp.Site(nodes=[cp.Node("grid", limit_a=32)],
    ...                evses=[cp.Evse("cp1", parent="grid", max_current_a=16, phases=1)])
    >>> ev = cp.Session("s1", evse="cp1", arrival=t0 + pd.Timedelta("10min"),
    ...                 departure=t0 + pd.Timedelta("3h"), energy_kwh=5)
    >>> res = simulate(site, [ev], start=t0, end=t0 + pd.Timedelta("4h"))
    >>> round(float(res.kpis["delivered_kwh"]), 2), int(res.kpis["limit_violations"])
    (5.0, 0)
    """
    if knowledge not in KNOWLEDGE:
        raise _param_error("knowledge", f"one of {KNOWLEDGE}", knowledge)
    run_name, call = _resolve_strategy(strategy)
    run_name = name if name is not None else run_name
    durations = {"step": step, "horizon": horizon, "replan_every": replan_every}
    parsed: dict[str, pd.Timedelta | None] = {}
    for key, value in durations.items():
        try:
            parsed[key] = None if value is None and key == "replan_every" else to_timedelta(value)
        except (TypeError, ValueError) as exc:
            raise _param_error(key, "a duration such as '5min' (or seconds)", value) from exc
    step_td, horizon_td, replan_td = parsed["step"], parsed["horizon"], parsed["replan_every"]
    if step_td <= pd.Timedelta(0) or step_td.value % _NS_PER_S:
        raise _param_error("step", "a positive whole number of seconds", step)
    if replan_td is not None and (replan_td <= pd.Timedelta(0) or replan_td.value % _NS_PER_S):
        raise _param_error(
            "replan_every", "a positive whole number of seconds, or None", replan_every
        )
    if horizon_td < step_td:
        raise _param_error("horizon", f">= step ({step_td})", horizon)
    try:
        start_ts = pd.Timestamp(start)
    except (TypeError, ValueError) as exc:
        raise _param_error("start", "a timestamp", start) from exc
    try:
        end_ts = pd.Timestamp(end)
    except (TypeError, ValueError) as exc:
        raise _param_error("end", "a timestamp", end) from exc
    if start_ts is pd.NaT or end_ts is pd.NaT:
        raise _param_error("start", "a timestamp, not NaT (and so must end be)", (start, end))
    if start_ts.tz is None or end_ts.tz is None:
        raise _param_error("start", "time-zone aware (and so must end be)", (start, end))
    if end_ts <= start_ts:
        raise _param_error("end", f"after start ({start_ts})", end)
    # sizes, before anything is allocated or planned: every periodic re-plan is an
    # optimize call, and the result holds per-step views (steps x EVSEs, checked below)
    period_ns = end_ts.value - start_ts.value
    n_steps = -(-period_ns // step_td.value)
    if n_steps > MAX_SIM_STEPS:
        raise _param_error(
            "end", f"at most {MAX_SIM_STEPS} steps of {step_td} after start ({n_steps})", end
        )
    if replan_td is not None and -(-period_ns // replan_td.value) > MAX_SIM_STEPS:
        shortest = pd.Timedelta(period_ns // MAX_SIM_STEPS)
        raise _param_error(
            "replan_every", f"at least (end - start) / {MAX_SIM_STEPS} ({shortest})", replan_every
        )

    sims = [
        s if isinstance(s, SimSession) else SimSession(s)
        for s in session_list(sessions, "simulate")
    ]
    _check_truth(sims)
    sims = [
        s for s in sims if pd.Timestamp(s.session.arrival) < end_ts and s.departure_true > start_ts
    ]
    try:
        bids = list(v2g_bids) if v2g_bids is not None else []
    except TypeError as exc:
        raise _param_error("v2g_bids", "a sequence of V2GBid", v2g_bids) from exc
    _validate_run(site, sims, start_ts, end_ts, step_td, tariff, forecast, bids)
    if n_steps * len(site.evses) > MAX_CELLS:
        raise _param_error(
            "end",
            f"at most {MAX_CELLS} steps x EVSEs after start "
            f"({n_steps} steps of {step_td} x {len(site.evses)} EVSEs)",
            end,
        )
    pass_bids = bool(bids) and not (isinstance(strategy, str) and strategy in BASELINES)

    step_s = int(step_td.total_seconds())
    step_ns = step_s * _NS_PER_S
    horizon_steps = int(horizon_td // step_td)
    replan_ns = None if replan_td is None else int(replan_td.value)
    overdue_ns = replan_ns if replan_ns is not None else step_ns
    cov_end = _coverage_end_ns(_series_in(site, tariff, forecast))
    t0_ns, t_end_ns = int(start_ts.value), int(end_ts.value)
    tz = start_ts.tz

    S = len(sims)
    arr = np.array([pd.Timestamp(s.session.arrival).value for s in sims], dtype=np.int64)
    dep = np.array([s.departure_true.value for s in sims], dtype=np.int64)
    exp_dep = np.array([pd.Timestamp(s.session.departure).value for s in sims], dtype=np.int64)
    requested = np.array([s.session.requested_energy_kwh() for s in sims])
    demand = np.array([s.demand_true_kwh for s in sims])
    delivered = np.zeros(S)
    told_kwh = requested if knowledge == "estimated" else demand
    told_dep = exp_dep if knowledge == "estimated" else dep
    full = np.zeros(S, dtype=bool)  # seen full by the CSMS
    # V2G sessions with a battery description: energy they may give below their
    # arrival state of charge (-inf: not V2G, never announced for discharge alone)
    v2g_depth = np.array(
        [s.session.reserve_depth_kwh() if _v2g_battery(s.session) else -np.inf for s in sims]
    )
    eta = np.array([float(s.session.round_trip_efficiency) for s in sims])
    min_slot_kwh = _min_slot_energy_kwh(site, sims, step_td)
    by_arrival = np.argsort(arr, kind="stable")

    rec_a: list[np.ndarray] = []
    rec_b: list[np.ndarray] = []
    rec_s: list[np.ndarray] = []
    rec_allowed: list[np.ndarray] = []
    rec_kwh: list[np.ndarray] = []
    decisions: list[dict[str, Any]] = []
    violations: list[dict[str, Any]] = []

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=(t_end_ns - t0_ns) / _NS_PER_S, unit="s", desc=run_name)

    t = t0_ns
    triggers = {"start"}
    while t < t_end_ns:
        here = np.flatnonzero((arr <= t) & (dep > t))
        # what the CSMS announces
        told_idx: list[int] = []
        told_sessions: list[Session] = []
        announced_dep: list[int] = []
        for i in here:
            left = told_kwh[i] - delivered[i]
            wants = left > _TOL_KWH and not (observe_full and full[i])
            # a V2G EV with energy above its reserve is announced even when it wants
            # nothing more: it can still give energy back
            gives = v2g_depth[i] + delivered[i] > _TOL_KWH
            if not (wants or gives):
                continue
            d = int(told_dep[i])
            if d <= t:
                d = t + overdue_ns  # still plugged in after its expected departure
            told_idx.append(int(i))
            announced_dep.append(d)
            # a rest below what the minimum current gives in one slot cannot be planned;
            # announce that much (the EV stops drawing by itself when full)
            kwh = max(left, min_slot_kwh[i]) if wants else 0.0
            told_sessions.append(_announce(sims[i].session, d, kwh, tz, delivered[i]))

        # next decision time
        cands: dict[str, int] = {"end": t_end_ns}
        if replan_ns is not None:
            cands["replan"] = t0_ns + ((t - t0_ns) // replan_ns + 1) * replan_ns
        later = by_arrival[arr[by_arrival] > t]
        if len(later):
            cands["arrival"] = int(arr[later[0]])
        if len(here):
            cands["departure"] = int(dep[here].min())
        if announced_dep:
            ad = np.array(announced_dep)
            ad = ad[ad > t]
            if len(ad):
                cands["expected_departure"] = int(ad.min())
        t_next = min(cands.values())
        next_triggers = {k for k, v in cands.items() if v == t_next and k != "end"}

        if told_sessions:
            n_slots = horizon_steps
            if math.isfinite(cov_end):
                n_slots = min(n_slots, int((cov_end - t) // step_ns))
            n_slots = max(n_slots, 1)
            extra = {}
            if pass_bids:
                extra["v2g_bids"] = _bids_now(
                    bids, t, t + n_slots * step_ns, {x.id for x in told_sessions}
                )
            c0 = time.perf_counter()
            plan = call(
                site,
                told_sessions,
                start=pd.Timestamp(t, tz="UTC").tz_convert(tz),
                horizon=pd.Timedelta(seconds=step_s * n_slots),
                step=pd.Timedelta(seconds=step_s),
                tariff=tariff,
                forecast=forecast,
                **extra,
            )
            latency_ms = (time.perf_counter() - c0) * 1000.0
            t_stop, n_applied = _apply(
                plan,
                told_idx,
                [s.id for s in told_sessions],
                t,
                t_next,
                demand,
                delivered,
                observe_full,
                (rec_a, rec_b, rec_s, rec_allowed, rec_kwh),
                eta,
            )
            if t_stop < t_next:
                t_next, next_triggers = t_stop, {"ev_full"}
            found = _applied_violations(plan, site, forecast, n_applied, t, t_next)
            violations.extend(found)
            decisions.append(
                {
                    "time": t,
                    "trigger": "+".join(sorted(triggers)),
                    "sessions": len(told_sessions),
                    "latency_ms": latency_ms,
                    "method": getattr(plan.report, "method", None),
                    "applied_slots": n_applied,
                    "violations": len(found),
                }
            )
        # seen full (used with observe_full); a V2G EV that gave energy back has room
        # again and is no longer full
        full = demand - delivered <= _TOL_KWH
        if bar is not None:
            bar.update((t_next - t) / _NS_PER_S)
        t, triggers = t_next, next_triggers
    if bar is not None:
        bar.close()

    return _build_result(
        run_name=run_name,
        site=site,
        sims=sims,
        knowledge=knowledge,
        start=start_ts,
        end=end_ts,
        step_s=step_s,
        tariff=tariff,
        forecast=forecast,
        requested=requested,
        demand=demand,
        delivered=delivered,
        records=(rec_a, rec_b, rec_s, rec_allowed, rec_kwh),
        decisions=decisions,
        violations=violations,
        bids=bids,
    )


def _bids_now(bids: Sequence[V2GBid], a: int, b: int, told: set[str]) -> list[V2GBid]:
    """Return the bids a plan over ``[a, b)`` (ns) is told of, for the sessions told."""
    out = []
    for bid in bids:
        if pd.Timestamp(bid.end).value <= a or pd.Timestamp(bid.start).value >= b:
            continue
        if bid.sessions is not None:
            members = tuple(x for x in bid.sessions if x in told)
            if not members:
                continue
            bid = replace(bid, sessions=members)
        out.append(bid)
    return out


def _v2g_battery(session: Session) -> bool:
    """Whether a session may discharge and describes its battery (capacity, SoC now)."""
    return bool(session.v2g) and (
        session.battery_capacity_kwh is not None and session.soc_now_pct is not None
    )


def _announce(
    session: Session, departure_ns: int, energy_kwh: float, tz: Any, delivered_kwh: float
) -> Session:
    """Return the session as told to the strategy: remaining energy, expected departure.

    The remaining energy replaces the request. A V2G session that describes its
    battery keeps the description with its state of charge moved by the energy
    received so far (``delivered_kwh``, net of what it gave back), so the plan may
    discharge down to the driver's reserve (``soc_min_pct``); the SoC target is
    dropped (the remaining energy is the target). Other sessions lose the battery
    description.
    """
    when = pd.Timestamp(departure_ns, tz="UTC").tz_convert(tz)
    if _v2g_battery(session):
        cap = float(session.battery_capacity_kwh)  # type: ignore[arg-type]
        soc = float(session.soc_now_pct) + 100.0 * delivered_kwh / cap  # type: ignore[arg-type]
        return replace(
            session,
            departure=when,
            energy_kwh=float(energy_kwh),
            soc_now_pct=min(max(soc, 0.0), 100.0),
            soc_target_pct=None,
        )
    return replace(
        session,
        departure=when,
        energy_kwh=float(energy_kwh),
        battery_capacity_kwh=None,
        soc_now_pct=None,
        soc_target_pct=None,
        soc_min_pct=None,
    )


def _min_slot_energy_kwh(site: Site, sims: Sequence[SimSession], step: pd.Timedelta) -> np.ndarray:
    """Energy of one slot at each session's minimum non-zero rate, in kWh."""
    evses = {e.id: e for e in site.evses}
    out = np.zeros(len(sims))
    for i, s in enumerate(sims):
        sess = s.session
        evse = evses[sess.evse]
        if evse.dc:
            kw = float(sess.min_power_kw or 0.0)
        else:
            _, kpa = evse_phase_weights(evse, sess.phases, float(site.voltage_v))
            amps = max(float(evse.min_current_a), float(sess.min_current_a or 0.0))
            kw = max(amps * kpa, float(sess.min_power_kw or 0.0))
        out[i] = kw * step.total_seconds() / 3600.0
    return out


def _check_truth(sims: Sequence[SimSession]) -> None:
    """Check the physical truth of every session (the rest is checked by validate)."""
    problems: list[Problem] = []
    for i, s in enumerate(sims):
        if not isinstance(s.session, Session):
            problems.append(
                Problem(
                    f"sessions[{i}].session",
                    f"The 'session' parameter of SimSession must be a Session. "
                    f"Got {type(s.session).__name__} instead.",
                )
            )
            continue
        bad_time = False
        for attr, value in (
            ("session.arrival", s.session.arrival),
            ("departure_actual", s.departure_actual),
            ("session.departure", s.session.departure),
        ):
            if value is None:
                continue
            try:
                ts = pd.Timestamp(value)
                aware = ts is not pd.NaT and ts.tz is not None
            except (TypeError, ValueError):
                aware = False
            if not aware:
                bad_time = True
                problems.append(
                    Problem(
                        f"sessions[{i}] (id={s.id!r}).{attr}",
                        f"The '{attr.split('.')[-1]}' parameter of SimSession must be a "
                        f"time-zone aware timestamp. Got {value!r} instead.",
                        value,
                    )
                )
        if bad_time:
            continue
        if s.departure_true <= pd.Timestamp(s.session.arrival):
            problems.append(
                Problem(
                    f"sessions[{i}] (id={s.id!r}).departure_actual",
                    f"The 'departure_actual' parameter of SimSession must be after arrival "
                    f"({s.session.arrival}). Got {s.departure_true} instead.",
                    s.departure_true,
                )
            )
        given = s.demand_kwh  # a real number, not a str or bool that float() would take
        ok = given is None or (_is_number(given) and abs(given) < 1e300)
        dem = s.demand_true_kwh if ok else given
        if not (ok and math.isfinite(dem) and dem >= 0.0):
            problems.append(
                Problem(
                    f"sessions[{i}] (id={s.id!r}).demand_kwh",
                    "The 'demand_kwh' parameter of SimSession must be a real number >= 0. "
                    f"Got {dem!r} instead.",
                    dem,
                )
            )
    if problems:
        raise InputError(problems)


def _validate_run(
    site: Site,
    sims: Sequence[SimSession],
    start: pd.Timestamp,
    end: pd.Timestamp,
    step: pd.Timedelta,
    tariff: Tariff | None,
    forecast: Forecast | None,
    bids: Sequence[V2GBid],
) -> None:
    """Validate site, sessions (with their true windows), bids and series coverage, once."""
    window = (end + step) - start
    truth = [
        replace(s.session, departure=s.departure_true, energy_kwh=s.demand_true_kwh) for s in sims
    ]
    whole = pd.Timedelta(seconds=math.ceil(window.total_seconds()))
    validate(
        site,
        truth,
        start=start,
        horizon=whole,
        step=whole,
        tariff=tariff,
        forecast=forecast,
        v2g_bids=bids or None,
    )


def _apply(
    plan: Plan,
    told_idx: list[int],
    told_ids: list[str],
    t: int,
    t_next: int,
    demand: np.ndarray,
    delivered: np.ndarray,
    observe_full: bool,
    records: tuple[list[np.ndarray], ...],
    eta: np.ndarray,
) -> tuple[int, int]:
    """Let the EVs draw what the plan allows over ``[t, t_next)``.

    ``delivered`` counts energy in the battery: a discharge at the meter takes
    ``1 / eta`` times as much out of it (the round-trip loss, as the planner counts
    it); the records keep energy at the meter.

    Returns the time the decision ends (earlier than ``t_next`` when an EV got full and
    the CSMS observes it) and the number of plan slots applied.
    """
    rec_a, rec_b, rec_s, rec_allowed, rec_kwh = records
    # a strategy may reorder or drop sessions: match the plan's rows by session id
    pos = {s.id: k for k, s in enumerate(plan.session_inputs)}
    rows = np.array([pos.get(sid, -1) for sid in told_ids], dtype=np.int64)
    idx = np.array(told_idx, dtype=np.int64)
    g = plan.grid
    g0 = int(g.start.value)
    g_step = int(g.step_s) * _NS_PER_S
    rate = np.asarray(plan.rate_kw, dtype=np.float64)
    n_applied = 0
    k = max(0, (t - g0) // g_step)
    while True:
        a = max(t, g0 + k * g_step)
        b = min(t_next, g0 + (k + 1) * g_step)
        if a >= t_next or k >= g.n_slots:
            break
        n_applied = k + 1
        r = np.where(rows >= 0, rate[np.maximum(rows, 0), k], 0.0)
        while a < b:
            room = demand[idx] - delivered[idx]
            drawing = (r > 0.0) & (room > _TOL_KWH)
            c = b
            if drawing.any():
                t_full = a + np.ceil(room[drawing] / r[drawing] * _NS_PER_H).astype(np.int64)
                soon = t_full[t_full < b]
                if len(soon):
                    c = max(int(soon.min()), a + 1)
            dur_h = (c - a) / _NS_PER_H
            e = np.where(drawing, np.minimum(r * dur_h, np.maximum(room, 0.0)), 0.0)
            e = np.where(r < 0.0, r * dur_h, e)  # discharge (V2G) as planned
            delivered[idx] += np.where(e < 0.0, e / eta[idx], e)
            active = (r != 0.0) | (e != 0.0)
            if active.any():
                rec_a.append(np.full(int(active.sum()), a, dtype=np.int64))
                rec_b.append(np.full(int(active.sum()), c, dtype=np.int64))
                rec_s.append(idx[active])
                rec_allowed.append(r[active])
                rec_kwh.append(e[active])
            now_full = drawing & (demand[idx] - delivered[idx] <= _TOL_KWH)
            if observe_full and now_full.any() and c < t_next:
                return c, n_applied
            a = c
        k += 1
    return t_next, n_applied


def _applied_violations(
    plan: Plan, site: Site, forecast: Forecast | None, n_applied: int, t: int, t_end: int
) -> list[dict[str, Any]]:
    """Limits broken by the plan in the slots that were applied (independent checker)."""
    if n_applied == 0:
        return []
    g = plan.grid
    sub = TimeGrid(start=g.start, step_s=g.step_s, n_slots=n_applied)
    rate = np.asarray(plan.rate_kw)[:, :n_applied]
    cur = np.asarray(plan.current_a_array)[:, :n_applied]
    found = check_plan(site, plan.session_inputs, sub, rate, cur, forecast)
    if any(v.kind == "energy" for v in found):
        # A V2G session may hold more than its request mid-plan, to give it back later:
        # above the request on the applied slots is a violation only if the whole plan
        # also ends above it (always the case for a session that only charges).
        whole = plan.sessions
        over = {
            f"session {x.id!r} on EVSE {x.evse!r}"
            for x in plan.session_inputs
            if whole.loc[x.id, "delivered_kwh"] > whole.loc[x.id, "requested_kwh"] + TOL
        }
        found = [v for v in found if v.kind != "energy" or v.where in over]
    out = []
    g0 = int(g.start.value)
    g_step = int(g.step_s) * _NS_PER_S
    for v in found:
        if v.slot is None:
            a, b = t, t_end
        else:
            a = max(t, g0 + v.slot * g_step)
            b = min(t_end, g0 + (v.slot + 1) * g_step)
        out.append(
            {
                "decision_time": t,
                "slot_start": a,
                "duration_s": max(b - a, 0) / _NS_PER_S,
                "kind": v.kind,
                "where": v.where,
                "value": v.value,
                "limit": v.limit,
            }
        )
    return out


def _build_result(
    *,
    run_name: str,
    site: Site,
    sims: Sequence[SimSession],
    knowledge: str,
    start: pd.Timestamp,
    end: pd.Timestamp,
    step_s: int,
    tariff: Tariff | None,
    forecast: Forecast | None,
    requested: np.ndarray,
    demand: np.ndarray,
    delivered: np.ndarray,
    records: tuple[list[np.ndarray], ...],
    decisions: list[dict[str, Any]],
    violations: list[dict[str, Any]],
    bids: Sequence[V2GBid] = (),
) -> SimulationResult:
    tz = start.tz
    rec_a, rec_b, rec_s, rec_allowed, rec_kwh = (
        np.concatenate(r) if r else np.zeros(0) for r in records
    )
    rec_a = rec_a.astype(np.int64)
    rec_b = rec_b.astype(np.int64)
    rec_s = rec_s.astype(np.int64)
    dur_h = (rec_b - rec_a) / _NS_PER_H
    with np.errstate(invalid="ignore", divide="ignore"):
        rec_kw = np.where(dur_h > 0, rec_kwh / dur_h, 0.0)
    ids = [s.id for s in sims]
    evse_of = [s.session.evse for s in sims]
    evse_ids = [e.id for e in site.evses]
    evse_pos = {e: k for k, e in enumerate(evse_ids)}

    def stamp(ns: np.ndarray) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(pd.to_datetime(ns, utc=True)).tz_convert(tz)

    intervals = pd.DataFrame(
        {
            "start": stamp(rec_a),
            "end": stamp(rec_b),
            "session": pd.Series([ids[i] for i in rec_s], dtype=object),
            "evse": pd.Series([evse_of[i] for i in rec_s], dtype=object),
            "allowed_kw": rec_allowed.astype(np.float64),
            "power_kw": rec_kw,
            "energy_kwh": rec_kwh.astype(np.float64),
        }
    )

    price_imp = _Step(tariff.import_price_per_kwh if tariff is not None else None)
    price_exp = _Step(tariff.export_price_per_kwh if tariff is not None else None)
    pv = _Step(forecast.pv_kw if forecast is not None else None)
    base = _Step(forecast.base_load_kw if forecast is not None else None)
    t0, t1 = int(start.value), int(end.value)

    # per-session outcome
    sess_cost = np.zeros(len(sims))
    if len(rec_a):
        np.add.at(sess_cost, rec_s, rec_kw * price_imp.integral_h(rec_a, rec_b))
    target = np.minimum(requested, demand)
    sessions_df = pd.DataFrame(
        {
            "evse": evse_of,
            "arrival": [pd.Timestamp(s.session.arrival).tz_convert(tz) for s in sims],
            "departure": [s.departure_true.tz_convert(tz) for s in sims],
            "departure_expected": [pd.Timestamp(s.session.departure).tz_convert(tz) for s in sims],
            "requested_kwh": requested,
            "demand_kwh": demand,
            "delivered_kwh": delivered,
            "unmet_requested_kwh": np.maximum(requested - delivered, 0.0),
            "unmet_demand_kwh": np.maximum(demand - delivered, 0.0),
            "served": delivered >= target - SERVED_TOL_KWH,
            "energy_cost": sess_cost,
        },
        index=pd.Index(ids, name="session", dtype=object),
    )

    # regular grid of the views
    step_ns = step_s * _NS_PER_S
    n = int(math.ceil((t1 - t0) / step_ns))
    edges = t0 + np.arange(n + 1, dtype=np.int64) * step_ns
    edges[-1] = min(edges[-1], t1) if n else t1
    slot_len_h = np.diff(edges) / _NS_PER_H

    # exact site cost over elementary segments (constant EV power, price, PV, load,
    # each inside one slot of the regular grid)
    pts = [np.array([t0, t1], dtype=np.int64), edges, rec_a, rec_b]
    pts += [f.points() for f in (price_imp, price_exp, pv, base)]
    pts += [np.array([pd.Timestamp(b.start).value, pd.Timestamp(b.end).value]) for b in bids]
    bp = np.unique(np.concatenate(pts))
    bp = bp[(bp >= t0) & (bp <= t1)]
    delta = np.zeros(len(bp))
    if len(rec_a):
        np.add.at(delta, np.searchsorted(bp, rec_a), rec_kw)
        np.add.at(delta, np.searchsorted(bp, rec_b), -rec_kw)
    ev_kw = np.cumsum(delta)[:-1]
    seg_a = bp[:-1]
    seg_h = np.diff(bp) / _NS_PER_H
    site_kw = base.at(seg_a) - pv.at(seg_a) + ev_kw
    energy_cost = float(
        (
            np.maximum(site_kw, 0.0) * price_imp.at(seg_a)
            - np.maximum(-site_kw, 0.0) * price_exp.at(seg_a)
        )
        @ seg_h
    )
    v2g_revenue = _bid_revenue(bids, sims, bp, rec_a, rec_b, rec_s, rec_kw)

    energy_grid = np.zeros((n, len(evse_ids)))
    if len(rec_a):
        k0 = (rec_a - t0) // step_ns
        k1 = (rec_b - 1 - t0) // step_ns
        reps = (k1 - k0 + 1).astype(np.int64)
        r_idx = np.repeat(np.arange(len(rec_a)), reps)
        k = np.repeat(k0, reps) + (np.arange(reps.sum()) - np.repeat(np.cumsum(reps) - reps, reps))
        lo = np.maximum(rec_a[r_idx], edges[k])
        hi = np.minimum(rec_b[r_idx], edges[k + 1])
        e = rec_kw[r_idx] * (hi - lo) / _NS_PER_H
        cols = np.array([evse_pos[evse_of[i]] for i in rec_s])[r_idx]
        np.add.at(energy_grid, (k, cols), e)
    index = stamp(edges[:-1])
    power = pd.DataFrame(energy_grid / slot_len_h[:, None], index=index, columns=evse_ids)
    seg_slot = np.searchsorted(edges, seg_a, side="right") - 1
    imp_energy = np.bincount(seg_slot, weights=site_kw * seg_h, minlength=n)[:n]
    site_import = pd.Series(imp_energy / slot_len_h, index=index, name="site_import_kw")
    price_energy = np.bincount(seg_slot, weights=price_imp.at(seg_a) * seg_h, minlength=n)[:n]
    price_series = pd.Series(price_energy / slot_len_h, index=index, name="price_import_per_kwh")
    capacity = _root_capacity_kw(site, TimeGrid(start=start, step_s=step_s, n_slots=n), index)

    demand_charge = 0.0
    rate_dc = float(getattr(tariff, "demand_charge_per_kw", 0.0) or 0.0)
    if rate_dc and len(site_import):
        already = float(getattr(tariff, "peak_already_kw", 0.0) or 0.0)
        demand_charge = rate_dc * max(0.0, float(site_import.max()) - already)

    dec = pd.DataFrame(
        decisions,
        columns=[
            "time",
            "trigger",
            "sessions",
            "latency_ms",
            "method",
            "applied_slots",
            "violations",
        ],
    )
    dec["time"] = stamp(dec["time"].to_numpy(dtype=np.int64))
    viol = pd.DataFrame(
        violations,
        columns=["decision_time", "slot_start", "duration_s", "kind", "where", "value", "limit"],
    )
    viol["decision_time"] = stamp(viol["decision_time"].to_numpy(dtype=np.int64))
    viol["slot_start"] = stamp(viol["slot_start"].to_numpy(dtype=np.int64))
    return SimulationResult(
        strategy=run_name,
        site=site,
        start=start,
        end=end,
        step_s=step_s,
        knowledge=knowledge,
        sessions=sessions_df,
        intervals=intervals,
        decisions=dec,
        violations=viol,
        site_import_kw=site_import,
        power_kw=power,
        price_import_per_kwh=price_series,
        capacity_kw=capacity,
        energy_cost=energy_cost,
        demand_charge=demand_charge,
        v2g_revenue=v2g_revenue,
        currency=tariff.currency if tariff is not None else "EUR",
    )


def _bid_revenue(
    bids: Sequence[V2GBid],
    sims: Sequence[SimSession],
    bp: np.ndarray,
    rec_a: np.ndarray,
    rec_b: np.ndarray,
    rec_s: np.ndarray,
    rec_kw: np.ndarray,
) -> float:
    """Return what the bids pay for the discharge given (as :attr:`chargeplan.Plan.kpis`).

    Over the elementary segments between the breakpoints ``bp`` (which include every
    bid's start and end): within its window each bid pays for the discharge of its
    sessions up to its ``max_discharge_kw``, highest price first, never more in total
    than the site's discharge.
    """
    if not bids or not len(rec_a):
        return 0.0
    seg_a, seg_h = bp[:-1], np.diff(bp) / _NS_PER_H
    ia, ib = np.searchsorted(bp, rec_a), np.searchsorted(bp, rec_b)

    def discharge_kw(keep: np.ndarray) -> np.ndarray:
        delta = np.zeros(len(bp))
        kw = np.maximum(-rec_kw, 0.0) * keep
        np.add.at(delta, ia, kw)
        np.add.at(delta, ib, -kw)
        return np.cumsum(delta)[:-1]

    total = discharge_kw(np.ones(len(rec_s), dtype=bool))
    paid = np.zeros_like(total)
    ids = np.array([s.id for s in sims], dtype=object)
    v2g = np.array([bool(s.session.v2g) for s in sims], dtype=bool)
    revenue = 0.0
    for bid in sorted(bids, key=lambda b: -b.price_per_kwh):
        member = v2g if bid.sessions is None else np.isin(ids, list(bid.sessions))
        window = (seg_a >= pd.Timestamp(bid.start).value) & (seg_a < pd.Timestamp(bid.end).value)
        take = np.minimum(discharge_kw(member[rec_s]), bid.max_discharge_kw) * window
        take = np.maximum(np.minimum(take, total - paid), 0.0)
        paid += take
        revenue += float(bid.price_per_kwh * (take @ seg_h))
    return revenue


def _root_capacity_kw(site: Site, grid: TimeGrid, index: pd.DatetimeIndex) -> pd.Series:
    """Capacity of the grid connection per slot in kW (balanced three-phase equivalent)."""
    root = site.root
    cap = np.full(grid.n_slots, np.inf)
    if root is not None and grid.n_slots:
        lim = root.limit_a
        phase_min = np.full(grid.n_slots, np.inf)
        if isinstance(lim, pd.DataFrame):
            for col in lim.columns:
                phase_min = np.minimum(phase_min, align_series(lim[col], grid, "min"))
        elif isinstance(lim, pd.Series):
            phase_min = align_series(lim, grid, "min")
        elif isinstance(lim, (tuple, list)):
            vals = [float(v) for v in lim if v is not None]
            if vals:
                phase_min[:] = min(vals)
        elif lim is not None:
            phase_min[:] = float(lim)
        cap = 3.0 * float(site.voltage_v) * phase_min / 1000.0
        if isinstance(root.limit_kw, pd.Series):
            cap = np.minimum(cap, align_series(root.limit_kw, grid, "min"))
        elif root.limit_kw is not None:
            cap = np.minimum(cap, float(root.limit_kw))
    return pd.Series(cap, index=index, name="capacity_kw")


# -- comparing strategies ------------------------------------------------------------------


def compare(
    site: Site,
    sessions: Sequence[Session | SimSession],
    *,
    strategies: Sequence[str | Strategy] | Mapping[str, str | Strategy] = (
        "greedy",
        "uncontrolled",
        "equal_share",
        "edf",
        "llf",
        "round_robin",
    ),
    **kwargs: Any,
) -> pd.DataFrame:
    """Simulate several strategies on the same sessions and tabulate their KPIs.

    Parameters
    ----------
    site, sessions
        As for :func:`simulate`.
    strategies : sequence or mapping
        Strategies (names or callables), or a mapping of run name to strategy.
    **kwargs
        Passed to :func:`simulate` (``start`` and ``end`` are required).

    Returns
    -------
    pandas.DataFrame
        One row per strategy (see :func:`kpi_table`).
    """
    items = (
        list(strategies.items())
        if isinstance(strategies, Mapping)
        else [(None, s) for s in strategies]
    )
    results = [
        simulate(site, sessions, strategy=strat, name=label, **kwargs) for label, strat in items
    ]
    return kpi_table(results)
