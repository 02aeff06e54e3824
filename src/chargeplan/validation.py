"""Input validation: every problem collected, one :class:`InputError` naming each field.

Validation only reads its inputs; nothing is mutated, whatever the outcome. Size
bounds are checked from lengths before any array is allocated.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .exceptions import InputError, Problem
from .model import (
    PHASE_ROTATIONS,
    SINGLE_PHASE_WIRINGS,
    Evse,
    Forecast,
    Node,
    Session,
    Site,
    Tariff,
    V2GBid,
)
from .timegrid import TimeGrid, series_coverage, to_timedelta

__all__ = [
    "validate",
    "check_session",
    "session_list",
    "MAX_SESSIONS",
    "MAX_SLOTS",
    "MAX_CELLS",
    "MAX_NODES",
    "MAX_DEPTH",
    "MAX_MAGNITUDE",
    "MIN_VOLTAGE_V",
]

#: Most sessions one plan accepts.
MAX_SESSIONS = 100_000
#: Most time slots one plan accepts.
MAX_SLOTS = 20_000
#: Most session x slot cells one plan accepts (20 million float64 = 160 MB per array).
MAX_CELLS = 20_000_000
#: Most nodes in a site tree.
MAX_NODES = 100_000
#: Deepest node tree (levels from the root down to an EVSE's parent).
MAX_DEPTH = 32
#: Largest magnitude of any number in the input (A, kW, kWh, V, prices, charges): 1 GW,
#: 1 GWh, a million per kWh. Larger values are typos or "no limit" sentinels (use None for
#: no limit); HiGHS failed on about 1 in 12 random V2G problems with prices or charges
#: near 1e9, and on none of 600 with every kind of value near 1e6.
MAX_MAGNITUDE = 1e6
#: Smallest voltage (V) of a site or EVSE: the kW-to-A factors are 1000 / V.
MIN_VOLTAGE_V = 1.0


class _Collector:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, path: str, message: str, value: Any = None) -> None:
        self.problems.append(Problem(path, message, value))

    def param(self, path: str, owner: str, name: str, constraint: str, value: Any) -> None:
        self.add(
            f"{path}.{name}",
            f"The '{name}' parameter of {owner} must be {constraint}. Got {value!r} instead.",
            value,
        )


def _not_sessions(owner: str, value: Any) -> list[Problem]:
    return [
        Problem(
            "sessions",
            f"The 'sessions' parameter of {owner} must be a sequence of Session. "
            f"Got {type(value).__name__} instead.",
            value,
        )
    ]


def session_list(sessions: Any, owner: str = "optimize") -> list:
    """Return ``sessions`` as a list; raise InputError naming ``sessions`` if it is no sequence.

    Parameters
    ----------
    sessions : Any
        What the caller passed as its sessions.
    owner : str
        The function or class the parameter belongs to (for the message).

    Returns
    -------
    list
        The sessions (an iterator is consumed once, here).

    Raises
    ------
    InputError
        If ``sessions`` cannot be iterated.
    """
    try:
        return list(sessions)
    except TypeError:
        raise InputError(_not_sessions(owner, sessions)) from None


def _is_int(x: Any) -> bool:
    """Tell whether x is an integer and not a bool (used by chargeplan.ocpp too)."""
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


def _names(x: Any, ids: dict[str, Any]) -> bool:
    """``x`` is one of the ids (a reference of any other type names nothing)."""
    return isinstance(x, str) and x in ids


def _is_number(x: Any) -> bool:
    t = type(x)
    if t is float or t is int:  # the common case, fast (a bool's type is bool)
        return True
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(
        x, (bool, np.bool_)
    )


def _check_bool(c: _Collector, path: str, owner: str, name: str, value: Any) -> bool:
    """Check a flag: a bool, not merely truthy (``"false"`` would read as True)."""
    if isinstance(value, (bool, np.bool_)):
        return True
    c.param(path, owner, name, "a bool (True or False)", value)
    return False


def _check_number(
    c: _Collector,
    path: str,
    owner: str,
    name: str,
    value: Any,
    *,
    lo: float | None = 0.0,
    lo_strict: bool = False,
    hi: float | None = None,
    optional: bool = True,
) -> bool:
    """Check a scalar; return True when it is a usable number."""
    if value is None:
        if not optional:
            c.param(path, owner, name, "given", value)
        return False
    if not _is_number(value):
        c.param(path, owner, name, "a real number", value)
        return False
    try:
        as_float = float(value)
    except OverflowError:  # an int beyond any float
        c.param(path, owner, name, f"at most {MAX_MAGNITUDE:g} in magnitude", value)
        return False
    if not math.isfinite(as_float):
        c.param(path, owner, name, "finite (not NaN or inf)", value)
        return False
    if abs(value) > MAX_MAGNITUDE:
        c.param(path, owner, name, f"at most {MAX_MAGNITUDE:g} in magnitude", value)
        return False
    if lo is not None and (value < lo or (lo_strict and value == lo)):
        c.param(path, owner, name, f"{'>' if lo_strict else '>='} {lo:g}", value)
        return False
    if hi is not None and value > hi:
        c.param(path, owner, name, f"<= {hi:g}", value)
        return False
    return True


def _check_timestamp(
    c: _Collector, path: str, owner: str, name: str, value: Any
) -> pd.Timestamp | None:
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        c.param(path, owner, name, "a timestamp", value)
        return None
    if not isinstance(ts, pd.Timestamp):  # NaT (pd.Timestamp returns NaT or a Timestamp)
        c.param(path, owner, name, "a timestamp (not NaT)", value)
        return None
    if ts.tz is None:
        c.param(path, owner, name, "time-zone aware", value)
        return None
    return ts


def _check_series_index(
    c: _Collector, where: str, s: pd.Series | pd.DataFrame, grid: TimeGrid | None
) -> None:
    idx = s.index
    if not isinstance(idx, pd.DatetimeIndex):
        c.add(
            where,
            f"The index of {where} must be a DatetimeIndex. Got {type(idx).__name__} instead.",
        )
        return
    if idx.tz is None:
        c.add(where, f"The index of {where} must be time-zone aware. Got a tz-naive index instead.")
        return
    if len(idx) < 2:
        c.add(
            where,
            f"{where} must have at least 2 time stamps (use a scalar for a constant). "
            f"Got {len(idx)} instead.",
        )
        return
    if not idx.is_monotonic_increasing or idx.has_duplicates:
        c.add(where, f"The index of {where} must be strictly increasing.")
        return
    if grid is not None:
        cov = series_coverage(s)  # type: ignore[arg-type]
        if cov is None or cov[0] > grid.start or cov[1] < grid.end:
            first, end = (None, None) if cov is None else cov
            c.add(
                where,
                f"{where} must cover the horizon [{grid.start}, {grid.end}). "
                f"Got [{first}, {end}) instead.",
                cov,
            )


def _check_values(c: _Collector, where: str, values: np.ndarray, *, nonneg: bool) -> None:
    arr = np.asarray(values)
    if arr.dtype.kind not in "iuf":  # bool, object, str, datetime, ...: look closer
        kinds = {type(x).__name__ for x in arr.astype(object).ravel()}
        if arr.dtype.kind == "b" or not kinds <= {"int", "float"}:
            c.add(
                where,
                f"The values of {where} must be real numbers. Got {sorted(kinds)} instead.",
            )
            return
    try:
        v = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        c.add(where, f"The values of {where} must be real numbers.")
        return
    bad = ~np.isfinite(v)
    if bad.any():
        c.add(
            where,
            f"The values of {where} must be finite (not NaN or inf). "
            f"Got {int(bad.sum())} non-finite value(s) instead.",
        )
    elif (np.abs(v) > MAX_MAGNITUDE).any():
        c.add(
            where,
            f"The values of {where} must be at most {MAX_MAGNITUDE:g} in magnitude. "
            f"Got {float(np.abs(v).max())!r} instead.",
            float(np.abs(v).max()),
        )
    elif nonneg and (v < 0).any():
        c.add(
            where,
            f"The values of {where} must be >= 0. Got {float(v.min())!r} instead.",
            float(v.min()),
        )


def _check_scalar_or_series(
    c: _Collector,
    path: str,
    owner: str,
    name: str,
    value: Any,
    grid: TimeGrid | None,
    *,
    nonneg: bool,
) -> None:
    if value is None:
        return
    if isinstance(value, pd.Series):
        where = f"{path}.{name}"
        _check_series_index(c, where, value, grid)
        _check_values(c, where, value.to_numpy(), nonneg=nonneg)
    else:
        _check_number(c, path, owner, name, value, lo=0.0 if nonneg else None)


def _check_limit_a(c: _Collector, path: str, value: Any, grid: TimeGrid | None) -> None:
    if value is None:
        return
    where = f"{path}.limit_a"
    if isinstance(value, pd.DataFrame):
        extra = [col for col in value.columns if col not in ("L1", "L2", "L3")]
        if extra or len(value.columns) == 0 or value.columns.has_duplicates:
            c.add(
                where,
                f"The columns of {where} must be among 'L1', 'L2', 'L3', each once. "
                f"Got {list(value.columns)!r} instead.",
                list(value.columns),
            )
        _check_series_index(c, where, value, grid)
        _check_values(c, where, value.to_numpy(), nonneg=True)
    elif isinstance(value, pd.Series):
        _check_series_index(c, where, value, grid)
        _check_values(c, where, value.to_numpy(), nonneg=True)
    elif isinstance(value, (tuple, list)):
        if len(value) != 3:
            c.param(path, "Node", "limit_a", "a 3-tuple (L1, L2, L3)", value)
            return
        for k, v in enumerate(value):
            if v is not None:
                _check_number(c, path, "Node", f"limit_a[{k}]", v)
    else:
        _check_number(c, path, "Node", "limit_a", value)


def _parse_grid(c: _Collector, start: Any, horizon: Any, step: Any) -> TimeGrid | None:
    ts = _check_timestamp(c, "optimize", "optimize", "start", start)
    try:
        step_td = to_timedelta(step)
    except (TypeError, ValueError):
        c.param("optimize", "optimize", "step", "a duration such as '15min'", step)
        step_td = None
    try:
        horizon_td = to_timedelta(horizon)
    except (TypeError, ValueError):
        c.param("optimize", "optimize", "horizon", "a duration such as '24h'", horizon)
        horizon_td = None
    if step_td is not None:
        if step_td <= pd.Timedelta(0) or step_td.value % 1_000_000_000:
            c.param("optimize", "optimize", "step", "a positive whole number of seconds", step)
            step_td = None
    if horizon_td is not None and horizon_td <= pd.Timedelta(0):
        c.param("optimize", "optimize", "horizon", "> 0", horizon)
        horizon_td = None
    if step_td is None or horizon_td is None:
        return None
    if horizon_td.value % step_td.value:
        c.add(
            "optimize.horizon",
            f"The 'horizon' parameter of optimize must be a whole number of "
            f"steps of {step_td}. Got {horizon_td} instead.",
            horizon,
        )
        return None
    n_slots = horizon_td.value // step_td.value
    if n_slots > MAX_SLOTS:
        c.add(
            "optimize.horizon",
            f"The 'horizon' parameter of optimize must give <= {MAX_SLOTS} "
            f"slots. Got {n_slots} slots instead.",
            n_slots,
        )
        return None
    if ts is None:
        return None
    return TimeGrid(start=ts, step_s=int(step_td.value // 1_000_000_000), n_slots=int(n_slots))


def _check_ids(c: _Collector, kind: str, items: Sequence[Any]) -> dict[str, int]:
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        path = f"{kind}[{i}]"
        ident = getattr(item, "id", None)
        if not isinstance(ident, str) or not ident:
            c.add(
                f"{path}.id",
                f"The 'id' parameter must be a non-empty string. Got {ident!r} instead.",
                ident,
            )
            continue
        if ident in seen:
            c.add(f"{path}.id", f"Duplicate id {ident!r} (also {kind}[{seen[ident]}]).", ident)
            continue
        seen[ident] = i
    return seen


def _label(kind: str, i: int, item: Any) -> str:
    return f"{kind}[{i}] (id={getattr(item, 'id', None)!r})"


def _check_nodes(c: _Collector, site: Site, grid: TimeGrid | None) -> dict[str, int]:
    nodes = list(site.nodes)
    ids = _check_ids(c, "site.nodes", nodes)
    for i, n in enumerate(nodes):
        if not isinstance(n, Node):
            c.add(
                f"site.nodes[{i}]",
                f"site.nodes[{i}] must be a Node. Got {type(n).__name__} instead.",
            )
            continue
        path = _label("site.nodes", i, n)
        if n.parent is not None and not _names(n.parent, ids):
            c.add(
                f"{path}.parent",
                f"The 'parent' parameter of Node must name a node. "
                f"Got unknown id {n.parent!r} instead.",
                n.parent,
            )
        if n.station_id is not None and (not isinstance(n.station_id, str) or not n.station_id):
            c.param(path, "Node", "station_id", "a non-empty string", n.station_id)
        _check_limit_a(c, path, n.limit_a, grid)
        _check_scalar_or_series(c, path, "Node", "limit_kw", n.limit_kw, grid, nonneg=True)
    roots = [n.id for n in nodes if isinstance(n, Node) and n.parent is None]
    if len(roots) != 1:
        c.add(
            "site.nodes",
            f"The site must have exactly one root node (parent=None), the grid "
            f"connection. Got {len(roots)} instead: {roots!r}.",
            roots,
        )
    # cycles: follow parents from every node
    parent = {n.id: n.parent for n in nodes if isinstance(n, Node) and isinstance(n.id, str)}
    reported: set[str] = set()
    for start_id in parent:
        seen: list[str] = []
        cur: str | None = start_id
        while _names(cur, parent) and cur not in seen:
            seen.append(cur)
            cur = parent[cur]
        if isinstance(cur, str) and cur in seen:
            cycle = seen[seen.index(cur) :]
            key = min(cycle)
            if key not in reported:
                reported.add(key)
                i = ids.get(key, 0)
                c.add(
                    f"{_label('site.nodes', i, nodes[i])}.parent",
                    f"The node tree has a cycle: {' -> '.join(cycle + [cur])}.",
                    cycle,
                )
        elif len(seen) > MAX_DEPTH + 1:
            c.add(
                "site.nodes",
                f"The node tree must be at most {MAX_DEPTH} levels deep. "
                f"Got a path of {len(seen)} nodes from {start_id!r} instead.",
                len(seen),
            )
            break
    return ids


def _check_evse(c: _Collector, path: str, e: Evse, node_ids: dict[str, int]) -> None:
    if not _names(e.parent, node_ids):
        c.add(
            f"{path}.parent",
            f"The 'parent' parameter of Evse must name a node. "
            f"Got unknown id {e.parent!r} instead.",
            e.parent,
        )
    _check_number(c, path, "Evse", "max_current_a", e.max_current_a)
    _check_number(c, path, "Evse", "max_power_kw", e.max_power_kw)
    _check_number(c, path, "Evse", "voltage_v", e.voltage_v, lo=MIN_VOLTAGE_V)
    ok_min = _check_number(c, path, "Evse", "min_current_a", e.min_current_a, optional=False)
    if not _is_int(e.connector_id) or e.connector_id < 1:
        c.param(path, "Evse", "connector_id", "an integer >= 1", e.connector_id)
    if e.station_id is not None and (not isinstance(e.station_id, str) or not e.station_id):
        c.param(path, "Evse", "station_id", "a non-empty string", e.station_id)
    _check_number(c, path, "Evse", "max_discharge_current_a", e.max_discharge_current_a)
    _check_number(c, path, "Evse", "max_discharge_power_kw", e.max_discharge_power_kw)
    ok_bidi = _check_bool(c, path, "Evse", "bidirectional", e.bidirectional)
    if not _check_bool(c, path, "Evse", "dc", e.dc):
        return  # what else to check depends on it
    if ok_bidi and not e.bidirectional:
        for name in ("max_discharge_current_a", "max_discharge_power_kw"):
            if getattr(e, name) is not None:
                c.param(
                    path,
                    "Evse",
                    name,
                    "unset on an EVSE that is not bidirectional",
                    getattr(e, name),
                )
    if e.dc:
        if e.max_discharge_current_a is not None:
            c.param(
                path,
                "Evse",
                "max_discharge_current_a",
                "unset for a DC EVSE (use max_discharge_power_kw)",
                e.max_discharge_current_a,
            )
        for name in ("phases", "phase", "phase_rotation"):
            if getattr(e, name) is not None:
                c.param(path, "Evse", name, "unset for a DC EVSE (dc=True)", getattr(e, name))
        if e.max_current_a is not None:
            c.param(
                path,
                "Evse",
                "max_current_a",
                "unset for a DC EVSE (use max_power_kw)",
                e.max_current_a,
            )
        if e.max_power_kw is None:
            c.param(path, "Evse", "max_power_kw", "given for a DC EVSE", None)
        return
    if e.max_current_a is None and e.max_power_kw is None:
        c.param(path, "Evse", "max_current_a", "given for an AC EVSE (or max_power_kw)", None)
    if not _evse_phases_ok(e.phases):
        c.param(path, "Evse", "phases", "1 or 3", e.phases)
    phases = 3 if e.phases is None or not _evse_phases_ok(e.phases) else e.phases
    if e.phase_rotation is not None:
        if phases != 3:
            c.param(
                path,
                "Evse",
                "phase_rotation",
                "unset for a 1-phase EVSE (use phase)",
                e.phase_rotation,
            )
        elif not isinstance(e.phase_rotation, str) or e.phase_rotation not in PHASE_ROTATIONS:
            c.param(path, "Evse", "phase_rotation", f"one of {PHASE_ROTATIONS}", e.phase_rotation)
    if e.phase is not None:
        if phases != 1:
            c.param(path, "Evse", "phase", "unset for a 3-phase EVSE (use phase_rotation)", e.phase)
        elif not isinstance(e.phase, str) or e.phase not in SINGLE_PHASE_WIRINGS:
            c.param(path, "Evse", "phase", f"one of {SINGLE_PHASE_WIRINGS}", e.phase)
    if (
        ok_min
        and e.max_current_a is not None
        and _is_number(e.max_current_a)
        and e.min_current_a > e.max_current_a
    ):
        c.param(
            path, "Evse", "min_current_a", f"<= max_current_a ({e.max_current_a})", e.min_current_a
        )


def _kind_known(e: Evse) -> bool:
    """Tell whether an EVSE's ``dc``, ``bidirectional`` and ``phases`` are usable.

    :func:`_check_evse` reports those that are not.
    """
    return (
        isinstance(e.dc, (bool, np.bool_))
        and isinstance(e.bidirectional, (bool, np.bool_))
        and _evse_phases_ok(e.phases)
    )


def _evse_phases_ok(phases: Any) -> bool:
    """Tell whether an EVSE's ``phases`` is usable: unset (3), 1 or 3."""
    return phases is None or (_is_int(phases) and phases in (1, 3))


