"""OCPP ``SetChargingProfile`` payloads from a version-neutral charging plan.

This module turns planned per-slot charging (and, in OCPP 2.1, discharging) rates
into OCPP 1.6, 2.0.1 and 2.1 ``SetChargingProfile`` request payloads (plain
JSON-ready dicts) and checks every payload it makes against the validity rules of
``docs/ocpp-profile-rules.md`` (cited below as "rule N"). It fails closed: a payload
that breaks a rule is never returned.

The input is version-neutral:

* :class:`ConnectorSchedule`: the planned rate of one active transaction per slot,
  sent as a ``TxProfile``; negative values mean discharge (V2G, OCPP 2.1 only);
* :class:`StationLimit`: a charger-wide limit per slot, sent as a
  ``ChargePointMaxProfile`` (1.6) / ``ChargingStationMaxProfile`` (2.x) on
  connector/EVSE 0;
* :class:`StationCapabilities`: what a station accepts (units, periods, stack level,
  2.1 ``MaxExternalConstraintsId``).

:func:`build_profiles` emits one :class:`ChargingProfileRequest` per profile and
:func:`check_profile` lists the rule violations of any payload.

Every emitted value is conservative, i.e. never further from zero than the plan at
any instant: values are rounded toward zero to the 0.1 grid (rule 30), AC currents
with magnitude between 0 and the minimum become 0 (rule 32) and, when a station
accepts fewer periods than the plan has slots, adjacent periods are merged toward
zero (rule 27): to the smaller magnitude if both have the same sign, to 0 if one
charges and the other discharges.

OCPP 2.1 (rules 37-42)
----------------------
* A schedule without discharge is sent exactly as in 2.0.1: periods with ``limit``
  only and no ``operationMode``, which defaults to ``ChargingOnly`` (rule 38:
  ``ChargingOnly`` requires ``limit`` and allows nothing else). Station max profiles
  are always like this (rule 37: ``ChargingStationMaxProfile`` allows only
  ``ChargingOnly``).
* A schedule with discharge is a ``TxProfile`` (rule 37 allows every mode there)
  whose periods all use ``operationMode="CentralSetpoint"`` (one mode for the whole
  transaction, no mode switches between charging and discharging periods) with a
  signed ``setpoint`` equal to the plan (rule 38: required; rule 39: negative =
  discharge) and the optional bounds ``limit = max(setpoint, 0)`` and
  ``dischargeLimit = min(setpoint, 0)`` (rule 38 allows both with
  ``CentralSetpoint``; rule 31: ``limit >= 0``; rule 39: ``dischargeLimit <= 0``), so
  the allowed overshoot band ``[dischargeLimit, limit]`` lies between 0 and the plan.
  No ``_L2``/``_L3`` phase variants are emitted.
* In A, ``setpoint`` and ``dischargeLimit`` are sent, like ``limit``, as the current
  per conductor. (The schema texts call ``setpoint`` and, for AC, ``dischargeLimit``
  "the sum of all phases" without naming a unit, while ``limit`` is a sum only in W;
  if a station reads an A setpoint as a sum, a per-conductor value means a *smaller*
  current per phase, so the per-conductor value is the conservative choice.)
* Payloads are plain dicts with the schema's key spelling (``dischargeLimit``,
  ``limit_L2``, ``setpoint``, ``operationMode``): do not pass them through the
  ``ocpp`` 2.1.0 package's snake/camel case conversion, which renames ``limit_L2`` to
  ``limitL2`` (rule 42). Send them as the raw payload of a call.
"""

from __future__ import annotations

import heapq
import math
import re
import warnings
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np
import pandas as pd

from chargeplan.exceptions import ChargeplanError, InputError, OcppExportWarning, Problem
from chargeplan.validation import _is_int

__all__ = [
    "SUPPORTED_VERSIONS",
    "IEC_MIN_CURRENT_A",
    "StationCapabilities",
    "ConnectorSchedule",
    "StationLimit",
    "ChargingProfileRequest",
    "ProfileRuleError",
    "build_profiles",
    "check_profile",
    "stable_profile_id",
    "format_ocpp_datetime",
]

#: OCPP versions :func:`build_profiles` can emit.
SUPPORTED_VERSIONS: tuple[str, ...] = ("1.6", "2.0.1", "2.1")

#: Lowest non-zero AC charging current a station can signal (IEC 61851, 10 % duty cycle).
IEC_MIN_CURRENT_A: float = 6.0

#: Values within this tolerance of a 0.1 grid point count as on it (float noise).
_TOL = 1e-6
#: Largest profile id we emit: positive 31-bit, safe for 32-bit signed stations.
_MAX_ID = 2**31 - 1
#: 2.x schemas allow at most this many periods per schedule (rule 27).
_SCHEMA_MAX_PERIODS_2X = 1024
_UNITS = ("A", "W")

_ACTION = "SetChargingProfile"

# Keys the official schemas allow (rule 1: ``additionalProperties: false``).
_KEYS = {
    "1.6": {
        "request": frozenset({"connectorId", "csChargingProfiles"}),
        "profile": frozenset(
            {
                "chargingProfileId",
                "transactionId",
                "stackLevel",
                "chargingProfilePurpose",
                "chargingProfileKind",
                "recurrencyKind",
                "validFrom",
                "validTo",
                "chargingSchedule",
            }
        ),
        "schedule": frozenset(
            {
                "duration",
                "startSchedule",
                "chargingRateUnit",
                "chargingSchedulePeriod",
                "minChargingRate",
            }
        ),
        "period": frozenset({"startPeriod", "limit", "numberPhases"}),
    },
    "2.0.1": {
        "request": frozenset({"customData", "evseId", "chargingProfile"}),
        "profile": frozenset(
            {
                "customData",
                "id",
                "stackLevel",
                "chargingProfilePurpose",
                "chargingProfileKind",
                "recurrencyKind",
                "validFrom",
                "validTo",
                "chargingSchedule",
                "transactionId",
            }
        ),
        "schedule": frozenset(
            {
                "customData",
                "id",
                "startSchedule",
                "duration",
                "chargingRateUnit",
                "chargingSchedulePeriod",
                "minChargingRate",
                "salesTariff",
            }
        ),
        "period": frozenset({"customData", "startPeriod", "limit", "numberPhases", "phaseToUse"}),
    },
    "2.1": {
        "request": frozenset({"customData", "evseId", "chargingProfile"}),
        "profile": frozenset(
            {
                "customData",
                "id",
                "stackLevel",
                "chargingProfilePurpose",
                "chargingProfileKind",
                "recurrencyKind",
                "validFrom",
                "validTo",
                "transactionId",
                "maxOfflineDuration",
                "chargingSchedule",
                "invalidAfterOfflineDuration",
                "dynUpdateInterval",
                "dynUpdateTime",
                "priceScheduleSignature",
            }
        ),
        "schedule": frozenset(
            {
                "customData",
                "id",
                "limitAtSoC",
                "startSchedule",
                "duration",
                "chargingRateUnit",
                "minChargingRate",
                "powerTolerance",
                "signatureId",
                "digestValue",
                "useLocalTime",
                "chargingSchedulePeriod",
                "randomizedDelay",
                "salesTariff",
                "absolutePriceSchedule",
                "priceLevelSchedule",
            }
        ),
        "period": frozenset(
            {
                "customData",
                "startPeriod",
                "limit",
                "limit_L2",
                "limit_L3",
                "numberPhases",
                "phaseToUse",
                "dischargeLimit",
                "dischargeLimit_L2",
                "dischargeLimit_L3",
                "setpoint",
                "setpoint_L2",
                "setpoint_L3",
                "setpointReactive",
                "setpointReactive_L2",
                "setpointReactive_L3",
                "preconditioningRequest",
                "evseSleep",
                "v2xBaseline",
                "operationMode",
                "v2xFreqWattCurve",
                "v2xSignalWattCurve",
            }
        ),
    },
}

_MAX_PURPOSE = {
    "1.6": "ChargePointMaxProfile",
    "2.0.1": "ChargingStationMaxProfile",
    "2.1": "ChargingStationMaxProfile",
}
_PURPOSES = {
    "1.6": ("ChargePointMaxProfile", "TxDefaultProfile", "TxProfile"),
    "2.0.1": (
        "ChargingStationExternalConstraints",
        "ChargingStationMaxProfile",
        "TxDefaultProfile",
        "TxProfile",
    ),
    "2.1": (
        "ChargingStationExternalConstraints",
        "ChargingStationMaxProfile",
        "TxDefaultProfile",
        "TxProfile",
        "PriorityCharging",
        "LocalGeneration",
    ),
}
_KINDS = {
    "1.6": ("Absolute", "Recurring", "Relative"),
    "2.0.1": ("Absolute", "Recurring", "Relative"),
    "2.1": ("Absolute", "Recurring", "Relative", "Dynamic"),
}

