"""JSON scenario files: the planner's inputs as one documented, validated JSON document.

A *scenario* holds everything :func:`chargeplan.optimize` needs (site, sessions,
tariff, forecast, V2G bids and the planning settings) plus the OCPP capabilities of
the charging stations, so that non-Python callers and the ``chargeplan`` command can
plan from a file. The format is specified by the JSON Schema
``chargeplan/schemas/scenario.schema.json`` and documented in
``docs/scenario-format.md``.

Reading a file checks it in two steps, and both raise :class:`~chargeplan.InputError`
whose problems carry JSON paths such as ``$.sessions[2].energy_kwh``:

1. the JSON Schema (structure, field names, types, time stamps with a UTC offset);
2. :func:`chargeplan.validate` (values, references between ids, time windows), with
   the same messages as the Python API, its field paths mapped to JSON paths.

Writing and reading round-trip exactly: ``scenario_to_dict(scenario_from_dict(d)) ==
d`` for every canonical dict ``d`` (one written by :func:`scenario_to_dict`), and the
objects read back equal the objects written field by field, including the values,
index and time zone of every pandas Series.

:func:`session_from_notify_ev_charging_needs` turns an OCPP 2.0.1 / 2.1
``NotifyEVChargingNeedsRequest`` payload into a :class:`~chargeplan.Session`.

``jsonschema`` is needed to read or write scenarios (imported on first use); the
NotifyEVChargingNeeds helper also needs the ``ocpp`` package for the official schemas.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import functools
import json
import math
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from .exceptions import InputError, Problem, Violation
from .model import Evse, Forecast, Node, Session, Site, Tariff, V2GBid
from .ocpp import StationCapabilities
from .validation import _is_number as _is_real

if TYPE_CHECKING:
    from .ocpp import ChargingProfileRequest
    from .plan import Plan
    from .timegrid import TimeGrid

__all__ = [
    "FORMAT_VERSION",
    "PLAN_FORMAT_VERSION",
    "Scenario",
    "load_scenario",
    "loads_scenario",
    "save_scenario",
    "scenario_to_dict",
    "scenario_from_dict",
    "scenario_schema",
    "plan_to_dict",
    "check_plan_dict",
    "session_from_notify_ev_charging_needs",
]

#: Version of the scenario format written by :func:`scenario_to_dict`.
FORMAT_VERSION = 1
#: Version of the plan file format written by :func:`plan_to_dict`.
PLAN_FORMAT_VERSION = 1
#: Key of :attr:`Scenario.capabilities` that applies to every station not listed.
ANY_STATION = "*"

_PLAN_KIND = "chargeplan-plan"
_OFFSET_RE = re.compile(r"^([+-])(\d{2}):?(\d{2})$")
_SUFFIX_RE = re.compile(r"^(?P<body>[^\[]*)(?:\[(?P<zone>[^\]]+)\])?$")
_HAS_OFFSET_RE = re.compile(r"(Z|z|[+-]\d{2}:?\d{2})$")
_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# "sessions[2] (id='s3')" -> "sessions[2]": the id label ends before "." or the end
_LABEL_RE = re.compile(r"\[(\d+)\] \(id=.*?\)(?=\.|$)")
_API_PREFIXES = (
    ("optimize.", "planning."),
    ("optimize", "planning"),
)


# --------------------------------------------------------------------------- Scenario


@dataclass(frozen=True, eq=False)
class Scenario:
    """Inputs and settings of one planning run, as stored in a scenario file.

    Parameters
    ----------
    site : Site
        The electrical tree and its EVSEs.
    sessions : sequence of Session
        EVs plugged in or expected.
    start : pandas.Timestamp
        Start of the plan (tz-aware); also decides the file's ``timezone``.
    horizon, step : str or int, default "24h", "15min"
        Length of the plan and of a slot: a pandas duration string or seconds.
    method : str, default "auto"
        Solver passed to :func:`chargeplan.optimize`.
    time_limit_s : float, optional
        Time limit of each HiGHS run.
    delay_cost_per_kwh_h : float, default 0
        Objective cost of charging later, passed to :func:`chargeplan.optimize`.
    tariff : Tariff, optional
    forecast : Forecast, optional
    v2g_bids : sequence of V2GBid, optional
    capabilities : mapping of str to StationCapabilities, optional
        OCPP capabilities per charging station id; the key ``"*"`` applies to every
        station not listed (default: :class:`~chargeplan.ocpp.StationCapabilities()`).
    description : str, optional
        Free text.

    Examples
    --------
    >>> import pandas as pd, chargeplan as cp
    >>> from chargeplan.scenario import Scenario, scenario_from_dict, scenario_to_dict
    >>> t0 = pd.Timestamp("2024-06-01 08:00", tz="Europe/Amsterdam")
    >>> sc = Scenario(
    ...     site=cp.Site(nodes=[cp.Node("grid", limit_a=32)],
    ...                  evses=[cp.Evse("cp1", parent="grid", max_current_a=16)]),
    ...     sessions=[cp.Session("s1", evse="cp1", arrival=t0,
    ...                          departure=t0 + pd.Timedelta("4h"), energy_kwh=10)],
    ...     start=t0, horizon="4h")
    >>> d = scenario_to_dict(sc)
    >>> d["sessions"][0]["arrival"], d["timezone"]
    ('2024-06-01T08:00:00+02:00', 'Europe/Amsterdam')
    >>> scenario_to_dict(scenario_from_dict(d)) == d
    True
    >>> round(sc.optimize().kpis["delivered_kwh"], 1)
    10.0
    """

    site: Site
    sessions: Sequence[Session]
    start: pd.Timestamp
    horizon: str | int = "24h"
    step: str | int = "15min"
    method: str = "auto"
    time_limit_s: float | None = None
    delay_cost_per_kwh_h: float = 0.0
    tariff: Tariff | None = None
    forecast: Forecast | None = None
    v2g_bids: Sequence[V2GBid] | None = None
    capabilities: Mapping[str, StationCapabilities] | None = None
    description: str | None = None

    # -- planning -------------------------------------------------------------------
    def validate(self) -> TimeGrid:
        """Check every input as :func:`chargeplan.optimize` would.

        Returns
        -------
        TimeGrid
            The plan's time axis.

        Raises
        ------
        InputError
            Listing every problem, each with the JSON path of the field in the
            scenario's dict form (e.g. ``$.sessions[2].energy_kwh``).
        """
        from .solvers import METHODS
        from .validation import validate

        problems: list[Problem] = []
        grid = None
        try:
            grid = validate(
                self.site,
                list(self.sessions),
                start=self.start,
                horizon=self.horizon,
                step=self.step,
                tariff=self.tariff,
                forecast=self.forecast,
                v2g_bids=None if self.v2g_bids is None else list(self.v2g_bids),
            )
        except InputError as err:
            problems += [_map_api_problem(p, self) for p in err.problems]
        if not isinstance(self.method, str) or self.method not in METHODS:
            problems.append(
                Problem(
                    "$.planning.method",
                    "The 'method' parameter of optimize must be one of "
                    f"{METHODS}. Got {self.method!r} instead.",
                    self.method,
                )
            )
        tl = self.time_limit_s
        if tl is not None and not (_is_real(tl) and math.isfinite(tl) and tl > 0):
            problems.append(
                Problem(
                    "$.planning.time_limit_s",
                    f"The 'time_limit_s' parameter of optimize must be > 0. Got {tl!r} instead.",
                    tl,
                )
            )
        dc = self.delay_cost_per_kwh_h
        if not (_is_real(dc) and math.isfinite(dc) and dc >= 0):
            problems.append(
                Problem(
                    "$.planning.delay_cost_per_kwh_h",
                    "The 'delay_cost_per_kwh_h' parameter of optimize must be a finite "
                    f"number >= 0. Got {dc!r} instead.",
                    dc,
                )
            )
        problems += self._capability_problems()
        if problems:
            raise InputError(problems)
        assert grid is not None
        return grid

    def _capability_problems(self) -> list[Problem]:
        if self.capabilities is None:
            return []
        stations = self.station_ids()
        out = []
        for key, caps in self.capabilities.items():
            path = "$.capabilities" + _key_path(key)
            if not isinstance(caps, StationCapabilities):
                out.append(
                    Problem(
                        path,
                        f"The capabilities of station {key!r} must be a StationCapabilities. "
                        f"Got {type(caps).__name__} instead.",
                    )
                )
            elif key != ANY_STATION and key not in stations:
                shown = ", ".join(repr(s) for s in sorted(stations)[:10])
                out.append(
                    Problem(
                        path,
                        f"The capabilities key must name a charging station of the site "
                        f"(or be '*'). Got unknown station id {key!r} instead; the site's "
                        f"stations are {shown}.",
                        key,
                    )
                )
        return out

    def station_ids(self) -> list[str]:
        """Ids of the OCPP charging stations of the site (EVSEs and station nodes)."""
        ids = {e.ocpp_station_id for e in self.site.evses}
        ids |= {n.station_id for n in self.site.nodes if n.station_id is not None}
        return sorted(ids)

    def station_capabilities(self) -> dict[str, StationCapabilities]:
        """Capabilities of every station of the site, with ``"*"`` applied to the rest."""
        caps = dict(self.capabilities or {})
        default = caps.get(ANY_STATION, StationCapabilities())
        return {s: caps.get(s, default) for s in self.station_ids()}

    def optimize(self, **overrides: Any) -> Plan:
        """Plan with :func:`chargeplan.optimize` using this scenario's inputs and settings.

        Parameters
        ----------
        **overrides
            Keyword arguments of :func:`chargeplan.optimize` replacing the scenario's
            (e.g. ``method="lp"``).

        Returns
        -------
        Plan

        Raises
        ------
        InputError
            With JSON paths (see :meth:`validate`).
        """
        from .api import optimize

        kwargs: dict[str, Any] = dict(
            start=self.start,
            horizon=self.horizon,
            step=self.step,
            tariff=self.tariff,
            forecast=self.forecast,
            v2g_bids=None if self.v2g_bids is None else list(self.v2g_bids),
            method=self.method,
            time_limit_s=self.time_limit_s,
            delay_cost_per_kwh_h=self.delay_cost_per_kwh_h,
        )
        kwargs.update(overrides)
        try:
            return optimize(self.site, list(self.sessions), **kwargs)
        except InputError as err:
            raise InputError([_map_api_problem(p, self) for p in err.problems]) from None

    def to_ocpp(self, plan: Plan, version: str = "2.0.1") -> list[ChargingProfileRequest]:
        """``SetChargingProfile`` requests of a plan, with this scenario's station capabilities.

        Parameters
        ----------
        plan : Plan
            A plan of this scenario (from :meth:`optimize`).
        version : {"1.6", "2.0.1", "2.1"}
            OCPP version.

        Returns
        -------
        list of ChargingProfileRequest
        """
        return plan.to_ocpp(version, capabilities=self.station_capabilities())

    # -- files --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Return the scenario as a JSON-ready dict (see :func:`scenario_to_dict`)."""
        return scenario_to_dict(self)

    def save(self, path: str | os.PathLike[str], *, validate: bool = True) -> Path:
        """Write the scenario to a JSON file (see :func:`save_scenario`)."""
        return save_scenario(self, path, validate=validate)