def _check_session(
    c: _Collector, path: str, s: Session, evses: dict[str, Evse], flawed: frozenset = frozenset()
) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """Check a session; ``flawed``: ids of EVSEs of unusable kind (not unknown ones)."""
    evse = evses.get(s.evse) if isinstance(s.evse, str) else None
    if evse is None and not (isinstance(s.evse, str) and s.evse in flawed):
        c.add(
            f"{path}.evse",
            f"The 'evse' parameter of Session must name an EVSE. "
            f"Got unknown id {s.evse!r} instead.",
            s.evse,
        )
    arr = _check_timestamp(c, path, "Session", "arrival", s.arrival)
    dep = _check_timestamp(c, path, "Session", "departure", s.departure)
    window = None
    if arr is not None and dep is not None:
        if dep <= arr:
            c.param(path, "Session", "departure", f"after arrival ({arr})", s.departure)
        else:
            window = (arr, dep)
    has_energy = _check_number(c, path, "Session", "energy_kwh", s.energy_kwh)
    has_cap = _check_number(
        c, path, "Session", "battery_capacity_kwh", s.battery_capacity_kwh, lo_strict=True
    )
    has_soc = _check_number(c, path, "Session", "soc_now_pct", s.soc_now_pct, hi=100.0)
    _check_number(c, path, "Session", "soc_target_pct", s.soc_target_pct, hi=100.0)
    if s.soc_target_pct is not None and s.soc_now_pct is None:
        c.param(path, "Session", "soc_now_pct", "given with soc_target_pct", None)
    if (s.battery_capacity_kwh is None) != (s.soc_now_pct is None):
        name = "battery_capacity_kwh" if s.battery_capacity_kwh is None else "soc_now_pct"
        c.param(
            path,
            "Session",
            name,
            "given together with "
            + ("soc_now_pct" if name == "battery_capacity_kwh" else "battery_capacity_kwh"),
            None,
        )
    if (
        not has_energy
        and not (has_cap and has_soc)
        and s.energy_kwh is None
        and s.battery_capacity_kwh is None
        and s.soc_now_pct is None
    ):
        c.param(
            path, "Session", "energy_kwh", "given (or battery_capacity_kwh with soc_now_pct)", None
        )
    ok_max = _check_number(c, path, "Session", "max_current_a", s.max_current_a, lo_strict=True)
    ok_min = _check_number(c, path, "Session", "min_current_a", s.min_current_a)
    if ok_max and ok_min and s.min_current_a > s.max_current_a:  # type: ignore[operator]
        c.param(
            path,
            "Session",
            "min_current_a",
            f"<= max_current_a ({s.max_current_a})",
            s.min_current_a,
        )
    ok_pmax = _check_number(c, path, "Session", "max_power_kw", s.max_power_kw, lo_strict=True)
    ok_pmin = _check_number(c, path, "Session", "min_power_kw", s.min_power_kw)
    if ok_pmax and ok_pmin and s.min_power_kw > s.max_power_kw:  # type: ignore[operator]
        c.param(
            path, "Session", "min_power_kw", f"<= max_power_kw ({s.max_power_kw})", s.min_power_kw
        )
    _check_number(c, path, "Session", "priority", s.priority, lo_strict=True, optional=False)
    tx = s.transaction_id
    if tx is not None and not (_is_int(tx) or (isinstance(tx, str) and tx)):
        c.param(path, "Session", "transaction_id", "a non-empty string or an int", tx)
    if s.phases is not None:
        if not (_is_int(s.phases) and s.phases in (1, 2, 3)):
            c.param(path, "Session", "phases", "1, 2 or 3", s.phases)
        elif evse is not None:
            if evse.dc:
                c.param(path, "Session", "phases", f"unset on DC EVSE {evse.id!r}", s.phases)
            elif evse.phases in (None, 1, 3) and (evse.phases or 3) < s.phases:
                # (an EVSE with bad phases is reported on the EVSE)
                c.param(
                    path,
                    "Session",
                    "phases",
                    f"<= the {evse.phases} phase(s) of EVSE {evse.id!r}",
                    s.phases,
                )
    if (
        evse is not None
        and evse.dc
        and (s.max_current_a is not None or s.min_current_a is not None)
    ):
        name = "max_current_a" if s.max_current_a is not None else "min_current_a"
        c.param(
            path,
            "Session",
            name,
            f"unset on DC EVSE {evse.id!r} (use max_power_kw)",
            getattr(s, name),
        )
    _check_number(c, path, "Session", "max_discharge_current_a", s.max_discharge_current_a)
    _check_number(c, path, "Session", "max_discharge_power_kw", s.max_discharge_power_kw)
    _check_number(
        c,
        path,
        "Session",
        "round_trip_efficiency",
        s.round_trip_efficiency,
        lo=0.0,
        lo_strict=True,
        hi=1.0,
        optional=False,
    )
    _check_number(
        c, path, "Session", "degradation_cost_per_kwh", s.degradation_cost_per_kwh, optional=False
    )
    if not isinstance(s.v2g, (bool, np.bool_)):
        c.param(path, "Session", "v2g", "a bool", s.v2g)
    elif s.v2g and evse is not None and not evse.bidirectional:
        c.param(
            path, "Session", "v2g", f"False on EVSE {evse.id!r}, which is not bidirectional", s.v2g
        )
    if s.soc_min_pct is not None and _check_number(
        c, path, "Session", "soc_min_pct", s.soc_min_pct, hi=100.0
    ):
        if s.battery_capacity_kwh is None or s.soc_now_pct is None:
            c.param(
                path,
                "Session",
                "soc_min_pct",
                "given only with battery_capacity_kwh and soc_now_pct",
                s.soc_min_pct,
            )
    if evse is not None and evse.dc and s.max_discharge_current_a is not None:
        c.param(
            path,
            "Session",
            "max_discharge_current_a",
            f"unset on DC EVSE {evse.id!r} (use max_discharge_power_kw)",
            s.max_discharge_current_a,
        )
    return window