# OCPP 2.1 operation modes (rule 38): (required, optional) limit/setpoint fields per
# mode; the ``_L2``/``_L3`` variants follow their base field. An absent operationMode
# means ChargingOnly.
_MODE_FIELDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "ChargingOnly": (frozenset({"limit"}), frozenset()),
    "CentralSetpoint": (
        frozenset({"setpoint"}),
        frozenset({"limit", "dischargeLimit", "setpointReactive"}),
    ),
    "CentralFrequency": (frozenset({"setpoint"}), frozenset({"limit", "dischargeLimit"})),
    "ExternalSetpoint": (frozenset(), frozenset({"limit", "dischargeLimit"})),
    "ExternalLimits": (frozenset(), frozenset()),
    "LocalFrequency": (frozenset(), frozenset()),
    "LocalLoadBalancing": (frozenset(), frozenset()),
    "Idle": (frozenset(), frozenset()),
}
_LIMIT_SETPOINT_FIELDS = ("limit", "dischargeLimit", "setpoint", "setpointReactive")
_PHASE_SUFFIXES = ("", "_L2", "_L3")
# Operation modes allowed per purpose (rule 37, OCPP 2.1 part 2 table 95).
_MODES_FOR_PURPOSE: dict[str, tuple[str, ...]] = {
    "TxProfile": tuple(_MODE_FIELDS),
    "TxDefaultProfile": tuple(_MODE_FIELDS),
    "PriorityCharging": ("ChargingOnly",),
    "ChargingStationMaxProfile": ("ChargingOnly",),
    "ChargingStationExternalConstraints": ("ChargingOnly", "ExternalLimits", "ExternalSetpoint"),
    "LocalGeneration": ("ChargingOnly", "ExternalLimits"),
}
#: operationMode of the periods of a 2.1 schedule with discharge.
_V2X_MODE = "CentralSetpoint"
_RECURRENCY = ("Daily", "Weekly")
_DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z$")
_INT_LIKE_RE = re.compile(r"^[+-]?\d+$")


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class StationCapabilities:
    """What one charging station accepts in a charging profile.

    Read them once from the station's configuration (1.6 ``GetConfiguration``,
    2.x ``GetVariables``) and refresh them when they change.

    Parameters
    ----------
    rate_units : tuple of str, default ("A", "W")
        Charging rate units the station accepts, preferred first: ``"A"`` and/or
        ``"W"`` (1.6 ``ChargingScheduleAllowedChargingRateUnit`` with ``Current`` = A
        and ``Power`` = W; 2.x ``SmartChargingCtrlr.RateUnit``; rule 26).
    max_periods : int, default 24
        Most periods per schedule (1.6 ``ChargingScheduleMaxPeriods``, 2.x
        ``PeriodsPerSchedule``; rule 27).
    stack_level : int, default 0
        ``stackLevel`` of the profiles we send.
    max_stack_level : int, default 8
        Highest stack level the station accepts (1.6 ``ChargeProfileMaxStackLevel``,
        2.x ``ProfileStackLevel``; rule 11).
    max_external_constraints_id : int or None, default None
        OCPP 2.1 ``SmartChargingCtrlr.MaxExternalConstraintsId``: the profile ids up to
        this value are reserved for external constraints, so every 2.1 profile id must
        be above it (rule 4). ``None`` if the station does not report it. Must be below
        ``2**31 - 1``. Ignored for 1.6 and 2.0.1.

    Raises
    ------
    chargeplan.exceptions.InputError
        If a field is out of range (every problem is listed).
    """

    rate_units: tuple[str, ...] = ("A", "W")
    max_periods: int = 24
    stack_level: int = 0
    max_stack_level: int = 8
    max_external_constraints_id: int | None = None

    def __post_init__(self) -> None:
        units = self.rate_units
        if isinstance(units, str):
            units = (units,)
        if isinstance(units, Sequence):
            object.__setattr__(self, "rate_units", tuple(units))
        problems: list[Problem] = []
        where = "StationCapabilities"
        ru = self.rate_units
        if (
            not isinstance(ru, tuple)
            or not ru
            or any(u not in _UNITS for u in ru)
            or len(set(ru)) != len(ru)
        ):
            problems.append(
                Problem(
                    f"{where}.rate_units",
                    "The 'rate_units' parameter of StationCapabilities must be a non-empty "
                    f"tuple of distinct units from {_UNITS}. Got {ru!r} instead.",
                    ru,
                )
            )
        for name, low in (("max_periods", 1), ("stack_level", 0), ("max_stack_level", 0)):
            value = getattr(self, name)
            if not _is_int(value) or value < low:
                problems.append(
                    Problem(
                        f"{where}.{name}",
                        f"The '{name}' parameter of StationCapabilities must be an int "
                        f">= {low}. Got {value!r} instead.",
                        value,
                    )
                )
        mx = self.max_external_constraints_id
        if mx is not None and (not _is_int(mx) or mx >= _MAX_ID):
            problems.append(
                Problem(
                    f"{where}.max_external_constraints_id",
                    "The 'max_external_constraints_id' parameter of StationCapabilities must "
                    f"be None or an int < {_MAX_ID} (rule 4: 2.1 profile ids are above it). "
                    f"Got {mx!r} instead.",
                    mx,
                )
            )
        elif mx is not None:
            object.__setattr__(self, "max_external_constraints_id", int(mx))
        if (
            _is_int(self.stack_level)
            and _is_int(self.max_stack_level)
            and self.stack_level > self.max_stack_level
        ):
            problems.append(
                Problem(
                    f"{where}.stack_level",
                    "The 'stack_level' parameter of StationCapabilities must be <= "
                    f"max_stack_level={self.max_stack_level} (rule 11). "
                    f"Got {self.stack_level!r} instead.",
                    self.stack_level,
                )
            )
        if problems:
            raise InputError(problems)


@dataclass(frozen=True, eq=False)
class ConnectorSchedule:
    """The planned charging rate of one active transaction, per slot.

    Parameters
    ----------
    station_id : str
        The charging station the connector belongs to.
    connector_id : int
        1.6 ``connectorId`` / 2.x ``evseId``; must be > 0 (rule 8).
    session_id : str
        The planner's session id; keys the stable profile id ``"tx:" + session_id``.
    transaction_id : str, int or None
        The station's transaction id. 1.6 needs an int (or an int-like string); 2.x
        needs a string of at most 36 characters (rules 3, 8).
    dc : bool
        True for a DC EVSE (limits are then sent in W, rule 34).
    number_phases : int or None
        AC phases the EV uses (1..3, rule 33); ``None`` for DC.
    w_per_a : float or None
        AC: watts per ampere of conductor current (``V * number_phases``, or the
        line-to-line voltage for a line-to-line EVSE); ``None`` for DC.
    min_current_a : float
        AC: the EV's minimum current; a current is 0 or at least
        ``max(min_current_a, 6.0)`` (rule 32).
    current_a : numpy.ndarray or None
        AC: planned current per conductor per slot, in A; negative = discharge.
    power_w : numpy.ndarray
        Planned power per slot, in W (for AC it equals ``current_a * w_per_a``);
        negative = discharge. Discharge can only be sent in OCPP 2.1 (rule 31).
    """

    station_id: str
    connector_id: int
    session_id: str
    transaction_id: str | int | None
    dc: bool
    number_phases: int | None
    w_per_a: float | None
    min_current_a: float
    current_a: np.ndarray | None
    power_w: np.ndarray


@dataclass(frozen=True, eq=False)
class StationLimit:
    """A charger-wide limit per slot, sent as the station's max profile on connector 0.

    Parameters
    ----------
    station_id : str
        The charging station.
    limit_a : numpy.ndarray or None
        Per-slot current limit per phase, in A; ``None`` if only a power limit exists.
    limit_w : numpy.ndarray or None
        Per-slot limit on the total power, in W.
    """

    station_id: str
    limit_a: np.ndarray | None
    limit_w: np.ndarray | None


@dataclass(frozen=True)
class ChargingProfileRequest:
    """One ``SetChargingProfile`` request, ready to send.

    Parameters
    ----------
    station_id : str
        The charging station to send it to.
    action : str
        The OCPP action, ``"SetChargingProfile"``.
    version : str
        ``"1.6"``, ``"2.0.1"`` or ``"2.1"``.
    payload : dict
        JSON-ready payload with the schema's camelCase keys and nothing else.
    """

    station_id: str
    action: str
    version: str
    payload: dict