# --------------------------------------------------------------------------- JSON paths


def _key_path(key: Any) -> str:
    if isinstance(key, int):
        return f"[{key}]"
    key = str(key)
    return f".{key}" if _IDENT_RE.match(key) else f"[{key!r}]"


def _json_path(parts: Sequence[Any], root: str = "$") -> str:
    return root + "".join(_key_path(p) for p in parts)


def _map_api_problem(p: Problem, scenario: Scenario | None = None) -> Problem:
    """Return a problem of :func:`chargeplan.validate` with its path as a JSON path."""
    path = p.path
    if path.startswith("$"):
        return p
    path = _LABEL_RE.sub(r"[\1]", path)
    for old, new in _API_PREFIXES:
        if path == old or path.startswith(old):
            path = new + path[len(old) :]
            break
    m = re.fullmatch(r"v2g_bids\[(\d+)\]\.sessions", path)
    if m and scenario is not None and scenario.v2g_bids is not None:
        # point at the unknown session id inside the bid's list
        try:
            bid = list(scenario.v2g_bids)[int(m.group(1))]
            path += f"[{list(bid.sessions or ()).index(p.value)}]"
        except (IndexError, ValueError):
            pass
    return Problem("$." + path, p.message, p.value)


def _prefix_problems(err: InputError, prefix: str) -> InputError:
    return InputError(
        [
            Problem(prefix + p.path[1:], p.message, p.value) if p.path.startswith("$") else p
            for p in err.problems
        ]
    )


# --------------------------------------------------------------------------- schema


@functools.cache
def scenario_schema() -> dict[str, Any]:
    """Return the JSON Schema of scenario files (cached: do not mutate it)."""
    text = (
        resources.files("chargeplan")
        .joinpath("schemas", "scenario.schema.json")
        .read_text(encoding="utf-8")
    )
    return json.loads(text)


@functools.cache
def _scenario_validator() -> Any:
    try:
        from jsonschema import Draft202012Validator
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "Reading and writing chargeplan scenario files needs the 'jsonschema' "
            "package: pip install jsonschema"
        ) from err
    return Draft202012Validator(scenario_schema())


_TYPE_WORDS = {
    "number": "a number",
    "integer": "an integer",
    "string": "a string",
    "boolean": "true or false",
    "array": "an array",
    "object": "an object",
    "null": "null",
}
_TITLED_EXPECTED = {
    "scalar_or_series": 'a number or a time series {"index": [...], "values": [...]}',
    "limit_a": (
        'a number, an [L1, L2, L3] array or a time series {"index": [...], '
        '"values": [...]} or {"index": [...], "L1": [...], "L2": [...], "L3": [...]}'
    ),
}


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _subject(parts: Sequence[Any]) -> str:
    if parts and isinstance(parts[-1], str):
        return f"The '{parts[-1]}' field"
    for p in reversed(parts):
        if isinstance(p, str):
            return f"An item of '{p}'"
    return "The document"


def _owner(title: str | None, parts: Sequence[Any]) -> str:
    named = {
        "chargeplan scenario": "the scenario",
        "series": "a time series",
        "phase_series": "a per-phase time series",
    }
    if title in named:
        return named[title]
    if title:
        return title
    for p in reversed(parts):
        if isinstance(p, str):
            return f"'{p}'"
    return "the document"