def _check_bids(c: _Collector, bids: list[Any], session_ids: dict[str, int]) -> None:
    _check_ids(c, "v2g_bids", bids)
    for i, b in enumerate(bids):
        if not isinstance(b, V2GBid):
            c.add(
                f"v2g_bids[{i}]", f"v2g_bids[{i}] must be a V2GBid. Got {type(b).__name__} instead."
            )
            continue
        path = _label("v2g_bids", i, b)
        a = _check_timestamp(c, path, "V2GBid", "start", b.start)
        e = _check_timestamp(c, path, "V2GBid", "end", b.end)
        if a is not None and e is not None and e <= a:
            c.param(path, "V2GBid", "end", f"after start ({a})", b.end)
        _check_number(c, path, "V2GBid", "price_per_kwh", b.price_per_kwh, optional=False)
        ok_max = _check_number(
            c, path, "V2GBid", "max_discharge_kw", b.max_discharge_kw, optional=False
        )
        ok_com = _check_number(c, path, "V2GBid", "committed_kw", b.committed_kw, optional=False)
        if ok_max and ok_com and b.committed_kw > b.max_discharge_kw:
            c.param(
                path,
                "V2GBid",
                "committed_kw",
                f"<= max_discharge_kw ({b.max_discharge_kw})",
                b.committed_kw,
            )
        _check_number(c, path, "V2GBid", "penalty_per_kwh", b.penalty_per_kwh, optional=False)
        if b.sessions is not None and not isinstance(b.sessions, (list, tuple)):
            c.param(path, "V2GBid", "sessions", "a tuple of session ids", b.sessions)
        elif b.sessions is not None:
            for sid in b.sessions:
                if not _names(sid, session_ids):
                    c.add(
                        f"{path}.sessions",
                        f"The 'sessions' parameter of V2GBid must name "
                        f"sessions. Got unknown id {sid!r} instead.",
                        sid,
                    )