class ProfileRuleError(ChargeplanError):
    """A built payload broke a profile rule; nothing was returned (fail closed).

    This signals a bug (in this module or in its input contract), not bad input.

    Parameters
    ----------
    violations : list of str
        The rule violations found by :func:`check_profile`.
    payload : dict
        The offending payload.
    """

    def __init__(self, violations: list[str], payload: dict):
        self.violations = list(violations)
        self.payload = payload
        shown = "\n".join(f"  - {v}" for v in self.violations)
        super().__init__(
            f"A built charging profile breaks {len(self.violations)} rule(s):\n{shown}"
        )


# --------------------------------------------------------------------------- helpers


def stable_profile_id(key: str, *, above: int | None = None) -> int:
    """Return the default, stable profile id of a key (rule 4).

    The id is ``zlib.crc32`` of the UTF-8 key masked to 31 bits (0 maps to 1), so
    re-planning the same session or station re-uses the same id and the station
    replaces the profile instead of stacking a new one.

    Parameters
    ----------
    key : str
        ``"tx:" + session_id`` for a TxProfile, ``"max:" + station_id`` for a
        station max profile.
    above : int, optional
        Lowest id to avoid, inclusive: OCPP 2.1 ``MaxExternalConstraintsId`` (rule 4).
        An id ``<= above`` is mapped, still deterministically, into
        ``above + 1 .. 2**31 - 1``; an id already above it is kept.

    Returns
    -------
    int
        A positive id in ``1 .. 2**31 - 1`` (and ``> above``).

    Raises
    ------
    ValueError
        If ``above >= 2**31 - 1`` (no id is left).
    """
    base = (zlib.crc32(key.encode("utf-8")) & _MAX_ID) or 1
    if above is None or base > above:
        return base
    if above >= _MAX_ID:
        raise ValueError(
            f"No profile id in 1..{_MAX_ID} is above MaxExternalConstraintsId={above} (rule 4)."
        )
    return int(above) + 1 + base % (_MAX_ID - int(above))


def format_ocpp_datetime(timestamp: pd.Timestamp) -> str:
    """Format a tz-aware timestamp as OCPP wants it: UTC, ``YYYY-MM-DDTHH:MM:SS.sssZ``.

    Sub-millisecond parts are truncated (rule 19).

    Parameters
    ----------
    timestamp : pandas.Timestamp
        A tz-aware time.

    Returns
    -------
    str
        E.g. ``"2024-03-01T12:00:00.000Z"``.

    Raises
    ------
    ValueError
        If ``timestamp`` is naive.
    """
    ts = pd.Timestamp(timestamp)
    if ts.tzinfo is None:
        raise ValueError(f"OCPP times need a tz-aware timestamp. Got naive {ts!r} instead.")
    ts = ts.tz_convert("UTC")
    return ts.strftime("%Y-%m-%dT%H:%M:%S") + f".{ts.microsecond // 1000:03d}Z"


def _is_json_int(x: Any) -> bool:
    """Python int (JSON-serialisable), not bool."""
    return type(x) is int


def _is_json_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _floor_tenths(values: np.ndarray) -> np.ndarray:
    """Round down to the 0.1 grid, in integer tenths (rule 30).

    Values within ``_TOL`` below a grid point count as on it, so float noise such
    as 15.9999999999 gives 16.0; the result is never above the input by more than
    ``_TOL``.
    """
    return np.floor(np.asarray(values, dtype=float) * 10.0 + 10.0 * _TOL).astype(np.int64)


def _trunc_tenths(values: np.ndarray) -> np.ndarray:
    """Round toward zero to the 0.1 grid, in signed integer tenths (rules 30, 39).

    Like :func:`_floor_tenths` on the magnitude, so a discharge of -10.05 gives -100
    (-10.0): the result is never further from zero than the input by more than
    ``_TOL``. Equal to :func:`_floor_tenths` for non-negative values.
    """
    arr = np.asarray(values, dtype=float)
    mag = np.floor(np.abs(arr) * 10.0 + 10.0 * _TOL).astype(np.int64)
    return np.where(arr < 0, -mag, mag)


def _toward_zero(a: int, b: int) -> int:
    """Merge two signed levels conservatively (rule 27).

    The smaller magnitude if both have the same sign, 0 if one charges and the other
    discharges: never a larger charge nor a larger discharge than either.
    """
    if (a >= 0) != (b >= 0):
        return 0
    return a if abs(a) <= abs(b) else b


def _tenths_to_float(k: int) -> float:
    """Exact-looking float of ``k / 10``: its repr has at most one decimal."""
    return int(k) / 10


def _runs(tenths: np.ndarray) -> list[list[int]]:
    """Merge consecutive equal slots into ``[first_slot, n_slots, tenths]`` runs."""
    t = np.asarray(tenths)
    if t.size == 0:
        return []
    first = np.concatenate(([0], np.flatnonzero(t[1:] != t[:-1]) + 1))
    n = np.diff(np.append(first, t.size))
    return [[int(i), int(m), int(t[i])] for i, m in zip(first.tolist(), n.tolist(), strict=True)]


def _merge_to_budget(runs: list[list[int]], max_periods: int) -> tuple[list[list[int]], int]:
    """Merge adjacent runs until at most ``max_periods`` remain (rule 27).

    The merged run takes the value of :func:`_toward_zero` (for limits, which are
    never negative: the lower limit), so no value ever moves away from zero. Greedy:
    each step merges the adjacent pair that loses the least energy (the distance each
    run moves, in tenths, times its slots; for two limits that is the difference
    times the slots of the higher run); ties go to the earliest pair. Zero-loss
    merges of equal neighbours are done at the end regardless of the budget.

    Returns
    -------
    runs : list of [first_slot, n_slots, tenths]
    lost : int
        Energy given up, in tenths x slots.
    """
    n = len(runs)
    start = [r[0] for r in runs]
    length = [r[1] for r in runs]
    level = [r[2] for r in runs]
    prev = list(range(-1, n - 1))
    nxt = list(range(1, n + 1))
    nxt[-1] = -1
    alive = [True] * n
    version = [0] * n
    heap: list[tuple[int, int, int, int, int, int]] = []

    def push(a: int) -> None:
        b = nxt[a]
        if b < 0:
            return
        merged = _toward_zero(level[a], level[b])
        loss = abs(level[a] - merged) * length[a] + abs(level[b] - merged) * length[b]
        heapq.heappush(heap, (loss, start[a], a, b, version[a], version[b]))

    for i in range(n - 1):
        push(i)
    count = n
    lost = 0
    while heap:
        loss, _, a, b, va, vb = heapq.heappop(heap)
        if not (alive[a] and alive[b]) or version[a] != va or version[b] != vb:
            continue
        if count <= max_periods and loss > 0:
            break
        lost += loss
        level[a] = _toward_zero(level[a], level[b])
        length[a] += length[b]
        alive[b] = False
        nxt[a] = nxt[b]
        if nxt[b] >= 0:
            prev[nxt[b]] = a
        version[a] += 1
        count -= 1
        push(a)
        if prev[a] >= 0:
            push(prev[a])
    out = []
    i = 0
    while i >= 0:
        out.append([start[i], length[i], level[i]])
        i = nxt[i]
    return out, lost


def _to_array(
    value: Any, path: str, problems: list[Problem], *, signed: bool = False, version: str = ""
) -> np.ndarray | None:
    """Return ``value`` as a finite 1-D float array with >= 1 element, or note a problem.

    Negative values are a problem unless ``signed`` (a 2.1 schedule, where they mean
    discharge); values within ``_TOL`` below 0 count as 0.
    """
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        problems.append(
            Problem(path, f"must be a 1-D numeric array. Got {value!r} instead.", value)
        )
        return None
    if arr.ndim != 1 or arr.size == 0:
        problems.append(
            Problem(path, f"must be a non-empty 1-D array. Got shape {arr.shape} instead.", value)
        )
        return None
    if not np.all(np.isfinite(arr)):
        problems.append(Problem(path, "must be finite in every slot (no NaN/inf).", value))
        return None
    if signed:
        return np.where(np.abs(arr) <= _TOL, 0.0, arr)
    if np.any(arr < -_TOL):
        n_neg = int(np.count_nonzero(arr < -_TOL))
        if version:
            msg = (
                f"has a negative (discharge) value in {n_neg} slot(s), min "
                f"{float(arr.min())!r}: OCPP {version} cannot express discharge, its "
                "limits are never negative (rule 31). Send V2G schedules with "
                "version='2.1' (setpoint/dischargeLimit)."
            )
        else:
            msg = (
                "must be >= 0 in every slot (rule 31: limits are never negative; "
                f"discharge needs OCPP 2.1). Got min {float(arr.min())!r} instead."
            )
        problems.append(Problem(path, msg, value))
        return None
    return np.maximum(arr, 0.0)


def _capabilities_ok(capabilities: Any) -> bool:
    if capabilities is None or isinstance(capabilities, StationCapabilities):
        return True
    return isinstance(capabilities, Mapping) and all(
        isinstance(k, str) and (v is None or isinstance(v, StationCapabilities))
        for k, v in capabilities.items()
    )