def _schema_error_problems(err: Any) -> list[Problem]:
    parts = list(err.absolute_path)
    path = _json_path(parts)
    kind = err.validator
    schema = err.schema if isinstance(err.schema, dict) else {}
    title = schema.get("title")
    inst = err.instance
    owner = _owner(title, parts)
    if kind == "required":
        return [
            Problem(
                _json_path([*parts, name]),
                f"The '{name}' field of {owner} is required.",
                None,
            )
            for name in err.validator_value
            if isinstance(inst, dict) and name not in inst
        ]
    if kind == "additionalProperties" and isinstance(inst, dict):
        allowed = list(schema.get("properties", {}))
        if title == "phase_series":
            allowed = [*allowed, "values"]
            owner = "a time series"
        out = []
        for key in inst:
            if key in schema.get("properties", {}):
                continue
            close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            out.append(
                Problem(
                    _json_path([*parts, key]),
                    f"'{key}' is not a field of {owner}{hint}. Allowed fields: "
                    f"{', '.join(allowed)}.",
                    key,
                )
            )
        return out
    if kind == "type":
        types = (
            err.validator_value if isinstance(err.validator_value, list) else [err.validator_value]
        )
        expected = _TITLED_EXPECTED.get(title or "") or " or ".join(
            _TYPE_WORDS.get(t, t) for t in types
        )
        return [
            Problem(
                path, f"{_subject(parts)} must be {expected}. Got {_short(inst)} instead.", inst
            )
        ]
    if kind == "pattern" and title == "timestamp":
        if isinstance(inst, str) and not _HAS_OFFSET_RE.search(_SUFFIX_RE.sub(r"\g<body>", inst)):
            msg = (
                f"{_subject(parts)} must be a time-zone aware timestamp: ISO 8601 with a UTC "
                "offset such as '2024-06-01T08:00:00+02:00' or '...Z'. Got the naive "
                f"timestamp {inst!r} instead."
            )
        else:
            msg = (
                f"{_subject(parts)} must be an ISO 8601 timestamp with a UTC offset, "
                f"e.g. '2024-06-01T08:00:00+02:00'. Got {_short(inst)} instead."
            )
        return [Problem(path, msg, inst)]
    if kind == "pattern" and title == "zone":
        return [
            Problem(
                path,
                f"{_subject(parts)} must be an IANA time zone such as 'Europe/Amsterdam' "
                f"or an offset such as '+02:00'. Got {_short(inst)} instead.",
                inst,
            )
        ]
    if kind == "anyOf" and title == "phase_series":
        return [
            Problem(
                path,
                f"{_subject(parts)} must have 'values' (a time series) or at least one of "
                "'L1', 'L2', 'L3' (a per-phase time series).",
                None,
            )
        ]
    if kind == "const":
        return [
            Problem(
                path,
                f"{_subject(parts)} must be {err.validator_value!r}. Got {_short(inst)} instead.",
                inst,
            )
        ]
    if kind == "enum":
        return [
            Problem(
                path,
                f"{_subject(parts)} must be one of {tuple(err.validator_value)}. "
                f"Got {_short(inst)} instead.",
                inst,
            )
        ]
    if kind == "minLength" and err.validator_value == 1:
        return [Problem(path, f"{_subject(parts)} must be a non-empty string.", inst)]
    if kind in ("minItems", "maxItems") and title is None and parts and parts[-1] == "limit_a":
        return [
            Problem(
                path,
                f"The 'limit_a' field as an array must have exactly 3 items [L1, L2, L3] "
                f"(null for no limit). Got {_short(inst)} instead.",
                inst,
            )
        ]
    return [Problem(path, f"{_subject(parts)}: {err.message}", inst)]


def _sort_key(err: Any) -> tuple:
    return tuple((0, p, "") if isinstance(p, int) else (1, 0, str(p)) for p in err.absolute_path)


def _schema_problems(data: Any, validator: Any = None) -> list[Problem]:
    validator = validator or _scenario_validator()
    out: list[Problem] = []
    seen: set[tuple[str, str]] = set()
    for err in sorted(validator.iter_errors(data), key=_sort_key):
        for p in _schema_error_problems(err):
            if (p.path, p.message) not in seen:
                seen.add((p.path, p.message))
                out.append(p)
    return out


# --------------------------------------------------------------------------- time zones


def _offset_key(offset: dt.timedelta | None) -> str | None:
    if offset is None:
        return None
    total = int(offset.total_seconds())
    sign = "+" if total >= 0 else "-"
    total = abs(total)
    return f"{sign}{total // 3600:02d}:{total % 3600 // 60:02d}"


def _tz_key(tz: Any) -> str | None:
    """Name a time zone so that :func:`_zone` turns the name back into an equal zone."""
    if tz is None:
        return None
    key = getattr(tz, "key", None)  # zoneinfo
    if isinstance(key, str):
        return key
    zone = getattr(tz, "zone", None)  # pytz
    if isinstance(zone, str):
        return zone
    if isinstance(tz, dt.timezone):
        return _offset_key(tz.utcoffset(None))
    filename = getattr(tz, "_filename", None)  # dateutil
    if isinstance(filename, str) and "zoneinfo/" in filename:
        return filename.split("zoneinfo/", 1)[1]
    return None


def _zone(key: str) -> dt.tzinfo:
    """Return the zone named by an IANA key or a ``+HH:MM`` offset (or raise ValueError)."""
    m = _OFFSET_RE.match(key)
    if m:
        minutes = int(m.group(2)) * 60 + int(m.group(3))
        if minutes >= 24 * 60:
            raise ValueError(f"offset {key!r} is out of range")
        sign = 1 if m.group(1) == "+" else -1
        return dt.timezone(dt.timedelta(minutes=sign * minutes))
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as err:
        raise ValueError(f"unknown time zone {key!r}") from err


def _stamp_key(ts: pd.Timestamp) -> str | None:
    return _tz_key(ts.tz) or _offset_key(ts.utcoffset())


# --------------------------------------------------------------------------- writing


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