def _add_overlap(
    c: _Collector,
    path: str,
    first_id: str,
    second_id: str,
    evse_id: str,
    arrival: pd.Timestamp,
    departure: pd.Timestamp,
) -> None:
    """Report two sessions on one EVSE at once: the second arrives before the first leaves."""
    c.add(
        path,
        f"Sessions {first_id!r} and {second_id!r} overlap on EVSE {evse_id!r}: "
        f"arrival {arrival} is before departure {departure}.",
        arrival,
    )


def check_session(site: Site, session: Any, others: Sequence[Session] = ()) -> None:
    """Check one session against a valid site and the sessions already planned.

    The checks :func:`validate` makes for a session (its fields, its EVSE, no overlap
    with another session on that EVSE), without walking the site and every session
    again: for event handlers such as :meth:`chargeplan.replan.Replanner.add_session`.

    Parameters
    ----------
    site : Site
        A site :func:`validate` accepted.
    session : Session
        The new or updated session; problems are reported under ``session``.
    others : sequence of Session
        The other sessions (valid), checked for overlaps on the same EVSE.

    Raises
    ------
    InputError
        With one :class:`~chargeplan.exceptions.Problem` per problem found.
    """
    c = _Collector()
    if not isinstance(session, Session):
        c.add("session", f"session must be a Session. Got {type(session).__name__} instead.")
        raise InputError(c.problems)
    if not isinstance(session.id, str) or not session.id:
        c.param("session", "Session", "id", "a non-empty string", session.id)
    path = f"session (id={session.id!r})"
    evses = {e.id: e for e in site.evses}
    w = _check_session(c, path, session, evses)
    if w is not None and isinstance(session.evse, str):
        for o in others:
            if o.evse == session.evse and o.id != session.id:
                a, d = pd.Timestamp(o.arrival), pd.Timestamp(o.departure)
                if not (w[0] < d and a < w[1]):
                    continue
                if a <= w[0]:  # the other one arrived first
                    _add_overlap(c, f"{path}.arrival", o.id, session.id, session.evse, w[0], d)
                else:
                    _add_overlap(c, f"{path}.arrival", session.id, o.id, session.evse, a, w[1])
    if c.problems:
        raise InputError(c.problems)