def _resolve_caps(
    capabilities: StationCapabilities | Mapping[str, StationCapabilities] | None,
    station_id: str,
) -> StationCapabilities:
    if capabilities is None:
        return StationCapabilities()
    if isinstance(capabilities, StationCapabilities):
        return capabilities
    caps = capabilities.get(station_id)
    return caps if caps is not None else StationCapabilities()


@dataclass
class _Prepared:
    """A validated profile to build: limits in tenths per slot and its metadata."""

    kind: str  # "tx" or "max"
    index: int
    station_id: str
    connector_id: int
    key: str
    unit: str
    tenths: np.ndarray
    number_phases: int | None
    transaction_id: int | str | None
    caps: StationCapabilities
    min_current_a: float
    label: str


# --------------------------------------------------------------------------- build


def build_profiles(
    schedules: Sequence[ConnectorSchedule],
    station_limits: Sequence[StationLimit],
    *,
    start: pd.Timestamp,
    step_s: int,
    version: str,
    capabilities: StationCapabilities | Mapping[str, StationCapabilities] | None = None,
    profile_ids: Mapping[str, int] | None = None,
) -> list[ChargingProfileRequest]:
    """Build the ``SetChargingProfile`` requests of a plan.

    One ``TxProfile`` per connector schedule and one station max profile
    (``ChargePointMaxProfile`` in 1.6, ``ChargingStationMaxProfile`` in 2.x) per
    station limit, all ``Absolute``, starting at ``start`` and lasting exactly the
    planned horizon (rules 17, 24, 45). Every payload is checked with
    :func:`check_profile`; if any rule fails, nothing is returned.

    Parameters
    ----------
    schedules : sequence of ConnectorSchedule
        Planned rate per slot of each active transaction; negative values mean
        discharge and need ``version="2.1"``.
    station_limits : sequence of StationLimit
        Charger-wide limits per slot (at most one per station). Every schedule and
        limit has the same number of slots: the horizon.
    start : pandas.Timestamp
        Tz-aware start of slot 0; sent as ``startSchedule`` in UTC (rule 19).
    step_s : int
        Slot length in seconds (> 0).
    version : {"1.6", "2.0.1", "2.1"}
        OCPP version of the payloads.
    capabilities : StationCapabilities or mapping of str to StationCapabilities, optional
        One set of capabilities for every station, or one per station id (stations
        not in the mapping get the defaults). Default: ``StationCapabilities()``.
    profile_ids : mapping of str to int, optional
        Profile id overrides, keyed ``"tx:" + session_id`` or ``"max:" + station_id``;
        by default :func:`stable_profile_id` of the key (rule 4). Ids must be in
        ``1 .. 2**31 - 1`` and, in 2.1, above the station's
        ``max_external_constraints_id`` (default ids are mapped above it).

    Returns
    -------
    list of ChargingProfileRequest
        Station max profiles first (in ``station_limits`` order), then TxProfiles
        (in ``schedules`` order).

    Raises
    ------
    chargeplan.exceptions.InputError
        (a ``ValueError``) listing every input problem: e.g. a DC station that only
        accepts A, a 2.x schedule without transaction id, naive ``start``, a negative
        (discharge) value in a 1.6 or 2.0.1 schedule (rule 31), a 2.1 profile id
        override not above ``max_external_constraints_id`` (rule 4).
    ProfileRuleError
        If a built payload breaks a rule (a bug; fail closed).

    Warns
    -----
    chargeplan.exceptions.OcppExportWarning
        When periods were merged with a loss of energy to fit ``max_periods``, when a
        1.6 transaction id is not an integer and was omitted, or when a current
        between 0 and the minimum was set to 0.

    Notes
    -----
    Units (rule 26): the first unit of the station's ``rate_units`` that applies.
    AC may use A (limit = conductor current, with ``numberPhases``) or W (limit =
    power, also with ``numberPhases`` so the station converts W to A with the right
    phase count, rule 33). DC uses W only and never ``numberPhases`` (rule 34).
    Limits are rounded down to 0.1 (rule 30); AC currents in ``(0, max(6,
    min_current_a))`` become 0, in W too (rule 32). Periods: one per slot, equal
    neighbours merged, ``startPeriod`` from 0 strictly increasing (rules 28, 29);
    merged further to the lower limit when over ``max_periods`` (rule 27).

    OCPP 2.1: a schedule without discharge is sent as in 2.0.1 (``limit`` only,
    ``operationMode`` absent = ``ChargingOnly``, rule 38). A schedule with discharge
    gets ``operationMode="CentralSetpoint"`` on every period, with ``setpoint`` (the
    signed plan), ``limit = max(setpoint, 0)`` and ``dischargeLimit = min(setpoint,
    0)`` (rules 37-39). Magnitudes are rounded toward zero to 0.1, AC magnitudes in
    ``(0, max(6, min_current_a))`` become 0, and budget merges go toward zero: the
    smaller magnitude for two charges or two discharges, 0 where a charge meets a
    discharge. Whether the schedule has discharge is decided on the final periods,
    so a discharge merged away leaves a charge-only profile.
    """
    if version not in SUPPORTED_VERSIONS:
        raise InputError(
            [
                Problem(
                    "version",
                    f"The 'version' parameter of build_profiles must be one of "
                    f"{SUPPORTED_VERSIONS}. Got {version!r} instead.",
                    version,
                )
            ]
        )
    if not _capabilities_ok(capabilities):
        raise InputError(
            [
                Problem(
                    "capabilities",
                    "must be a StationCapabilities or a mapping of station id to "
                    f"StationCapabilities. Got {capabilities!r} instead.",
                    capabilities,
                )
            ]
        )
    notes: list[str] = []
    problems: list[Problem] = []
    start_str = _check_start_step(start, step_s, problems)
    schedules = list(schedules)
    station_limits = list(station_limits)
    prepared: list[_Prepared] = []

    seen_max: set[str] = set()
    for i, lim in enumerate(station_limits):
        p = _prepare_limit(i, lim, capabilities, problems, notes)
        if p is not None:
            if p.station_id in seen_max:
                problems.append(
                    Problem(
                        f"station_limits[{i}] (station_id={p.station_id!r})",
                        "duplicates an earlier station limit; give one limit per station.",
                        p.station_id,
                    )
                )
            seen_max.add(p.station_id)
            prepared.append(p)

    seen_sessions: set[str] = set()
    seen_connectors: set[tuple[str, int]] = set()
    for i, cs in enumerate(schedules):
        p = _prepare_schedule(i, cs, version, capabilities, problems, notes)
        if p is None:
            continue
        if cs.session_id in seen_sessions:
            problems.append(
                Problem(f"{p.label}.session_id", "duplicates an earlier schedule.", cs.session_id)
            )
        if (p.station_id, p.connector_id) in seen_connectors:
            problems.append(
                Problem(
                    f"{p.label}.connector_id",
                    "has a second schedule on the same station and connector; a connector "
                    "has at most one active transaction (rule 8).",
                    p.connector_id,
                )
            )
        seen_sessions.add(cs.session_id)
        seen_connectors.add((p.station_id, p.connector_id))
        prepared.append(p)
    # one horizon: a station limit that ended before the schedules it caps, or schedules
    # of different lengths, would not be the plan (rule 24: each lasts the horizon)
    for p in prepared[1:]:
        if p.tenths.size != prepared[0].tenths.size:
            problems.append(
                Problem(
                    p.label,
                    f"has {p.tenths.size} slots where {prepared[0].label} has "
                    f"{prepared[0].tenths.size}; every schedule and limit covers the same "
                    "horizon.",
                    p.tenths.size,
                )
            )

    ids = _assign_ids(prepared, profile_ids, version, problems)
    if problems:
        raise InputError(problems)

    requests: list[ChargingProfileRequest] = []
    for p in prepared:
        payload = _build_payload(p, ids[p.key], version, start_str, int(step_s), notes)
        violations = check_profile(
            payload,
            version,
            min_current_a=p.min_current_a,
            max_periods=p.caps.max_periods,
            max_stack_level=p.caps.max_stack_level,
            rate_units=p.caps.rate_units,
            max_external_constraints_id=(
                p.caps.max_external_constraints_id if version == "2.1" else None
            ),
        )
        if violations:
            raise ProfileRuleError(violations, payload)
        requests.append(ChargingProfileRequest(p.station_id, _ACTION, version, payload))

    for note in notes:
        warnings.warn(note, OcppExportWarning, stacklevel=2)
    return requests