class _Writer:
    def __init__(self, top_key: str | None) -> None:
        self.top = top_key

    def timestamp(self, value: Any) -> Any:
        if isinstance(value, (pd.Timestamp, dt.datetime)):
            ts = pd.Timestamp(value)
            if ts.tz is None:
                return ts.isoformat()  # rejected by the schema: naive
            text = ts.isoformat()
            key = _stamp_key(ts)
            implied = self.top if self.top is not None else _offset_key(ts.utcoffset())
            return text if key == implied else f"{text}[{key}]"
        return _jsonable(value)

    def _index(self, idx: Any, out: dict[str, Any]) -> None:
        if isinstance(idx, pd.DatetimeIndex) and idx.tz is not None:
            out["index"] = [t.isoformat() for t in idx]
            key = _tz_key(idx.tz)
            if len(idx):
                first = _offset_key(idx[0].utcoffset())
                key = key or first
                implied = self.top if self.top is not None else first
            else:
                implied = self.top
            if key is not None and key != implied:
                out["tz"] = key
        else:  # naive or not a DatetimeIndex: written as is, rejected by the schema
            out["index"] = [t.isoformat() if hasattr(t, "isoformat") else _jsonable(t) for t in idx]

    def value(self, value: Any) -> Any:
        if isinstance(value, pd.Series):
            out: dict[str, Any] = {}
            self._index(value.index, out)
            out["values"] = [_jsonable(v) for v in value.tolist()]
            if isinstance(value.name, str):
                out["name"] = value.name
            return out
        if isinstance(value, pd.DataFrame):
            out = {}
            self._index(value.index, out)
            tz = out.pop("tz", None)
            for col in value.columns:
                out[str(col)] = [_jsonable(v) for v in value[col].tolist()]
            if tz is not None:
                out["tz"] = tz
            return out
        if isinstance(value, (pd.Timestamp, dt.datetime)):
            return self.timestamp(value)
        if isinstance(value, (tuple, list)):
            return [self.value(v) for v in value]
        return _jsonable(value)

    def obj(self, obj: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(obj):
            v = getattr(obj, f.name)
            if f.default is not dataclasses.MISSING and _is_default(v, f.default):
                continue
            out[f.name] = self.value(v)
        return out


def _is_default(value: Any, default: Any) -> bool:
    if isinstance(value, (pd.Series, pd.DataFrame)):
        return False
    if default is None:
        return value is None
    if isinstance(default, bool):
        return isinstance(value, (bool, np.bool_)) and bool(value) == default
    if isinstance(default, (int, float)):
        return _is_real(value) and value == default
    if isinstance(default, tuple):
        return isinstance(value, tuple) and value == default
    return type(value) is type(default) and value == default


def _duration_out(value: Any) -> Any:
    if isinstance(value, pd.Timedelta):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return pd.Timedelta(value).isoformat()
    return _jsonable(value)


def scenario_to_dict(scenario: Scenario) -> dict[str, Any]:
    """Convert a scenario to a JSON-ready dict in the canonical form of the format.

    Fields equal to their default are left out; series are written as
    ``{"index": [...], "values": [...]}`` and per-phase limits as ``{"index": [...],
    "L1": [...], ...}``; time stamps as ISO 8601 with their UTC offset. The file's
    ``timezone`` is the zone of ``start`` when it has a name; a time stamp or series
    in another zone names it (``[Zone]`` suffix or ``"tz"`` key).

    Parameters
    ----------
    scenario : Scenario

    Returns
    -------
    dict
        ``json.dumps`` can write it; no validation is done here (see
        :func:`save_scenario`).
    """
    start = scenario.start
    top = None
    if isinstance(start, (pd.Timestamp, dt.datetime)) and pd.Timestamp(start).tz is not None:
        key = _tz_key(pd.Timestamp(start).tz)
        top = key if key is not None and not _OFFSET_RE.match(key) else None
    w = _Writer(top)
    out: dict[str, Any] = {"format_version": FORMAT_VERSION}
    if scenario.description is not None:
        out["description"] = scenario.description
    if top is not None:
        out["timezone"] = top
    site = scenario.site
    site_d: dict[str, Any] = {
        "nodes": [w.obj(n) for n in site.nodes],
        "evses": [w.obj(e) for e in site.evses],
    }
    for name, default in (("voltage_v", 230.0), ("export_limit_kw", None), ("phasor_limits", True)):
        v = getattr(site, name)
        if not _is_default(v, default):
            site_d[name] = _jsonable(v)
    out["site"] = site_d
    out["sessions"] = [w.obj(s) for s in scenario.sessions]
    if scenario.tariff is not None:
        out["tariff"] = w.obj(scenario.tariff)
    if scenario.forecast is not None:
        out["forecast"] = w.obj(scenario.forecast)
    if scenario.v2g_bids is not None:
        out["v2g_bids"] = [w.obj(b) for b in scenario.v2g_bids]
    if scenario.capabilities is not None:
        out["capabilities"] = {
            str(k): w.obj(c) if dataclasses.is_dataclass(c) else c
            for k, c in scenario.capabilities.items()
        }
    planning: dict[str, Any] = {
        "start": w.timestamp(start),
        "horizon": _duration_out(scenario.horizon),
        "step": _duration_out(scenario.step),
        "method": scenario.method,
    }
    if scenario.time_limit_s is not None:
        planning["time_limit_s"] = _jsonable(scenario.time_limit_s)
    if scenario.delay_cost_per_kwh_h != 0:
        planning["delay_cost_per_kwh_h"] = _jsonable(scenario.delay_cost_per_kwh_h)
    out["planning"] = planning
    return out


# --------------------------------------------------------------------------- reading


class _Reader:
    def __init__(self, top: dt.tzinfo | None) -> None:
        self.top = top
        self.problems: list[Problem] = []

    def bad(self, parts: Sequence[Any], message: str, value: Any = None) -> None:
        self.problems.append(Problem(_json_path(parts), message, value))

    def _parse(self, text: str, parts: Sequence[Any]) -> tuple[pd.Timestamp, str | None] | None:
        m = _SUFFIX_RE.match(text)
        body, zone = (m.group("body"), m.group("zone")) if m else (text, None)
        try:
            ts = pd.Timestamp(body)
        except (ValueError, TypeError, OverflowError):
            self.bad(
                parts,
                f"{_subject(parts)} is not a valid date and time. Got {text!r} instead.",
                text,
            )
            return None
        if ts is pd.NaT or ts.tz is None:
            self.bad(
                parts,
                f"{_subject(parts)} must be a time-zone aware timestamp (ISO 8601 with a UTC "
                f"offset). Got {text!r} instead.",
                text,
            )
            return None
        return ts, zone

    def zone(self, key: str, parts: Sequence[Any]) -> dt.tzinfo | None:
        try:
            return _zone(key)
        except ValueError:
            self.bad(
                parts,
                f"{_subject(parts)} must name a known IANA time zone or an offset "
                f"'+HH:MM'. Got {key!r} instead.",
                key,
            )
            return None

    def timestamp(self, text: str, parts: Sequence[Any]) -> pd.Timestamp | None:
        parsed = self._parse(text, parts)
        if parsed is None:
            return None
        ts, zone_key = parsed
        tz = self.top
        if zone_key is not None:
            tz = self.zone(zone_key, parts)
            if tz is None:
                return None
        return ts.tz_convert(tz) if tz is not None else ts

    def _index(self, obj: dict[str, Any], parts: Sequence[Any]) -> pd.DatetimeIndex | None:
        texts = obj["index"]
        tz: dt.tzinfo | None = self.top
        if "tz" in obj:
            tz = self.zone(obj["tz"], [*parts, "tz"])
            if tz is None:
                return None
        parsed = []
        for k, text in enumerate(texts):
            p = self._parse(text, [*parts, "index", k])
            if p is None:
                return None
            if p[1] is not None and "tz" not in obj and k == 0:
                tz = self.zone(p[1], [*parts, "index", k])
                if tz is None:
                    return None
            parsed.append(p[0])
        if tz is None:
            tz = parsed[0].tz if parsed else dt.UTC
        if not parsed:
            return pd.DatetimeIndex([], tz=tz)
        return pd.DatetimeIndex([t.tz_convert("UTC") for t in parsed]).tz_convert(tz)

    def _values(self, values: list[Any], n: int, parts: Sequence[Any]) -> np.ndarray | None:
        if len(values) != n:
            self.bad(
                parts,
                f"{_subject(parts)} must have one value per time stamp of 'index' ({n}). "
                f"Got {len(values)} instead.",
                len(values),
            )
            return None
        if not values:
            return np.zeros(0, dtype=np.float64)
        if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            try:
                return np.asarray(values, dtype=np.int64)
            except OverflowError:
                pass
        return np.asarray(values, dtype=np.float64)

    def series(self, obj: dict[str, Any], parts: Sequence[Any]) -> pd.Series | None:
        idx = self._index(obj, parts)
        if idx is None:
            return None
        vals = self._values(obj["values"], len(idx), [*parts, "values"])
        if vals is None:
            return None
        return pd.Series(vals, index=idx, name=obj.get("name"))

    def frame(self, obj: dict[str, Any], parts: Sequence[Any]) -> pd.DataFrame | None:
        idx = self._index(obj, parts)
        if idx is None:
            return None
        cols = {}
        for col in obj:
            if col in ("L1", "L2", "L3"):
                vals = self._values(obj[col], len(idx), [*parts, col])
                if vals is None:
                    return None
                cols[col] = vals
        return pd.DataFrame(cols, index=idx)

    def value(self, value: Any, parts: Sequence[Any]) -> Any:
        """Convert a schema-valid number, null, array or series value."""
        if isinstance(value, dict):
            if "values" in value:
                return self.series(value, parts)
            return self.frame(value, parts)
        if isinstance(value, list):  # limit_a (L1, L2, L3)
            return tuple(value)
        return value

    def obj(self, cls: type, data: dict[str, Any], parts: Sequence[Any], times: tuple = ()) -> Any:
        kwargs: dict[str, Any] = {}
        for key, v in data.items():
            if key in times:
                kwargs[key] = self.timestamp(v, [*parts, key])
            elif cls is V2GBid and key == "sessions":
                kwargs[key] = None if v is None else tuple(v)
            else:
                kwargs[key] = self.value(v, [*parts, key])
        return cls(**kwargs)


def scenario_from_dict(data: Mapping[str, Any], *, validate: bool = True) -> Scenario:
    """Build a :class:`Scenario` from its dict form (a parsed scenario file).

    Parameters
    ----------
    data : mapping
        The scenario, as parsed from JSON.
    validate : bool, default True
        Also check the values with :func:`chargeplan.validate` (the JSON Schema is
        always checked).

    Returns
    -------
    Scenario

    Raises
    ------
    InputError
        Listing every problem, each with its JSON path (``$.sessions[2].arrival``).
    """
    problems = _schema_problems(data)
    if problems:
        raise InputError(problems)
    top = None
    reader = _Reader(None)
    if "timezone" in data:
        top = reader.zone(data["timezone"], ["timezone"])
        if top is None:
            raise InputError(reader.problems)
    reader.top = top
    site_d = data["site"]
    nodes = [reader.obj(Node, n, ["site", "nodes", i]) for i, n in enumerate(site_d["nodes"])]
    evses = [reader.obj(Evse, e, ["site", "evses", i]) for i, e in enumerate(site_d["evses"])]
    names = ("voltage_v", "export_limit_kw", "phasor_limits")
    site_kw = {k: site_d[k] for k in names if k in site_d}
    site = Site(nodes=nodes, evses=evses, **site_kw)
    sessions = [
        reader.obj(Session, s, ["sessions", i], ("arrival", "departure"))
        for i, s in enumerate(data["sessions"])
    ]
    tariff = reader.obj(Tariff, data["tariff"], ["tariff"]) if "tariff" in data else None
    forecast = reader.obj(Forecast, data["forecast"], ["forecast"]) if "forecast" in data else None
    bids = None
    if "v2g_bids" in data:
        bids = [
            reader.obj(V2GBid, b, ["v2g_bids", i], ("start", "end"))
            for i, b in enumerate(data["v2g_bids"])
        ]
    caps = None
    if "capabilities" in data:
        caps = {}
        for key, c in data["capabilities"].items():
            kw = dict(c)
            if "rate_units" in kw:
                kw["rate_units"] = tuple(kw["rate_units"])
            try:
                caps[key] = StationCapabilities(**kw)
            except InputError as err:
                for p in err.problems:
                    field = p.path.rsplit(".", 1)[-1]
                    reader.bad(["capabilities", key, field], p.message, p.value)
    plan_d = data["planning"]
    start = reader.timestamp(plan_d["start"], ["planning", "start"])
    if reader.problems:
        raise InputError(reader.problems)
    scenario = Scenario(
        site=site,
        sessions=sessions,
        start=start,  # type: ignore[arg-type]
        horizon=plan_d.get("horizon", "24h"),
        step=plan_d.get("step", "15min"),
        method=plan_d.get("method", "auto"),
        time_limit_s=plan_d.get("time_limit_s"),
        delay_cost_per_kwh_h=plan_d.get("delay_cost_per_kwh_h", 0.0),
        tariff=tariff,
        forecast=forecast,
        v2g_bids=bids,
        capabilities=caps,
        description=data.get("description"),
    )
    if validate:
        scenario.validate()
    return scenario


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKeyError(k)
        out[k] = v
    return out


class _DuplicateKeyError(ValueError):
    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(key)


def _parse_json(text: str, what: str) -> Any:
    try:
        return json.loads(text, object_pairs_hook=_reject_duplicates)
    except _DuplicateKeyError as err:
        raise InputError(
            [
                Problem(
                    "$",
                    f"The {what} has the key {err.key!r} twice in one object; each field "
                    "may appear only once.",
                    err.key,
                )
            ]
        ) from None
    except json.JSONDecodeError as err:
        raise InputError(
            [
                Problem(
                    "$",
                    f"The {what} is not valid JSON: {err.msg} at line {err.lineno} "
                    f"column {err.colno}.",
                    None,
                )
            ]
        ) from None


def _read_source(source: Any, what: str) -> Any:
    if isinstance(source, Mapping):
        return source
    if isinstance(source, str) and source.lstrip().startswith(("{", "[")):
        return _parse_json(source, what)
    if isinstance(source, (str, os.PathLike)):
        text = Path(source).read_text(encoding="utf-8-sig")  # OSError: as documented
        return _parse_json(text, what)
    raise InputError(
        [
            Problem(
                "$",
                f"The {what} must be a path, JSON text or a dict (a JSON object). Got "
                f"{type(source).__name__} instead.",
                source,
            )
        ]
    )


def load_scenario(
    source: str | os.PathLike[str] | Mapping[str, Any], *, validate: bool = True
) -> Scenario:
    """Read a scenario from a JSON file, JSON text or an already parsed dict.

    Parameters
    ----------
    source : path, str or mapping
        A path to a ``.json`` file, JSON text (a string starting with ``{``) or the
        parsed dict.
    validate : bool, default True
        Also check the values with :func:`chargeplan.validate`.

    Returns
    -------
    Scenario

    Raises
    ------
    InputError
        If the text is not JSON, breaks the schema or holds invalid values; every
        problem has a JSON path such as ``$.sessions[2].energy_kwh``.
    OSError
        If the file cannot be read.
    """
    return scenario_from_dict(_read_source(source, "scenario"), validate=validate)


def loads_scenario(text: str | bytes, *, validate: bool = True) -> Scenario:
    """Read a scenario from JSON text (see :func:`load_scenario`).

    Parameters
    ----------
    text : str or bytes
        The JSON document.
    validate : bool, default True
        Also check the values with :func:`chargeplan.validate`.

    Returns
    -------
    Scenario

    Raises
    ------
    InputError
        If the text is not JSON, breaks the schema or holds invalid values.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8-sig")
    return scenario_from_dict(_parse_json(text, "scenario"), validate=validate)


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def save_scenario(
    scenario: Scenario, path: str | os.PathLike[str], *, validate: bool = True
) -> Path:
    """Write a scenario to a JSON file (atomically: nothing is written on error).

    Parameters
    ----------
    scenario : Scenario
    path : path-like
        Target file; replaced if it exists.
    validate : bool, default True
        Check the values with :func:`chargeplan.validate` first (the JSON Schema is
        always checked).

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    InputError
        If the scenario cannot be written as a valid scenario file (JSON paths).
    """
    data = scenario_to_dict(scenario)
    problems = _schema_problems(data)
    if problems:
        raise InputError(problems)
    if validate:
        scenario.validate()
    try:
        text = json.dumps(data, indent=2, allow_nan=False, ensure_ascii=False) + "\n"
    except ValueError as err:  # NaN / inf without validation
        raise InputError([Problem("$", f"The scenario has a non-finite number: {err}.")]) from None
    target = Path(path)
    _write_atomic(target, text)
    return target


# --------------------------------------------------------------------------- plan files


def _finite_or_none(x: Any) -> Any:
    x = _jsonable(x)
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _floats(values: np.ndarray) -> list[float | None]:
    return [None if not math.isfinite(v) else v for v in np.asarray(values, float).tolist()]


def plan_to_dict(
    plan: Plan, scenario: Scenario, *, ocpp_version: str | None = None
) -> dict[str, Any]:
    """Convert a plan to a JSON-ready dict that :func:`check_plan_dict` can re-verify.

    Parameters
    ----------
    plan : Plan
        A plan of ``scenario``.
    scenario : Scenario
        The inputs it was made for (stored in the file).
    ocpp_version : str, optional
        Recorded in the file when profiles were made from it.

    Returns
    -------
    dict
        ``grid`` (start, step_s, n_slots), ``index`` (slot starts), ``solver``,
        ``kpis``, ``evses`` (per-EVSE ``power_kw`` and ``current_a`` per slot),
        ``sessions`` (per session: EVSE, energies and the planned ``power_kw`` and
        ``current_a`` per slot; ``current_a`` is null for DC) and ``scenario``.
    """
    w = _Writer(None)
    grid = plan.grid
    report = plan.report
    sessions_df = plan.sessions
    sessions = []
    for s, sess in enumerate(plan.session_inputs):
        row = sessions_df.iloc[s]
        cur = plan.current_a_array[s]
        sessions.append(
            {
                "id": sess.id,
                "evse": sess.evse,
                "requested_kwh": float(row["requested_kwh"]),
                "delivered_kwh": float(row["delivered_kwh"]),
                "unmet_kwh": float(row["unmet_kwh"]),
                "power_kw": _floats(plan.rate_kw[s]),
                "current_a": None if np.isnan(cur).all() else _floats(cur),
            }
        )
    out: dict[str, Any] = {
        "kind": _PLAN_KIND,
        "format_version": PLAN_FORMAT_VERSION,
        "grid": {
            "start": w.timestamp(grid.start),
            "step_s": int(grid.step_s),
            "n_slots": int(grid.n_slots),
        },
        "index": [t.isoformat() for t in grid.index],
        "solver": {
            "method": report.method,
            "requested": report.requested,
            "status": report.status,
            "reason": report.reason,
            "solve_time_s": _finite_or_none(report.solve_time_s),
        },
        "kpis": {k: _finite_or_none(v) for k, v in plan.kpis.items()},
        "evses": {
            str(e): {
                "power_kw": _floats(plan.power_kw[e].to_numpy()),
                "current_a": _floats(plan.current_a[e].to_numpy()),
            }
            for e in plan.power_kw.columns
        },
        "sessions": sessions,
        "scenario": scenario_to_dict(scenario),
    }
    if ocpp_version is not None:
        out["ocpp_version"] = ocpp_version
    return out


_NUM_LIST = {"type": "array", "items": {"type": ["number", "null"]}}
_PLAN_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "plan file",
    "type": "object",
    "required": ["kind", "grid", "sessions", "scenario"],
    "properties": {
        "kind": {"const": _PLAN_KIND},
        "format_version": {"const": PLAN_FORMAT_VERSION},
        "grid": {
            "title": "grid",
            "type": "object",
            "required": ["start", "step_s", "n_slots"],
            "properties": {
                "start": {"type": "string"},
                "step_s": {"type": "integer"},
                "n_slots": {"type": "integer"},
            },
        },
        "evses": {
            "type": "object",
            "additionalProperties": {
                "title": "EVSE plan",
                "type": "object",
                "required": ["power_kw", "current_a"],
                "properties": {"power_kw": _NUM_LIST, "current_a": _NUM_LIST},
            },
        },
        "sessions": {
            "type": "array",
            "items": {
                "title": "session plan",
                "type": "object",
                "required": ["id", "power_kw"],
                "properties": {
                    "id": {"type": "string"},
                    "power_kw": _NUM_LIST,
                    "current_a": {"type": ["array", "null"], "items": {"type": ["number", "null"]}},
                },
            },
        },
        "scenario": {"type": "object"},
    },
}


def _per_evse(values: np.ndarray, sessions: Sequence[Session], evse_ids: Sequence[str]) -> dict:
    """Per-EVSE view as :class:`~chargeplan.Plan` shows it (larger magnitude wins a slot)."""
    pos = {e: k for k, e in enumerate(evse_ids)}
    out = np.zeros((len(evse_ids), values.shape[1] if values.ndim == 2 else 0))
    vals = np.nan_to_num(values)
    order = np.argsort(np.abs(vals).max(axis=1, initial=0.0), kind="stable") if len(vals) else []
    for s in order:
        e = pos[sessions[s].evse]
        take = np.abs(vals[s]) >= np.abs(out[e])
        out[e, take] = vals[s, take]
    return {e: out[k] for k, e in enumerate(evse_ids)}


def _float_row(values: Sequence[Any]) -> np.ndarray:
    """Numbers of a plan file as floats: ``None`` as NaN, an int beyond any float as inf."""
    return np.array(
        [
            np.nan
            if v is None
            else (float(v) if abs(v) < 1e300 else (math.inf if v > 0 else -math.inf))
            for v in values
        ],
        dtype=float,
    )


def check_plan_dict(data: Mapping[str, Any] | str | os.PathLike[str]) -> list[Violation]:
    """Re-verify a plan file with the independent checker.

    The per-session rates and currents are checked against every limit of the stored
    scenario by :func:`chargeplan.check.check_plan`; the per-EVSE view must match
    what the sessions imply (kind ``"evse_view_mismatch"``) and stay within each
    EVSE's own limits (``"evse_max_current"``, ``"evse_max_power"``).

    Parameters
    ----------
    data : mapping, path or JSON text
        A plan file written from :func:`plan_to_dict`.

    Returns
    -------
    list of Violation
        Empty when the plan keeps every limit.

    Raises
    ------
    InputError
        If the file is malformed or its scenario is invalid (JSON paths, the
        scenario's under ``$.scenario``).
    OSError
        If ``data`` is a path and the file cannot be read.
    """
    from jsonschema import Draft202012Validator

    from .check import TOL, check_plan
    from .timegrid import TimeGrid

    doc = _read_source(data, "plan file")
    problems = _schema_problems(doc, Draft202012Validator(_PLAN_SCHEMA))
    if problems:
        raise InputError(problems)
    try:
        scenario = scenario_from_dict(doc["scenario"])
    except InputError as err:
        raise _prefix_problems(err, "$.scenario") from None
    grid = scenario.validate()
    reader = _Reader(None)
    start = reader.timestamp(doc["grid"]["start"], ["grid", "start"])
    if reader.problems:
        raise InputError(reader.problems)
    stored = TimeGrid(start=start, step_s=doc["grid"]["step_s"], n_slots=doc["grid"]["n_slots"])
    if (stored.start, stored.step_s, stored.n_slots) != (grid.start, grid.step_s, grid.n_slots):
        raise InputError(
            [
                Problem(
                    "$.grid",
                    f"The plan's grid (start {stored.start}, {stored.n_slots} slots of "
                    f"{stored.step_s} s) does not match its scenario's planning settings "
                    f"(start {grid.start}, {grid.n_slots} slots of {grid.step_s} s).",
                )
            ]
        )
    T = grid.n_slots
    sessions = list(scenario.sessions)
    entries: dict[str, tuple[int, Any]] = {}
    bad: list[Problem] = []
    for i, e in enumerate(doc["sessions"]):
        if e["id"] in entries:  # which entry would count? neither: reject the file
            first = entries[e["id"]][0]
            bad.append(
                Problem(
                    f"$.sessions[{i}].id",
                    f"Session {e['id']!r} has a second entry (the first is $.sessions[{first}]).",
                    e["id"],
                )
            )
        else:
            entries[e["id"]] = (i, e)
    if "index" in doc and doc["index"] != [t.isoformat() for t in grid.index]:
        bad.append(Problem("$.index", "The slot start times do not match the plan's grid."))
    evses = {e.id: e for e in scenario.site.evses}
    rate = np.zeros((len(sessions), T))
    current = np.full((len(sessions), T), np.nan)
    for s, sess in enumerate(sessions):
        if sess.id not in entries:
            bad.append(
                Problem("$.sessions", f"The plan has no entry for session {sess.id!r}.", sess.id)
            )
            continue
        i, entry = entries[sess.id]
        if "evse" in entry and entry["evse"] != sess.evse:  # a reader would apply it there
            bad.append(
                Problem(
                    f"$.sessions[{i}].evse",
                    f"Session {sess.id!r} is on EVSE {sess.evse!r} in the scenario. Got "
                    f"{entry['evse']!r} instead.",
                    entry["evse"],
                )
            )
        for key, target, need in (
            ("power_kw", rate, True),
            ("current_a", current, not evses[sess.evse].dc),
        ):
            values = entry.get(key)
            path = f"$.sessions[{i}].{key}"
            if values is None:
                if need:
                    bad.append(Problem(path, f"The '{key}' of session {sess.id!r} is required."))
                continue
            if len(values) != T or any(v is None for v in values):
                bad.append(
                    Problem(
                        path,
                        f"The '{key}' of session {sess.id!r} must have {T} numbers (one per slot).",
                    )
                )
                continue
            row = _float_row(values)
            if not np.isfinite(row).all():
                bad.append(
                    Problem(path, f"The '{key}' of session {sess.id!r} must be finite numbers.")
                )
                continue
            target[s] = row
    known = {s.id for s in sessions}
    for i, e in enumerate(doc["sessions"]):
        if e["id"] not in known:
            bad.append(
                Problem(
                    f"$.sessions[{i}].id",
                    f"The plan has session {e['id']!r}, which its scenario does not.",
                    e["id"],
                )
            )
    if bad:
        raise InputError(bad)
    violations = check_plan(scenario.site, sessions, grid, rate, current, scenario.forecast)
    # the per-EVSE view: consistent with the sessions and within the EVSE limits
    views = doc.get("evses") or {}
    evse_ids = [e.id for e in scenario.site.evses]
    implied = {
        "power_kw": _per_evse(rate, sessions, evse_ids),
        "current_a": _per_evse(np.where(np.isnan(current), 0.0, current), sessions, evse_ids),
    }
    for evse_id, view in views.items():
        evse = evses.get(evse_id)
        if evse is None:
            raise InputError(
                [Problem(f"$.evses{_key_path(evse_id)}", f"Unknown EVSE {evse_id!r}.", evse_id)]
            )
        for key in ("power_kw", "current_a"):
            vals = _float_row(view[key])
            if len(vals) != T:
                raise InputError(
                    [
                        Problem(
                            f"$.evses{_key_path(evse_id)}.{key}",
                            f"Must have {T} numbers (one per slot). Got {len(vals)} instead.",
                        )
                    ]
                )
            want = implied[key][evse_id]
            where = f"EVSE {evse_id!r} {key}"
            for k in np.flatnonzero(~(np.abs(vals - want) <= 1e-9 * np.maximum(1, np.abs(want)))):
                violations.append(
                    Violation("evse_view_mismatch", where, int(k), float(vals[k]), float(want[k]))
                )
            limit = evse.max_current_a if key == "current_a" else evse.max_power_kw
            if key == "current_a" and evse.dc:
                limit = None
            if limit is not None:
                for k in np.flatnonzero(vals > limit + TOL):
                    violations.append(
                        Violation(
                            f"evse_max_{key.split('_')[0]}", where, int(k), float(vals[k]), limit
                        )
                    )
    return violations


# --------------------------------------------------------------------------- OCPP needs

_OCPP_VERSIONS = ("2.0.1", "2.1")
_OCPP_SCHEMA_DIRS = {"2.0.1": "v201", "2.1": "v21"}
_AC_PHASES = {"AC_single_phase": 1, "AC_two_phase": 2, "AC_three_phase": 3}
_AC_MODES = frozenset({*_AC_PHASES, "AC_BPT", "AC_BPT_DER", "AC_DER"})
_DC_MODES = frozenset({"DC", "DC_BPT", "DC_ACDP", "DC_ACDP_BPT"})
_BPT_MODES = frozenset({"AC_BPT", "AC_BPT_DER", "DC_BPT", "DC_ACDP_BPT"})


@functools.cache
def _notify_validator(version: str) -> Any:
    from jsonschema.validators import validator_for

    try:
        base = resources.files("ocpp")
    except ModuleNotFoundError as err:
        raise ImportError(
            "session_from_notify_ev_charging_needs validates payloads against the official "
            "OCPP schemas shipped with the 'ocpp' package: pip install ocpp"
        ) from err
    text = (
        base.joinpath(_OCPP_SCHEMA_DIRS[version], "schemas", "NotifyEVChargingNeedsRequest.json")
    ).read_text(encoding="utf-8-sig")
    schema = json.loads(text)
    cls = validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def _wh_to_kwh(x: Any) -> float:
    return float(x) / 1000.0


def session_from_notify_ev_charging_needs(
    payload: Mapping[str, Any],
    *,
    evse: str,
    session_id: str,
    arrival: pd.Timestamp | str,
    version: str = "2.0.1",
    **fields: Any,
) -> Session:
    """Make a :class:`~chargeplan.Session` from an OCPP ``NotifyEVChargingNeedsRequest``.

    The payload is first validated against the official OCPP 2.0.1 or 2.1 JSON schema
    (from the ``ocpp`` package). Mapping (W, Wh -> kW, kWh):

    - ``departureTime`` -> ``departure`` (in the time zone of ``arrival``);
    - ``requestedEnergyTransfer`` ``AC_single/two/three_phase`` -> ``phases`` 1 / 2 / 3;
    - ``requestedEnergyTransfer`` ``*_BPT*`` (2.1) -> ``v2g=True`` (unless
      ``maxDischargePower`` is 0);
    - ``energy_kwh`` from ``v2xChargingParameters.evTargetEnergyRequest`` (2.1), else
      ``ac/dcChargingParameters.energyAmount``, else
      ``v2xChargingParameters.evMaxEnergyRequest`` (negative -> 0);
    - ``acChargingParameters.evMinCurrent`` / ``evMaxCurrent`` -> ``min_current_a`` /
      ``max_current_a``;
    - ``dcChargingParameters.evMaxPower`` and ``v2xChargingParameters.maxChargePower``
      (2.1) -> ``max_power_kw`` (the smaller); ``minChargePower`` -> ``min_power_kw``;
    - ``dcChargingParameters.evEnergyCapacity`` + ``stateOfCharge`` (only both) ->
      ``battery_capacity_kwh`` + ``soc_now_pct``;
    - ``v2xChargingParameters.targetSoC`` (2.1), else ``dcChargingParameters.fullSoC``
      -> ``soc_target_pct`` (needs the battery fields);
    - ``v2xChargingParameters.maxDischargePower`` (2.1) -> ``max_discharge_power_kw``;
    - ``v2xChargingParameters.max/minChargeCurrent``, ``maxDischargeCurrent`` (2.1) ->
      AC only: ``max_current_a`` / ``min_current_a`` / ``max_discharge_current_a``;
    - ``v2xChargingParameters.evMinV2XEnergyRequest`` (2.1) -> ``soc_min_pct`` = SoC +
      E / capacity (needs the battery fields).

    Not mapped: ``evMaxVoltage`` (the EVSE's voltage applies), DC ``evMaxCurrent``
    (DC-side current; the power limits apply), ``bulkSoC``, ``evMinEnergyRequest``,
    ``evMaxV2XEnergyRequest``, ``minDischargePower``, per-phase ``_L2``/``_L3``
    values, ``derChargingParameters``, ``evEnergyOffer`` and the control modes.
    OCPP 2.1 has no "minimum SoC" field: the V2X reserve comes from
    ``evMinV2XEnergyRequest``.

    Parameters
    ----------
    payload : mapping
        The request payload (``{"evseId": ..., "chargingNeeds": {...}}``).
    evse : str
        Id of the planner's EVSE the EV is plugged into.
    session_id : str
        Id of the new session.
    arrival : pandas.Timestamp or str
        Plug-in time (tz-aware).
    version : {"2.0.1", "2.1"}, default "2.0.1"
        OCPP version of the payload.
    **fields
        Other :class:`~chargeplan.Session` fields; they override the values mapped
        from the payload (e.g. ``transaction_id``, ``priority``, or ``departure``
        when the EV sends no ``departureTime``).

    Returns
    -------
    Session
        Not yet validated against a site; :func:`chargeplan.optimize` does that.

    Raises
    ------
    InputError
        If the payload breaks the official schema (JSON paths such as
        ``$.chargingNeeds.acChargingParameters.evMaxCurrent``), ``arrival`` is naive,
        or the payload lacks a departure time or an energy request and ``fields``
        do not give one.
    ImportError
        If ``jsonschema`` or ``ocpp`` is not installed.

    Examples
    --------
    >>> import pandas as pd
    >>> from chargeplan.scenario import session_from_notify_ev_charging_needs
    >>> payload = {"evseId": 1, "chargingNeeds": {
    ...     "requestedEnergyTransfer": "AC_three_phase",
    ...     "departureTime": "2024-06-01T16:00:00Z",
    ...     "acChargingParameters": {"energyAmount": 30000, "evMinCurrent": 6,
    ...                              "evMaxCurrent": 16, "evMaxVoltage": 400}}}
    >>> s = session_from_notify_ev_charging_needs(
    ...     payload, evse="cp1", session_id="s1",
    ...     arrival=pd.Timestamp("2024-06-01 09:00", tz="Europe/Amsterdam"))
    >>> s.energy_kwh, s.max_current_a, s.phases, str(s.departure)
    (30.0, 16, 3, '2024-06-01 18:00:00+02:00')
    """
    owner = "session_from_notify_ev_charging_needs"
    if version not in _OCPP_VERSIONS:
        raise InputError(
            [
                Problem(
                    "version",
                    f"The 'version' parameter of {owner} must be one of {_OCPP_VERSIONS}. "
                    f"Got {version!r} instead.",
                    version,
                )
            ]
        )
    problems = _schema_problems(payload, _notify_validator(version))
    try:
        arr = pd.Timestamp(arrival)
    except (TypeError, ValueError):
        arr = None
    if arr is None or arr is pd.NaT or arr.tz is None:
        problems.append(
            Problem(
                "arrival",
                f"The 'arrival' parameter of {owner} must be a time-zone aware timestamp. "
                f"Got {arrival!r} instead.",
                arrival,
            )
        )
    if problems:
        raise InputError(problems)
    assert arr is not None
    needs = payload["chargingNeeds"]
    mode = needs["requestedEnergyTransfer"]
    ac = needs.get("acChargingParameters") or {}
    dc = needs.get("dcChargingParameters") or {}
    v2x = needs.get("v2xChargingParameters") or {}
    out: dict[str, Any] = {"id": session_id, "evse": evse, "arrival": arr}

    if "departureTime" in needs:
        reader = _Reader(None)
        dep = reader.timestamp(needs["departureTime"], ["chargingNeeds", "departureTime"])
        if dep is None:
            raise InputError(reader.problems)
        out["departure"] = dep.tz_convert(arr.tz)

    # energy request
    if "evTargetEnergyRequest" in v2x:
        out["energy_kwh"] = max(0.0, _wh_to_kwh(v2x["evTargetEnergyRequest"]))
    elif "energyAmount" in ac or "energyAmount" in dc:
        out["energy_kwh"] = max(0.0, _wh_to_kwh(ac.get("energyAmount", dc.get("energyAmount"))))
    elif "evMaxEnergyRequest" in v2x:
        out["energy_kwh"] = max(0.0, _wh_to_kwh(v2x["evMaxEnergyRequest"]))

    # battery
    if "evEnergyCapacity" in dc and "stateOfCharge" in dc:
        cap_kwh = _wh_to_kwh(dc["evEnergyCapacity"])
        out["battery_capacity_kwh"] = cap_kwh
        out["soc_now_pct"] = dc["stateOfCharge"]
        target = v2x.get("targetSoC", dc.get("fullSoC"))
        if target is not None:
            out["soc_target_pct"] = target
        if "evMinV2XEnergyRequest" in v2x and cap_kwh > 0:
            soc_min = dc["stateOfCharge"] + _wh_to_kwh(v2x["evMinV2XEnergyRequest"]) / cap_kwh * 100
            out["soc_min_pct"] = min(100.0, max(0.0, soc_min))

    # power limits (sum over phases)
    max_w = [x for x in (dc.get("evMaxPower"), v2x.get("maxChargePower")) if x is not None]
    if max_w:
        out["max_power_kw"] = min(max_w) / 1000.0
    if v2x.get("minChargePower"):
        out["min_power_kw"] = v2x["minChargePower"] / 1000.0

    # AC currents per conductor
    if mode in _AC_MODES:
        if mode in _AC_PHASES:
            out["phases"] = _AC_PHASES[mode]
        max_a = [x for x in (ac.get("evMaxCurrent"), v2x.get("maxChargeCurrent")) if x is not None]
        if max_a:
            out["max_current_a"] = min(max_a)
        min_a = [x for x in (ac.get("evMinCurrent"), v2x.get("minChargeCurrent")) if x is not None]
        if min_a:
            out["min_current_a"] = max(min_a)

    # V2X (bidirectional power transfer)
    if mode in _BPT_MODES and v2x.get("maxDischargePower", 1) > 0:
        out["v2g"] = True
        if "maxDischargePower" in v2x:
            out["max_discharge_power_kw"] = v2x["maxDischargePower"] / 1000.0
        if mode in _AC_MODES and "maxDischargeCurrent" in v2x:
            out["max_discharge_current_a"] = v2x["maxDischargeCurrent"]

    out.update(fields)
    missing = []
    if out.get("departure") is None:
        missing.append(
            Problem(
                "$.chargingNeeds.departureTime",
                f"The payload gives no departureTime; pass departure=... to {owner}.",
            )
        )
    if out.get("energy_kwh") is None and out.get("battery_capacity_kwh") is None:
        missing.append(
            Problem(
                "$.chargingNeeds",
                "The payload gives no energy request (energyAmount, evTargetEnergyRequest "
                f"or evMaxEnergyRequest) and no battery state; pass energy_kwh=... to {owner}.",
            )
        )
    if missing:
        raise InputError(missing)
    if isinstance(out.get("departure"), str):
        out["departure"] = pd.Timestamp(out["departure"])
    return Session(**out)