def validate(
    site: Site,
    sessions: Sequence[Session],
    *,
    start: Any,
    horizon: Any,
    step: Any,
    tariff: Tariff | None = None,
    forecast: Forecast | None = None,
    v2g_bids: Sequence[V2GBid] | None = None,
) -> TimeGrid:
    """Check every input and return the time grid; raise one InputError listing every problem.

    Parameters
    ----------
    site, sessions, start, horizon, step, tariff, forecast, v2g_bids
        As for :func:`chargeplan.optimize`.

    Returns
    -------
    TimeGrid
        The validated time axis.

    Raises
    ------
    InputError
        With one :class:`~chargeplan.exceptions.Problem` per problem found.

    Notes
    -----
    Bounds, rejected before anything is allocated: at most ``MAX_SESSIONS`` (100 000)
    sessions, ``MAX_SLOTS`` (20 000) slots, ``MAX_CELLS`` (20 million) session x slot
    cells, ``MAX_NODES`` (100 000) nodes and ``MAX_DEPTH`` (32) levels. Every number
    (limits, energies, prices, charges; scalar or in a series) must be finite and at
    most ``MAX_MAGNITUDE`` (1e6) in magnitude: use None, not a huge value, for "no
    limit". Voltages must be at least ``MIN_VOLTAGE_V`` (1 V).
    """
    c = _Collector()
    grid = _parse_grid(c, start, horizon, step)
    if not isinstance(site, Site):
        c.add(
            "site",
            f"The 'site' parameter of optimize must be a Site. Got {type(site).__name__} instead.",
        )
        raise InputError(c.problems)
    try:
        sessions = list(sessions)
    except TypeError:
        c.problems += _not_sessions("optimize", sessions)
        raise InputError(c.problems) from None
    for name in ("nodes", "evses"):
        try:
            list(getattr(site, name))
        except TypeError:
            c.add(
                f"site.{name}",
                f"The '{name}' parameter of Site must be a list of "
                f"{'Node' if name == 'nodes' else 'Evse'}. Got {getattr(site, name)!r} instead.",
                getattr(site, name),
            )
    if c.problems and any(p.path in ("site.nodes", "site.evses") for p in c.problems):
        raise InputError(c.problems)
    n_nodes, _n_evses, n_sessions = len(list(site.nodes)), len(list(site.evses)), len(sessions)
    if n_nodes > MAX_NODES:
        c.add(
            "site.nodes", f"A site must have <= {MAX_NODES} nodes. Got {n_nodes} instead.", n_nodes
        )
    if n_sessions > MAX_SESSIONS:
        c.add(
            "sessions",
            f"At most {MAX_SESSIONS} sessions are accepted. Got {n_sessions} instead.",
            n_sessions,
        )
    if grid is not None and n_sessions * grid.n_slots > MAX_CELLS:
        c.add(
            "sessions",
            f"sessions x slots must be <= {MAX_CELLS}. Got {n_sessions} x {grid.n_slots} instead.",
            n_sessions * grid.n_slots,
        )
    if c.problems and any(p.path in ("site.nodes", "sessions") for p in c.problems):
        raise InputError(c.problems)  # too large: stop before walking everything
    _check_number(c, "site", "Site", "voltage_v", site.voltage_v, lo=MIN_VOLTAGE_V, optional=False)
    _check_number(c, "site", "Site", "export_limit_kw", site.export_limit_kw)
    _check_bool(c, "site", "Site", "phasor_limits", site.phasor_limits)
    node_ids = _check_nodes(c, site, grid)

    evse_list = list(site.evses)
    evse_idx = _check_ids(c, "site.evses", evse_list)
    for i, e in enumerate(evse_list):
        if not isinstance(e, Evse):
            c.add(
                f"site.evses[{i}]",
                f"site.evses[{i}] must be an Evse. Got {type(e).__name__} instead.",
            )
            continue
        _check_evse(c, _label("site.evses", i, e), e, node_ids)
    evses = {e.id: e for e in evse_list if isinstance(e, Evse) and isinstance(e.id, str)}
    # an EVSE whose flags or phases are of the wrong type cannot be reasoned about: its
    # sessions are checked without it (and not reported as naming an unknown EVSE)
    flawed = frozenset(k for k, e in evses.items() if not _kind_known(e))
    evses = {k: e for k, e in evses.items() if k not in flawed}

    session_ids = _check_ids(c, "sessions", sessions)
    windows: dict[str, list[tuple[pd.Timestamp, pd.Timestamp, int]]] = {}
    for i, s in enumerate(sessions):
        if not isinstance(s, Session):
            c.add(
                f"sessions[{i}]",
                f"sessions[{i}] must be a Session. Got {type(s).__name__} instead.",
            )
            continue
        w = _check_session(c, _label("sessions", i, s), s, evses, flawed)
        if w is not None and _names(s.evse, evses):
            windows.setdefault(s.evse, []).append((w[0], w[1], i))
    for evse_id, ws in windows.items():
        ws.sort(key=lambda x: (x[0], x[2]))
        for (_a0, d0, i0), (a1, _d1, i1) in zip(ws, ws[1:], strict=False):
            if a1 < d0:
                path = f"{_label('sessions', i1, sessions[i1])}.arrival"
                _add_overlap(c, path, sessions[i0].id, sessions[i1].id, evse_id, a1, d0)
    del evse_idx

    if tariff is not None:
        if not isinstance(tariff, Tariff):
            c.add(
                "tariff",
                f"The 'tariff' parameter of optimize must be a Tariff. Got "
                f"{type(tariff).__name__} instead.",
            )
        else:
            for name in ("import_price_per_kwh", "export_price_per_kwh"):
                _check_scalar_or_series(
                    c, "tariff", "Tariff", name, getattr(tariff, name), grid, nonneg=False
                )
            for name in ("demand_charge_per_kw", "peak_already_kw"):
                _check_number(c, "tariff", "Tariff", name, getattr(tariff, name), optional=False)
    if forecast is not None:
        if not isinstance(forecast, Forecast):
            c.add(
                "forecast",
                f"The 'forecast' parameter of optimize must be a Forecast. Got "
                f"{type(forecast).__name__} instead.",
            )
        else:
            for name in ("pv_kw", "base_load_kw"):
                _check_scalar_or_series(
                    c, "forecast", "Forecast", name, getattr(forecast, name), grid, nonneg=True
                )
    if v2g_bids is not None:
        try:
            bids = list(v2g_bids)
        except TypeError:
            c.add("v2g_bids", "The 'v2g_bids' parameter of optimize must be a sequence of V2GBid.")
        else:
            _check_bids(c, bids, session_ids)
    if c.problems:
        raise InputError(c.problems)
    assert grid is not None
    return grid