def _check_start_step(start: Any, step_s: Any, problems: list[Problem]) -> str:
    start_str = ""
    try:
        ts = pd.Timestamp(start)
    except (TypeError, ValueError):
        ts = None
    if ts is None or ts is pd.NaT or ts.tzinfo is None:
        problems.append(
            Problem(
                "start",
                "The 'start' parameter of build_profiles must be a tz-aware "
                f"pandas.Timestamp. Got {start!r} instead.",
                start,
            )
        )
    else:
        start_str = format_ocpp_datetime(ts)
    if not _is_int(step_s) or step_s <= 0:
        problems.append(
            Problem(
                "step_s",
                "The 'step_s' parameter of build_profiles must be an int > 0 (rule 29: "
                f"integer seconds). Got {step_s!r} instead.",
                step_s,
            )
        )
    return start_str


def _prepare_limit(
    i: int,
    lim: StationLimit,
    capabilities: StationCapabilities | Mapping[str, StationCapabilities] | None,
    problems: list[Problem],
    notes: list[str],
) -> _Prepared | None:
    sid = lim.station_id
    label = f"station_limits[{i}] (station_id={sid!r})"
    if not isinstance(sid, str) or not sid:
        problems.append(Problem(f"{label}.station_id", "must be a non-empty str.", sid))
        return None
    caps = _resolve_caps(capabilities, sid)
    n_before = len(problems)
    arr_a = None if lim.limit_a is None else _to_array(lim.limit_a, f"{label}.limit_a", problems)
    arr_w = None if lim.limit_w is None else _to_array(lim.limit_w, f"{label}.limit_w", problems)
    if len(problems) > n_before:
        return None
    if arr_a is not None and arr_w is not None and arr_a.shape != arr_w.shape:
        problems.append(
            Problem(label, f"limit_a and limit_w differ in length ({arr_a.size} vs {arr_w.size}).")
        )
        return None
    unit = None
    for u in caps.rate_units:  # rule 26: first accepted unit for which a limit exists
        if (u == "A" and arr_a is not None) or (u == "W" and arr_w is not None):
            unit = u
            break
    if unit is None:
        given = [n for n, a in (("limit_a", arr_a), ("limit_w", arr_w)) if a is not None]
        problems.append(
            Problem(
                label,
                f"station {sid!r} accepts rate units {caps.rate_units} but the limit "
                f"gives only {given or 'nothing'} (rule 26).",
                given,
            )
        )
        return None
    tenths = _floor_tenths(arr_a if unit == "A" else arr_w)
    min_a = IEC_MIN_CURRENT_A
    if unit == "A":
        low = (tenths > 0) & (tenths < round(min_a * 10))
        if low.any():
            notes.append(
                f"Station {sid!r}: max-profile current limit below {min_a} A in "
                f"{int(low.sum())} slot(s) set to 0 A (rule 32)."
            )
            tenths = np.where(low, 0, tenths)
    return _Prepared(
        kind="max",
        index=i,
        station_id=sid,
        connector_id=0,
        key="max:" + sid,
        unit=unit,
        tenths=tenths,
        number_phases=None,
        transaction_id=None,
        caps=caps,
        min_current_a=min_a,
        label=label,
    )


def _prepare_schedule(
    i: int,
    cs: ConnectorSchedule,
    version: str,
    capabilities: StationCapabilities | Mapping[str, StationCapabilities] | None,
    problems: list[Problem],
    notes: list[str],
) -> _Prepared | None:
    sid = cs.station_id
    label = f"schedules[{i}] (session_id={cs.session_id!r})"
    n_before = len(problems)
    if not isinstance(sid, str) or not sid:
        problems.append(Problem(f"{label}.station_id", "must be a non-empty str.", sid))
    if not isinstance(cs.session_id, str) or not cs.session_id:
        problems.append(Problem(f"{label}.session_id", "must be a non-empty str.", cs.session_id))
    if not _is_int(cs.connector_id) or cs.connector_id <= 0:
        problems.append(
            Problem(
                f"{label}.connector_id",
                "must be an int > 0: a TxProfile goes to a connector/EVSE, never to 0 "
                f"(rule 8). Got {cs.connector_id!r} instead.",
                cs.connector_id,
            )
        )
    dc_ok = isinstance(cs.dc, bool | np.bool_)  # not merely truthy: "false" is truthy
    if not dc_ok:
        problems.append(Problem(f"{label}.dc", f"must be a bool. Got {cs.dc!r} instead.", cs.dc))
    dc = bool(cs.dc)
    if dc_ok and dc and cs.current_a is not None:
        problems.append(
            Problem(
                f"{label}.current_a",
                "must be None on DC: its limits are sent in W (rule 34).",
                cs.current_a,
            )
        )
    caps = _resolve_caps(capabilities, sid) if isinstance(sid, str) else StationCapabilities()
    min_a = IEC_MIN_CURRENT_A
    if not dc:
        if not _is_int(cs.number_phases) or cs.number_phases not in (1, 2, 3):
            problems.append(
                Problem(
                    f"{label}.number_phases",
                    f"must be 1, 2 or 3 on AC (rule 33). Got {cs.number_phases!r} instead.",
                    cs.number_phases,
                )
            )
        w_ok = isinstance(cs.w_per_a, int | float | np.number) and not isinstance(cs.w_per_a, bool)
        if not w_ok or not math.isfinite(cs.w_per_a) or cs.w_per_a <= 0:
            problems.append(
                Problem(
                    f"{label}.w_per_a",
                    f"must be a finite float > 0 on AC. Got {cs.w_per_a!r} instead.",
                    cs.w_per_a,
                )
            )
        m = cs.min_current_a
        if not isinstance(m, int | float | np.number) or not math.isfinite(m) or m < 0:
            problems.append(
                Problem(
                    f"{label}.min_current_a", f"must be a finite float >= 0. Got {m!r} instead.", m
                )
            )
        else:
            min_a = max(IEC_MIN_CURRENT_A, float(m))
    signed = version == "2.1"  # discharge (negative values) only in 2.1 (rules 31, 39)
    power = _to_array(cs.power_w, f"{label}.power_w", problems, signed=signed, version=version)
    current = None
    if not dc and cs.current_a is not None:
        current = _to_array(
            cs.current_a, f"{label}.current_a", problems, signed=signed, version=version
        )
    # unit (rule 26): DC only in W (rule 34); AC in the first accepted unit.
    if dc:
        unit = "W" if "W" in caps.rate_units else None
        if unit is None:
            problems.append(
                Problem(
                    label,
                    f"DC connector {cs.connector_id!r} of station {sid!r} needs W limits but "
                    f"the station accepts only {caps.rate_units} (rules 26, 34).",
                    caps.rate_units,
                )
            )
    else:
        unit = caps.rate_units[0]
    tx = _transaction_id(cs.transaction_id, version, label, problems, notes)
    if len(problems) > n_before:
        return None
    assert power is not None and unit is not None
    if current is not None and current.shape != power.shape:
        problems.append(
            Problem(
                label, f"current_a and power_w differ in length ({current.size} vs {power.size})."
            )
        )
        return None
    if dc:
        tenths = _trunc_tenths(power)
        nph = None
    else:
        w_per_a = float(cs.w_per_a)  # type: ignore[arg-type]
        if current is None:
            current = power / w_per_a
        elif not np.allclose(current * w_per_a, power, rtol=1e-6, atol=1e-3):
            problems.append(
                Problem(
                    f"{label}.power_w",
                    "must equal current_a * w_per_a on AC.",
                    None,
                )
            )
            return None
        nph = int(cs.number_phases)  # type: ignore[arg-type]
        # rule 32 on the magnitude: charge and discharge alike
        if unit == "A":
            tenths = _trunc_tenths(current)
            low = (tenths != 0) & (np.abs(tenths) / 10 < min_a - _TOL)
        else:
            tenths = _trunc_tenths(power)
            low = (tenths != 0) & (np.abs(current) < min_a - _TOL)
        if low.any():
            notes.append(
                f"Station {sid!r} connector {cs.connector_id}: current below the minimum "
                f"{min_a} A (in magnitude) in {int(low.sum())} slot(s) set to 0 (rule 32)."
            )
            tenths = np.where(low, 0, tenths)
    return _Prepared(
        kind="tx",
        index=i,
        station_id=sid,
        connector_id=int(cs.connector_id),
        key="tx:" + cs.session_id,
        unit=unit,
        tenths=tenths,
        number_phases=nph,
        transaction_id=tx,
        caps=caps,
        min_current_a=min_a,
        label=label,
    )


def _transaction_id(
    tx: Any, version: str, label: str, problems: list[Problem], notes: list[str]
) -> int | str | None:
    """Convert the transaction id to the version's type (rules 3, 8)."""
    if version == "1.6":
        value: int | None = None
        if _is_int(tx):
            value = int(tx)
        elif isinstance(tx, str) and _INT_LIKE_RE.match(tx.strip()):
            value = int(tx.strip())
        if value is not None and -(2**31) <= value <= _MAX_ID:
            return value
        notes.append(
            f"{label}: transaction id {tx!r} is not a 32-bit integer as OCPP 1.6 needs; "
            "the TxProfile is sent without transactionId (rules 3, 8)."
        )
        return None
    if _is_int(tx):
        tx = str(int(tx))
    if not isinstance(tx, str) or not tx or len(tx) > 36:
        problems.append(
            Problem(
                f"{label}.transaction_id",
                f"must be a non-empty str of at most 36 characters in OCPP {version}: a "
                f"TxProfile needs the transaction's id (rules 3, 8). Got {tx!r} instead.",
                tx,
            )
        )
        return None
    return tx


def _assign_ids(
    prepared: list[_Prepared],
    profile_ids: Mapping[str, int] | None,
    version: str,
    problems: list[Problem],
) -> dict[str, int]:
    """Stable profile ids (rule 4), unique per station; in 2.1 above MaxExternalConstraintsId."""
    ids: dict[str, int] = {}
    by_station: dict[tuple[str, int], str] = {}
    if profile_ids is not None and not isinstance(profile_ids, Mapping):
        problems.append(
            Problem(
                "profile_ids",
                "must be a mapping of key ('tx:' + session id or 'max:' + station id) to "
                f"int. Got {profile_ids!r} instead.",
                profile_ids,
            )
        )
        return ids
    overrides = profile_ids or {}
    for p in prepared:
        above = p.caps.max_external_constraints_id if version == "2.1" else None
        if p.key in overrides:
            pid = overrides[p.key]
            if not _is_int(pid) or not 1 <= pid <= _MAX_ID:
                problems.append(
                    Problem(
                        f"profile_ids[{p.key!r}]",
                        f"must be an int in 1..{_MAX_ID}. Got {pid!r} instead.",
                        pid,
                    )
                )
                continue
            pid = int(pid)
            if above is not None and pid <= above:
                problems.append(
                    Problem(
                        f"profile_ids[{p.key!r}]",
                        f"profile id {pid} of station {p.station_id!r} must be above its "
                        f"MaxExternalConstraintsId={above} in OCPP 2.1 (rule 4).",
                        pid,
                    )
                )
                continue
        else:
            pid = stable_profile_id(p.key, above=above)
        other = by_station.get((p.station_id, pid))
        if other is not None and other != p.key:
            problems.append(
                Problem(
                    f"profile_ids[{p.key!r}]",
                    f"profile id {pid} of {p.key!r} collides with {other!r} on station "
                    f"{p.station_id!r}; pass distinct ids in profile_ids (rule 4).",
                    pid,
                )
            )
        by_station[(p.station_id, pid)] = p.key
        ids[p.key] = pid
    return ids


def _build_payload(
    p: _Prepared, profile_id: int, version: str, start_str: str, step_s: int, notes: list[str]
) -> dict:
    max_periods = p.caps.max_periods
    if version != "1.6":
        max_periods = min(max_periods, _SCHEMA_MAX_PERIODS_2X)
    runs, lost = _merge_to_budget(_runs(p.tenths), max_periods)
    if lost > 0:
        hours = lost / 10 * step_s / 3600
        what = (
            f"station {p.station_id!r} max profile"
            if p.kind == "max"
            else f"station {p.station_id!r} connector {p.connector_id}"
        )
        how = (
            "toward zero (to the smaller magnitude; 0 where charge meets discharge)"
            if bool(np.any(p.tenths < 0))
            else "to the lower limit"
        )
        notes.append(
            f"{what}: periods merged {how} to fit max_periods={max_periods} (rule 27); "
            f"{hours:.6g} {p.unit}h of headroom lost."
        )
    # 2.1 with discharge: CentralSetpoint on every period (rules 37-39); otherwise a
    # plain limit, operationMode absent = ChargingOnly (rule 38).
    v2x = version == "2.1" and any(k < 0 for _, _, k in runs)
    periods: list[dict[str, Any]] = []
    for first_slot, _, k in runs:
        period: dict[str, Any] = {"startPeriod": first_slot * step_s}
        if v2x:
            period["operationMode"] = _V2X_MODE
            period["setpoint"] = _tenths_to_float(k)
            period["limit"] = _tenths_to_float(max(k, 0))
            period["dischargeLimit"] = _tenths_to_float(min(k, 0))
        else:
            period["limit"] = _tenths_to_float(k)
        if p.number_phases is not None:
            period["numberPhases"] = p.number_phases
        periods.append(period)
    purpose = "TxProfile" if p.kind == "tx" else _MAX_PURPOSE[version]
    schedule: dict[str, Any] = {
        "startSchedule": start_str,
        "duration": int(p.tenths.size) * step_s,
        "chargingRateUnit": p.unit,
        "chargingSchedulePeriod": periods,
    }
    if version == "1.6":
        profile: dict[str, Any] = {"chargingProfileId": profile_id}
        if p.transaction_id is not None:
            profile["transactionId"] = p.transaction_id
        profile.update(
            {
                "stackLevel": int(p.caps.stack_level),
                "chargingProfilePurpose": purpose,
                "chargingProfileKind": "Absolute",
                "chargingSchedule": schedule,
            }
        )
        return {"connectorId": p.connector_id, "csChargingProfiles": profile}
    profile = {
        "id": profile_id,
        "stackLevel": int(p.caps.stack_level),
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": "Absolute",
        "chargingSchedule": [{"id": profile_id, **schedule}],
    }
    if p.transaction_id is not None:
        profile["transactionId"] = p.transaction_id
    return {"evseId": p.connector_id, "chargingProfile": profile}


# --------------------------------------------------------------------------- check


def check_profile(
    payload: dict,
    version: str,
    *,
    min_current_a: float = 6.0,
    max_periods: int = 24,
    max_stack_level: int | None = None,
    rate_units: Sequence[str] | None = None,
    max_external_constraints_id: int | None = None,
) -> list[str]:
    """List the rule violations of a ``SetChargingProfile`` payload.

    Checks the rules of ``docs/ocpp-profile-rules.md`` that a payload alone can
    show: wrapper shape and keys (1), required fields (2), types (3), purpose and
    target (5, 7, 8, 9, 10), stack level (11), kind and times (17-20), bounded
    duration (24, 45), one schedule (25), unit (26), period count (27), period
    starts (28, 29), limit grid, sign and minimum current (30-32) and phases (33,
    35). It never raises on a malformed payload.

    For 2.1 also: ids above ``MaxExternalConstraintsId`` (4), no LocalGeneration (6),
    ``randomizedDelay`` only on Tx/TxDefault profiles (22), ``dynUpdate*`` only on
    Dynamic profiles (23), operation mode allowed for the purpose (37), limit and
    setpoint fields required/allowed per mode, with ``setpoint`` inside
    ``[dischargeLimit, limit]`` (38), ``dischargeLimit <= 0`` and one sign for all
    phase setpoints (39), LocalFrequency needs (40) and ``limitAtSoC.soc`` (41). The
    0.1 grid (30) and the minimum current (32, on the magnitude) apply to ``limit``,
    ``dischargeLimit`` and ``setpoint`` and their ``_L2``/``_L3`` variants alike.

    Parameters
    ----------
    payload : dict
        The request payload (1.6 ``{"connectorId", "csChargingProfiles"}`` or 2.x
        ``{"evseId", "chargingProfile"}``).
    version : {"1.6", "2.0.1", "2.1"}
        OCPP version of the payload.
    min_current_a : float, default 6.0
        Lowest non-zero magnitude allowed when the unit is A (rule 32).
    max_periods : int, default 24
        Most periods per schedule (rule 27).
    max_stack_level : int, optional
        Highest stack level the station accepts (rule 11).
    rate_units : sequence of str, optional
        Units the station accepts (rule 26).
    max_external_constraints_id : int, optional
        2.1 only: the station's ``MaxExternalConstraintsId``; the profile id must be
        above it (rule 4).

    Returns
    -------
    list of str
        One message per violation, each ``"rule N: path: message"``; empty if the
        payload passes.

    Raises
    ------
    ValueError
        For an unknown version.
    """
    if version not in SUPPORTED_VERSIONS:
        raise ValueError(
            f"The 'version' parameter of check_profile must be one of {SUPPORTED_VERSIONS}. "
            f"Got {version!r} instead."
        )
    out: list[str] = []

    def bad(rule: int, path: str, msg: str) -> None:
        out.append(f"rule {rule}: {path}: {msg}")

    keys = _KEYS[version]
    if not isinstance(payload, dict):
        bad(1, "payload", f"must be a dict. Got {type(payload).__name__} instead.")
        return out
    _check_json_values(payload, "payload", bad)
    v16 = version == "1.6"
    target_key, profile_key = (
        ("connectorId", "csChargingProfiles")
        if v16
        else (
            "evseId",
            "chargingProfile",
        )
    )
    _check_keys(payload, keys["request"], {target_key, profile_key}, "payload", bad)
    target = payload.get(target_key)
    if target_key in payload and (not _is_json_int(target) or target < 0):
        bad(10 if v16 else 1, target_key, f"must be an int >= 0. Got {target!r} instead.")
        target = None
    profile = payload.get(profile_key)
    if not isinstance(profile, dict):
        if profile_key in payload:
            bad(1, profile_key, "must be an object.")
        return out
    pp = profile_key
    id_key = "chargingProfileId" if v16 else "id"
    required = {
        id_key,
        "stackLevel",
        "chargingProfilePurpose",
        "chargingProfileKind",
        "chargingSchedule",
    }
    _check_keys(profile, keys["profile"], required, pp, bad)
    if id_key in profile and not _is_json_int(profile[id_key]):
        bad(3, f"{pp}.{id_key}", f"must be an int. Got {profile[id_key]!r} instead.")
    elif (
        version == "2.1"
        and id_key in profile
        and max_external_constraints_id is not None
        and profile[id_key] <= max_external_constraints_id
    ):
        bad(
            4,
            f"{pp}.{id_key}",
            f"must be above MaxExternalConstraintsId={max_external_constraints_id}. "
            f"Got {profile[id_key]} instead.",
        )
    stack = profile.get("stackLevel")
    if "stackLevel" in profile:
        if not _is_json_int(stack):
            bad(3, f"{pp}.stackLevel", f"must be an int. Got {stack!r} instead.")
        elif stack < 0 or (max_stack_level is not None and stack > max_stack_level):
            bad(11, f"{pp}.stackLevel", f"must be in 0..{max_stack_level}. Got {stack} instead.")
    purpose = profile.get("chargingProfilePurpose")
    if "chargingProfilePurpose" in profile and purpose not in _PURPOSES[version]:
        bad(1, f"{pp}.chargingProfilePurpose", f"unknown purpose {purpose!r}.")
    if purpose == "ChargingStationExternalConstraints":
        bad(5, f"{pp}.chargingProfilePurpose", "never send ChargingStationExternalConstraints.")
    if purpose == "LocalGeneration":
        bad(6, f"{pp}.chargingProfilePurpose", "LocalGeneration is rejected by stations.")
    kind = profile.get("chargingProfileKind")
    if "chargingProfileKind" in profile and kind not in _KINDS[version]:
        bad(1, f"{pp}.chargingProfileKind", f"unknown kind {kind!r}.")
    for k in ("dynUpdateInterval", "dynUpdateTime"):
        if k in profile and kind != "Dynamic":
            bad(23, f"{pp}.{k}", "only a Dynamic profile has it.")
    if purpose in ("ChargePointMaxProfile", "ChargingStationMaxProfile"):
        if target is not None and target != 0:
            bad(7, target_key, f"a {purpose} goes on connector/EVSE 0. Got {target} instead.")
        if kind == "Relative":
            bad(7, f"{pp}.chargingProfileKind", f"a {purpose} must not be Relative.")
    tx = profile.get("transactionId")
    if purpose == "TxProfile":
        if target is not None and target <= 0:
            bad(8, target_key, "a TxProfile goes on a connector/EVSE > 0.")
        if not v16 and "transactionId" not in profile:
            bad(8, f"{pp}.transactionId", "a 2.x TxProfile needs the transactionId.")
    elif "transactionId" in profile:
        bad(9, f"{pp}.transactionId", "only a TxProfile carries a transactionId.")
    if "transactionId" in profile:
        if v16 and not _is_json_int(tx):
            bad(3, f"{pp}.transactionId", f"must be an int in 1.6. Got {tx!r} instead.")
        if not v16 and (not isinstance(tx, str) or len(tx) > 36):
            bad(3, f"{pp}.transactionId", f"must be a str of <= 36 chars. Got {tx!r} instead.")
    if kind == "Recurring" and profile.get("recurrencyKind") not in _RECURRENCY:
        bad(18, f"{pp}.recurrencyKind", "a Recurring profile needs Daily or Weekly.")
    valid = {}
    for k in ("validFrom", "validTo"):
        if k in profile:
            valid[k] = _check_datetime(profile[k], f"{pp}.{k}", bad)
    if valid.get("validFrom") and valid.get("validTo") and valid["validFrom"] >= valid["validTo"]:
        bad(20, f"{pp}.validFrom", "must be before validTo.")

    sched = profile.get("chargingSchedule")
    if v16:
        if "chargingSchedule" in profile and not isinstance(sched, dict):
            bad(1, f"{pp}.chargingSchedule", "must be a single object in 1.6.")
            return out
        schedules = [(f"{pp}.chargingSchedule", sched)] if sched is not None else []
    else:
        if "chargingSchedule" in profile and not isinstance(sched, list):
            bad(1, f"{pp}.chargingSchedule", "must be an array in 2.x.")
            return out
        sched = sched or []
        if "chargingSchedule" in profile and len(sched) != 1:
            bad(25, f"{pp}.chargingSchedule", f"must hold exactly one schedule. Got {len(sched)}.")
        schedules = [(f"{pp}.chargingSchedule[{j}]", s) for j, s in enumerate(sched)]
    cap = max_periods if v16 else min(max_periods, _SCHEMA_MAX_PERIODS_2X)
    for path, s in schedules:
        _check_schedule(
            s,
            path,
            version,
            kind,
            purpose,
            "validTo" in profile,
            min_current_a,
            cap,
            rate_units,
            bad,
        )
    return out


def _check_schedule(
    s: Any,
    path: str,
    version: str,
    kind: Any,
    purpose: Any,
    has_valid_to: bool,
    min_current_a: float,
    max_periods: int,
    rate_units: Sequence[str] | None,
    bad: Any,
) -> None:
    keys = _KEYS[version]
    v21 = version == "2.1"
    if not isinstance(s, dict):
        bad(1, path, "must be an object.")
        return
    required = {"chargingRateUnit", "chargingSchedulePeriod"} | (
        set() if version == "1.6" else {"id"}
    )
    _check_keys(s, keys["schedule"], required, path, bad)
    if "id" in s and not _is_json_int(s["id"]):
        bad(3, f"{path}.id", f"must be an int. Got {s['id']!r} instead.")
    if kind in ("Absolute", "Recurring") and "startSchedule" not in s:
        bad(17, f"{path}.startSchedule", f"an {kind} profile needs startSchedule.")
    if kind == "Relative" and "startSchedule" in s:
        bad(17, f"{path}.startSchedule", "a Relative profile must not have startSchedule.")
    if "startSchedule" in s:
        _check_datetime(s["startSchedule"], f"{path}.startSchedule", bad)
    duration = s.get("duration")
    if "duration" in s:
        if not _is_json_int(duration):
            bad(3, f"{path}.duration", f"must be an int. Got {duration!r} instead.")
            duration = None
        elif duration <= 0:
            bad(24, f"{path}.duration", f"must be > 0. Got {duration} instead.")
            duration = None
    elif kind == "Absolute" and not has_valid_to:
        bad(
            45,
            f"{path}.duration",
            "missing: an Absolute profile without duration or validTo stays in force indefinitely.",
        )
    unit = s.get("chargingRateUnit")
    if "chargingRateUnit" in s:
        if unit not in _UNITS:
            bad(26, f"{path}.chargingRateUnit", f"must be 'A' or 'W'. Got {unit!r} instead.")
        elif rate_units is not None and unit not in rate_units:
            bad(26, f"{path}.chargingRateUnit", f"{unit!r} is not in the station's {rate_units}.")
    if "minChargingRate" in s:
        _check_limit(s["minChargingRate"], f"{path}.minChargingRate", None, 0.0, bad)
    if v21:
        _check_schedule_v21(s, path, purpose, bad)
    periods = s.get("chargingSchedulePeriod")
    if "chargingSchedulePeriod" not in s:
        return
    if not isinstance(periods, list):
        bad(1, f"{path}.chargingSchedulePeriod", "must be an array.")
        return
    pp = f"{path}.chargingSchedulePeriod"
    if not periods:
        bad(27, pp, "must hold at least one period.")
    if len(periods) > max_periods:
        bad(27, pp, f"has {len(periods)} periods; the station accepts at most {max_periods}.")
    last: int | None = None
    for j, per in enumerate(periods):
        ppj = f"{pp}[{j}]"
        if not isinstance(per, dict):
            bad(1, ppj, "must be an object.")
            continue
        # in 2.1 limit is conditional on the operation mode (rules 2, 38)
        required_keys = {"startPeriod"} if v21 else {"startPeriod", "limit"}
        _check_keys(per, keys["period"], required_keys, ppj, bad)
        sp = per.get("startPeriod")
        if "startPeriod" in per:
            if not _is_json_int(sp):
                bad(3, f"{ppj}.startPeriod", f"must be an int. Got {sp!r} instead.")
            else:
                if j == 0 and sp != 0:
                    bad(28, f"{ppj}.startPeriod", f"the first period must start at 0. Got {sp}.")
                if last is not None and sp <= last:
                    bad(29, f"{ppj}.startPeriod", f"must be > the previous {last}. Got {sp}.")
                if duration is not None and sp >= duration:
                    bad(
                        24,
                        f"{ppj}.startPeriod",
                        f"starts at {sp} s, not before duration {duration} s.",
                    )
                last = sp
        if v21:
            _check_period_v21(per, ppj, unit, purpose, min_current_a, bad)
        elif "limit" in per:
            _check_limit(per["limit"], f"{ppj}.limit", unit, min_current_a, bad)
        nph = per.get("numberPhases")
        if "numberPhases" in per and (not _is_json_int(nph) or nph not in (1, 2, 3)):
            bad(33, f"{ppj}.numberPhases", f"must be 1, 2 or 3. Got {nph!r} instead.")
        if "phaseToUse" in per:
            ptu = per["phaseToUse"]
            if not _is_json_int(ptu) or ptu not in (1, 2, 3) or nph != 1:
                bad(35, f"{ppj}.phaseToUse", "must be 1..3 and only with numberPhases=1.")


def _check_limit(value: Any, path: str, unit: Any, min_current_a: float, bad: Any) -> None:
    _check_rate(value, path, unit, min_current_a, bad, sign=1)


def _check_rate(
    value: Any, path: str, unit: Any, min_current_a: float, bad: Any, *, sign: int
) -> None:
    """Check a limit (``sign=1``), discharge limit (-1) or signed setpoint (0)."""
    if not _is_json_number(value) or not math.isfinite(value):
        bad(3, path, f"must be a finite number. Got {value!r} instead.")
        return
    if sign > 0 and value < 0:
        bad(31, path, f"must be >= 0. Got {value!r} instead.")
    if sign < 0 and value > 0:
        bad(39, path, f"must be <= 0 (discharge is negative). Got {value!r} instead.")
    try:
        on_grid = Decimal(repr(float(value))) % Decimal("0.1") == 0  # as JSON writes it
    except InvalidOperation:
        on_grid = False
    if not on_grid:
        bad(30, path, f"must be a multiple of 0.1 (at most one decimal). Got {value!r} instead.")
    magnitude = value if sign > 0 else abs(value)  # a negative limit is rule 31's
    if unit == "A" and 0 < magnitude < min_current_a:
        what = "a current" if sign > 0 else "a current's magnitude"
        bad(32, path, f"{what} must be 0 or >= {min_current_a} A. Got {value!r} instead.")


def _check_schedule_v21(s: dict, path: str, purpose: Any, bad: Any) -> None:
    """Schedule-level 2.1 fields (rules 3, 22, 41)."""
    if "randomizedDelay" in s:
        rd = s["randomizedDelay"]
        if not _is_json_int(rd) or rd < 0:
            bad(3, f"{path}.randomizedDelay", f"must be an int >= 0. Got {rd!r} instead.")
        if purpose not in ("TxProfile", "TxDefaultProfile"):
            bad(22, f"{path}.randomizedDelay", "only a TxProfile or TxDefaultProfile has it.")
    if "limitAtSoC" in s:
        las = s["limitAtSoC"]
        soc = las.get("soc") if isinstance(las, dict) else None
        if not _is_json_int(soc) or not 0 <= soc <= 100:
            bad(41, f"{path}.limitAtSoC.soc", f"must be an int in 0..100. Got {soc!r} instead.")
        if not isinstance(las, dict) or "limit" not in las:
            bad(2, f"{path}.limitAtSoC.limit", "is required.")


def _check_period_v21(
    per: dict, path: str, unit: Any, purpose: Any, min_current_a: float, bad: Any
) -> None:
    """Operation mode, limits and setpoints of a 2.1 period (rules 30-32, 37-40)."""
    mode = per.get("operationMode", "ChargingOnly")  # absent = ChargingOnly
    if mode not in _MODE_FIELDS:
        bad(1, f"{path}.operationMode", f"unknown operation mode {mode!r}.")
        return
    allowed_modes = _MODES_FOR_PURPOSE.get(purpose)
    if allowed_modes is not None and mode not in allowed_modes:
        bad(
            37,
            f"{path}.operationMode",
            f"{mode!r} is not allowed in a {purpose}; allowed: {', '.join(allowed_modes)}.",
        )
    required, optional = _MODE_FIELDS[mode]
    for base in _LIMIT_SETPOINT_FIELDS:
        present = [base + sfx for sfx in _PHASE_SUFFIXES if base + sfx in per]
        if base in required and base not in per:
            bad(38, f"{path}.{base}", f"is required with operationMode {mode!r}.")
        if base not in required and base not in optional:
            for key in present:
                bad(38, f"{path}.{key}", f"is not allowed with operationMode {mode!r}.")
        elif present and base not in per:
            bad(38, f"{path}.{present[0]}", f"needs {base!r} too (L2/L3 follow their base).")
    for sfx in _PHASE_SUFFIXES:
        for base, sign in (("limit", 1), ("dischargeLimit", -1), ("setpoint", 0)):
            if base + sfx in per:
                _check_rate(
                    per[base + sfx], f"{path}.{base}{sfx}", unit, min_current_a, bad, sign=sign
                )
        key = "setpointReactive" + sfx
        if key in per and (not _is_json_number(per[key]) or not math.isfinite(per[key])):
            bad(3, f"{path}.{key}", f"must be a finite number. Got {per[key]!r} instead.")
        # the setpoint lies inside the band the limits allow it to overshoot into
        sp = per.get("setpoint" + sfx)
        lim, dis = per.get("limit" + sfx), per.get("dischargeLimit" + sfx)
        if _is_json_number(sp):
            if _is_json_number(lim) and sp > lim:
                bad(38, f"{path}.setpoint{sfx}", f"{sp!r} is above limit{sfx} {lim!r}.")
            if _is_json_number(dis) and sp < dis:
                bad(38, f"{path}.setpoint{sfx}", f"{sp!r} is below dischargeLimit{sfx} {dis!r}.")
    setpoints = [
        per[k] for k in ("setpoint", "setpoint_L2", "setpoint_L3") if _is_json_number(per.get(k))
    ]
    if any(v > 0 for v in setpoints) and any(v < 0 for v in setpoints):
        bad(39, f"{path}.setpoint", "setpoint, setpoint_L2 and setpoint_L3 must share one sign.")
    if mode == "LocalFrequency":
        curve = per.get("v2xFreqWattCurve")
        if unit != "W":
            bad(40, f"{path}.operationMode", "LocalFrequency needs chargingRateUnit 'W'.")
        if "v2xBaseline" not in per:
            bad(40, f"{path}.v2xBaseline", "is required with LocalFrequency.")
        if not isinstance(curve, list) or not 2 <= len(curve) <= 20:
            bad(40, f"{path}.v2xFreqWattCurve", "LocalFrequency needs 2..20 points.")


def _check_datetime(value: Any, path: str, bad: Any) -> datetime | None:
    if not isinstance(value, str) or not _DATETIME_RE.match(value):
        bad(19, path, f"must be RFC 3339 UTC like '2024-03-01T12:00:00.000Z'. Got {value!r}.")
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        bad(19, path, f"is not a valid date-time: {value!r}.")
        return None


def _check_keys(obj: dict, allowed: frozenset, required: set, path: str, bad: Any) -> None:
    for k in obj:
        if k not in allowed:
            bad(1, f"{path}.{k}", "is not a key of the schema.")
    for k in sorted(required - obj.keys()):
        bad(2, f"{path}.{k}", "is required.")


_JSON_LEAVES = (str, int, float, bool)  # exact types (numpy scalars are not JSON values)


def _check_json_values(obj: Any, path: str, bad: Any) -> None:
    """No None/NaN anywhere and only JSON types (rules 1, 3)."""
    if obj is None:
        bad(3, path, "must not be None (null).")
    elif isinstance(obj, dict):
        for k, v in obj.items():
            if not isinstance(k, str):
                bad(3, path, f"has a non-str key {k!r}.")
            if type(v) not in _JSON_LEAVES:  # (a plain leaf passes: no path to build)
                _check_json_values(v, f"{path}.{k}", bad)
    elif isinstance(obj, list):
        for j, v in enumerate(obj):
            if type(v) not in _JSON_LEAVES:
                _check_json_values(v, f"{path}[{j}]", bad)
    elif not isinstance(obj, str | int | float) or isinstance(obj, np.generic):
        bad(3, path, f"is not a JSON value: {type(obj).__name__}.")
